#!/usr/bin/env bash
# LoRA GRPO step vs full fine-tuning GRPO step on the same real model and batch, on CPU: time and
# peak RSS side by side.
#
# Model: SmolLM2-135M-Instruct (the project's GGUF, .cache/assets/smollm2, dequantised to f32 on
# load; 134.5M parameters, vocab 49,152, tied). Batch: SEQS sequences x (PROMPT + COMPLETION)
# random tokens (default 8 x (64 + 48)), advantages +-1. One step = training forward
# (`completion_logprobs` with grad) -> advantage-weighted loss -> backward -> grad-norm clip 1.0 ->
# AdamW (crates/train/examples/lora_step_bench.rs). Configurations, each in its own process (so
# that the peak RSS is that configuration's alone):
#   lora   rank 16, alpha 32, dropout 0, targets q,k,v,o,gate,up,down_proj (Model::add_lora:
#          the base is frozen, its weight gradients are never formed, AdamW holds the adapters only)
#   full   every weight trains (AdamW state for all 134.5M)
# Both run on the allocator the `mixed-r1` binary ships: mimalloc with purging off, as crates/cli
# sets it, preloaded (bench/train/mimalloc.sh; ALLOC=glibc, or ALLOC=mimalloc for mimalloc's default
# options), RAYON_NUM_THREADS=2.
# The figure is the median over ITERS timed steps after 1 warm-up (sum of the per-phase medians);
# the rollout of the same batch (generate COMPLETION tokens per sequence, temperature 1, no EOS
# stop, adapters unmerged) is timed after the steps (ROLLOUTS timed after 1 warm-up). Peak RSS:
# /usr/bin/time -v of the process (steps + rollouts) and VmHWM after the steps alone. Before each
# configuration the script waits (up to 300 s) for a quiet machine (bench/peers/torch_cpuguard.py:
# other processes < 0.15 core over 1 s) and records the CPU seconds other processes used while it
# ran (foreign_cpu_s; well above 0 = the figure is disturbed).
#
#   bash bench/train/lora_vs_full.sh [ITERS]      (timed steps per configuration, default 4)
#   SEQS=8 PROMPT=64 COMPLETION=48 ROLLOUTS=2 RANK=16 ALLOC=mimalloc-nopurge bash bench/train/lora_vs_full.sh
#
# Writes bench/results/lora_vs_full.json and prints a table with the ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
iters="${1:-4}"
seqs="${SEQS:-8}" prompt="${PROMPT:-64}" completion="${COMPLETION:-48}"
rollouts="${ROLLOUTS:-2}" rank="${RANK:-16}" alloc="${ALLOC:-mimalloc-nopurge}"
model=.cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
[[ -f "$model" ]] || bash scripts/fetch-assets.sh smollm2 >/dev/null
# shellcheck source=mimalloc.sh
source bench/train/mimalloc.sh
if [[ "$alloc" != glibc && -z "$mimalloc_so" ]]; then
  echo "no libmimalloc.so: running on glibc malloc" >&2
  alloc=glibc
fi
# shellcheck disable=SC2046
envs=($(alloc_env "$alloc"))
cargo build --release -q -p mixed-r1-train --example lora_step_bench
bin=target/release/examples/lora_step_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

for cfg in lora full; do
  r=$rank
  [[ "$cfg" == full ]] && r=0
  echo "== $cfg (rank $r), $alloc, $seqs x ($prompt + $completion), $iters steps + 1 warm-up, $rollouts rollouts" >&2
  python3 -c 'import sys; sys.path.insert(0, "bench/peers"); import torch_cpuguard as g; print(g.wait_quiet())' \
    >"$tmp/$cfg.waited"
  cpu0="$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat)"
  /usr/bin/time -v -o "$tmp/$cfg.time" env "${envs[@]}" RAYON_NUM_THREADS=2 \
    "$bin" --model "$model" --rank "$r" --seqs "$seqs" --prompt "$prompt" --completion "$completion" \
    --iters "$iters" --warmup 1 --rollouts "$rollouts" >"$tmp/$cfg.json" 2>"$tmp/$cfg.log" \
    || { tail -40 "$tmp/$cfg.log" >&2; exit 1; }
  cpu1="$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat)"
  echo "$cpu0 $cpu1 $(getconf CLK_TCK)" >"$tmp/$cfg.cpu"
  cat "$tmp/$cfg.json" >&2
