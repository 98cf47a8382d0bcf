#!/usr/bin/env python3
"""Peer: training forward + backward throughput of transformers' Qwen2_5_VLForConditionalGeneration
on CPU, on the folder, ids and pixels that `train_fwd_bwd_bench prepare` wrote (DIR/model,
DIR/inputs.json), the same work as `train_fwd_bwd_bench run`:

    logits of the C completion positions (logits_to_keep = C + 1, as TRL does), log_softmax,
    gather of the completion tokens, loss = -mean, backward; every weight trainable.

Pixel values come from the committed crates/model/tests/fixtures/reference.safetensors
(`processor.img_84x56.pixel_values`, grid [1, 4, 6]); `mm_token_type_ids` is passed as
scripts/fixtures/model_fixtures.py does (transformers 5.23 needs it for the M-RoPE positions).
Threads: BENCH_THREADS (default 2). Waits for a quiet machine (bench/peers/torch_cpuguard.py)
before the first iteration and after any iteration other processes disturbed, as
train_fwd_bwd_bench does, unless BENCH_NO_GUARD=1.

    python fwd_bwd_torch.py --dir DIR [--iters 10] [--warmup 2] [--out FILE]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import torch_cpuguard as cpuguard  # noqa: E402

GUARD = os.environ.get("BENCH_NO_GUARD") != "1"
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import Qwen2_5_VLForConditionalGeneration  # noqa: E402


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    inp = json.load(open(os.path.join(args.dir, "inputs.json")))
    rss_start = rss_mib()
    t = time.perf_counter()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(inp["model_dir"], dtype=torch.float32)
    load_s = time.perf_counter() - t
    model.train()
    n_params = sum(p.numel() for p in model.parameters())

    pv1 = load_file(inp["pixel_values_file"])[inp["pixel_values_key"]].float()
    b, c = inp["batch"], inp["completion_len"]
    prompts, comps = inp["prompts"], inp["completions"]
    assert all(len(p) == len(prompts[0]) for p in prompts), "prompts of one length (no padding)"
    ids = torch.tensor([p + q for p, q in zip(prompts, comps)])
    mask = torch.ones_like(ids)
    mmt = torch.zeros_like(ids, dtype=torch.int32)
    mmt[ids == inp["image_token_id"]] = 1
    if inp.get("video_token_id") is not None:
        mmt[ids == inp["video_token_id"]] = 2
    pixel_values = pv1.repeat(b, 1)
    grid = torch.tensor([inp["image_grid_thw"]] * b)
    targets = torch.tensor(comps)
    tokens = ids.numel()

    times, fwd, bwd, foreign, waited, losses = [], [], [], [], [], []
    disturbed = True
    for it in range(args.warmup + args.iters):
        waited.append(cpuguard.wait_quiet() if GUARD and disturbed else 0.0)
        m = cpuguard.Meter().start()
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values,
                       image_grid_thw=grid, mm_token_type_ids=mmt, logits_to_keep=c + 1,
                       use_cache=False).logits[:, :-1, :]
        logp = torch.gather(logits.float().log_softmax(-1), 2, targets.unsqueeze(-1)).squeeze(-1)
        loss = -logp.mean()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        r = m.stop()
        # /proc/stat counts in 10 ms ticks: ignore less than two of them.
        disturbed = r["foreign_cpu_s"] >= 0.02 and r["foreign_cpu_s"] >= 0.05 * r["wall_s"]
        del logits, logp
        print(f"iter {it}: {t2 - t0:.4f}s (fwd {t1 - t0:.4f} bwd {t2 - t1:.4f}) loss {loss.item():.5f} "
              f"foreign_cpu {r['foreign_cpu_s']:.2f}s", file=sys.stderr, flush=True)
        times.append(t2 - t0)
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
        foreign.append(r["foreign_cpu_s"])
        losses.append(loss.item())
    s = statistics.median(times[args.warmup:])
    quiet = [t for t, f in list(zip(times, foreign))[args.warmup:] if f < 0.02 or f < 0.05 * t]
    maps = open("/proc/self/maps").read()
    allocator = ("mimalloc (MIMALLOC_PURGE_DELAY=%s)" % os.environ["MIMALLOC_PURGE_DELAY"]
                 if "MIMALLOC_PURGE_DELAY" in os.environ else "mimalloc (default options)") \
        if "mimalloc" in maps else "glibc malloc"
    res = {
        "impl": "torch + transformers Qwen2_5_VLForConditionalGeneration (f32, eager autograd, "
                f"attn {model.config._attn_implementation})",
        "config": inp["config"],
        "threads": torch.get_num_threads(),
        "allocator": allocator,
        "batch": b,
        "tokens_per_iter": tokens,
        "completion_tokens_per_iter": b * c,
        "params": n_params,
        "load_s": load_s,
        "iter_s_all": times,
        "fwd_s_all": fwd,
        "bwd_s_all": bwd,
        "foreign_cpu_s": foreign,
        "guard_wait_s": waited,
        "iter_s_median": s,
        "iter_s_median_quiet": statistics.median(quiet) if quiet else None,
        "quiet_iters": len(quiet),
        "fwd_s_median": statistics.median(fwd[args.warmup:]),
        "bwd_s_median": statistics.median(bwd[args.warmup:]),
        "tokens_per_s": tokens / s,
        "loss": losses[0],
        "peak_rss_mib": rss_mib(),
        "rss_mib_at_start": rss_start,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }
    text = json.dumps(res, indent=1)
    if args.out:
        open(args.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
