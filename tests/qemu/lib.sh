# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# lib.sh — helpers shared by the tests/qemu scripts (sourced, not run).
#
# Sets ROOT (top of the repository), BUILD (build/, or $VMSWAP_BUILD) and
# QDIR (build/qemu/: guest kernel, initramfs, downloaded packages).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VMSWAP_BUILD:-$ROOT/build}
QDIR=$BUILD/qemu
# shellcheck source=demo/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../demo/lib.sh"

# shellcheck disable=SC2034  # used by the scripts that source this file
KERNEL=$QDIR/vmlinuz
# shellcheck disable=SC2034
INITRD=$QDIR/initramfs.gz

# Prefix for messages; scripts set it to their own name.
LOG_TAG=${LOG_TAG:-qemu}

say() { echo "$LOG_TAG: $*"; }
warn() { echo "$LOG_TAG: $*" >&2; }
die() {
	echo "$LOG_TAG: FAIL — $*" >&2
	exit 1
}

now_ms() { date +%s%3N; }

# proc_kb PID FIELD: FIELD (VmRSS, RssAnon, RssShmem...) of /proc/PID/status
# in kB, or 0 when the process is gone.
proc_kb() {
	local v
	v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null) || true
	echo "${v:-0}"
}

# mib KB: kB as MiB with one decimal.
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

