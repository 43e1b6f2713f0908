#!/usr/bin/env bash
# The documented long crash campaigns (docs/reliability.md): `cdc` processes SIGKILLed at random
# moments and restarted while a T-SQL workload keeps committing; at the end every change must be
# where it belongs exactly once.
#
#   scripts/crash-campaign.sh [kafka|s3|both]     default: kafka
#
#   kafka  cdc-connect/tests/crash_kafka.rs: simulator process -> cdc (SQL Server -> Kafka,
#          exactly once) -> real broker -> cdc (Kafka -> S3, local store)
#   s3     cdc-connect/tests/crash.rs: simulator -> cdc (SQL Server -> S3, local store)
#
# Environment (defaults are the documented long run):
#   CDC_CRASH_CHANGES   changes the workload commits at least (default 200000)
#   CDC_CRASH_KILLS     SIGKILLs (default 50)
#   CDC_CRASH_SEED      replays a run (the test prints the seed it used)
#   CDC_CRASH_LOG       RUST_LOG of the cdc processes (default warn)
#   CDC_CRASH_PROFILE   cargo profile of the test and the cdc binary (default dev; `release` is
#                       faster per change but builds for minutes)
#   KAFKA_BROKERS       a running broker; else the test starts one through scripts/kafka.sh
#   CDC_CRASH_OUT       log file (default target/crash-campaign-<which>-<UTC time>.log)
#
# The last lines of the log carry the figures: changes, kills, restart-to-first-event
# min/median/max per pipeline and the wall time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
which="${1:-kafka}"
export CDC_CRASH_CHANGES="${CDC_CRASH_CHANGES:-200000}"
export CDC_CRASH_KILLS="${CDC_CRASH_KILLS:-50}"
profile="${CDC_CRASH_PROFILE:-dev}"
case "$which" in
  kafka) tests=(crash_kafka) ;;
  s3) tests=(crash) ;;
  both) tests=(crash_kafka crash) ;;
  *) echo "usage: $0 [kafka|s3|both]" >&2; exit 2 ;;
esac
out="${CDC_CRASH_OUT:-target/crash-campaign-$which-$(date -u +%Y%m%dT%H%M%SZ).log}"
mkdir -p "$(dirname "$out")"
echo "crash-campaign.sh: $which, $CDC_CRASH_CHANGES changes, $CDC_CRASH_KILLS kills, profile $profile; log in $out" >&2
status=0
for t in "${tests[@]}"; do
  started=$SECONDS
  # --nocapture: the per-kill lines and the summary go to the log as they happen.
  if cargo test -p cdc-connect --profile "$profile" --test "$t" -- --nocapture 2>&1 | tee -a "$out"; then
    echo "crash-campaign.sh: $t passed in $((SECONDS - started)) s" | tee -a "$out" >&2
  else
    status=1
    echo "crash-campaign.sh: $t FAILED after $((SECONDS - started)) s" | tee -a "$out" >&2
  fi
done
exit "$status"
