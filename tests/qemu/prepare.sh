#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# prepare.sh — everything the QEMU tests need, cached under build/qemu/:
#   - Debian packages qemu-system-x86 and busybox-static (apt-get, as root;
#     otherwise prints the command to run and fails);
#   - build/qemu/vmlinuz, from the current Debian linux-image-*-amd64
#     package (apt-get download + dpkg-deb -x), skipped when present;
#   - build/qemu/initramfs.gz: busybox-static + tests/qemu/guest-init.sh as
#     /init (cpio newc, gzip), rebuilt when either is newer.
set -euo pipefail

LOG_TAG=prepare
# shellcheck source=tests/qemu/lib.sh
. "$(dirname "$0")/lib.sh"

PKGS=(qemu-system-x86 busybox-static)
BUSYBOX=/bin/busybox
GUEST_INIT=$ROOT/tests/qemu/guest-init.sh

install_packages() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) != 0 ]]; then
		die "missing packages; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
	fi
	say "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

# The package linux-image-amd64 currently depends on (linux-image-6.1.0-NN-amd64).
current_kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n 1
}

fetch_kernel() {
	local pkg deb x sandbox
	[[ -s $KERNEL ]] && return 0
	pkg=$(current_kernel_pkg)
	if [[ -z $pkg ]]; then
		# An empty package list: refresh it once if we may.
		[[ $(id -u) == 0 ]] || die "apt-cache knows no linux-image-amd64; run: sudo apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		pkg=$(current_kernel_pkg)
		[[ -n $pkg ]] || die "apt-cache depends linux-image-amd64 names no kernel package"
	fi
	say "downloading $pkg"
	# As root, apt's _apt sandbox user cannot write build/qemu: say so up front.
	sandbox=()
	[[ $(id -u) != 0 ]] || sandbox=(-o APT::Sandbox::User=root)
	(cd "$QDIR" && apt-get download -qq "${sandbox[@]}" "$pkg") ||
		die "apt-get download $pkg failed"
	deb=$(find "$QDIR" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
	[[ -n $deb ]] || die "apt-get download left no ${pkg}_*.deb in $QDIR"
	x=$QDIR/kernel-x
	rm -rf "$x"
	dpkg-deb -x "$deb" "$x"
	# The package holds exactly one /boot/vmlinuz-*.
	cp "$(find "$x/boot" -name 'vmlinuz-*' | head -n 1)" "$KERNEL.tmp"
	mv "$KERNEL.tmp" "$KERNEL"
	rm -rf "$x" "$deb"
	say "kernel $KERNEL ($pkg)"
}

build_initramfs() {
	local d
	[[ -x $BUSYBOX ]] || die "$BUSYBOX missing (package busybox-static)"
	if [[ -s $INITRD && $INITRD -nt $GUEST_INIT && $INITRD -nt $BUSYBOX ]]; then
		return 0
	fi
	d=$(mktemp -d "$QDIR/initramfs.XXXXXX")
	# shellcheck disable=SC2064  # expand $d now
	trap "rm -rf '$d'" EXIT
	mkdir -p "$d"/{bin,dev,proc,sys,mnt,tmp}
	cp "$BUSYBOX" "$d/bin/busybox"
	ln -s busybox "$d/bin/sh"
	install -m 0755 "$GUEST_INIT" "$d/init"
	# No device nodes needed: /init mounts devtmpfs before it opens anything.
	(cd "$d" && find . | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) |
		gzip -9 >"$INITRD.tmp"
	mv "$INITRD.tmp" "$INITRD"
	rm -rf "$d"
	trap - EXIT
	say "initramfs $INITRD ($(($(stat -c %s "$INITRD") / 1024)) KiB)"
}

main() {
	install_packages
	mkdir -p "$QDIR"
	fetch_kernel
	build_initramfs
}

main "$@"
