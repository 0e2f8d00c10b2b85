#!/usr/bin/env bash
# vmclone benchmarks, printed as tables, each beside its peer measured in the same run.
# Run by hand as root on a host prepared by tools/setup-host.sh (libvirtd running):
#
#   sudo tools/bench.sh            everything
#   sudo tools/bench.sh service    clone without writable disks, ListVms with 1,000 VMs (busctl,
#                                  vmclonectl, virsh, virt-clone)
#   sudo tools/bench.sh storage    8 GiB disks holding 1 GiB: full, linked, virt-clone, cp, reflink
#   sudo tools/bench.sh live       a running VM's 8 GiB raw disk holding 1 GiB: live clone, the
#                                  offline full copy, virsh backup-begin alone; guest pause
#   sudo tools/bench.sh gui        the app's start to the first frame with 1,000 VM rows
#   sudo tools/bench.sh identity   clone + guest-identity=reset of a VM with a 1 GiB guest disk,
#                                  beside virt-clone followed by virt-sysprep (one run each)
#
# Warm cache: every input is read once before it is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHAT=${1:-all}
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: run as root (it uses libvirtd and mounts XFS)" >&2; exit 1; }
virsh -c qemu:///system version >/dev/null 2>&1 || { echo "bench.sh: libvirtd is not running: sudo tools/setup-host.sh" >&2; exit 1; }

cargo build --release -p vmclone-service -p vmclonectl --locked >/dev/null 2>&1 ||
    cargo build --release -p vmclone-service -p vmclonectl --locked
SERVICE=$ROOT/target/release/vmclone-service
CTL=$ROOT/target/release/vmclonectl
RUNS=${RUNS:-15}
# shellcheck source=tools/lib/private-service.sh
. tools/lib/private-service.sh
WORK=$(mktemp -d /var/lib/libvirt/images/vmclone-bench.XXXXXX)
chmod 755 "$WORK"
PREFIX=vmclone-bench-$$

