#!/usr/bin/env bash
# CI's check of the CUDA build (no GPU there): installs the toolchain, builds the whole binary
# with `--features cuda` (scripts/cuda-build.sh), then checks that the binary starts and runs
# without any CUDA library present, and that asking it for a GPU fails with a message.
#
# Profile: `--release`, the profile scripts/test.sh has just built, so only candle's CUDA crates,
# cudarc, the kernels (nvcc) and our crates compile again; a profile of its own would rebuild
# every dependency (arrow, parquet, tokenizers, image, axum ...) on CI's 2 cores.
# The CUDA binary replaces target/release/mixed-r1; it runs on the CPU exactly as the CPU one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
bash scripts/cuda-build.sh --release -p mixed-r1
echo "cuda-build-check: built in $(($(date +%s) - start)) s"

bin="${CARGO_TARGET_DIR:-$root/target}/release/mixed-r1"
needed="$(readelf -d "$bin" | grep NEEDED || true)"
if grep -Eq 'libcuda|libcudart|libcublas|libcurand|libnvrtc' <<<"$needed"; then
  echo "cuda-build-check: the binary links CUDA libraries at start:" >&2
  echo "$needed" >&2
  exit 1
fi
"$bin" --help >/dev/null

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo '{}' >"$tmp/data.jsonl"
if "$bin" sft --tiny tiny-qwen2 --data "$tmp/data.jsonl" --out "$tmp/out" --steps 1 \
  --device cuda:0 >"$tmp/log" 2>&1; then
  echo "cuda-build-check: --device cuda:0 succeeded on a machine without a GPU?" >&2
  cat "$tmp/log" >&2
  exit 1
fi
if ! grep -q "device \`cuda:0\`" "$tmp/log" || grep -q "panicked" "$tmp/log"; then
  echo "cuda-build-check: --device cuda:0 without a GPU did not fail with the device error:" >&2
  cat "$tmp/log" >&2
  exit 1
fi
echo "cuda-build-check: ok ($(head -c 300 "$tmp/log" | tr '\n' ' '))"
