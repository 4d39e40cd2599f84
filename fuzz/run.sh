#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeded from the fixtures.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Crashes land in fuzz/artifacts/<target>/: turn each into a fixture and a test, then fix it.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
for t in capture split spans dissect catalogue identify site; do
    mkdir -p "corpus/$t"
    case "$t" in
        catalogue) seeds=(../crates/catalogue) max_len=8192 ;;
        identify) seeds=(../fixtures) max_len=16384 ;;
        site) seeds=(../fixtures ../crates/cli/tests/golden) max_len=16384 ;;
        *) seeds=(../fixtures ../fixtures/broken) max_len=262144 ;;
    esac
    echo "fuzz: $t for ${secs}s"
    cargo +nightly fuzz run "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|Done)" || true
    if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
        echo "fuzz: $t found a failing input in fuzz/artifacts/$t" >&2
        exit 1
    fi
done
