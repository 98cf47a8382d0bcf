#!/usr/bin/env bash
# Builds the mixed_r1 wheel and runs its tests, from scratch if need be: a virtual environment
# in python/.venv (git-ignored) with pinned maturin, pytest and numpy from PyPI, the wheel built
# by maturin (release, shared target dir with the Cargo workspace), installed, then pytest.
# Needs only python3 (>= 3.10), pip and cargo. Exits non-zero when anything fails.
#
#   bash python/test.sh [PYTEST ARGS...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check maturin==1.16.0 pytest==9.2.0 numpy==2.4.6

# The reward crate and its dependencies compile once for the workspace and the wheel.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
wheels="$here/target/wheels"
rm -rf "$wheels"
"$venv/bin/maturin" build --release --locked --quiet -m "$here/Cargo.toml" -o "$wheels"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/mixed_r1-*.whl

# Run from the tests folder, so `import mixed_r1` is the installed wheel, never the source tree.
cd "$here/tests"
"$venv/bin/python" -c 'import mixed_r1, sys; print(f"mixed_r1 {mixed_r1.__version__} from {mixed_r1.__file__}", file=sys.stderr)'
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .
