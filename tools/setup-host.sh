#!/usr/bin/env bash
# Prepares a Debian 12 host for the full test suite: installs the packages vmclone's
# build and tests need and starts the system daemons (dbus-daemon, polkitd, libvirtd)
# when they are not running. Idempotent; needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run as root (sudo)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -o Dpkg::Options::=--force-confnew -o Dpkg::Options::=--force-confdef)

# Some images carry a newer qemu-utils (backports) that conflicts with Debian 12's
# qemu-system-x86; pin the whole QEMU stack to the bookworm version.
qemu_ver=$(apt-cache policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ {print $2}')

PACKAGES=(
    build-essential pkg-config git
    libvirt-dev libvirt-daemon-system libvirt-clients
    qemu-system-x86 qemu-utils qemu-block-extra swtpm swtpm-tools ovmf
    dbus dbus-daemon dbus-bin polkitd pkexec systemd libglib2.0-bin libxml2-utils bc
    xfsprogs util-linux coreutils zsh man-db openssh-client openssh-server
    virtinst
    libguestfs-tools guestfs-tools
    libgtk-4-dev libadwaita-1-dev gettext desktop-file-utils appstream
    xvfb xauth xdotool imagemagick at-spi2-core fonts-cantarell adwaita-icon-theme
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null)" != "$qemu_ver" ]; then
    missing+=(qemu-utils)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-host.sh: installing ${missing[*]}"
    apt-get update -qq
    qemu_ver=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
    pinned=()
    for p in "${missing[@]}"; do
        case "$p" in
            qemu-utils|qemu-block-extra|qemu-system-x86) pinned+=("$p=$qemu_ver") ;;
            *) pinned+=("$p") ;;
        esac
    done
    apt-get install "${APT_OPTS[@]}" --allow-downgrades "${pinned[@]}" qemu-block-extra="$qemu_ver"
fi

# System D-Bus.
if ! busctl --system status org.freedesktop.DBus >/dev/null 2>&1; then
    mkdir -p /run/dbus
    rm -f /run/dbus/pid /run/dbus/system_bus_socket
    dbus-uuidgen --ensure
    dbus-daemon --system --fork
fi

# polkitd (registers org.freedesktop.PolicyKit1 on the system bus).
if ! busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; then
    /usr/lib/polkit-1/polkitd --no-debug >/var/log/polkitd.log 2>&1 &
    for _ in $(seq 50); do
        busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1 && break
        sleep 0.1
    done
fi

# libvirtd.
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
    mkdir -p /var/log/libvirt /run/libvirt /var/lib/libvirt/images
    pgrep -x virtlogd >/dev/null || virtlogd -d
    pgrep -x libvirtd >/dev/null || libvirtd -d
    for _ in $(seq 100); do
        virsh -c qemu:///system version >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
virsh -c qemu:///system version >/dev/null
echo "setup-host.sh: packages present; dbus-daemon, polkitd and libvirtd running"
