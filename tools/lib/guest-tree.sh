#!/bin/sh
# Writes the folder of a minimal Debian 12 guest into DIR, for guest disks that
# libguestfs inspects as Linux without an OS installed (virt-make-fs or mkfs.ext4 -d make
# the disk): identity files the reset changes (machine ID, host keys, host name, hosts,
# a DHCP lease, udev and NetworkManager MAC bindings, a random seed), users' files it
# must keep, and the guest's own /bin/sh and ssh-keygen (this Debian host's, with their
# libraries). The identity tests (tests/src/guest.rs) and tools/bench.sh share it.
#
#   tools/lib/guest-tree.sh DIR
set -eu
root=${1:?usage: guest-tree.sh DIR}
put() { mkdir -p "$root$(dirname "$1")"; printf '%b' "$2" > "$root$1"; }
put /etc/os-release 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
put /etc/fstab '/dev/sda / ext4 defaults 0 1\n'
put /etc/passwd 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n'
put /etc/group 'root:x:0:\nalice:x:1000:\n'
put /etc/machine-id '0123456789abcdef0123456789abcdef\n'
put /var/lib/dbus/machine-id '0123456789abcdef0123456789abcdef\n'
put /etc/hostname 'srcvm\n'
put /etc/hosts '127.0.0.1\tlocalhost\n127.0.1.1\tsrcvm.example.org\tsrcvm\n::1\tlocalhost ip6-localhost\n'
key='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3x0CqIVnXhq8L2h1y0JvM8nV3cT4Jx3Yp3b9dQ2K0f alice@laptop\n'
put /root/.ssh/authorized_keys "$key"
put /home/alice/.ssh/authorized_keys "$key"
put /root/.bash_history 'ls -l\n'
put /var/log/syslog 'Dec  1 10:00:00 srcvm kernel: booted\n'
put /var/lib/dhcp/dhclient.enp1s0.leases 'lease {\n  interface "enp1s0";\n  fixed-address 192.168.122.50;\n}\n'
put /etc/udev/rules.d/70-persistent-net.rules 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n'
put /var/lib/systemd/random-seed 'not random at all'
put /etc/NetworkManager/system-connections/Wired.nmconnection '[connection]\nid=Wired\ntype=ethernet\n\n[ethernet]\nmac-address=52:54:00:12:34:56\n\n[ipv4]\nmethod=auto\n'
put /etc/ssh/sshd_config 'PermitRootLogin prohibit-password\n'
for kind in ed25519 ecdsa; do
    ssh-keygen -q -t "$kind" -N '' -C root@srcvm -f "$root/etc/ssh/ssh_host_${kind}_key"
done
mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/run"
for program in /bin/dash /usr/bin/ssh-keygen; do
    for file in "$program" $(ldd "$program" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$file")"
        cp "$file" "$root$file"
    done
done
ln -s dash "$root/bin/sh"
