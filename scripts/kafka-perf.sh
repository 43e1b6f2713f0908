#!/usr/bin/env bash
# KafkaSink (Debezium JSON with schemas) against Kafka's own kafka-producer-perf-test
# (org.apache.kafka.tools.ProducerPerformance, same jars as the broker), side by side on one fresh
# real broker: the same number of records of the same mean size (key + value), the same
# acks=all, enable.idempotence=true, compression none and linger.ms=5. Alternates the two,
# REPEATS times each. Results: docs/benchmarks.md.
#
#   bash scripts/kafka-perf.sh [EVENTS=200000] [REPEATS=3]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
events="${1:-200000}"
repeats="${2:-3}"
export KAFKA_PORT="${KAFKA_PORT:-19192}"
KAFKA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cdc-rs-kafka-perf.XXXXXX")"
export KAFKA_DIR
trap 'bash scripts/kafka.sh stop || true; rm -rf "$KAFKA_DIR"' EXIT
cargo build -q --release -p kafka-io --example produce_perf
brokers="$(bash scripts/kafka.sh start)"
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/produce_perf"
for i in $(seq 1 "$repeats"); do
  ours="$("$bin" "$brokers" "$events" "perf$i")"
  echo "KafkaSink+DebeziumJson  run $i: $ours"
  size="$(sed -n 's/.*record_size=\([0-9]*\).*/\1/p' <<<"$ours")"
  bash scripts/kafka.sh java org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" \
    --create --topic "java-perf$i" --partitions 4 --replication-factor 1 >/dev/null
  theirs="$(bash scripts/kafka.sh java org.apache.kafka.tools.ProducerPerformance --topic "java-perf$i" \
    --num-records "$events" --record-size "$size" --throughput -1 \
    --producer-props bootstrap.servers="$brokers" acks=all enable.idempotence=true \
    compression.type=none linger.ms=5 | tail -n 1)"
  echo "kafka-producer-perf-test run $i: $theirs"
done
