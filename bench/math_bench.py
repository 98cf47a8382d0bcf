#!/usr/bin/env python3
"""Side-by-side benchmark of our math equivalence reward against PyPI `math-verify`.

Both sides judge the same (gold, pred) pairs from bench/math_cases.jsonl, each labelled with the
answer we believe correct ("expected"). math-verify is called the way verl's `math_verify` reward
calls it: the ground truth wrapped in \\boxed{}, the prediction extracted with
ExprExtractionConfig + LatexExtractionConfig, through `math_metric`. (With `--mode parse` it is
the plain `verify(parse(gold), parse(pred))` instead.) Our side runs through the CLI:
`mixed-r1 reward score` for the verdicts and `mixed-r1 reward bench` for the throughput, on
scoring lines whose response is `<think>.</think><answer>PRED</answer>`.

Prints both throughputs, their ratio, the agreement with math-verify and with the labels, and every
disagreement; writes a summary to bench/results/math.json.

Usage: bench/.venv/bin/python bench/math_bench.py [--cases FILE] [--bin PATH] [--min-seconds S]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_cases(path: Path) -> list[dict]:
    cases = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                cases.append(json.loads(line))
    return cases


def delimit(pred: str) -> str:
    """Our pred is the text inside <answer>...</answer>. math-verify's LaTeX extraction only looks
    inside math delimiters, so, as TRL does with answer-only completions, a pred without any is
    wrapped in $...$ (its plain-expression extraction still sees the text too)."""
    unescaped_dollar = re.search(r"(?<!\\)\$", pred) is not None
    if unescaped_dollar or any(d in pred for d in ("\\boxed", "\\(", "\\[")):
        return pred
    return "$" + pred + "$"


def math_verify_judge(mode: str):
    """Returns a function (gold, pred) -> bool that calls math-verify as its users do."""
    # math-verify logs every failed extraction; the verdicts are what we compare.
    logging.disable(logging.WARNING)
    from math_verify import parse, verify
    from math_verify.metric import math_metric
    from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig

    if mode == "parse":

        def judge(gold: str, pred: str) -> bool:
            try:
                return bool(verify(parse(gold), parse(delimit(pred))))
            except Exception:
                return False

        return judge

    verify_func = math_metric(
        gold_extraction_target=(LatexExtractionConfig(),),
        pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig()),
    )

    def judge(gold: str, pred: str) -> bool:
        try:
            score, _ = verify_func(["\\boxed{" + gold + "}"], [delimit(pred)])
            return score == 1.0
        except BaseException:  # math-verify raises its own TimeoutException, not an Exception
            return False

    return judge


def run_theirs(cases: list[dict], mode: str, min_seconds: float) -> tuple[list[bool], float, int]:
    judge = math_verify_judge(mode)
    verdicts = [judge(c["gold"], c["pred"]) for c in cases]  # warm-up pass, also the verdicts
    done = 0
    start = time.perf_counter()
    while True:
        for c in cases:
            judge(c["gold"], c["pred"])
        done += len(cases)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return verdicts, elapsed, done


def scoring_lines(cases: list[dict]) -> str:
    out = []
    for c in cases:
        out.append(
            json.dumps(
                {
                    "task": "math",
                    "answer": c["gold"],
                    "response": "<think>.</think><answer>" + c["pred"] + "</answer>",
                },
                ensure_ascii=False,
            )
        )
    return "\n".join(out) + "\n"


def run_ours(binary: Path, input_path: Path, n: int, min_seconds: float, threads: int | None):
    scored = subprocess.run(
        [str(binary), "reward", "score", "--input", str(input_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    results = [json.loads(l) for l in scored.stdout.splitlines() if l.strip()]
    if len(results) != n:
        sys.exit(f"expected {n} result lines from `reward score`, got {len(results)}")
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    bench = subprocess.run(
        [str(binary), "reward", "bench", "--input", str(input_path), "--min-seconds", str(min_seconds)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(bench.stdout.strip().splitlines()[-1])
    return results, report


def verdict_of(result: dict):
    acc = result.get("accuracy")
    if acc is None:
        return "skip"
    return acc == 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=Path, default=HERE / "math_cases.jsonl")
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "mixed-r1")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="minimum timed seconds per side")
    ap.add_argument("--mode", choices=["verl", "parse"], default="verl", help="how math-verify is called")
    ap.add_argument("--output", type=Path, default=HERE / "results" / "math.json")
    args = ap.parse_args()

    cases = load_cases(args.cases)
    if not args.bin.exists():
        sys.exit(f"{args.bin} not found: build it with `cargo build --release -p mixed-r1`")

    theirs, their_secs, their_done = run_theirs(cases, args.mode, args.min_seconds)
    their_rate = their_done / their_secs

    with tempfile.TemporaryDirectory() as tmp:
        input_path = Path(tmp) / "math_scoring.jsonl"
        input_path.write_text(scoring_lines(cases), encoding="utf-8")
        results, report_1t = run_ours(args.bin, input_path, len(cases), args.min_seconds, 1)
        _, report_all = run_ours(args.bin, input_path, len(cases), args.min_seconds, None)
    ours = [verdict_of(r) for r in results]
    rate_1t = report_1t["samples_per_s"]
    rate_all = report_all["samples_per_s"]

    n = len(cases)
    agree = sum(1 for a, b in zip(ours, theirs) if a == b)
    ours_right = sum(1 for c, a in zip(cases, ours) if a == c["expected"])
    theirs_right = sum(1 for c, b in zip(cases, theirs) if b == c["expected"])
    disagreements = [
        {
            "category": c.get("category", ""),
            "gold": c["gold"],
            "pred": c["pred"],
            "ours": a,
            "math_verify": b,
            "expected": c["expected"],
        }
        for c, a, b in zip(cases, ours, theirs)
        if a != b
    ]
    ours_wrong = [
        {"gold": c["gold"], "pred": c["pred"], "ours": a, "expected": c["expected"]}
        for c, a in zip(cases, ours)
        if a != c["expected"]
    ]

    print(f"cases: {n}")
    print(
        f"math-verify ({args.mode}): {their_rate:,.0f} samples/s "
        f"({their_done} judgements in {their_secs:.2f} s, 1 thread)"
    )
    print(
        f"ours (reward bench, 1 thread): {rate_1t:,.0f} samples/s;"
        f" all {report_all.get('threads', '?')} threads: {rate_all:,.0f} samples/s"
    )
    print(f"speed-up, one thread each: {rate_1t / their_rate:,.0f}x (target >= 100x)")
    print(f"agreement with math-verify: {agree}/{n} ({100 * agree / n:.1f}%)")
    print(f"matches the expected label: ours {ours_right}/{n}, math-verify {theirs_right}/{n}")
    if disagreements:
        print(f"\ndisagreements ({len(disagreements)}): category | gold | pred | ours | math-verify | expected")
        for d in disagreements:
            print(
                f"  {d['category']} | {d['gold']} | {d['pred']} | {d['ours']} | {d['math_verify']} | {d['expected']}"
            )
    if ours_wrong:
        print(f"\nours differs from the expected label ({len(ours_wrong)}):")
        for d in ours_wrong:
            print(f"  {d['gold']} | {d['pred']} | ours {d['ours']} | expected {d['expected']}")

    summary = {
        "cases": n,
        "math_verify": {
            "version": _version("math-verify"),
            "mode": args.mode,
            "samples_per_s": their_rate,
            "seconds": their_secs,
            "judgements": their_done,
            "matches_expected": theirs_right,
        },
        "ours": {
            "samples_per_s_1_thread": rate_1t,
            "samples_per_s_all_threads": rate_all,
            "threads": report_all.get("threads"),
            "matches_expected": ours_right,
            "skipped": sum(1 for a in ours if a == "skip"),
            "bench_report_1_thread": report_1t,
        },
        "speedup_1_thread": rate_1t / their_rate,
        "agreement": agree / n,
        "disagreements": disagreements,
        "ours_vs_expected": ours_wrong,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nsummary written to {args.output}")


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


if __name__ == "__main__":
    main()
