"""Rule-based rewards: mixed-r1 (Rust) vs the same definitions in plain Python, side by side.

Generates a mixed batch (yes_no, mcq, numeric, chart, grounding) of realistic responses, scores it
with `mixed-r1 reward bench` (1 thread and all threads) and with bench/rules_py.py, checks that
both give the same rewards, and prints the throughputs and ratios. Summary: bench/results/rules.json.

    bash bench/setup.sh && bench/.venv/bin/python bench/rules_bench.py
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rules_py  # noqa: E402

# The binary setup.sh built: target/release, or $CARGO_TARGET_DIR/release when that is set.
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "mixed-r1")
WORDS = ("the image shows a shape near the centre of the frame and its colour looks fairly clear "
         "so I compare it with the question carefully before I answer it step by step").split()


def think(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 60)))


def wrap(rng, answer):
    r = rng.random()
    if r < 0.8:
        return f"<think>{think(rng)}</think>\n<answer>{answer}</answer>"
    if r < 0.9:
        return f"<think>{think(rng)}</think> The answer is {answer}."
    return f"<answer>{answer}</answer>"


def make(rng, i):
    kind = i % 5
    if kind == 0:
        gold = rng.choice(["yes", "no"])
        other = "no" if gold == "yes" else "yes"
        ans = rng.choice([gold.capitalize(), f"{gold}, it is.", other, "yes and no", "I see their eyes", gold])
        return {"task": "yes_no", "answer": gold, "response": wrap(rng, ans)}
    if kind == 1:
        choices = ["cat", "dog", "red fox", "owl"]
        g = rng.randrange(4)
        L = "ABCD"
        ans = rng.choice([f"({L[g]})", f"The answer is {L[g]}.", f"{L[g]}. {choices[g]}", choices[g],
                          f"{L[(g + 1) % 4]}", f"A or {L[g]}", "Both look similar", f"Option {L[g]}"])
        return {"task": "mcq", "answer": L[g], "choices": choices, "response": wrap(rng, ans)}
    if kind == 2:
        v = rng.choice([rng.randint(0, 99), rng.randint(1000, 99999), round(rng.uniform(0, 100), 2)])
        gold = f"{v:,}" if rng.random() < 0.3 else str(v)
        ans = rng.choice([str(v), f"${v:,}", f"{v} apples", f"about {v}", str(v + 1), f"first 3 then {v}"])
        return {"task": "numeric", "answer": gold, "response": wrap(rng, ans)}
    if kind == 3:
        r = rng.random()
        if r < 0.5:
            v = round(rng.uniform(1, 500), 1)
            gold = str(v)
            ans = rng.choice([str(v), str(round(v * 1.03, 1)), str(round(v * 1.2, 1)), f"{v} million"])
        elif r < 0.7:
            v = rng.randint(1, 99)
            gold = f"0.{v:02d}"
            ans = rng.choice([f"{v}%", f"0.{v:02d}", f"{v + 10}%"])
        elif r < 0.85:
            y = rng.randint(1990, 2023)
            gold = str(y)
            ans = rng.choice([str(y), str(y + 1), f"In {y}"])
        else:
            gold = rng.choice(["Democrats", "North America", "Apple"])
            ans = rng.choice([gold.lower(), gold, "Other"])
        return {"task": "chart", "answer": gold, "response": wrap(rng, ans)}
    w, h = rng.choice([(640, 480), (1024, 768), (500, 375), (1920, 1080)])
    x1, y1 = rng.randint(0, w // 2), rng.randint(0, h // 2)
    x2, y2 = rng.randint(x1 + 10, w), rng.randint(y1 + 10, h)
    gold = [[x1, y1, x2, y2]]
    frame = rng.choice(["abs", "abs_resized", "rel1000"])
    def emit(b):
        if frame == "abs":
            return b
        if frame == "rel1000":
            return [round(b[0] * 1000 / w), round(b[1] * 1000 / h), round(b[2] * 1000 / w), round(b[3] * 1000 / h)]
        rh, rw = rules_py.smart_resize(h, w)
        return [round(b[0] * rw / w), round(b[1] * rh / h), round(b[2] * rw / w), round(b[3] * rh / h)]
    j = [v + rng.randint(-15, 15) for v in gold[0]]
    b = emit(j)
    ans = rng.choice([
        json.dumps({"bbox_2d": b, "label": "object"}),
        f"[{b[0]}, {b[1]}, {b[2]}, {b[3]}]",
        f"<|box_start|>({b[0]},{b[1]}),({b[2]},{b[3]})<|box_end|>",
        "```json\n" + json.dumps([{"bbox_2d": b}, {"bbox_2d": emit([0, 0, w // 3, h // 3])}]) + "\n```",
        json.dumps({"bbox_2d": emit([0, 0, w, h])}),
    ])
    return {"task": "grounding", "answer": gold, "frame": "abs", "pred_frame": frame, "image_size": [w, h],
            "response": wrap(rng, ans)}


def rust_bench(path, threads, seconds):
    out = subprocess.run([BIN, "reward", "bench", "--input", path, "--threads", str(threads),
                          "--min-seconds", str(seconds)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    rng = random.Random(1234)
    samples = [make(rng, i) for i in range(args.samples)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mixed.jsonl")
        with open(path, "w") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")
        ours = subprocess.run([BIN, "reward", "score", "--input", path], check=True, capture_output=True, text=True)
        ours = [json.loads(l) for l in ours.stdout.splitlines()]
        r1 = rust_bench(path, 1, args.seconds)
        rn = rust_bench(path, os.cpu_count(), args.seconds)

    # Python: scoring only (the samples are already dicts), repeated for at least `seconds`.
    theirs = [rules_py.score(s) for s in samples]
    start, reps = time.perf_counter(), 0
    while reps == 0 or time.perf_counter() - start < args.seconds:
        for s in samples:
            rules_py.score(s)
        reps += 1
    py_rate = reps * len(samples) / (time.perf_counter() - start)

    mismatches = []
    for s, a, b in zip(samples, ours, theirs):
        ra, rb = a["reward"], b["reward"]
        if (ra is None) != (rb is None) or (ra is not None and abs(ra - rb) > 1e-6):
            mismatches.append({"sample": s, "rust": a, "python": b})
    summary = {
        "samples": len(samples),
        "tasks": sorted({s["task"] for s in samples}),
        "rust_1_thread_samples_per_s": r1["samples_per_s"],
        "rust_all_threads_samples_per_s": rn["samples_per_s"],
        "rust_threads": rn["threads"],
        "python_samples_per_s": py_rate,
        "ratio_1_thread": r1["samples_per_s"] / py_rate,
        "ratio_all_threads": rn["samples_per_s"] / py_rate,
        "agreement": 1 - len(mismatches) / len(samples),
        "mismatches": len(mismatches),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "rules.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"rule rewards, {len(samples)} mixed samples ({', '.join(summary['tasks'])})")
    print(f"  mixed-r1, 1 thread      {r1['samples_per_s']:>12,.0f} samples/s")
    print(f"  mixed-r1, {rn['threads']} threads     {rn['samples_per_s']:>12,.0f} samples/s")
    print(f"  plain Python            {py_rate:>12,.0f} samples/s")
    print(f"  ratio (1 thread)        {summary['ratio_1_thread']:>12.1f}x")
    print(f"  ratio ({rn['threads']} threads)       {summary['ratio_all_threads']:>12.1f}x")
    print(f"  agreement               {summary['agreement'] * 100:>11.2f}%  ({len(mismatches)} differ)")
    for m in mismatches[:5]:
        print("  differs:", json.dumps(m)[:400])


if __name__ == "__main__":
    main()
