# Sourced by the bench scripts in this folder: builds (once) a preloadable libmimalloc.so from
# the very mimalloc sources the `mixed-r1` binary links (crates/cli uses the `mimalloc` crate as
# its global allocator; the source is libmimalloc-sys's c_src/mimalloc/v3 at the version pinned
# in Cargo.lock, built with the crate's release defines) and sets $mimalloc_so to it, or to ""
# when it cannot be built (the mimalloc variants are then skipped). Needs $root.
#
# The bench examples are plain `cargo --example` binaries of crates that do not depend on
# mimalloc, so they run on glibc malloc unless this library is preloaded:
#   LD_PRELOAD="$mimalloc_so" [MIMALLOC_PURGE_DELAY=-1] target/release/examples/...
mimalloc_so=""
_mi_ver="$(awk '/^name = "libmimalloc-sys"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$root/Cargo.lock")"
if [[ -n "$_mi_ver" ]]; then
  _mi_out="$root/.cache/bench-mimalloc/libmimalloc-sys-$_mi_ver.so"
  if [[ ! -f "$_mi_out" ]]; then
    _mi_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"libmimalloc-sys-$_mi_ver"/c_src/mimalloc/v3 2>/dev/null | head -1)"
    if [[ -z "$_mi_src" ]]; then
      (cd "$root" && cargo fetch -q >/dev/null 2>&1) || true
      _mi_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"libmimalloc-sys-$_mi_ver"/c_src/mimalloc/v3 2>/dev/null | head -1)"
    fi
    if [[ -n "$_mi_src" ]] && command -v cc >/dev/null; then
      mkdir -p "$(dirname "$_mi_out")"
      cc -O3 -shared -fPIC -DMI_MALLOC_OVERRIDE -DMI_BUILD_RELEASE -DNDEBUG -DMI_DEBUG=0 \
        -ftls-model=initial-exec -I "$_mi_src/include" -I "$_mi_src/src" "$_mi_src/src/static.c" \
        -o "$_mi_out.tmp" -lpthread && mv "$_mi_out.tmp" "$_mi_out"
    fi
  fi
  [[ -f "$_mi_out" ]] && mimalloc_so="$_mi_out"
fi
[[ -n "$mimalloc_so" ]] || echo "warning: could not build libmimalloc.so; mimalloc variants skipped" >&2

# `alloc_env VARIANT` prints the env assignments of an allocator variant:
#   glibc             the default glibc malloc
#   mimalloc          mimalloc with its default options (what the `mixed-r1` binary runs)
#   mimalloc-nopurge  mimalloc that never hands freed memory back to the OS (MIMALLOC_PURGE_DELAY=-1)
alloc_env() {
  case "$1" in
    glibc) ;;
    mimalloc) echo "LD_PRELOAD=$mimalloc_so" ;;
    mimalloc-nopurge) echo "LD_PRELOAD=$mimalloc_so MIMALLOC_PURGE_DELAY=-1" ;;
    *) echo "unknown allocator variant $1" >&2; return 1 ;;
  esac
}