cleanup() {
    for d in $(virsh -c qemu:///system list --all --name | grep "^$PREFIX"); do
        virsh -c qemu:///system undefine "$d" --nvram >/dev/null 2>&1
    done
    mountpoint -q "$WORK/xfs" && umount "$WORK/xfs"
    rm -rf "$WORK"
}
on_exit cleanup

now() { date +%s.%N; }
# median and min of the numbers on stdin (seconds) printed in ms
stats() { python3 -c '
import sys, statistics
v = sorted(float(x) * 1000 for x in sys.stdin.read().split())
print(f"{statistics.median(v):9.1f} {v[0]:9.1f} {len(v):5d}")'; }
row() { printf '  %-44s %9s %9s %5s\n' "$@"; }
header() { printf '\n%s\n' "$1"; row "" "median" "min" "runs"; row "" "(ms)" "(ms)" ""; }

call() { busctl --address="$PRIVATE_BUS" --timeout=1h call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager "$@"; }
ctl() { "$CTL" --address="$PRIVATE_BUS" "$@"; }

define() { # name, disk XML
    cat > "$WORK/$1.xml" <<EOT
<domain type='qemu'><name>$1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
<devices>$2<interface type='user'><model type='virtio'/></interface>
<graphics type='vnc' port='5990' autoport='no'/></devices></domain>
EOT
    virsh -c qemu:///system define "$WORK/$1.xml" >/dev/null
}
undefine_clones() { # prefix
    for d in $(virsh -c qemu:///system list --all --name | grep "^$1"); do
        virsh -c qemu:///system undefine "$d" >/dev/null
    done
}

bench_service() {
    header "Clone of a VM with no writable disks (a cdrom and a NIC) on qemu:///system"
    define "$PREFIX-nodisk" "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>"
    start_private_service "$WORK" "$SERVICE" qemu:///system
    call CloneVm ss "$PREFIX-nodisk" "$PREFIX-warm" >/dev/null
    for i in $(seq "$RUNS"); do
        t0=$(now); call CloneVm ss "$PREFIX-nodisk" "$PREFIX-v$i" >/dev/null; t1=$(now)
        echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "vmclone CloneVm over busctl" "$med" "$min" "$n"; }
    for i in $(seq "$RUNS"); do
        t0=$(now); ctl clone "$PREFIX-nodisk" "$PREFIX-c$i" >/dev/null 2>&1; t1=$(now)
        echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "vmclonectl clone (StartClone + job)" "$med" "$min" "$n"; }
    for i in $(seq "$RUNS"); do
        t0=$(now); virt-clone -q --connect qemu:///system -o "$PREFIX-nodisk" -n "$PREFIX-vc$i" --auto-clone >/dev/null 2>&1; t1=$(now)
        echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "virt-clone --auto-clone" "$med" "$min" "$n"; }
    stop_private_service
    undefine_clones "$PREFIX-v"; undefine_clones "$PREFIX-w"; undefine_clones "$PREFIX-c"

    header "ListVms with 1,000 domains (libvirt test driver)"
    sh tools/lib/many-vms-host.sh 1000 >"$WORK/host1000.xml"
    start_private_service "$WORK" "$SERVICE" "test://$WORK/host1000.xml"
    n=$(call ListVms | awk '{print $2}')
    [ "$n" = 1000 ] || { echo "ListVms returned $n VMs" >&2; exit 1; }
    for _ in $(seq "$RUNS"); do
        t0=$(now); call ListVms >/dev/null; t1=$(now); echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "vmclone ListVms over busctl" "$med" "$min" "$n"; }
    n=$(ctl list --names | wc -l)
    [ "$n" = 1000 ] || { echo "vmclonectl list printed $n VMs" >&2; exit 1; }
    for _ in $(seq "$RUNS"); do
        t0=$(now); ctl list >/dev/null; t1=$(now); echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "vmclonectl list (the table)" "$med" "$min" "$n"; }
    for _ in $(seq "$RUNS"); do
        t0=$(now); virsh -c "test://$WORK/host1000.xml" list --all >/dev/null; t1=$(now); echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "virsh list --all (names and states only)" "$med" "$min" "$n"; }
    for _ in $(seq "$RUNS"); do
        t0=$(now); virt-clone --help >/dev/null; t1=$(now); echo "$t1 - $t0" | bc
    done | stats | { read -r med min n; row "virt-clone --help (start-up alone)" "$med" "$min" "$n"; }
    stop_private_service
}

make_disk() { # path, format: 8 GiB holding 1 GiB of data
    case "$2" in
        raw) truncate -s 8G "$1" ;;
        qcow2) qemu-img create -q -f qcow2 "$1" 8G ;;
    esac
    qemu-io -f "$2" -c "write -P 0x5a 0 512M" -c "write -P 0xa5 4G 512M" "$1" >/dev/null
    cat "$1" >/dev/null
}

