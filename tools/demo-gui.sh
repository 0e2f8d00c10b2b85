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

# shellcheck source=tools/lib/private-service.sh
. tools/lib/private-service.sh
tmp=$(mktemp -d)
on_exit 'rm -rf "$tmp"'

start_private_service "$tmp" "$bin/vmclone-service" "test://$host"
echo "Service on $PRIVATE_BUS; clone from another terminal and watch the list:"
echo "  busctl --address=$PRIVATE_BUS call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager CloneVm ss web01 web01-by-busctl"
DBUS_SYSTEM_BUS_ADDRESS="$PRIVATE_BUS" "$bin/vmclone"
