#!/usr/bin/env bash
# The soak run: many clones of several kinds in parallel, cancels, an unprivileged
# lister and virsh start/destroy of a source for N minutes (default 10), then a table
# and the leak check (README "Reliability → Soak"). Root, on the real libvirtd with QEMU
# and the system bus with polkitd (tools/setup-host.sh). The work is the Rust binary
# tests/src/bin/soak.rs, on the tests' shared harness.
#
#   sudo tools/soak.sh [--minutes N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "soak.sh: run as root (it defines VMs on qemu:///system and creates a user)" >&2; exit 1; }
cargo build -p vmclone-service -p vmclone-tests --bin soak --locked
exec flock /tmp/vmclone-root-tests.lock target/debug/soak "$@"