# Median wall time in ms of REPEAT runs of "$@"; before each run: `sync` (no writeback
# left over from earlier steps) and a read of $WARM (warm cache). $AFTER runs after each.
REPEAT=${REPEAT:-3}
timed() {
    for _ in $(seq "$REPEAT"); do
        sync; cat "$WARM" >/dev/null
        t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
        echo "$t1 - $t0" | bc
        eval "$AFTER"
    done | python3 -c '
import sys, statistics
print(round(statistics.median(float(x) for x in sys.stdin.read().split()) * 1000))'
}
unclone() { virsh -c qemu:///system undefine "$1" >/dev/null 2>&1 || true; rm -f "$2"/*"$1".*; }

bench_storage() {
    printf '\nStorage: 8 GiB disks holding 1 GiB of data, warm cache; median ms of %s runs\n' "$REPEAT"
    printf '  %-5s %-6s %9s %8s %11s %10s %9s %11s\n' fs format vmclone linked virt-clone cp-sparse "cp+sync" "vmclone/cp"
    local peak=0
    for fs in ext4 xfs; do
        dir=$WORK
        if [ "$fs" = xfs ]; then
            truncate -s 60G "$WORK/xfs.img"
            mkfs.xfs -q -m reflink=1 "$WORK/xfs.img"
            mkdir -p "$WORK/xfs"
            if ! mount -o loop "$WORK/xfs.img" "$WORK/xfs"; then
                echo "  !!! cannot loop-mount XFS here: reflink NOT measured"
                continue
            fi
            dir=$WORK/xfs
        fi
        fs=$(findmnt -n -o FSTYPE -T "$dir")
        start_private_service "$WORK" "$SERVICE" qemu:///system
        for fmt in raw qcow2; do
            src=$PREFIX-$fs-$fmt
            WARM=$dir/$src.$fmt
            make_disk "$WARM" "$fmt"
            define "$src" "<disk type='file' device='disk'><driver name='qemu' type='$fmt'/><source file='$WARM'/><target dev='vda' bus='virtio'/></disk>"
            AFTER='unclone "$src-full" "$dir"'
            full=$(timed call CloneVm ss "$src" "$src-full")
            rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVICE_PID/status")
            [ "$rss" -gt "$peak" ] && peak=$rss
            AFTER='unclone "$src-vc" "$dir"; rm -f "$dir/$src-clone.$fmt"'
            vc=$(timed virt-clone -q --connect qemu:///system -o "$src" -n "$src-vc" --auto-clone)
            AFTER='rm -f "$dir/cp-copy.$fmt"'
            cpt=$(timed cp --sparse=always "$WARM" "$dir/cp-copy.$fmt")
            cps=$(timed sh -c "cp --sparse=always '$WARM' '$dir/cp-copy.$fmt' && sync '$dir/cp-copy.$fmt'")
            call ConvertToTemplate s "$src" >/dev/null
            AFTER='unclone "$src-linked" "$dir"'
            linked=$(timed call CloneVmWithOptions ssa{sv} "$src" "$src-linked" 1 storage s linked)
            ratio=$(echo "scale=2; $full / $cpt" | bc)
            printf '  %-5s %-6s %9s %8s %11s %10s %9s %10sx\n' "$fs" "$fmt" "$full" "$linked" "$vc" "$cpt" "$cps" "$ratio"
            chmod u+w "$WARM"
            virsh -c qemu:///system undefine "$src" >/dev/null
            rm -f "$WARM"
        done
        grep -o 'copied .* ([A-Za-z]*)' "$SERVICE_LOG" | sed 's/.*(\(.*\))/\1/' | sort | uniq -c |
            sed "s/^ */  $fs copy method used by vmclone: /"
        stop_private_service
        [ "$fs" = xfs ] && umount "$WORK/xfs"
    done
    printf '\n  vmclone-service peak RSS (VmHWM) during these copies: %s MiB\n' "$((peak / 1024))"
    echo "  cp-sparse: cp --sparse=always (coreutils 9 reflinks by default where it can; no fsync)."
    echo "  cp+sync: the same followed by sync of the copy: vmclone fsyncs every copy before defining the VM."
}

job() { busctl --address="$PRIVATE_BUS" get-property org.vmclone.Manager "$1" org.vmclone.Job "$2" | awk '{print $2}' | tr -d '"'; }

# A live clone of the running $src to $1, followed to its end; prints "seconds paused-ms".
live_clone() {
    local t0 t1 path state
    t0=$(now)
    path=$(call StartClone 'ssa{sv}' "$src" "$1" 1 live b true | awk '{print $2}' | tr -d '"')
    while state=$(job "$path" State); [ "$state" = running ] || [ "$state" = queued ]; do sleep 0.01; done
    t1=$(now)
    [ "$state" = succeeded ] || { echo "live clone $state: $(job "$path" Error)" >&2; exit 1; }
    echo "$(echo "$t1 - $t0" | bc) $(job "$path" PausedMs)"
}

# virsh backup-begin of the running $src into a file of its size; seconds until the job ends.
backup_alone() {
    local target=$dir/backup-alone.raw t0 t1
    truncate -s 8G "$target"
    cat > "$WORK/backup.xml" <<EOT
<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file'>
<driver type='raw'/><target file='$target'/></disk></disks></domainbackup>
EOT
    t0=$(now)
    virsh -c qemu:///system backup-begin "$src" "$WORK/backup.xml" --reuse-external >/dev/null
    until virsh -c qemu:///system domjobinfo "$src" | grep -q 'Job type: *None'; do sleep 0.01; done
    t1=$(now)
    rm -f "$target"
    echo "$t1 - $t0" | bc
}

bench_live() {
    local n=${LIVE_RUNS:-5} dir=$WORK src=$PREFIX-live
    WARM=$dir/$src.raw
    make_disk "$WARM" raw
    define "$src" "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$WARM'/><target dev='vda' bus='virtio'/></disk>"
    start_private_service "$WORK" "$SERVICE" qemu:///system
    AFTER='unclone "$src-full" "$dir"'
    offline=$(REPEAT=$n timed call CloneVm ss "$src" "$src-full")
    virsh -c qemu:///system start "$src" >/dev/null
    : >"$WORK/live.txt"
    for i in $(seq "$n"); do
        sync; cat "$WARM" >/dev/null
        live_clone "$src-l$i" >>"$WORK/live.txt"
        unclone "$src-l$i" "$dir"
    done
    for _ in $(seq "$n"); do sync; cat "$WARM" >/dev/null; backup_alone; done >"$WORK/backup.txt"
    stop_private_service
    virsh -c qemu:///system destroy "$src" >/dev/null
    virsh -c qemu:///system undefine "$src" >/dev/null
    rm -f "$WARM"
    printf '\nLive clone: a running VM with an 8 GiB raw disk holding 1 GiB (%s), warm cache; %s runs\n' \
        "$(findmnt -n -o FSTYPE -T "$dir")" "$n"
    printf '  %-48s %11s %9s %12s\n' "" "median (ms)" "min (ms)" "paused (ms)"
    read -r live_med live_min _ <<<"$(awk '{print $1}' "$WORK/live.txt" | stats)"
    paused=$(awk '{print $2}' "$WORK/live.txt" | sort -n | python3 -c '
import sys, statistics
print(round(statistics.median(int(x) for x in sys.stdin.read().split())))')
    printf '  %-48s %11s %9s %12s\n' "vmclone live clone (StartClone live, to its end)" "$live_med" "$live_min" "$paused"
    printf '  %-48s %11s %9s %12s\n' "vmclone full copy of the VM shut off (CloneVm)" "$offline" "" ""
    read -r b_med b_min _ <<<"$(stats <"$WORK/backup.txt")"
    printf '  %-48s %11s %9s %12s\n' "virsh backup-begin alone, to the job's end" "$b_med" "$b_min" ""
    printf '  live / offline: %sx (target: at most 1.5x); guest paused %s ms, median (target: under 200 ms)\n' \
        "$(echo "scale=2; $live_med / $offline" | bc)" "$paused"
    echo "  The live clone also punches the holes QEMU's backup preallocates and fsyncs the copy; backup-begin alone does neither."
}

# The Unix time of the first line of the service's log matching a pattern (tracing's
# RFC 3339 time, colours stripped).
log_time() {
    sed "s/$(printf '\033')\[[0-9;]*m//g" "$SERVICE_LOG" | grep -m1 "$1" | cut -d' ' -f1 |
        python3 -c 'import sys, datetime; print(datetime.datetime.fromisoformat(sys.stdin.read().strip().rstrip("Z")).replace(tzinfo=datetime.timezone.utc).timestamp())'
}
span() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }

bench_identity() {
    # Both sides run the appliance the same way: TCG where KVM fails (it does here).
    export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS-force_tcg}
    printf '\nClone + identity reset of a VM with a 1 GiB guest disk (700 MiB of data), one run, seconds\n'
    printf '  (appliance: libguestfs backend direct, settings "%s")\n' "$LIBGUESTFS_BACKEND_SETTINGS"
    local tree=$WORK/guest-tree disk=$WORK/guest.raw
    sh tools/lib/guest-tree.sh "$tree"
    head -c 700M /dev/urandom > "$tree/var/data.bin"
    truncate -s 1G "$disk"
    mkfs.ext4 -q -d "$tree" "$disk"
    rm -rf "$tree"
    define "$PREFIX-guest" "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk>"
    cat "$disk" >/dev/null
    t0=$(now); guestfish -a /dev/null run; t1=$(now)
    appliance=$(echo "$t1 - $t0" | bc)

    start_private_service "$WORK" "$SERVICE" qemu:///system
    t0=$(now)
    call CloneVmWithOptions 'ssa{sv}' "$PREFIX-guest" "$PREFIX-reset" 1 guest-identity s reset >/dev/null
    t1=$(now)
    local inspected reset copied cloned
    inspected=$(log_time 'customizing “')
    reset=$(log_time 'identity of the clone of')
    copied=$(log_time "copied $disk")
    cloned=$(log_time 'cloned “')
    stop_private_service
    printf '  %-58s %7s\n' "vmclone CloneVmWithOptions guest-identity=reset" "$(span "$t0" "$t1")"
    printf '  %-58s %7s\n' "  appliance start and inspection (one run)" "$(span "$t0" "$inspected")"
    printf '  %-58s %7s\n' "  the changes in the guest (ssh-keygen -A most of it)" "$(span "$inspected" "$reset")"
    printf '  %-58s %7s\n' "  copy of the disk" "$(span "$reset" "$copied")"
    printf '  %-58s %7s\n' "  commit of the changes into the copy, define" "$(span "$copied" "$cloned")"

    t0=$(now)
    virt-clone -q --connect qemu:///system -o "$PREFIX-guest" -n "$PREFIX-peer" --file "$WORK/peer.raw" >/dev/null
    t1=$(now)
    virt-sysprep -q --format raw -a "$WORK/peer.raw" \
        --operations machine-id,ssh-hostkeys,dhcp-client-state,udev-persistent-net,net-hwaddr,customize \
        --hostname "$PREFIX-peer" --run-command 'ssh-keygen -A' \
        --delete /var/lib/dbus/machine-id --delete /var/lib/systemd/random-seed \
        --edit '/etc/NetworkManager/system-connections/Wired.nmconnection:$_ = "" if /^mac-address=/' >/dev/null
    t2=$(now)
    printf '  %-58s %7s\n' "virt-clone, then virt-sysprep (same operations)" "$(span "$t0" "$t2")"
    printf '  %-58s %7s\n' "  virt-clone (copy of the disk)" "$(span "$t0" "$t1")"
    printf '  %-58s %7s\n' "  virt-sysprep (appliance, inspection, operations)" "$(span "$t1" "$t2")"
    printf '  %-58s %7s\n' "the appliance's start alone (guestfish -a /dev/null run)" "$(span 0 "$appliance")"
    undefine_clones "$PREFIX-"
}

case "$WHAT" in
    service) bench_service ;;
    storage) bench_storage ;;
    live) bench_live ;;
    gui) tools/bench-gui.sh ;;
    identity) bench_identity ;;
    all) bench_service; bench_storage; bench_live; bench_identity; printf '\nThe app, start to first frame with rows:\n'; tools/bench-gui.sh ;;
    *) echo "usage: bench.sh [service|storage|live|identity|gui|all]" >&2; exit 2 ;;
esac
