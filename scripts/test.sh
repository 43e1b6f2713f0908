#!/usr/bin/env bash
# The whole test suite: installs the test tools if missing, then runs every crate's tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export CDC_PYTHON="$root/.venv/bin/python"
cargo test --workspace --all-targets
cargo test --workspace --doc
