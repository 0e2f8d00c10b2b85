#!/bin/sh
# Startup benchmark of the GNOME app: the time from launching `vmclone` to the
# end of the first frame that shows VM rows, with VMS (default 1000) VMs on
# libvirt's test driver behind the real service on a private bus, on an Xvfb
# display. The clock starts here, before exec; the app only reports when that
# frame has been painted (VMCLONE_BENCH_FIRST_FRAME=1) and quits.
#
#   tools/bench-gui.sh            release build, 1000 VMs, 5 runs
#   VMS=200 RUNS=3 PROFILE=debug tools/bench-gui.sh
#
# Needs: Xvfb, dbus-daemon, busctl. Target: under 500 ms.
set -eu
cd "$(dirname "$0")/.."

vms=${VMS:-1000}
runs=${RUNS:-5}
profile=${PROFILE:-release}
target=${CARGO_TARGET_DIR:-target}
if [ "$profile" = release ]; then
    cargo build --quiet --release -p vmclone -p vmclone-service
else
    cargo build --quiet -p vmclone -p vmclone-service
fi
bin=$target/$profile

# shellcheck source=tools/lib/private-service.sh
. tools/lib/private-service.sh
tmp=$(mktemp -d)
on_exit 'rm -rf "$tmp"'

sh tools/lib/many-vms-host.sh "$vms" >"$tmp/host.xml"

display=90
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do
    display=$((display + 1))
done
Xvfb ":$display" -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 &
stop_on_exit $!
start_private_bus "$tmp/session"
start_private_service "$tmp" "$bin/vmclone-service" "test://$tmp/host.xml"
wait_for 20 "Xvfb to listen on :$display" test -S "/tmp/.X11-unix/X$display"

echo "vmclone startup to first frame with rows, $vms VMs, $profile build, GSK_RENDERER=${GSK_RENDERER:-cairo}:"
times=""
run=1
while [ "$run" -le "$runs" ]; do
    start=$(date +%s%N)
    out=$(DISPLAY=":$display" GDK_BACKEND=x11 GSK_RENDERER="${GSK_RENDERER:-cairo}" \
        DBUS_SESSION_BUS_ADDRESS="unix:path=$tmp/session" \
        DBUS_SYSTEM_BUS_ADDRESS="$PRIVATE_BUS" \
        GSETTINGS_BACKEND=memory GTK_A11Y=none NO_AT_BRIDGE=1 VMCLONE_BENCH_FIRST_FRAME=1 \
        timeout 60 "$bin/vmclone" 2>"$tmp/app.log" | grep -m1 '^first-frame-with-rows' || true)
    if [ -z "$out" ]; then
        echo "bench-gui: run $run did not report a frame with rows:" >&2
        cat "$tmp/app.log" >&2
        exit 1
    fi
    painted_us=$(echo "$out" | cut -d' ' -f2)
    ms=$(( (painted_us * 1000 - start) / 1000000 ))
    echo "  run $run: ${ms} ms ($(echo "$out" | cut -d' ' -f3) drawn)"
    times="$times $ms"
    run=$((run + 1))
done
median=$(echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: ${median} ms (target: under 500 ms)"
