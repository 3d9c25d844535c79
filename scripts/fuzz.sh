#!/usr/bin/env bash
# Fuzzes the rule language, the CSV importer and the workbook reader with
# cargo fuzz (libFuzzer
# coverage, no sanitizer: the code is safe Rust, so a finding is a panic,
# a failed assertion, a hang or runaway memory).
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]      default: 60 seconds, every target
#
# Runs each target for SECONDS from the seeds in fuzz/seeds/TARGET (for
# workbooks, small ones written by core/examples/workbooks.rs) plus the
# corpus it grew before (fuzz/corpus/TARGET, not committed), and prints how
# many inputs it ran. A finding is saved under fuzz/artifacts/TARGET and
# fails the run.
source "$(dirname "$0")/lib.sh"

SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(rule csv_import workbook)

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (a minute, once)"
    cargo install cargo-fuzz --locked
fi
command -v c++ >/dev/null || { say "installing g++ (libFuzzer is C++)"; as_root apt-get install -y -qq g++ >/dev/null; }

(cd "$ROOT" && cargo run -q -p audience-core --example workbooks -- fuzz/seeds/workbook)
cd "$ROOT/fuzz"
for target in "${TARGETS[@]}"; do
    say "fuzzing $target for $SECONDS_EACH s"
    mkdir -p "corpus/$target" "artifacts/$target"
    log=$(mktemp)
    # --sanitizer none builds on stable Rust; -O for speed. -timeout: an
    # input that runs 10 s is a hang. -rss_limit_mb: a runaway allocation.
    if ! cargo fuzz run --sanitizer none -O "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
            -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $target found a failure: see fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units' "$log" | awk -v t="$target" '{ printf "%s: %d inputs, no failure\n", t, $2 }'
    rm -f "$log"
done
