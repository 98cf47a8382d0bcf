#!/usr/bin/env bash
# Regenerates recipes/data/smollm2-text/{train,heldout}.jsonl (text-only GRPO data for the
# SmolLM2-135M-Instruct recipe) and validates them. Creates (once) the Python environment
# <repo>/.cache/venv-rg with reasoning-gym pinned from PyPI. Deterministic: the same pins give
# byte-identical files.
#
#   scripts/data/make_text_tasks.sh            # generate + validate
#   scripts/data/make_text_tasks.sh --check    # validate the committed files only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${MIXED_R1_RG_VENV:-$root/.cache/venv-rg}"
python="${PYTHON:-python3}"
pins=(reasoning-gym==0.1.25)
stamp="$venv/.pins"
want="${pins[*]}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
  printf '%s' "$want" >"$stamp"
fi
exec "$venv/bin/python" "$root/scripts/data/make_text_tasks.py" "$@"
