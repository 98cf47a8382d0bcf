"""The Python wheel vs the same rewards in plain Python: 10,000 mixed samples, end to end.

Both sides start from the same list of Python dicts (yes_no, mcq, numeric, chart and grounding
samples from rules_bench.py's generator) and end with one result per sample. The wheel's time
includes everything a trainer pays: reading the dicts, scoring (in parallel, GIL released) and
building the result dicts. The plain-Python side is bench/rules_py.py, written the way verl / TRL
users write rewards today, and checked here to give the same rewards as the wheel.

    bash python/test.sh            # builds the wheel into python/.venv
    python/.venv/bin/python bench/wheel_bench.py

Summary: bench/results/wheel.json.
"""
import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rules_bench  # noqa: E402  (the sample generator)
import rules_py  # noqa: E402

import mixed_r1  # noqa: E402


def timed(fn, repeats):
    """Median and best wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "wheel.json"))
    args = ap.parse_args()

    rng = random.Random(1234)
    samples = [rules_bench.make(rng, i) for i in range(args.samples)]
    rewards = mixed_r1.Rewards()

    ours = rewards.score(samples)
    theirs = [rules_py.score(s) for s in samples]
    mismatches = [
        (s, a, b)
        for s, a, b in zip(samples, ours, theirs)
        if (a["reward"] is None) != (b["reward"] is None)
        or (a["reward"] is not None and abs(a["reward"] - b["reward"]) > 1e-6)
    ]

    # Each side timed over whole 10,000-sample batches; the median of the repeats is reported.
    py_med, py_best = timed(lambda: [rules_py.score(s) for s in samples], max(3, args.repeats // 3))
    wheel_med, wheel_best = timed(lambda: rewards.score(samples), args.repeats)
    one_med, _ = timed(lambda: [rewards.score_one(s) for s in samples], max(3, args.repeats // 3))
    # Columns in, columns out (the shape TRL and verl's batch manager hold data in).
    columns = dict(
        responses=[s["response"] for s in samples], answers=[s["answer"] for s in samples],
        tasks=[s["task"] for s in samples], choices=[s.get("choices") for s in samples],
        frames=[s.get("frame") for s in samples], pred_frames=[s.get("pred_frame") for s in samples],
        image_sizes=[s.get("image_size") for s in samples],
    )
    assert rewards.score_columns(**columns)["reward"] == [r["reward"] for r in ours]
    col_med, col_best = timed(lambda: rewards.score_columns(**columns), args.repeats)

    n = len(samples)
    summary = {
        "samples": n,
        "tasks": sorted({s["task"] for s in samples}),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rayon_threads": int(os.environ.get("RAYON_NUM_THREADS", "0")) or os.cpu_count(),
        "wheel_batch_seconds_median": wheel_med,
        "wheel_batch_seconds_best": wheel_best,
        "wheel_samples_per_s": n / wheel_med,
        "wheel_score_one_loop_samples_per_s": n / one_med,
        "wheel_columns_seconds_median": col_med,
        "wheel_columns_samples_per_s": n / col_med,
        "python_seconds_median": py_med,
        "python_samples_per_s": n / py_med,
        "ratio": py_med / wheel_med,
        "ratio_score_one_loop": py_med / one_med,
        "ratio_columns": py_med / col_med,
        # Best-of-repeats on both sides: the least disturbed by other jobs on a shared machine.
        "ratio_best": py_best / wheel_best,
        "ratio_columns_best": py_best / col_best,
        "load_average_1min": os.getloadavg()[0],
        "agreement": 1 - len(mismatches) / n,
        "mismatches": len(mismatches),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{n} mixed samples ({', '.join(summary['tasks'])}), dicts in -> result dicts out")
    print(f"  mixed_r1 wheel, score(batch)    {summary['wheel_samples_per_s']:>12,.0f} samples/s  ({wheel_med * 1e3:.1f} ms)")
    print(f"  mixed_r1 wheel, score_columns   {summary['wheel_columns_samples_per_s']:>12,.0f} samples/s  ({col_med * 1e3:.1f} ms)")
    print(f"  mixed_r1 wheel, score_one loop  {summary['wheel_score_one_loop_samples_per_s']:>12,.0f} samples/s")
    print(f"  plain Python (rules_py)         {summary['python_samples_per_s']:>12,.0f} samples/s  ({py_med * 1e3:.1f} ms)")
    print(f"  ratio (batch)                   {summary['ratio']:>12.1f}x")
    print(f"  ratio (score_columns)           {summary['ratio_columns']:>12.1f}x")
    print(f"  ratio, best of repeats          {summary['ratio_best']:>12.1f}x batch, {summary['ratio_columns_best']:.1f}x columns")
    print(f"  ratio (score_one loop)          {summary['ratio_score_one_loop']:>12.1f}x")
    print(f"  machine: {summary['cpus']} CPUs, load average {summary['load_average_1min']:.2f} (others' jobs included)")
    print(f"  agreement                       {summary['agreement'] * 100:>11.2f}%  ({len(mismatches)} differ)")
    for s, a, b in mismatches[:5]:
        print("  differs:", json.dumps({"sample": s, "wheel": a, "python": b})[:400])
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
