#!/usr/bin/env python3
"""Peer baseline: transformers greedy generation of the same tiny InternVL on CPU.

Loads the folder that crates/train/examples/internvl_generate_bench.rs saved
(`InternVLForConditionalGeneration`, float32) and the prompt it wrote (inputs.safetensors:
input_ids and the 5 tiles' pixel_values), and times `generate` with exactly N new tokens
(min_new_tokens = max_new_tokens, greedy, KV cache on) at batch 1 and batch 4 (the prompt and
its tiles repeated), median of R runs after a warm-up, torch threads = 2.

    internvl_generate_bench.py DIR [--new-tokens N] [--repeats R] [--threads 2] [--results-out F]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import InternVLForConditionalGeneration  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    model = InternVLForConditionalGeneration.from_pretrained(
        os.path.join(args.dir, "model"), dtype=torch.float32
    ).eval()
    load_s = time.perf_counter() - t0
    inputs = load_file(os.path.join(args.dir, "inputs.safetensors"))
    ids, pixels = inputs["input_ids"].long(), inputs["pixel_values"].float()
    n = args.new_tokens
    pad = model.config.text_config.eos_token_id
    pad = pad[0] if isinstance(pad, list) else pad
    results = {"load_s": load_s, "prompt_tokens": ids.shape[1], "tiles": pixels.shape[0],
               "new_tokens": n, "threads": torch.get_num_threads(),
               "parameters": sum(p.numel() for p in model.parameters()), "runs": {}}
    for bs in (1, 4):
        bids = ids.repeat(bs, 1)
        kw = dict(attention_mask=torch.ones_like(bids), pixel_values=pixels.repeat(bs, 1, 1, 1),
                  do_sample=False, pad_token_id=pad)
        with torch.no_grad():
            model.generate(bids, max_new_tokens=4, min_new_tokens=4, **kw)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                out = model.generate(bids, max_new_tokens=n, min_new_tokens=n, **kw)
                times.append(time.perf_counter() - t)
                assert out.shape[1] - bids.shape[1] == n
        med = statistics.median(times)
        r = {"batch": bs, "seconds": med, "runs": times, "tokens_per_s_total": bs * n / med,
             "first16": out[0, bids.shape[1]:bids.shape[1] + 16].tolist()}
        results["runs"][f"batch{bs}"] = r
        print(json.dumps(r), file=sys.stderr)
    results["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                           "python": platform.python_version()}
    if args.results_out:
        with open(args.results_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
