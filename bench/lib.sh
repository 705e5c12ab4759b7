# Sourced by the bench scripts (import.sh, duplicates.sh): what they share.

# Sets BIN to the corral binary to measure: BIN as given (e.g. a debug binary, or an older
# build to compare with), else a release build of this tree.
corral_binary() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p corral
    BIN=${CARGO_TARGET_DIR:-target}/release/corral
  fi
}
