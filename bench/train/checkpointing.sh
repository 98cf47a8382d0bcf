#!/usr/bin/env bash
# Peak RSS and step time of the training forward + backward: f32 vs bf16 (f32 masters), with and
# without gradient checkpointing, on the real SmolLM2-135M (the GGUF of scripts/fetch-assets.sh,
# dequantised to f32; 30 layers, hidden 576, vocab 49,152), every weight trainable, seeded token
# ids, batch B x (P prompt + C completion). One process per setting so each peak RSS
# (`/usr/bin/time -v`, Maximum resident set size) is that setting's alone.
#
#   bash bench/train/checkpointing.sh [BATCH] [PROMPT] [COMPLETION] [ITERS]   (default 2 256 256 3)
#
# MODEL=path overrides the model. Writes bench/results/checkpointing.json and prints a table.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
batch="${1:-2}" prompt="${2:-256}" completion="${3:-256}" iters="${4:-3}"
model="${MODEL:-.cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
[[ -f "$model" ]] || { echo "no $model: run bash scripts/fetch-assets.sh smollm2" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p mixed-r1-model --example memory_bench
bin="$target/release/examples/memory_bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for dtype in f32 bf16; do
  for ck in off on; do
    flag=(); [[ "$ck" == on ]] && flag=(--checkpointing)
    echo "== $dtype, checkpointing $ck" >&2
    /usr/bin/time -v -o "$tmp/${dtype}_$ck.time" env RAYON_NUM_THREADS="${THREADS:-2}" "$bin" \
      --model "$model" --dtype "$dtype" "${flag[@]}" --batch "$batch" --prompt "$prompt" \
      --completion "$completion" --iters "$iters" >"$tmp/${dtype}_$ck.json"
  done
done
python3 - "$tmp" "$model" <<'PY'
import json, re, sys, datetime, os
tmp, model = sys.argv[1], sys.argv[2]
rss = lambda f: int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) / 1024
runs = {}
for dtype in ("f32", "bf16"):
    for ck in ("off", "on"):
        d = json.load(open(f"{tmp}/{dtype}_{ck}.json"))
        d["peak_rss_mib"] = rss(f"{tmp}/{dtype}_{ck}.time")
        runs[f"{dtype}_ckpt_{ck}"] = d
base = runs["f32_ckpt_off"]
out = {"what": "training forward+backward (every weight trainable), peak RSS and median s/iter",
       "model": model, "date": datetime.datetime.now().isoformat(timespec="seconds"),
       "loadavg_after": open("/proc/loadavg").read().split()[:3], "runs": runs}
print(f"{'setting':<16} | {'peak RSS':>9} | {'vs f32':>6} | {'s/iter':>7} | {'vs f32':>6} | loss")
for k, r in runs.items():
    print(f"{k:<16} | {r['peak_rss_mib']:>5.0f} MiB | {r['peak_rss_mib']/base['peak_rss_mib']:>5.2f}x | "
          f"{r['iter_s_median']:>7.2f} | {r['iter_s_median']/base['iter_s_median']:>5.2f}x | {r['loss_first_iter']:.4f}")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/checkpointing.json", "w"), indent=1)
print("wrote bench/results/checkpointing.json")
PY
