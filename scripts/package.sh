#!/usr/bin/env bash
# Builds the .deb (cargo-deb) and .rpm (cargo-generate-rpm) of faultline-agent and
# faultline-collector into target/packages/. The files each package holds are listed in
# [package.metadata.deb] and [package.metadata.generate-rpm] of agent/Cargo.toml and
# collector/Cargo.toml; the maintainer scripts are packaging/scripts/. Binaries are stripped.
#
#   bash scripts/package.sh                 # release build: what you install (the README)
#   bash scripts/package.sh --profile dev   # the debug binaries already built by
#                                           # `cargo build --workspace --bins`, as they are:
#                                           # same files and scripts, no build at all (the
#                                           # packaging test uses this: a build while other
#                                           # tests run would replace binaries under them)
#
# Needs cargo-deb and cargo-generate-rpm (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    *) echo "usage: $0 [--profile release|dev]" >&2; exit 2 ;;
  esac
done
# A dev build is for testing the packages: compressed fast rather than small.
# The release agent is built with the size-optimised `agent` profile (Cargo.toml): it runs on
# every host and gateway, and its resident memory is mostly its own code (BENCHMARKS.md).
case "$profile" in
  release) agent_dir=agent collector_dir=release deb_compress=() rpm_compress=zstd ;;
  dev) agent_dir=debug collector_dir=debug deb_compress=(--fast) rpm_compress=gzip ;;
  *) echo "--profile: release or dev" >&2; exit 2 ;;
esac
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
done

target="${CARGO_TARGET_DIR:-target}"
out="$target/packages"
if [ "$profile" = dev ]; then
  for bin in faultline-agent faultline-collector; do
    [ -x "$target/debug/$bin" ] || { echo "$target/debug/$bin is missing: run cargo build --workspace --bins first" >&2; exit 1; }
  done
else
  cargo build --locked --profile agent -p faultline-agent --bins
  cargo build --locked --release -p faultline-collector --bins
fi

# The packages' metadata names target/release/<binary>: stripped copies of the binaries built are
# staged there under target/packages/stage, so a dev build never stands in for target/release.
stage="$out/stage"
mkdir -p "$stage/release"
strip -o "$stage/release/faultline-agent" "$target/$agent_dir/faultline-agent"
strip -o "$stage/release/faultline-collector" "$target/$collector_dir/faultline-collector"

rm -rf "$out"/*.deb "$out"/*.rpm
mkdir -p "$out"
for package in faultline-agent faultline-collector; do
  CARGO_TARGET_DIR="$stage" cargo deb --locked --no-build --no-strip "${deb_compress[@]}" -p "$package" -o "$out/"
  # cargo-generate-rpm takes the crate's directory.
  cargo generate-rpm -p "${package#faultline-}" --target-dir "$stage" \
    --payload-compress "$rpm_compress" -o "$out/"
done
ls -l "$out"/*.deb "$out"/*.rpm
