#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# guest-init.sh — /init of the QEMU test guest (busybox sh, in the initramfs).
#
# Fills a tmpfs with pseudo-random files, records their md5 sums and prints
# VMSWAP-READY; then, forever: verify every file, print
#   VMSWAP-ROUND <n> OK <files>
#   VMSWAP-ROUND <n> FAIL <bad>/<files> <first bad names>
# rewrite ~5% of the files with new random data (updating their sums), and
# sleep. Setup errors print VMSWAP-ERROR <what> and power off.
# Settings come from the kernel command line (unknown name=value parameters
# reach init as environment variables):
#   vmswap_files=280 (1 MiB each)  vmswap_tmpfs=300M  vmswap_sleep=1 (s)
#   vmswap_rewrite=5 (% of the files rewritten per round)
# Not `set -e`: init must never exit by accident (the kernel would panic).
set -u

PATH=/bin
export PATH
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

FILES=${vmswap_files:-280}
TMPFS_SIZE=${vmswap_tmpfs:-300M}
SLEEP=${vmswap_sleep:-1}
REWRITE_PCT=${vmswap_rewrite:-5}
DATA=/mnt/data
SUMS=/tmp/sums

error() {
	echo "VMSWAP-ERROR $*"
	/bin/busybox poweroff -f
	exec /bin/busybox sleep 1000000
}

# name N: the file name of file N (f001 ...).
name() {
	printf 'f%03d' "$1"
}

# fill N: new random content for file N, and its sum.
fill() {
	dd if=/dev/urandom of="$DATA/$(name "$1")" bs=1M count=1 2>/dev/null &&
		(cd "$DATA" && md5sum "$(name "$1")") >"$SUMS/$(name "$1")"
}

# rand N: a pseudo-random number in 1..N.
rand() {
	echo $(($(od -An -N2 -tu2 /dev/urandom) % $1 + 1))
}

# uptime_ms: the guest's clock in ms (/proc/uptime has centiseconds).
uptime_ms() {
	read -r up _ </proc/uptime
	cs=${up#*.}
	echo $((${up%.*} * 1000 + ${cs#0} * 10))
}

# verify ROUND: check every file, print the round's line with its time.
verify() {
	t0=$(uptime_ms)
	cat "$SUMS"/* >/tmp/all.sums
	(cd "$DATA" && md5sum -c /tmp/all.sums) >/tmp/verify.out 2>&1
	bad=$(grep -vc ': OK$' /tmp/verify.out)
	ok=$(grep -c ': OK$' /tmp/verify.out)
	if [ "$bad" = 0 ] && [ "$ok" = "$FILES" ]; then
		echo "VMSWAP-ROUND $1 OK $FILES ms=$(($(uptime_ms) - t0))"
	else
		echo "VMSWAP-ROUND $1 FAIL $bad/$FILES ok=$ok" \
			"$(grep -v ': OK$' /tmp/verify.out | head -n 3 | tr '\n' ' ')"
	fi
}

/bin/busybox --install -s /bin || error "busybox --install"
mount -t proc proc /proc || error "mount proc"
mount -t sysfs sysfs /sys || error "mount sysfs"
mkdir -p "$DATA" "$SUMS"
mount -t tmpfs -o size="$TMPFS_SIZE" tmpfs "$DATA" || error "mount tmpfs $TMPFS_SIZE"

i=1
while [ "$i" -le "$FILES" ]; do
	fill "$i" || error "fill $(name "$i")"
	i=$((i + 1))
done
echo "VMSWAP-READY files=$FILES mib=$FILES tmpfs=$TMPFS_SIZE"

round=1
while :; do
	verify "$round"
	n=$((FILES * REWRITE_PCT / 100))
	while [ "$n" -gt 0 ]; do
		fill "$(rand "$FILES")" || echo "VMSWAP-ROUND $round FAIL rewrite failed"
		n=$((n - 1))
	done
	sleep "$SLEEP"
	round=$((round + 1))
done
