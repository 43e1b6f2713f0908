#!/usr/bin/env bash
# Debezium's SQL Server connector (embedded, 3.6.1.Final, JVM defaults) and our reader side by
# side, one simulator binary, the same workload, each into a null sink that counts events and
# encoded bytes (Debezium: JsonConverter with schemas; ours: DebeziumJson::with_schema). Results
# in docs/benchmarks.md ("Debezium vs our reader").
#
#   scripts/debezium-perf.sh stream N RUNS     N changes (a multiple of 20) already in the change
#                                             tables; both connectors start without a snapshot
#   scripts/debezium-perf.sh snapshot N RUNS   an initial snapshot of N rows (a multiple of 10)
#
# Each run starts a fresh release mssql-sim (--script loads the workload), then one connector,
# alternating Debezium and ours. In stream mode the simulator's capture is manual: the workload's
# changes wait in the log while the connector takes its start position (the capture job's end);
# then the connector itself runs `EXEC sys.sp_cdc_scan`, which moves all N into the change
# tables at once, and its clock starts. Each connector prints `perf {...}`: events, bytes,
# seconds, events/s, its own peak RSS (VmHWM, kB) and user+sys CPU seconds; the script adds the
# simulator's CPU seconds during the run (a simulator near 1 CPU second per second of the run
# would be the bottleneck). Output lines go to stdout; logs to $PERF_DIR (default
# /tmp/debezium-perf). PERF_SIDES picks the connectors (default "debezium cdc-rs").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:?usage: $0 stream|snapshot N RUNS}"
n="${2:?usage: $0 stream|snapshot N RUNS}"
runs="${3:-2}"
dir="${PERF_DIR:-/tmp/debezium-perf}"
password="Perf-Passw0rd!"
mkdir -p "$dir"
target="${CARGO_TARGET_DIR:-$root/target}"
sim_bin="$target/release/mssql-sim"

log() { echo "debezium-perf.sh: $*" >&2; }

# PERF_NO_BUILD=1 measures the binaries already built (PERF_BENCH_BIN: the vs_debezium bench
# executable), e.g. while other builds keep changing the tree.
if [ -z "${PERF_NO_BUILD:-}" ]; then
(cd "$root" && cargo build --release -q -p mssql-sim --bin mssql-sim)
# The bench executable itself, run directly: `cargo bench` would wait for the shared target
# directory's lock whenever another build holds it.
bench_bin=$(cd "$root" && cargo bench -q -p cdc-mssql --bench vs_debezium --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "vs_debezium" and m.get("executable"):
        print(m["executable"])')
else
  bench_bin="${PERF_BENCH_BIN:?PERF_NO_BUILD needs PERF_BENCH_BIN}"
fi
"$root/scripts/debezium.sh" build

log "writing the $mode workload ($n) to $dir/$mode-$n.sql"
python3 "$root/scripts/debezium-perf-workload.py" "$mode" "$n" >"$dir/$mode-$n.sql"

# CPU seconds (user + sys) of a process, from /proc/<pid>/stat.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }

sim_pid=""
stop_sim() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; sim_pid=""; fi
}
trap stop_sim EXIT

# Sets the globals port and sim_pid (no subshell: the EXIT trap must see the pid).
port=""
start_sim() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local interval=0
  [ "$mode" = snapshot ] && interval=1000
  # A fresh file: the previous simulator's "listening" must not count for this one.
  rm -f "$dir/sim.out"
  "$sim_bin" --port "$port" --sa-password "$password" --script "$dir/$mode-$n.sql" \
    --capture-interval-ms "$interval" >"$dir/sim.out" 2>"$dir/sim.err" &
  sim_pid=$!
  local started=$SECONDS
  # The simulator prints its address once the script has run.
  until grep -q listening "$dir/sim.out" 2>/dev/null; do
    kill -0 "$sim_pid" 2>/dev/null || { log "the simulator stopped: $(cat "$dir/sim.err")"; exit 1; }
    [ $((SECONDS - started)) -lt 600 ] || { log "the simulator did not load the workload in 600 s"; exit 1; }
    sleep 0.2
  done
  log "simulator loaded the workload in $((SECONDS - started)) s, RSS $(awk '/VmRSS/ {print $2}' "/proc/$sim_pid/status") kB"
}

if [ "$mode" = stream ]; then dbz_mode=no_data; trigger="EXEC sys.sp_cdc_scan"; else dbz_mode=initial; trigger="-"; fi

for run in $(seq 1 "$runs"); do
  for side in ${PERF_SIDES:-debezium cdc-rs}; do
    start_sim
    before=$(cpu "$sim_pid")
    if [ "$side" = debezium ]; then
      line=$(DEBEZIUM_LOG_LEVEL=WARN "$root/scripts/debezium.sh" java io.github.cdcrs.debezium.DebeziumPerf \
        127.0.0.1 "$port" "$password" perf "dbo.customers,dbo.orders,dbo.order_lines" "$dbz_mode" "$n" "$trigger" \
        "$dir/work-$run" 2>"$dir/debezium-$run.log" | grep '^perf ')
      rm -rf "$dir/work-$run"
    else
      line=$(PERF_PORT="$port" PERF_PASSWORD="$password" PERF_DATABASE=perf PERF_MODE="$mode" \
        PERF_EVENTS="$n" "$bench_bin" --bench 2>"$dir/cdc-rs-$run.log" | grep '^perf ')
    fi
    after=$(cpu "$sim_pid")
    echo "$mode n=$n run=$run ${line} sim_cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')"
    stop_sim
  done
done
