#!/usr/bin/env bash
# Creates (once) the Python environment the data-engine tests use to read our Parquet files back
# with real pyarrow: <repo>/.cache/venv-test, pinned versions from PyPI. Prints the interpreter's
# path on stdout. Idempotent and safe to run from several test processes at once (flock).
#
#   scripts/py-venv.sh            # -> /path/to/.cache/venv-test/bin/python
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MIXED_R1_TEST_VENV:-$root/.cache/venv-test}"
python="${PYTHON:-python3}"
# The pins: pyarrow is what verl and EasyR1 read Parquet with (through `datasets`).
pins=(pyarrow==26.0.1)
stamp="$venv/.pins"
want="${pins[*]}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "${pins[@]}" >&2
  printf '%s' "$want" >"$stamp"
fi
echo "$venv/bin/python"
