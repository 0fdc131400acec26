#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) on its committed corpus.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); works on stable Rust through
# RUSTC_BOOTSTRAP, without a sanitizer (`-s none`): the targets assert their own invariants.
# Crashes land in fuzz/artifacts/<target>/; add each as a regression test, then commit it.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${secs}s"
  cargo fuzz run -s none -O "$target" "corpus/$target" -- \
    -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 | tail -n 3
done
