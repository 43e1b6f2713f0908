#!/usr/bin/env bash
# MinIO, an S3 server that verifies request signatures (SigV4), on 127.0.0.1. Test bed only.
# Built once with `go install github.com/minio/minio@$MINIO_VERSION` through the Go module proxy
# into $(go env GOPATH)/bin; Go's module and build caches make later builds quick.
#
#   scripts/minio.sh build     build the server if it is not there yet
#   scripts/minio.sh start     start it, wait until it serves, create $MINIO_BUCKETS;
#                              prints the endpoint (http://127.0.0.1:PORT) on stdout
#   scripts/minio.sh stop      stop it (SIGTERM; SIGKILL after 30 s)
#   scripts/minio.sh status    exit 0 when it runs
#
# Environment:
#   MINIO_PORT          S3 port (default 19000); the console listens on MINIO_PORT+1
#   MINIO_DIR           data, log and pid file (default ${TMPDIR:-/tmp}/cdc-rs-minio-$MINIO_PORT)
#   MINIO_ROOT_USER     access key (default cdc-test), MINIO_ROOT_PASSWORD secret (default
#                       cdc-test-secret; MinIO wants 8 characters or more)
#   MINIO_BUCKETS       space-separated buckets to create at start (default cdc-test)
#   MINIO_OWNER_PID     if set, the server is killed when that process exits (tests use it)
#   MINIO_VERSION       the module version to build (default: the commit of 2026-02-12, MinIO has
#                       no newer release tags on the proxy)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${MINIO_PORT:-19000}"
dir="${MINIO_DIR:-${TMPDIR:-/tmp}/cdc-rs-minio-$port}"
pid_file="$dir/minio.pid"
export MINIO_ROOT_USER="${MINIO_ROOT_USER:-cdc-test}"
export MINIO_ROOT_PASSWORD="${MINIO_ROOT_PASSWORD:-cdc-test-secret}"

log() { echo "minio.sh: $*" >&2; }

# The Go toolchain scripts/setup.sh fetched where Debian's Go is too old to build MinIO.
if [ -x "$HOME/.cache/cdc-rs/go-toolchain/bin/go" ]; then
  export PATH="$HOME/.cache/cdc-rs/go-toolchain/bin:$PATH"
fi

binary() { echo "$(go env GOPATH)/bin/minio"; }

build() {
  command -v go >/dev/null || { log "go not found: run scripts/setup.sh"; exit 1; }
  # Tests may start several servers at once: one build at a time.
  mkdir -p "$(go env GOPATH)/bin"
  exec 8>"$(go env GOPATH)/bin/.minio-build.lock"
  flock 8
  if [ -x "$(binary)" ]; then
    flock -u 8; exec 8>&-
    return 0
  fi
  log "building MinIO with go install (several minutes on a cold machine; cached afterwards)"
  local started=$SECONDS
  (cd "${TMPDIR:-/tmp}" && GOFLAGS=-buildvcs=false go install "github.com/minio/minio@${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}") >&2
  log "built $(binary) in $((SECONDS - started)) s"
  flock -u 8; exec 8>&-
}

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

# A signed CreateBucket through the test venv's boto3 (moto depends on it): MinIO accepts only
# signed requests, which is the point of using it.
create_buckets() {
  local python="$root/.venv/bin/python"
  [ -x "$python" ] || { log "$python missing: run scripts/setup.sh"; exit 1; }
  "$python" - "http://127.0.0.1:$port" ${MINIO_BUCKETS:-cdc-test} <<'EOF'
import os, sys
import boto3
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=os.environ["MINIO_ROOT_USER"],
                  aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"])
for bucket in sys.argv[2:]:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
EOF
}

start() {
  if running; then
    log "already running (pid $(cat "$pid_file"))"
    echo "http://127.0.0.1:$port"
    return 0
  fi
  build
  mkdir -p "$dir/data"
  local started=$SECONDS
  MINIO_BROWSER=off setsid "$(binary)" server "$dir/data" --quiet \
    --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" \
    >"$dir/minio.log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null; do
    if ! running; then
      log "MinIO exited during start:"
      tail -n 30 "$dir/minio.log" >&2 || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "MinIO did not serve within 60 s"
      stop
      exit 1
    fi
    sleep 0.2
  done
  create_buckets
  log "MinIO on http://127.0.0.1:$port (pid $(cat "$pid_file"), dir $dir) served after $((SECONDS - started)) s"
  if [ -n "${MINIO_OWNER_PID:-}" ]; then
    local server owner="$MINIO_OWNER_PID"
    server="$(cat "$pid_file")"
    # Polls its owner: there is no portable way to wait on a process that is not a child.
    (
      while kill -0 "$owner" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
      kill -KILL "$server" 2>/dev/null || true
    ) </dev/null >/dev/null 2>&1 &
    disown
  fi
  echo "http://127.0.0.1:$port"
}

stop() {
  running || { rm -f "$pid_file"; return 0; }
  local pid
  pid="$(cat "$pid_file")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  log "MinIO on 127.0.0.1:$port stopped"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) running ;;
  *) echo "usage: $0 build|start|stop|status" >&2; exit 2 ;;
esac
