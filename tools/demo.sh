#!/usr/bin/env bash
# The main job on an embedded default: a private D-Bus, vmclone-service on libvirt's
# in-process test driver (data/demo-host.xml), one clone over busctl. Needs no root
# daemons; installs missing Debian packages (with sudo when not root).
#
#   tools/demo.sh            run the demo, then keep the service up for you to try
#                            the printed busctl lines (Enter or Ctrl-C stops it)
#   tools/demo.sh --no-wait  run the demo and stop (what CI does)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

wait_at_end=1
[ "${1:-}" = "--no-wait" ] && wait_at_end=0
[ -t 0 ] || wait_at_end=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

need=()
for p in libvirt-dev pkg-config dbus-daemon systemd build-essential; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    say "Installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confnew "${need[@]}"
fi

command -v cargo >/dev/null || {
    echo "demo.sh: cargo is missing: install Rust >= 1.80 (e.g. with rustup), then run this again" >&2
    exit 1
}

say "Building vmclone-service and vmclonectl"
cargo build -p vmclone-service -p vmclonectl --locked
SERVICE=$ROOT/target/debug/vmclone-service
CTL=$ROOT/target/debug/vmclonectl

# shellcheck source=tools/lib/private-service.sh
. tools/lib/private-service.sh
WORK=$(mktemp -d /tmp/vmclone-demo.XXXXXX)
on_exit 'rm -rf "$WORK"'

say "Starting a private bus and the service on libvirt's test driver"
URI="test://$ROOT/data/demo-host.xml"
start_private_service "$WORK" "$SERVICE" "$URI"
BUS=$PRIVATE_BUS
echo "vmclone-service (pid $SERVICE_PID) serves org.vmclone.Manager on $BUS"
echo "libvirt: $URI"

B=(busctl --address="$BUS")
M=(org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager)

list() {
    "${B[@]}" --json=short call "${M[@]}" ListVms | python3 -c '
import json, sys
vms = json.load(sys.stdin)["data"][0]
row = "  {:<20} {:<9} {:>4} {:>6} {:>5} {:>4}  {:<8}  {}"
print(row.format("NAME", "STATE", "vCPU", "MiB", "DISKS", "NICS", "TEMPLATE", "UUID"))
for v in sorted(vms, key=lambda v: v["name"]["data"]):
    d = {k: x["data"] for k, x in v.items()}
    print(row.format(d["name"], d["state"], d["vcpus"], d["memory-mib"], d["disks"],
                     d["interfaces"], "yes" if d["is-template"] else "", d["id"]))
'
}

say "ListVms: the VMs on the demo host"
list

say "CloneVm web01 -> web01-clone"
echo "\$ busctl call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager CloneVm ss web01 web01-clone"
"${B[@]}" call "${M[@]}" CloneVm ss web01 web01-clone

say "GetVm web01-clone"
"${B[@]}" call "${M[@]}" GetVm s web01-clone

say "A clone with options: 2 vCPUs, 1 GiB, through a job (StartClone)"
JOB=$("${B[@]}" call "${M[@]}" StartClone ssa{sv} db01 db01-small 2 vcpus u 2 memory-mib t 1024 | sed 's/^o "\(.*\)"$/\1/')
echo "job: $JOB"
for _ in $(seq 100); do
    state=$("${B[@]}" get-property org.vmclone.Manager "$JOB" org.vmclone.Job State)
    [ "$state" != 's "running"' ] && break
    sleep 0.05
done
for p in State BytesDone BytesTotal ClonedVmId; do
    printf '  %-11s %s\n' "$p" "$("${B[@]}" get-property org.vmclone.Manager "$JOB" org.vmclone.Job "$p")"
done

say "What vmclone refuses, and why"
echo "\$ ... CloneVm ss build01 build01-copy      (build01 is running)"
"${B[@]}" call "${M[@]}" CloneVm ss build01 build01-copy 2>&1 || true
echo "\$ ... CloneVm ss web01 db01                (the name is taken)"
"${B[@]}" call "${M[@]}" CloneVm ss web01 db01 2>&1 || true

say "ListVms after the demo"
list

say "What happened"
echo "vmclone defined web01-clone and db01-small with new UUIDs and MAC addresses; their disks"
echo "are new volumes in the demo pool (virsh would show them). The source VMs are unchanged."
echo "Service log: warnings about disabled authorization are expected on a private bus."

say "Try next (while this demo runs)"
cat <<EOT
  busctl --address=$BUS call ${M[*]} ListVms
  busctl --address=$BUS call ${M[*]} GetVm s win11
  busctl --address=$BUS call ${M[*]} CloneVm ss win11 win11-copy
  busctl --address=$BUS call ${M[*]} CloneVmWithOptions ssa{sv} web01 web03 1 vcpus u 4
  busctl --address=$BUS call ${M[*]} CloneVms ssasa{sv} web01 3 web-a web-b web-c 0
  busctl --address=$BUS call ${M[*]} ConvertToTemplate s db01
  busctl --address=$BUS call ${M[*]} CheckName s db01
  busctl --address=$BUS --json=pretty call ${M[*]} PlanClone ssa{sv} db01 db02 0
  busctl --address=$BUS call ${M[*]} ListDestinations
  busctl --address=$BUS --timeout=1h call ${M[*]} CloneVm ss db01 db02
  busctl --address=$BUS monitor org.vmclone.Manager
  busctl --address=$BUS introspect org.vmclone.Manager /org/vmclone/Manager
EOT
echo
echo "The same with vmclonectl (progress bar, Ctrl-C cancels, exit status per error; --help):"
cat <<EOT
  $CTL --address=$BUS list
  $CTL --address=$BUS show win11
  $CTL --address=$BUS clone win11
  $CTL --address=$BUS clone web01 web03 --vcpus 4 --memory 4G
  $CTL --address=$BUS clone web01 web --copies 3
  $CTL --address=$BUS template db01
  $CTL --address=$BUS check-name db01; echo "exit status \$?"
  $CTL --address=$BUS plan db01 db02 --vcpus 2
  $CTL --address=$BUS destinations
  $CTL --address=$BUS clone db01 db02 --json
  $CTL --address=$BUS monitor
EOT

if [ "$wait_at_end" = 1 ]; then
    echo
    read -r -p "The service keeps running; press Enter to stop it. " _ || true
fi
