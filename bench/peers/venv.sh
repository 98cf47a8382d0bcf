# Sourced by the scripts that need transformers + torch (fixture generation, peer benchmarks):
# makes sure $venv (default <repo>/.cache/venv-torch) holds exactly bench/peers/requirements.lock.txt
# (torch 2.15 CUDA wheel used on CPU, transformers 5.23, trl 1.16, gguf, ...). Needs $root.
venv="${MIXED_R1_TORCH_VENV:-$root/.cache/venv-torch}"
lock="$root/bench/peers/requirements.lock.txt"
python="${PYTHON:-python3}"
stamp="$venv/.lock-sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.flock"
flock 9
have_ok() {
  [[ -x "$venv/bin/python" ]] || return 1
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  # A venv installed from this lock by other means (no stamp yet): accept it if the pins import.
  "$venv/bin/python" - "$lock" <<'PY' >/dev/null 2>&1 || return 1
import sys
from importlib.metadata import version
pins = dict(l.strip().split("==", 1) for l in open(sys.argv[1]) if "==" in l and not l.startswith("#"))
for name in ("torch", "transformers", "gguf", "safetensors", "pillow", "numpy", "tokenizers"):
    v = version(name)
    assert v.split("+")[0] == pins[name].split("+")[0], (name, v, pins[name])
PY
}
if ! have_ok; then
  echo "creating $venv from $lock (large download: torch + CUDA wheels)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock" >&2
fi
printf '%s' "$want" >"$stamp"
exec 9>&-

