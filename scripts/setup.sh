#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (idempotent):
#   - Debian packages: libssl-dev (rdkafka's ssl), FreeTDS tsql (independent TDS client);
#   - a Python venv in .venv with moto (S3 API server), DuckDB and pyarrow (file readers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
for pkg in libssl-dev pkg-config freetds-bin python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto, duckdb, pyarrow' 2>/dev/null; then
  echo "setup: creating .venv with the test tools"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi
echo "setup: ready ($(.venv/bin/python -c 'import moto, duckdb, pyarrow; print("moto", moto.__version__, "duckdb", duckdb.__version__, "pyarrow", pyarrow.__version__)'))"
