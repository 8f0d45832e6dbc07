#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600), one after another, and print a
# summary line per target: executions and crashes. Needs cargo-fuzz; on stable,
# RUSTC_BOOTSTRAP=1 lets the compiler accept the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O --fuzz-dir crates/fuzz
for t in frame epath text_path service_bodies device; do
  log=$(mktemp)
  status=0
  cargo fuzz run -O --fuzz-dir crates/fuzz "$t" -- -max_total_time="$secs" -max_len=4096 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  crashes=$(ls crates/fuzz/artifacts/"$t" 2>/dev/null | wc -l)
  echo "$t: ${secs}s, $runs executions, exit $status, $crashes artifact(s)"
  [ "$status" -eq 0 ] || tail -40 "$log"
  rm -f "$log"
done