done

python3 - "$tmp" "$load_before" "$alloc" <<'PY'
import json, os, re, sys, datetime
tmp, load_before, alloc = sys.argv[1:4]
rss = lambda f: int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) / 1024
runs = {}
for cfg in ("lora", "full"):
    d = json.load(open(f"{tmp}/{cfg}.json"))
    d["peak_rss_mib_process"] = rss(f"{tmp}/{cfg}.time")
    t = open(f"{tmp}/{cfg}.time").read()
    own = sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", t).group(1)) for k in ("User", "System"))
    c0, c1, hz = map(float, open(f"{tmp}/{cfg}.cpu").read().split())
    d["process_cpu_s"] = own
    d["foreign_cpu_s"] = max(0.0, (c1 - c0) / hz - own)
    d["guard_wait_s"] = float(open(f"{tmp}/{cfg}.waited").read())
    d["wall_s_process"] = re.search(r"Elapsed \(wall clock\).*?: (\S+)", t).group(1).strip()
    runs[cfg] = d
lo, fu = runs["lora"], runs["full"]
ratio = lambda k: (fu[k] / lo[k]) if lo.get(k) and fu.get(k) else None
out = {
    "what": f"one GRPO optimisation step (training forward + loss + backward + grad clip + AdamW) on "
            f"SmolLM2-135M-Instruct (f32, from the Q4_1 GGUF), {lo['seqs']} x ({lo['prompt']} prompt + "
            f"{lo['completion']} completion) tokens, 2 threads, {alloc}: LoRA (rank {lo['lora_rank']}, alpha "
            f"{2 * lo['lora_rank']}, dropout 0, q,k,v,o,gate,up,down_proj) vs every weight trained; "
            f"plus the rollout of the batch ({lo['completion']} new tokens per sequence, temperature 1)",
    "figure": "median s/step over the timed steps after 1 warm-up (sum of per-phase medians); "
              "ratio = full / LoRA (> 1: LoRA is cheaper)",
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before,
                "loadavg_after": open("/proc/loadavg").read().split()[:3]},
    "allocator": alloc,
    "runs": runs,
    "ratios_full_over_lora": {
        "step_s": ratio("step_s"), "forward_s": ratio("forward_s"), "backward_s": ratio("backward_s"),
        "optimizer_s": ratio("optimizer_s"), "rollout_s": ratio("rollout_s"),
        "peak_rss_steps": ratio("peak_rss_mb"), "peak_rss_process": ratio("peak_rss_mib_process"),
    },
}
f = lambda v, fmt: "-" if v is None else format(v, fmt)
print(f"{'':<10} | {'step s':>7} | {'fwd s':>6} | {'bwd s':>6} | {'adamw s':>7} | {'rollout s':>9} | "
      f"{'RSS steps':>9} | {'RSS proc':>8} | {'foreign':>7} | trainable")
for cfg, d in runs.items():
    print(f"{cfg + ' r' + str(d['lora_rank']):<10} | {d['step_s']:>7.3f} | {d['forward_s']:>6.3f} | "
          f"{d['backward_s']:>6.3f} | {d['optimizer_s']:>7.3f} | {f(d.get('rollout_s'), '9.3f'):>9} | "
          f"{d['peak_rss_mb']:>5.0f} MiB | {d['peak_rss_mib_process']:>4.0f} MiB | {d['foreign_cpu_s']:>6.1f}s | "
          f"{d['params_trainable']:,} of {d['params_total']:,}")
r = out["ratios_full_over_lora"]
print("full / LoRA: " + ", ".join(f"{k} {f(v, '.2f')}x" for k, v in r.items()))
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/lora_vs_full.json", "w"), indent=1)
print("wrote bench/results/lora_vs_full.json")
PY
