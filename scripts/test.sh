#!/usr/bin/env bash
# The whole test suite: installs the test tools if missing, starts what the tests need (a real
# Kafka broker; MinIO is built here and started per test by scripts/minio.sh), then runs every
# crate's tests. A broker given in KAFKA_BROKERS (as .ci/run does) is used instead of a new one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export CDC_PYTHON="$root/.venv/bin/python"

# Built before the tests so parallel tests never wait on a build (the Kafka broker and its
# tools, mssql-jdbc and Debezium's SQL Server connector, MinIO).
bash scripts/kafka.sh build
bash scripts/debezium.sh build
bash scripts/minio.sh build
if [ -z "${KAFKA_BROKERS:-}" ]; then
  # A fresh broker with its own data directory, stopped and removed on exit.
  KAFKA_PORT="${KAFKA_PORT:-19092}"
  KAFKA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cdc-rs-kafka-test.XXXXXX")"
  export KAFKA_PORT KAFKA_DIR
  trap 'bash scripts/kafka.sh stop || true; rm -rf "$KAFKA_DIR"' EXIT
  KAFKA_BROKERS="$(bash scripts/kafka.sh start)"
  export KAFKA_BROKERS
fi
echo "test.sh: Kafka broker on $KAFKA_BROKERS"
cargo test --workspace --all-targets
cargo test --workspace --doc
