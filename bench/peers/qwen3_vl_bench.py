#!/usr/bin/env python3
"""Peer baseline: transformers on the same tiny Qwen3-VL, CPU, float32.

Loads the folder crates/train/examples/qwen3_vl_bench.rs saved (`Qwen3VLForConditionalGeneration`)
and its inputs (input_ids, pixel_values, image_grid_thw, the completion), then times
  - `generate` with exactly N new tokens (min = max new tokens, greedy, KV cache) at batch 1 and 4;
  - a training forward + backward: batch 4 of prompt + completion, `-mean(logprob)` of the
    completion tokens, every parameter requiring grad, eager attention;
median of R runs after a warm-up, torch threads = 2.

    qwen3_vl_bench.py DIR [--new-tokens N] [--repeats R] [--threads 2] [--results-out F]
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
from transformers import Qwen3VLForConditionalGeneration  # noqa: E402


def mm_types(ids, image_token):
    t = torch.zeros_like(ids, dtype=torch.int32)
    t[ids == image_token] = 1
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = Qwen3VLForConditionalGeneration.from_pretrained(
        os.path.join(args.dir, "model"), dtype=torch.float32, attn_implementation="eager"
    ).eval()
    inputs = load_file(os.path.join(args.dir, "inputs.safetensors"))
    ids, pixels = inputs["input_ids"].long(), inputs["pixel_values"].float()
    grid, completion = inputs["image_grid_thw"].long(), inputs["completion"].long()
    image_token = model.config.image_token_id
    n = args.new_tokens
    pad = model.config.text_config.eos_token_id
    pad = pad[0] if isinstance(pad, list) else pad
    results = {"prompt_tokens": ids.shape[1], "new_tokens": n, "threads": torch.get_num_threads(),
               "parameters": sum(p.numel() for p in model.parameters()), "runs": {}}
    for bs in (1, 4):
        bids = ids.repeat(bs, 1)
        kw = dict(attention_mask=torch.ones_like(bids), pixel_values=pixels.repeat(bs, 1),
                  image_grid_thw=grid.repeat(bs, 1), mm_token_type_ids=mm_types(bids, image_token),
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
        results["runs"][f"generate_batch{bs}"] = r
        print(json.dumps(r), file=sys.stderr)

    # Training forward + backward, batch 4.
    model.train()
    seq = torch.cat([ids, completion], 1).repeat(4, 1)
    p, c = ids.shape[1], completion.shape[1]
    kw = dict(attention_mask=torch.ones_like(seq), pixel_values=pixels.repeat(4, 1),
              image_grid_thw=grid.repeat(4, 1), mm_token_type_ids=mm_types(seq, image_token))

    def step():
        model.zero_grad(set_to_none=True)
        model.model.rope_deltas = None
        t = time.perf_counter()
        logits = model(input_ids=seq, **kw).logits[:, p - 1:p + c - 1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, seq[:, p:, None]).squeeze(-1)
        loss = -lp.mean()
        loss.backward()
        return time.perf_counter() - t, float(loss)

    _, loss = step()
    times = [step()[0] for _ in range(args.repeats)]
    r = {"seconds": statistics.median(times), "runs": times, "tokens": int(seq.numel()),
         "loss": loss}
    results["runs"]["train_fwd_bwd_batch4"] = r
    print(json.dumps(r), file=sys.stderr)
    results["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                           "python": platform.python_version()}
    if args.results_out:
        with open(args.results_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
