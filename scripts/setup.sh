#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (idempotent):
#   - Debian packages: libssl-dev (rdkafka's ssl), FreeTDS tsql (independent TDS client);
#   - a JDK (17 or newer) and Maven for the real Kafka broker and Kafka's own clients
#     (scripts/kafka.sh), Go for MinIO (scripts/minio.sh), curl, flock — each only where missing;
#   - a Python venv in .venv with moto (S3 API server), DuckDB and pyarrow (file readers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
for pkg in libssl-dev pkg-config freetds-bin python3-venv curl util-linux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# Kafka 4 needs Java 17 or newer.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  need_apt+=(default-jdk-headless)
fi
command -v mvn >/dev/null || need_apt+=(maven)
command -v go >/dev/null || need_apt+=(golang-go)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# MinIO needs Go 1.24; Go 1.21 and newer fetch that toolchain from the Go module proxy by
# themselves (GOTOOLCHAIN=auto). An older Debian Go cannot, so the toolchain module is fetched
# from the proxy here and put first on the PATH of scripts/minio.sh.
go_minor() { go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p'; }
if [ "$(go_minor || echo 0)" -lt 21 ] 2>/dev/null; then
  toolchain="$HOME/.cache/cdc-rs/go-toolchain"
  if [ ! -x "$toolchain/bin/go" ]; then
    echo "setup: Go $(go env GOVERSION 2>/dev/null) is older than 1.21: fetching the go1.24.8 toolchain module"
    tmp="$(mktemp -d)"
    arch="$(dpkg --print-architecture)"
    curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.24.8.linux-$arch.zip"
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$tmp/go.zip" "$tmp/x"
    mkdir -p "$(dirname "$toolchain")"
    rm -rf "$toolchain"
    mv "$tmp/x/golang.org/toolchain@v0.0.1-go1.24.8.linux-$arch" "$toolchain"
    chmod +x "$toolchain"/bin/* "$toolchain"/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$tmp"
  fi
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto, duckdb, pyarrow' 2>/dev/null; then
  echo "setup: creating .venv with the test tools"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi
echo "setup: $(java -version 2>&1 | head -n 1), $(mvn -v 2>/dev/null | head -n 1 | sed 's/\x1b\[[0-9;]*m//g'), $(go env GOVERSION)"
echo "setup: ready ($(.venv/bin/python -c 'import moto, duckdb, pyarrow; print("moto", moto.__version__, "duckdb", duckdb.__version__, "pyarrow", pyarrow.__version__)'))"
