#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) with libFuzzer's coverage
# instrumentation on stable Rust, the way `cargo fuzz build -s none` does,
# and runs each for FUZZ_SECONDS (default 300) from its committed seeds
# plus the corpus earlier runs grew (fuzz/corpus, not committed).
#
#   make fuzz                           every target, 5 minutes each
#   FUZZ_SECONDS=30 FUZZ_PROFILE=quick FUZZ_SEED=1
#                                       the suite's short run (make test)
#   FUZZ_TARGETS="scram jwt" make fuzz  some targets
#
# Prints one line per target (executions, corpus size, result) and exits
# non-zero when a target crashed, hung or broke an oracle; the input that
# did it is in fuzz/artifacts/TARGET/. docs/reliability.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-300}"
# `quick` (opt-level 1) for the suite's short runs, `release` for long ones.
profile="${FUZZ_PROFILE:-release}"
host="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --profile "$profile" --locked --target "$host" --bins -q
targets="${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^sluice-fuzz$')}"

# One target: its run, and a one-line summary in artifacts/TARGET/summary.
run_one() {
  local t="$1" status=0
  mkdir -p "corpus/$t" "artifacts/$t"
  local log="artifacts/$t/last.log"
  local extra=()
  # The bash parser backtracks for minutes and once allocated without end
  # on lines found here; the gateway runs it out of process with a
  # deadline and limits (sluice_ssh::analyser), so for it slow and large
  # inputs are noted (artifacts/shell_analyse/timeout-*), not failures:
  # fork mode keeps fuzzing past them. Panics and oracles still fail.
  [ "$t" = shell_analyse ] && extra=(-fork=1 -ignore_timeouts=1 -ignore_ooms=1)
  # A fixed seed makes a run repeat the inputs of an earlier one with the
  # same corpus: the suite's short runs are then the prefix of runs made
  # before committing, not a lottery.
  [ -n "${FUZZ_SEED:-}" ] && extra+=(-seed="$FUZZ_SEED")
  "target/$host/$profile/$t" "corpus/$t" "seeds/$t" "${extra[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
  local execs corpus
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  # Fork mode reports its total on its last status line instead.
  [ -n "$execs" ] || execs="$(grep -ao '^#[0-9]*' "$log" | tail -1 | tr -d '#')"
  corpus="$(find "corpus/$t" -type f | wc -l)"
  # Fork mode exits 70 (timeout) or 71 (out of memory) when it noted such
  # inputs and went on: for shell_analyse those are the analyser's deadline
  # and limits' to catch, not failures (see above).
  if [ "$t" = shell_analyse ] && { [ "$status" -eq 70 ] || [ "$status" -eq 71 ]; }; then
    local noted
    noted="$(find "artifacts/$t" -name 'oom-*' -o -name 'timeout-*' | wc -l)"
    printf '%-15s %12s executions  %6s in corpus  ok (%s slow or large inputs noted)\n' \
      "$t" "${execs:-?}" "$corpus" "$noted" >"artifacts/$t/summary"
  elif [ "$status" -eq 0 ]; then
    printf '%-15s %12s executions  %6s in corpus  ok\n' "$t" "${execs:-?}" "$corpus" >"artifacts/$t/summary"
  else
    {
      printf '%-15s %12s executions  %6s in corpus  FAILED (exit %s; see fuzz/%s)\n' \
        "$t" "${execs:-?}" "$corpus" "$status" "$log"
      grep -m5 -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | sed 's/^/    /' || true
    } >"artifacts/$t/summary"
  fi
}
export -f run_one
export host profile seconds FUZZ_SEED

# FUZZ_JOBS targets at a time (default: one per core).
jobs="${FUZZ_JOBS:-$(nproc)}"
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}
failed=0
for t in $targets; do
  cat "artifacts/$t/summary"
  grep -qE ' ok( \(.*\))?$' "artifacts/$t/summary" || failed=1
done
exit "$failed"
