#!/usr/bin/env bash
# Training forward + backward tokens/s on a tiny Qwen2.5-VL, ours vs torch + transformers, in
# one run on this machine: the same model folder (written by our `Model::save`, loaded by
# transformers' Qwen2_5_VLForConditionalGeneration), the same ids, the same 84x56 image per
# sequence, 2 threads each. One iteration = vision tower + decoder + head on the completion
# positions + log-prob of the completion tokens, loss = -mean, backward (every weight trainable);
# both sides print the first loss, which must agree. Configs: `tiny` (the project's
# tiny-qwen2.5-vl, vocab 151,680) and `fixture` (crates/model/tests/fixtures/tiny-qwen2_5_vl,
# vocab 512). Batch 8 x (64 prompt incl. one image = 6 image tokens + 64 completion).
#
# Allocators (bench/train/mimalloc.sh), runs in this order per config:
#   torch:glibc, ours:glibc, ours:mimalloc (the `mixed-r1` binary's allocator, default options),
#   torch:mimalloc-nopurge, ours:mimalloc-nopurge (freed memory kept: MIMALLOC_PURGE_DELAY=-1).
# RUNS="torch:glibc ours:glibc" overrides the list.
#
#   bash bench/train/fwd_bwd.sh [ITERS]      (timed iterations per run after 2 warm-ups, default 10)
#
# Writes bench/results/train_fwd_bwd.json and prints the ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
iters="${1:-10}"
runs="${RUNS:-torch:glibc ours:glibc ours:mimalloc torch:mimalloc-nopurge ours:mimalloc-nopurge}"
# shellcheck source=../peers/venv.sh
source bench/peers/venv.sh
# shellcheck source=mimalloc.sh
source bench/train/mimalloc.sh
cargo build --release -q -p mixed-r1-model --example train_fwd_bwd_bench
bin=target/release/examples/train_fwd_bwd_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

for cfg in tiny fixture; do
  "$bin" prepare --config "$cfg" --dir "$tmp/$cfg" --batch 8 --prompt 64 --completion 64 2>/dev/null
  for run in $runs; do
    side="${run%%:*}" alloc="${run#*:}"
    if [[ "$alloc" != glibc && -z "$mimalloc_so" ]]; then continue; fi
    # shellcheck disable=SC2046
    envs=($(alloc_env "$alloc"))
    name="${side}_${alloc}_${cfg}"
    echo "== $side, $alloc, $cfg" >&2
    if [[ "$side" == torch ]]; then
      /usr/bin/time -v -o "$tmp/$name.time" env "${envs[@]}" CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=2 \
        BENCH_THREADS=2 HF_HUB_OFFLINE=1 \
        "$venv/bin/python" bench/train/fwd_bwd_torch.py --dir "$tmp/$cfg" --iters "$iters" \
        --out "$tmp/$name.json" >/dev/null 2>"$tmp/$name.log" \
        || { tail -40 "$tmp/$name.log" >&2; exit 1; }
      grep '^iter ' "$tmp/$name.log" >&2 || true
    else
      /usr/bin/time -v -o "$tmp/$name.time" env "${envs[@]}" RAYON_NUM_THREADS=2 \
        "$bin" run --dir "$tmp/$cfg" --iters "$iters" >"$tmp/$name.json"
    fi
  done
done

python3 - "$tmp" "$load_before" "$runs" <<'PY'
import json, os, re, sys, datetime
tmp, load_before, runs = sys.argv[1], sys.argv[2], sys.argv[3].split()
rss = lambda f: int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) / 1024
out = {
    "what": "training forward+backward tokens/s, tiny Qwen2.5-VL, batch 8 x (64 prompt incl. one "
            "84x56 image = 6 image tokens + 64 completion), loss = -mean completion log-prob, f32, 2 threads",
    "figure": "tokens/s = 8 x 128 / median s/iter over the quiet iterations after 2 warm-ups "
              "(all-iterations median when fewer than 3 were quiet); ratio = ours / torch",
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before,
                "loadavg_after": open("/proc/loadavg").read().split()[:3]},
    "configs": {}, "ratios": {},
}
for cfg in ("tiny", "fixture"):
    res = {}
    for run in runs:
        side, alloc = run.split(":")
        name = f"{side}_{alloc}_{cfg}"
        if not os.path.exists(f"{tmp}/{name}.json"):
            continue
        d = json.load(open(f"{tmp}/{name}.json"))
        q = d.get("iter_s_median_quiet")
        s = q if q is not None and d["quiet_iters"] >= 3 else d["iter_s_median"]
        res[run] = {
            "tokens_per_s": d["tokens_per_iter"] / s, "iter_s": s,
            "iter_s_median_all": d["iter_s_median"], "quiet_iters": d["quiet_iters"],
            "fwd_bwd_s_median": [d["fwd_s_median"], d["bwd_s_median"]],
            "loss_first_iter": d["loss"], "peak_rss_mib": rss(f"{tmp}/{name}.time"),
            "params": d["params"], "tokens_per_iter": d["tokens_per_iter"],
            "allocator_seen_by_process": d.get("allocator"),
            "iter_s_all": d["iter_s_all"], "foreign_cpu_s": d["foreign_cpu_s"],
        }
        if side == "torch":
            out["torch_versions"] = d["versions"]
            out["torch_impl"] = d["impl"]
    out["configs"][cfg] = res
    pairs = {
        "glibc_both": ("ours:glibc", "torch:glibc"),
        "mimalloc_nopurge_both": ("ours:mimalloc-nopurge", "torch:mimalloc-nopurge"),
        "ours_mimalloc_as_shipped_vs_torch_glibc": ("ours:mimalloc", "torch:glibc"),
        "ours_mimalloc_nopurge_vs_torch_glibc": ("ours:mimalloc-nopurge", "torch:glibc"),
    }
    out["ratios"][cfg] = {k: res[o]["tokens_per_s"] / res[t]["tokens_per_s"]
                          for k, (o, t) in pairs.items() if o in res and t in res}
    losses = {r["loss_first_iter"] for r in res.values()}
    out["configs"][cfg + "_losses_agree"] = max(losses) - min(losses) < 1e-4

print(f"{'config':<8} | {'run':<24} | {'tok/s':>7} | {'s/iter':>7} | quiet | {'loss':>8} | {'peak RSS':>9}")
for cfg in ("tiny", "fixture"):
    for run, r in out["configs"][cfg].items():
        print(f"{cfg:<8} | {run:<24} | {r['tokens_per_s']:>7.0f} | {r['iter_s']:>7.4f} | {r['quiet_iters']:>5} | "
              f"{r['loss_first_iter']:>8.5f} | {r['peak_rss_mib']:>5.0f} MiB")
for cfg in ("tiny", "fixture"):
    for k, v in out["ratios"][cfg].items():
        print(f"{cfg}: ours/torch {k}: {v:.2f}x")
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open("bench/results/train_fwd_bwd.json", "w"), indent=1)
print("wrote bench/results/train_fwd_bwd.json")
PY
