#!/usr/bin/env bash
# A real Apache Kafka broker (4.x, KRaft, one node acting as broker and controller) on 127.0.0.1,
# from the jars Maven resolves for tools/kafka (cached in ~/.m2). Test bed only.
#
#   scripts/kafka.sh build                 resolve the jars and build the judge (tools/kafka/target)
#   scripts/kafka.sh start                 format storage if new, start, wait until it serves;
#                                          prints the bootstrap address (127.0.0.1:PORT) on stdout
#   scripts/kafka.sh stop                  stop it (SIGTERM, controlled shutdown; SIGKILL after 60 s)
#   scripts/kafka.sh kill                  SIGKILL it (a crash; the data directory stays)
#   scripts/kafka.sh status                exit 0 when it runs
#   scripts/kafka.sh java MAIN [ARGS...]   run a Java main class on the same class path, e.g.
#                                          org.apache.kafka.tools.ProducerPerformance or the judge
#
# Environment:
#   KAFKA_PORT             client port (default 19092); the controller listens on KAFKA_PORT+1
#   KAFKA_DIR              data, logs and pid file (default ${TMPDIR:-/tmp}/cdc-rs-kafka-$KAFKA_PORT);
#                          `start` on an existing directory restarts the same broker with its data
#   KAFKA_OWNER_PID        if set, the broker is killed when that process exits (tests use it so a
#                          crashed test run leaves no broker behind); with KAFKA_REMOVE_DIR=1 its
#                          directory is removed then too
#   KAFKA_HEAP             JVM heap (default 512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to serve (default 180)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/tools/kafka"
lib="$tools/target/lib"
port="${KAFKA_PORT:-19092}"
controller_port="$((port + 1))"
dir="${KAFKA_DIR:-${TMPDIR:-/tmp}/cdc-rs-kafka-$port}"
pid_file="$dir/broker.pid"

log() { echo "kafka.sh: $*" >&2; }

# shellcheck source=lib/maven.sh
source "$root/scripts/lib/maven.sh"

build() { maven_build "$tools" "Kafka jars and building the judge"; }

classpath() { echo "$lib/*:$tools/target/classes"; }

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

java_main() {
  build
  exec java -cp "$(classpath)" -Dlog4j2.configurationFile="$tools/log4j2-tools.properties" "$@"
}

write_config() {
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# One node: the internal topics cannot have more replicas than that.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests start consumer groups constantly: do not wait 3 s for more members to join.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
EOF
}

start() {
  if running; then
    log "already running (pid $(cat "$pid_file"))"
    echo "127.0.0.1:$port"
    return 0
  fi
  build
  write_config
  local cp
  cp="$(classpath)"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool random-uuid)"
    java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$dir/server.properties" >&2
  fi
  local started=$SECONDS
  : >"$dir/server.log"
  # setsid: the broker is its own process group, so a test's Ctrl-C does not kill it half-way
  # and `stop` decides when it goes.
  setsid java -Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" \
    kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-180}))
  # Serving = the server logged its start and the client port accepts connections.
  until grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! running; then
      log "the broker exited during start; last log lines:"
      tail -n 30 "$dir/server.log" "$dir/stdout.log" >&2 || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "the broker did not serve within ${KAFKA_START_TIMEOUT:-180} s"
      stop_broker TERM
      exit 1
    fi
    sleep 0.2
  done
  log "broker on 127.0.0.1:$port (pid $(cat "$pid_file"), dir $dir) served after $((SECONDS - started)) s"
  if [ -n "${KAFKA_OWNER_PID:-}" ]; then
    local broker owner="$KAFKA_OWNER_PID"
    broker="$(cat "$pid_file")"
    # The watcher polls its owner: there is no portable way to wait on a non-child process.
    (
      while kill -0 "$owner" 2>/dev/null && kill -0 "$broker" 2>/dev/null; do sleep 1; done
      kill -KILL "$broker" 2>/dev/null || true
      if [ "${KAFKA_REMOVE_DIR:-0}" = 1 ] && ! kill -0 "$owner" 2>/dev/null; then
        while kill -0 "$broker" 2>/dev/null; do sleep 0.2; done
        rm -rf "$dir"
      fi
    ) </dev/null >/dev/null 2>&1 &
    disown
  fi
  echo "127.0.0.1:$port"
}

stop_broker() {
  local signal="$1"
  running || { rm -f "$pid_file"; return 0; }
  local pid
  pid="$(cat "$pid_file")"
  kill -"$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "broker $pid ignored SIG$signal for 60 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  log "broker on 127.0.0.1:$port stopped (SIG$signal)"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop_broker TERM ;;
  kill) stop_broker KILL ;;
  status) running ;;
  java) shift; java_main "$@" ;;
  *) echo "usage: $0 build|start|stop|kill|status|java MAIN [ARGS...]" >&2; exit 2 ;;
esac
