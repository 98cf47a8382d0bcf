#!/usr/bin/env bash
# Installs the CUDA build toolchain that `cargo build --features cuda` needs, without a GPU, a
# driver or root: nvcc, cicc (NVVM), ptxas, the CUDA runtime headers and CCCL, all from NVIDIA's
# PyPI wheels (pinned by version and sha256), unpacked into one CUDA root, default
# <repo>/.cache/cuda (git-ignored; $MIXED_R1_CUDA_ROOT moves it).
#
#   eval "$(bash scripts/cuda-toolchain.sh)"    # install if needed, then export the build env
#
# Why CUDA 13.0 from the unsuffixed wheels: the `-cu12` nvcc wheels carry only ptxas and libnvvm
# (no nvcc, no cicc), so no CUDA 12 toolkit can be assembled from PyPI. CUDA 13.0 is the oldest
# release whose wheels hold a whole nvcc; PTX from it JIT-compiles on any driver of the 580 series
# or newer (CUDA 13.x drivers), and cudarc 0.19 knows it (cuda-13000).
#
# What it prints on stdout: `export` lines for CUDA_ROOT / CUDA_PATH / CUDA_HOME (cudarc, candle's
# cudaforge and nvcc all look there), PATH (nvcc) and CUDA_COMPUTE_CAP. There is no nvidia-smi
# here to ask the GPU, so the compute capability candle-kernels compiles its PTX for is chosen:
# 80 by default (Ampere A100; PTX for 8.0 is JIT-compiled forward on Hopper H100/H200 and newer).
# Set CUDA_COMPUTE_CAP before running this (e.g. 90 for H100/H200, 89 for L4/RTX 40xx, 86 for
# RTX 30xx) to build for your GPU; CUDA 13 supports 75 and up.
#
# Idempotent and safe to run from several processes at once: the install runs under a flock, into
# a temporary folder renamed into place when complete; a `.complete` stamp holding the sha256 of
# the pin list marks it done, and a changed pin reinstalls. Progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cuda_root="${MIXED_R1_CUDA_ROOT:-$root/.cache/cuda}"
python="${PYTHON:-python3}"

# The pins: pip spec | wheel file | sha256 (from PyPI, 2026-12). All of them unpack under
# nvidia/cu13/, which is laid out as a CUDA root (bin/ include/ lib/ nvvm/).
pins=(
  "nvidia-cuda-nvcc==13.0.88|nvidia_cuda_nvcc-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
  "nvidia-cuda-crt==13.0.88|nvidia_cuda_crt-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
  "nvidia-nvvm==13.0.88|nvidia_nvvm-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl|c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
  "nvidia-cuda-runtime==13.0.96|nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cuda-cccl==13.0.85|nvidia_cuda_cccl-13.0.85-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
)
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -d' ' -f1)"
stamp="$cuda_root/.complete"

install() {
  local tmp="$cuda_root.tmp.$$" spec file sha got
  rm -rf "$tmp"
  mkdir -p "$tmp/wheels"
  trap 'rm -rf "$tmp"' RETURN
  for pin in "${pins[@]}"; do
    IFS='|' read -r spec file sha <<<"$pin"
    echo "cuda-toolchain: fetching $spec" >&2
    if ! "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --only-binary=:all: --platform manylinux2014_x86_64 --dest "$tmp/wheels" "$spec" >&2; then
      echo "cuda-toolchain: pip download $spec failed" >&2
      return 1
    fi
    [[ -f "$tmp/wheels/$file" ]] || { echo "cuda-toolchain: $spec did not give $file" >&2; return 1; }
    got="$(sha256sum "$tmp/wheels/$file" | cut -d' ' -f1)"
    [[ "$got" == "$sha" ]] || { echo "cuda-toolchain: $file sha256 $got, pinned $sha" >&2; return 1; }
    "$python" - "$tmp/wheels/$file" "$tmp/unpacked" <<'PY'
import sys, zipfile, os, stat
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith("nvidia/cu13/") or info.is_dir():
            continue
        rel = info.filename[len("nvidia/cu13/"):]
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            dst.write(src.read())
        # Wheels keep Unix modes in the high bits of external_attr; bin/ must stay executable.
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(out, mode)
        if rel.startswith(("bin/", "nvvm/bin/")):
            os.chmod(out, os.stat(out).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PY
  done
  # No unversioned libcudart.so: candle-kernels links `-lcudart` for its MoE library, and
  # scripts/cuda-build.sh makes the linker take the static runtime instead.
  # cudaforge and CMake-style tools look under lib64/.
  ln -sfn lib "$tmp/unpacked/lib64"
  "$tmp/unpacked/bin/nvcc" --version >/dev/null
  printf '%s' "$want" >"$tmp/unpacked/.complete"
  rm -rf "$cuda_root"
  mv "$tmp/unpacked" "$cuda_root"
  echo "cuda-toolchain: installed in $cuda_root ($("$cuda_root/bin/nvcc" --version | tail -2 | head -1))" >&2
}

mkdir -p "$(dirname "$cuda_root")"
exec 9>"$cuda_root.flock"
flock 9
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  install
fi
exec 9>&-

cap="${CUDA_COMPUTE_CAP:-80}"
cat <<EOF
export CUDA_ROOT='$cuda_root'
export CUDA_PATH='$cuda_root'
export CUDA_HOME='$cuda_root'
export PATH='$cuda_root/bin':"\$PATH"
export CUDA_COMPUTE_CAP='$cap'
EOF
