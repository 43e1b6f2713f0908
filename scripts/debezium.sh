#!/usr/bin/env bash
# Microsoft's JDBC driver (mssql-jdbc) and Debezium's SQL Server connector (embedded engine) as
# independent clients of mssql-sim, from the jars Maven resolves for tools/debezium (cached in
# ~/.m2). Test bed only.
#
#   scripts/debezium.sh build        resolve the jars and build the harness (tools/debezium/target)
#   scripts/debezium.sh jdbc HOST PORT PASSWORD DATABASE ENCRYPT
#                                    mssql-jdbc: a statement, prepared statements (sp_executesql,
#                                    sp_prepexec, sp_execute), DatabaseMetaData; prints one line per
#                                    check and "ok" last; ENCRYPT is the driver's encrypt (false|true)
#   scripts/debezium.sh run HOST PORT PASSWORD DATABASE TABLE_INCLUDE_LIST OUT_FILE MAX_RECORDS IDLE_SECONDS WORK_DIR
#                                    Debezium embedded, snapshot then streaming; one JSON line per
#                                    record {"topic","key","value"} (JsonConverter, schemas enabled)
#                                    in OUT_FILE; stops after MAX_RECORDS or IDLE_SECONDS without one
#   scripts/debezium.sh java MAIN [ARGS...]   any main class on the same class path
#
# Environment: DEBEZIUM_HEAP (JVM heap, default: the JVM's own default), DEBEZIUM_LOG_LEVEL
# (log4j2 root level, default INFO; logs go to stderr).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/tools/debezium"
lib="$tools/target/lib"

log() { echo "debezium.sh: $*" >&2; }

# shellcheck source=lib/maven.sh
source "$root/scripts/lib/maven.sh"

build() { maven_build "$tools" "mssql-jdbc and Debezium jars and building the harness"; }

java_main() {
  build
  local heap=()
  if [ -n "${DEBEZIUM_HEAP:-}" ]; then heap=(-Xms"$DEBEZIUM_HEAP" -Xmx"$DEBEZIUM_HEAP"); fi
  exec java "${heap[@]}" -cp "$lib/*:$tools/target/classes" \
    -Dlog4j2.configurationFile="$tools/log4j2.properties" "$@"
}

case "${1:-}" in
  build) build ;;
  jdbc) shift; java_main io.github.cdcrs.debezium.JdbcProbe "$@" ;;
  run) shift; java_main io.github.cdcrs.debezium.DebeziumRun "$@" ;;
  java) shift; java_main "$@" ;;
  *) echo "usage: $0 build|jdbc HOST PORT PASSWORD DATABASE ENCRYPT|run HOST PORT PASSWORD DATABASE TABLES OUT MAX IDLE WORK_DIR|java MAIN [ARGS...]" >&2; exit 2 ;;
esac
