#!/bin/sh
# Prints a libvirt test-driver host with COUNT shut-off VMs, vm0001 … (1 vCPU, 1 GiB,
# one disk, one NIC with a MAC of its own). Used by tools/bench.sh, tools/bench-gui.sh
# and the GUI tests (vmclone_tests::test_host::many_vms_uri).
#
#   tools/lib/many-vms-host.sh COUNT > host.xml
set -eu
count=${1:?usage: many-vms-host.sh COUNT}
echo "<node>"
i=1
while [ "$i" -le "$count" ]; do
    printf "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
<test:runstate>5</test:runstate><name>vm%04d</name><uuid>00000000-0000-4000-8000-%012d</uuid>\
<memory unit='MiB'>1024</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>\
<disk type='file' device='disk'><source file='/nonexistent/vm%04d.qcow2'/><target dev='vda'/></disk>\
<interface type='network'><mac address='52:54:00:10:%02x:%02x'/><source network='default'/></interface>\
</devices></domain>\n" "$i" "$i" "$i" $((i / 256)) $((i % 256))
    i=$((i + 1))
done
echo "</node>"
