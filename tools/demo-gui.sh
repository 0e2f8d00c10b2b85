#!/bin/sh
# Try the app without installing anything: a private bus, vmclone-service on
# libvirt's in-process test driver with data/demo-host.xml (or the test-driver
# host file given as $1), and `vmclone` on your display talking to it. Nothing
# touches the real host. Quit the app to stop everything.
#
#   tools/demo-gui.sh                 English
#   LANGUAGE=de tools/demo-gui.sh     German (LANG must not be C; C.UTF-8 is fine)
set -eu
cd "$(dirname "$0")/.."
host=$(realpath "${1:-data/demo-host.xml}")
cargo build --quiet -p vmclone -p vmclone-service
bin=${CARGO_TARGET_DIR:-target}/debug

tmp=$(mktemp -d)
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

dbus-daemon --session --nofork --nopidfile --address="unix:path=$tmp/bus" >/dev/null 2>&1 &
pids="$pids $!"
while [ ! -S "$tmp/bus" ]; do sleep 0.05; done
"$bin/vmclone-service" --address "unix:path=$tmp/bus" --no-authorization \
    --uri "test://$host" --state-dir "$tmp/state" 2>"$tmp/service.log" &
pids="$pids $!"
until busctl --address="unix:path=$tmp/bus" status org.vmclone.Manager >/dev/null 2>&1; do
    sleep 0.05
done
echo "Service on unix:path=$tmp/bus; clone from another terminal and watch the list:"
echo "  busctl --address=unix:path=$tmp/bus call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager CloneVm ss web01 web01-by-busctl"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/bus" "$bin/vmclone"
