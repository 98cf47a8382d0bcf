#!/usr/bin/env bash
# Builds the CUDA binary of mixed-r1 (`--features cuda`) on a machine with no GPU and no driver:
# installs the toolchain (scripts/cuda-toolchain.sh), then runs cargo with candle-core patched to
# load the CUDA libraries at run time instead of linking them.
#
#   bash scripts/cuda-build.sh [CARGO BUILD ARGS ...]     # default: --release -p mixed-r1
#
# Output: the binary cargo names (target/release/mixed-r1 for the default), which starts and runs
# on CPU anywhere; `--device cuda[:N]` then needs an NVIDIA driver (libcuda.so.1) and the CUDA 13
# libraries cuBLAS, cuBLASLt, cuRAND (and NVRTC) on the loader's path, and says which is missing.
#
# Why the patch: candle-core 0.11 turns on cudarc's `dynamic-linking`, which links libcuda,
# libcublas, libcurand and libnvrtc into the binary: it then needs those libraries (a libcuda stub
# and ~600 MB of cuBLAS) to link, and refuses to start at all on a machine without them, even for
# `--device cpu`. cudarc's `dynamic-loading` (dlopen on first use) avoids both, but the two
# features are exclusive and cargo features only add up, so a copy of candle-core 0.11.1 from
# cargo's own registry cache, with that one feature name changed, is put in via `--config patch`
# (nothing is vendored in the repository). Cargo.lock is restored afterwards: the patch changes
# candle-core's source line in it, and the CPU build must keep using the registry crate.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

eval "$(bash scripts/cuda-toolchain.sh)"

candle_version="0.11.1"
patch_dir="${MIXED_R1_CUDA_ROOT:-$root/.cache/cuda}-candle-core-$candle_version"
if [[ ! -f "$patch_dir/.patched" ]]; then
  # `cargo fetch` puts the registry sources in place; cargo metadata says where.
  cargo fetch --quiet
  src="$(cargo metadata --format-version 1 --quiet | python3 -c '
import json, sys, os
meta = json.load(sys.stdin)
want = sys.argv[1]
for p in meta["packages"]:
    if p["name"] == "candle-core" and p["version"] == want and (p.get("source") or "").startswith("registry+"):
        print(os.path.dirname(p["manifest_path"])); break
' "$candle_version")"
  [[ -n "$src" && -f "$src/Cargo.toml" ]] || { echo "cuda-build: candle-core $candle_version not found in cargo's registry" >&2; exit 1; }
  tmp="$patch_dir.tmp.$$"
  rm -rf "$tmp"
  cp -a "$src" "$tmp"
  python3 - "$tmp/Cargo.toml" <<'PY'
import sys, re
path = sys.argv[1]
text = open(path).read()
block = re.search(r'\[dependencies\.cudarc\]\nversion = "[^"]+"\nfeatures = \[[^\]]*\]', text)
if not block or '"dynamic-linking"' not in block.group(0):
    sys.exit(f"cuda-build: {path}: no cudarc dependency with dynamic-linking to change")
new = block.group(0).replace('"dynamic-linking"', '"dynamic-loading"')
open(path, "w").write(text[: block.start()] + new + text[block.end():])
PY
  touch "$tmp/.patched"
  rm -rf "$patch_dir"
  mv "$tmp" "$patch_dir"
fi

# candle-kernels links its MoE kernels against `-lcudart`. A folder holding only the static
# runtime as libcudart.a makes the linker take that (it prefers a .so found first), so the binary
# needs no libcudart.so at start; the runtime finds the driver itself when a GPU is first used.
# LIBRARY_PATH reaches the linker without changing RUSTFLAGS (which would rebuild everything).
# The toolchain's lib/ must then offer no `libcudart.so`: `-L` folders are searched before
# LIBRARY_PATH, and a thin-LTO build only hid the problem by dropping the MoE code that uses it.
rm -f "$CUDA_ROOT/lib/libcudart.so"
static_dir="$CUDA_ROOT/lib-static-cudart"
mkdir -p "$static_dir"
ln -sf ../lib/libcudart_static.a "$static_dir/libcudart.a"
export LIBRARY_PATH="$static_dir${LIBRARY_PATH:+:$LIBRARY_PATH}"

lock_backup="$(mktemp)"
cp Cargo.lock "$lock_backup"
trap 'cp "$lock_backup" Cargo.lock; rm -f "$lock_backup"' EXIT
trap 'exit 130' INT TERM

if [[ $# -eq 0 ]]; then
  set -- --release -p mixed-r1
fi
echo "cuda-build: cargo build --features cuda $* (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)" >&2
cargo build --features cuda \
  --config "patch.crates-io.candle-core.path='$patch_dir'" "$@"
