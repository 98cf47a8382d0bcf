# Sourced by scripts/test.sh and .ci/run: the release profile without LTO and with 16 codegen
# units, for builds that are checked, not shipped or benchmarked (the plain release profile,
# thin LTO, is what `cargo build --release` and the benchmarks use).
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
