"""The Python wheel vs the same rewards in plain Python: 10,000 mixed samples, end to end.

Both sides start from the same Python objects (yes_no, mcq, numeric, chart and grounding samples
from rules_bench.py's generator) and end with one result per sample. The wheel's time includes
everything a trainer pays: reading the Python objects, scoring (in parallel, GIL released) and
building the Python results. The plain-Python side is bench/rules_py.py, written the way verl /
TRL users write rewards today, and checked here to give the same rewards as the wheel.

Each wheel entry point is compared with the plain-Python loop that returns the same thing:

* result dicts (``score(samples)``, ``score_columns``, a ``score_one`` loop) against
  ``[rules_py.score(s) for s in samples]``, which returns a dict per sample too;
* one float per sample (``score(samples, output="floats")``, ``score_columns(...,
  output="floats")``) against the same plain-Python scoring returning just the reward float,
  which is what a TRL / verl reward function returns.

Columns are built from the same samples before timing (TRL hands reward functions columns).
Timings are interleaved (each round times every side once, Python first), so a change in the
machine's load hits all sides alike; the median of the rounds is reported. The machine state
goes with it: the CPU time other processes used during the run (from /proc/stat), and whether
a second core was really there (two processes timed against one, before and after: on a shared
virtual machine the second vCPU can be taken by the host while /proc/stat shows it idle, and the
wheel, which scores on both cores, then runs about half as fast while plain Python does not).

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
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rules_bench  # noqa: E402  (the sample generator)
import rules_py  # noqa: E402

import mixed_r1  # noqa: E402


def python_reward(sample, accuracy_weight=1.0, format_weight=0.5):
    """rules_py.score returning only the reward (None: skipped), as a TRL reward function does:
    the same scoring, minus the result dict."""
    response = sample["response"]
    fmt = rules_py.format_reward(response)
    pred = rules_py.extract_answer(response)
    task = sample["task"]
    gold = sample["answer"]
    if task == "yes_no":
        acc = rules_py.yes_no_reward(pred, gold)
    elif task == "mcq":
        acc = rules_py.mcq_reward(pred, gold, sample.get("choices", []))
    elif task == "numeric":
        acc = rules_py.numeric_reward(pred, gold)
    elif task == "chart":
        acc = rules_py.chart_reward(pred, gold)
    elif task == "grounding":
        acc = rules_py.iou_reward(pred, gold, sample.get("frame", "abs"), sample.get("pred_frame", sample.get("frame", "abs")), sample["image_size"])
        if pred is None and acc is not None:
            acc = 0.0
    else:
        raise ValueError(task)
    if acc is None:
        return None
    return accuracy_weight * acc + format_weight * fmt


PROBE = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(2_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def two_core_efficiency(trials=3):
    """How much of a second core is really there now: the same fixed loop timed in one process
    alone, then in two at once; 1.0 means both ran as fast as one alone, 0.5 that they shared
    one core. (A virtual machine's second vCPU can be busy on its host while /proc/stat shows
    it idle; the wheel's parallel scoring then gets about one core.) Median of `trials`."""
    def run(k):
        procs = [subprocess.Popen([sys.executable, "-c", PROBE], stdout=subprocess.PIPE, text=True) for _ in range(k)]
        return max(float(p.communicate()[0]) for p in procs)

    return statistics.median(run(1) / run(2) for _ in range(trials))


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat (None where unavailable)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (each times every side)")
    ap.add_argument("--inner", type=int, default=5, help="wheel calls per side per round")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "wheel.json"))
    args = ap.parse_args()

    rng = random.Random(1234)
    samples = [rules_bench.make(rng, i) for i in range(args.samples)]
    n = len(samples)
    rewards = mixed_r1.Rewards()
    columns = dict(
        responses=[s["response"] for s in samples], answers=[s["answer"] for s in samples],
        tasks=[s["task"] for s in samples], choices=[s.get("choices") for s in samples],
        frames=[s.get("frame") for s in samples], pred_frames=[s.get("pred_frame") for s in samples],
        image_sizes=[s.get("image_size") for s in samples],
    )

    # Agreement, before any timing: the wheel against plain Python, and every entry point
    # against the result dicts.
    ours = rewards.score(samples)
    theirs = [rules_py.score(s) for s in samples]
    mismatches = [
        (s, a, b)
        for s, a, b in zip(samples, ours, theirs)
        if (a["reward"] is None) != (b["reward"] is None)
        or (a["reward"] is not None and abs(a["reward"] - b["reward"]) > 1e-6)
    ]
    our_rewards = [r["reward"] for r in ours]
    assert [python_reward(s) for s in samples] == [r["reward"] for r in theirs]
    assert rewards.score(samples, output="floats") == our_rewards
    assert rewards.score_columns(**columns)["reward"] == our_rewards
    assert rewards.score_columns(**columns, output="floats") == our_rewards
    assert [rewards.score_one(s) for s in samples[:500]] == ours[:500]

    sides = {
        "python": lambda: [rules_py.score(s) for s in samples],
        "python_floats": lambda: [python_reward(s) for s in samples],
        "score": lambda: rewards.score(samples),
        "columns": lambda: rewards.score_columns(**columns),
        "score_floats": lambda: rewards.score(samples, output="floats"),
        "columns_floats": lambda: rewards.score_columns(**columns, output="floats"),
        "score_one_loop": lambda: [rewards.score_one(s) for s in samples],
    }
    slow = {"python", "python_floats", "score_one_loop"}
    times = {k: [] for k in sides}
    for f in sides.values():  # warm-up
        f()
    load_before = os.getloadavg()[0]
    efficiency_before = two_core_efficiency()
    jiffies0, cpu0, wall0 = cpu_jiffies(), os.times(), time.perf_counter()
    for _ in range(args.rounds):
        for name, f in sides.items():
            for _ in range(1 if name in slow else args.inner):
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)
    jiffies1, cpu1, wall1 = cpu_jiffies(), os.times(), time.perf_counter()
    efficiency_after = two_core_efficiency()
    other_cores = None
    if jiffies0 and jiffies1:
        busy, total = (b - a for a, b in zip(jiffies0, jiffies1))
        cores = os.cpu_count() or 1
        ours_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        # Busy CPU time of the whole machine minus this process's, in cores.
        other_cores = max(0.0, busy / total * cores - ours_s / (wall1 - wall0))

    med = {k: statistics.median(v) for k, v in times.items()}
    quartiles_ms = {k: [round(q * 1e3, 3) for q in statistics.quantiles(v, n=4)] for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    rate = {k: n / med[k] for k in med}
    summary = {
        "samples": n,
        "tasks": sorted({s["task"] for s in samples}),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rayon_threads": int(os.environ.get("RAYON_NUM_THREADS", "0")) or os.cpu_count(),
        "rounds": args.rounds,
        # Result dicts (or columns) out; plain Python returns a dict per sample.
        "wheel_batch_seconds_median": med["score"],
        "wheel_batch_seconds_best": best["score"],
        "wheel_samples_per_s": rate["score"],
        "wheel_columns_seconds_median": med["columns"],
        "wheel_columns_samples_per_s": rate["columns"],
        "wheel_score_one_loop_samples_per_s": rate["score_one_loop"],
        "python_seconds_median": med["python"],
        "python_samples_per_s": rate["python"],
        "ratio": med["python"] / med["score"],
        "ratio_columns": med["python"] / med["columns"],
        "ratio_score_one_loop": med["python"] / med["score_one_loop"],
        # One float per sample out; plain Python returns the reward float.
        "wheel_floats_seconds_median": med["score_floats"],
        "wheel_floats_samples_per_s": rate["score_floats"],
        "wheel_columns_floats_seconds_median": med["columns_floats"],
        "wheel_columns_floats_samples_per_s": rate["columns_floats"],
        "python_floats_seconds_median": med["python_floats"],
        "python_floats_samples_per_s": rate["python_floats"],
        "ratio_floats": med["python_floats"] / med["score_floats"],
        "ratio_columns_floats": med["python_floats"] / med["columns_floats"],
        # Best-of-rounds on both sides: the least disturbed by other jobs on a shared machine.
        "ratio_best": best["python"] / best["score"],
        "ratio_columns_best": best["python"] / best["columns"],
        "ratio_floats_best": best["python_floats"] / best["score_floats"],
        "ratio_columns_floats_best": best["python_floats"] / best["columns_floats"],
        # Per side: 25th, 50th and 75th percentile of the timed calls, in ms.
        "quartiles_ms": quartiles_ms,
        "load_average_1min_before": load_before,
        "load_average_1min": os.getloadavg()[0],
        "other_processes_cpu_cores": other_cores,
        # 1.0: a second core fully there for a second process; 0.5: only one core's worth.
        "two_core_efficiency_before": efficiency_before,
        "two_core_efficiency_after": efficiency_after,
        "agreement": 1 - len(mismatches) / n,
        "mismatches": len(mismatches),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)

    def line(label, key, ratio=None):
        extra = f"  {ratio:6.1f}x" if ratio else ""
        print(f"  {label:40s} {rate[key]:>12,.0f} samples/s  ({med[key] * 1e3:6.2f} ms){extra}")

    print(f"{n} mixed samples ({', '.join(summary['tasks'])}); median of {args.rounds} interleaved rounds")
    print(" result dicts out:")
    line("plain Python (rules_py.score)", "python")
    line("mixed_r1 score(samples)", "score", summary["ratio"])
    line("mixed_r1 score_columns(...)", "columns", summary["ratio_columns"])
    line("mixed_r1 score_one loop", "score_one_loop", summary["ratio_score_one_loop"])
    print(" one reward float per sample out:")
    line("plain Python (reward only)", "python_floats")
    line('mixed_r1 score(samples, output="floats")', "score_floats", summary["ratio_floats"])
    line('mixed_r1 score_columns(..., "floats")', "columns_floats", summary["ratio_columns_floats"])
    print(f"  ratios, best of rounds: {summary['ratio_best']:.1f}x dicts, {summary['ratio_columns_best']:.1f}x columns, "
          f"{summary['ratio_floats_best']:.1f}x floats, {summary['ratio_columns_floats_best']:.1f}x column floats")
    others = "unknown" if other_cores is None else f"{other_cores:.2f}"
    print(f"  machine: {summary['cpus']} CPUs; load average {load_before:.2f} before, {summary['load_average_1min']:.2f} after; "
          f"other processes used {others} cores during the run; two-core efficiency {efficiency_before:.2f} before, "
          f"{efficiency_after:.2f} after (1.0: both cores there)")
    print(f"  agreement with plain Python           {summary['agreement'] * 100:>8.2f}%  ({len(mismatches)} differ)")
    for s, a, b in mismatches[:5]:
        print("  differs:", json.dumps({"sample": s, "wheel": a, "python": b})[:400])
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
