#!/usr/bin/env bash
# Fuzz smoke test: build every fuzz target on the stable toolchain and run each one under
# libFuzzer for a bounded time. Exits non-zero if any target fails to build or crashes.
#
#   FUZZ_SECONDS        wall-clock budget per target (default 20)
#   FUZZ_RUNS           max inputs per target, -1 = no limit (default -1)
#   FUZZ_INPUT_TIMEOUT  seconds one input may take before it counts as a hang (default 10)
#
# Targets are discovered with `cargo fuzz list` (the `[[bin]]`s of fuzz/Cargo.toml), so a new
# crate only adds its target file and `[[bin]]`. `--sanitizer none` is what makes this work on
# stable: cargo-fuzz's default (address) passes `-Zsanitizer`, while the coverage
# instrumentation it always adds (`-Cpasses=sancov-module`, `-Cllvm-args=...`) is stable.
# Binaries land in the workspace target dir (target/<host-triple>/release); cargo-fuzz uses
# fuzz/corpus/<target> as the corpus (seeds, if present; new inputs are added to it) and
# writes crashing inputs to fuzz/artifacts/<target>/. All three are git-ignored.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
seconds="${FUZZ_SECONDS:-20}"
runs="${FUZZ_RUNS:--1}"
input_timeout="${FUZZ_INPUT_TIMEOUT:-10}"

cd "$(dirname "${BASH_SOURCE[0]}")/.." # cargo-fuzz expects the directory that holds fuzz/

# Pinned cargo-fuzz; install only if missing or a different version.
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
rustc --version

mapfile -t targets < <(cargo fuzz list)
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz/smoke.sh: no fuzz targets found" >&2
    exit 1
fi

# One build for all targets; `cargo fuzz run` below reuses it (same flags).
cargo fuzz build --sanitizer none

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed=()
for target in "${targets[@]}"; do
    log="$log_dir/$target.log"
    seeds=0
    if [[ -d "fuzz/corpus/$target" ]]; then
        seeds="$(find "fuzz/corpus/$target" -type f | wc -l)"
    fi
    echo "--- fuzz $target: up to ${seconds}s / $runs runs, $seeds seed input(s) in fuzz/corpus/$target"
    if cargo fuzz run "$target" --sanitizer none -- \
        -max_total_time="$seconds" -runs="$runs" -timeout="$input_timeout" \
        -print_final_stats=1 >"$log" 2>&1; then
        # libFuzzer prints `stat::number_of_executed_units: N` with -print_final_stats=1.
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
        corpus="$(sed -n 's/.*DONE .*corp: \([^ ]*\).*/\1/p' "$log" | tail -n 1)"
        echo "ok   $target: ${execs:-?} executions, corpus ${corpus:-?}"
    else
        cat "$log"
        echo "FAIL $target (crashing input, if any, is under fuzz/artifacts/$target/)"
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz/smoke.sh: ${#failed[@]} of ${#targets[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/smoke.sh: all ${#targets[@]} target(s) passed"
