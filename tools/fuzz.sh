#!/usr/bin/env bash
# Coverage-guided fuzzing of the domain XML parse and rewrite with libFuzzer on the
# stable toolchain (README, "Reliability"). Builds fuzz/src/bin/fuzz_rewrite.rs with
# sanitizer coverage (libfuzzer-sys from crates.io; only a C++ compiler is needed),
# writes the seed inputs (real domain XML: fuzz/src/seeds.rs) and fuzzes.
#
#   tools/fuzz.sh [--fresh] [SECONDS]
#                             fuzz for SECONDS (default 600); inputs that add coverage
#                             collect in target/fuzz/corpus, findings (the input that
#                             broke a property, panicked or hung) in target/fuzz/findings;
#                             --fresh starts from fuzz/corpus and the seeds only (the
#                             short run of the test suite) and keeps nothing
#   tools/fuzz.sh --merge     minimise fuzz/corpus plus target/fuzz/corpus into fuzz/corpus:
#                             the fewest inputs that reach every edge the seeds do not
#   tools/fuzz.sh --run FILE  run one input again and show what broke
#
# Prints the figures of the run; exits non-zero when it found anything.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: tools/fuzz.sh [--fresh] [SECONDS] | --merge | --run FILE"
mode=fuzz
seconds=600
fresh=
while [ $# -gt 0 ]; do
    case $1 in
        --merge) mode=merge ;;
        --run) mode=run; file=${2:?$usage}; shift ;;
        --fresh) fresh=1 ;;
        '' | *[!0-9]*) echo "$usage" >&2; exit 2 ;;
        *) seconds=$1 ;;
    esac
    shift
done

work=target/fuzz
host=$(rustc -vV | sed -n 's/^host: //p')
# Sanitizer coverage with comparison tracing, as cargo-fuzz sets it up, minus the
# nightly-only sanitizers; debug assertions and overflow checks on. --target keeps the
# flags off build scripts; the build has its own target folder.
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cdebug-assertions
    -Coverflow-checks
)
RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=$work/build \
    cargo build --locked --release -p vmclone-fuzz --features libfuzzer --bin fuzz-rewrite \
    --target "$host"
bin=$work/build/$host/release/fuzz-rewrite

# Bounds for every input: 5 s (an endless loop is a finding), 2 GiB, 32 KiB (libvirt's
# domain XML is a few KiB).
limits=(-timeout=5 -rss_limit_mb=2048 -max_len=32768 -dict=fuzz/xml.dict)

case $mode in
    run)
        exec "$bin" "${limits[@]}" "$file"
        ;;
    merge)
        # Keep what adds coverage edges (counters aside) beyond the seeds, fewest
        # inputs first: the seeds are written anew from the real XML every run.
        rm -rf "$work/seeds" "$work/merged"
        VMCLONE_FUZZ_WRITE_SEEDS=$work/merged "$bin"
        mkdir -p "$work/corpus"
        "$bin" "${limits[@]}" -set_cover_merge=1 -use_counters=0 "$work/merged" \
            fuzz/corpus "$work/corpus" 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true
        rm -f "$work/merged"/seed-* fuzz/corpus/[0-9a-f]*
        find "$work/merged" -type f -exec mv -t fuzz/corpus/ {} +
        rm -rf "$work/merged"
        echo "fuzz.sh: fuzz/corpus holds $(find fuzz/corpus -type f ! -name README.md | wc -l)" \
            "inputs, $(du -sk fuzz/corpus | cut -f1) KiB"
        exit 0
        ;;
esac

rm -rf "$work/seeds"
VMCLONE_FUZZ_WRITE_SEEDS=$work/seeds "$bin"
run=$work/findings/$(date +%Y%m%d-%H%M%S)
corpus=$work/corpus
if [ -n "$fresh" ]; then
    corpus=$work/fresh
    rm -rf "$corpus"
fi
mkdir -p "$corpus" "$run"
log=$run.log
echo "fuzz.sh: fuzzing for $seconds s; log $log"
status=0
"$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$run/" "$corpus" fuzz/corpus "$work/seeds" >"$log" 2>&1 || status=$?
if [ -n "$fresh" ]; then
    rm -rf "$corpus"
fi

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
field() { sed -n "s/.* $1: \([0-9a-zA-Z/]*\).*/\1/p" <<<"$last"; }
findings=$(find "$run" -type f | wc -l)
echo "fuzz.sh: figures of this run"
printf '  %-22s %s\n' \
    "seconds" "$seconds" \
    "executions" "$(stat number_of_executed_units)" \
    "executions per second" "$(stat average_exec_per_sec)" \
    "coverage (edges)" "$(field cov)" \
    "features" "$(field ft)" \
    "corpus (inputs/size)" "$(field corp)" \
    "new inputs this run" "$(stat new_units_added)" \
    "peak RSS (MiB)" "$(stat peak_rss_mb)" \
    "findings" "$findings"
if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    echo "fuzz.sh: FOUND something (exit $status): see $log and $run/" >&2
    grep -E 'panicked at|Violation|rewrite |ERROR: libFuzzer|SUMMARY' "$log" | head -20 >&2 || true
    echo "fuzz.sh: reproduce with tools/fuzz.sh --run $run/<file>" >&2
    exit 1
fi
rmdir "$run"
echo "fuzz.sh: no findings"
