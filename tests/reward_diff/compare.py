"""Compares `mixed-r1 reward score` output with the independent Python reference, line by line.

    python3 tests/reward_diff/compare.py CASES.jsonl RUST_RESULTS.jsonl [--labels LABELS.txt]

A line agrees when format and accuracy are equal (both null, or within 1e-9). A line that
disagrees passes only when the Rust result equals one of the reference's documented alternatives
(see reference.py) whose names are all in ALLOWED; each such intentional difference is counted
and reported (README.md, "Reward details", lists them with these counts). Anything else fails,
and so does a missing or extra output line, and (with --labels) any hedge -- a case the generator
made to name two options, a range or alternatives -- that the binary scores above 0. Exit status
1 on failure.
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

# The documented intentional differences (README.md, "Reward details").
ALLOWED = {"tag_case", "mcq_last_statement", "mcq_article", "math_set_order", "math_interval_values"}
TOL = 1e-9


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOL


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases")
    ap.add_argument("results")
    ap.add_argument("--labels")
    ap.add_argument("--show", type=int, default=15, help="failures to print")
    args = ap.parse_args()
    with open(args.cases, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    with open(args.results, encoding="utf-8") as f:
        results = [json.loads(l) for l in f.read().splitlines()]
    labels = None
    if args.labels:
        with open(args.labels, encoding="utf-8") as f:
            labels = f.read().splitlines()
    if len(results) != len(lines):
        print(f"reward-diff: FAIL: {len(lines)} input lines but {len(results)} output lines", file=sys.stderr)
        return 1
    agree = 0
    intentional = collections.Counter()
    intentional_by_case = collections.defaultdict(collections.Counter)
    failures = []
    per_case = collections.Counter()
    hedges = hedges_scored = 0
    for i, (raw, rust) in enumerate(zip(lines, results)):
        case = labels[i] if labels else "?"
        per_case[case.split("/")[0]] += 1
        # The bar: no hedge scores above 0 when the gold is one option.
        if case.endswith("/hedge"):
            hedges += 1
            if rust.get("accuracy"):
                hedges_scored += 1
                failures.append((i, case + " (a hedge that scores)", reference.score_line(raw), rust, raw))
                continue
        ref = reference.score_line(raw)
        rf, ra = rust.get("format"), rust.get("accuracy")
        if same(ref["format"], rf) and same(ref["accuracy"], ra):
            agree += 1
            continue
        matches = [names for names, f, a in ref["alternatives"] if same(f, rf) and same(a, ra)]
        matches.sort(key=len)
        if matches and set(matches[0]) <= ALLOWED:
            key = "+".join(matches[0])
            intentional[key] += 1
            intentional_by_case[key][case] += 1
            continue
        failures.append((i, case, ref, rust, raw))
    n = len(lines)
    print(f"reward-diff: {n} cases ({', '.join(f'{k} {v}' for k, v in sorted(per_case.items()))})")
    print(f"reward-diff: {agree} agree exactly ({100 * agree / n:.2f}%), "
          f"{sum(intentional.values())} documented intentional differences, {len(failures)} unexplained")
    if labels:
        print(f"reward-diff: {hedges} hedges (two options, a range or alternatives), {hedges_scored} scored above 0")
    per_name = collections.Counter()
    for key, count in intentional.items():
        for name in key.split("+"):
            per_name[name] += count
    if per_name:
        print("reward-diff: per difference (a line with two counts in both): "
              + ", ".join(f"{k} {v}" for k, v in per_name.most_common()))
    for key, count in sorted(intentional.items(), key=lambda kv: -kv[1]):
        top = ", ".join(f"{c} {k}" for k, c in intentional_by_case[key].most_common(4))
        print(f"  intentional {key}: {count}  ({top})")
    for i, case, ref, rust, raw in failures[: args.show]:
        text = raw.decode("utf-8", "replace")
        if len(text) > 300:
            text = text[:300] + f"... ({len(raw)} bytes)"
        print(f"  DIFF line {i + 1} [{case}]: reference format={ref['format']} accuracy={ref['accuracy']}; "
              f"rust format={rust.get('format')} accuracy={rust.get('accuracy')} error={rust.get('error')!r}\n"
              f"    {text}")
    if failures:
        by_case = collections.Counter(c for _, c, *_ in failures)
        print("reward-diff: FAIL: unexplained differences by case: "
              + ", ".join(f"{k} {v}" for k, v in by_case.most_common()), file=sys.stderr)
        return 1
    print("reward-diff: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
