#!/usr/bin/env bash
# The reward differential test: a seeded generator writes realistic mixed scoring lines
# (tests/reward_diff/generate.py: every rule task, hedges, inverted / degenerate / NaN / 1e308
# boxes, malformed lines), the real binary scores them (`mixed-r1 reward score`), an independent
# plain-Python implementation of DESIGN.md scores them too (tests/reward_diff/reference.py), and
# tests/reward_diff/compare.py fails on any line where format or accuracy differ, except the
# documented intentional differences (README.md, "Reward details", with their counts).
#
#   bash scripts/reward-diff.sh                       # 20,000 cases, seed 17
#   REWARD_DIFF_CASES=100000 REWARD_DIFF_SEED=3 bash scripts/reward-diff.sh
#
# The binary: $MIXED_R1_BIN, else target/release/mixed-r1 (`cargo build --release -p mixed-r1`;
# with CARGO_TARGET_DIR set, $CARGO_TARGET_DIR/release/mixed-r1). Needs python3 (stdlib only).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${MIXED_R1_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/mixed-r1}"
cases="${REWARD_DIFF_CASES:-20000}"
seed="${REWARD_DIFF_SEED:-17}"
python="${PYTHON:-python3}"

if [[ ! -x "$bin" ]]; then
  echo "reward-diff: no binary at $bin: run cargo build --release -p mixed-r1, or set MIXED_R1_BIN" >&2
  exit 1
fi
if (( cases < 20000 )) && [[ -z "${REWARD_DIFF_ALLOW_FEW:-}" ]]; then
  echo "reward-diff: $cases cases is below the 20,000 the test promises (set REWARD_DIFF_ALLOW_FEW=1 to try fewer)" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$python" "$root/tests/reward_diff/generate.py" --cases "$cases" --seed "$seed" \
  --out "$tmp/cases.jsonl" --labels "$tmp/labels.txt"
# A time limit: no input may hang the scorer.
timeout 600 "$bin" reward score --input "$tmp/cases.jsonl" --output "$tmp/rust.jsonl" --quiet
"$python" "$root/tests/reward_diff/compare.py" "$tmp/cases.jsonl" "$tmp/rust.jsonl" --labels "$tmp/labels.txt"
