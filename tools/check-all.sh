#!/usr/bin/env bash
# Everything CI runs: prepares the host (packages, dbus-daemon, polkitd, libvirtd),
# checks formatting and lints, then runs every test, including the ones that need
# root, the system daemons, QEMU, loop mounts and a window under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "check-all.sh: the full suite needs root (it starts daemons, mounts filesystems, boots VMs): sudo make check" >&2
    exit 1
fi

bash tools/setup-host.sh

# Rust toolchain components (fmt, clippy) may be missing on a fresh image.
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (all, including root-only tests)"
cargo test --workspace --locked --no-fail-fast -- --include-ignored
echo "== demo"
tools/demo.sh
