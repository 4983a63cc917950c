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

# alive PID: is PID a live (not zombie) process?
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# proc_kb PID FIELD: FIELD (VmRSS, RssAnon, RssShmem...) of /proc/PID/status
# in kB, or 0 when the process is gone.
proc_kb() {
	local v
	v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null) || true
	echo "${v:-0}"
}

# mib KB: kB as MiB with one decimal.
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# json_num KEY JSON: the first number after "KEY": (keys are unique), or "?".
json_num() {
	local v
	v=$(grep -o "\"$1\"[[:space:]]*:[[:space:]]*-\{0,1\}[0-9][0-9]*" <<<"$2" |
		head -n 1 | sed 's/.*:[[:space:]]*//') || true
	echo "${v:-?}"
}

# json_str KEY JSON: the string after "KEY": (no escaped quotes inside), or "?".
json_str() {
	local v
	v=$(grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" <<<"$2" |
		head -n 1 | sed 's/^[^:]*:[[:space:]]*"//; s/"$//') || true
	echo "${v:-?}"
}

# json_bool KEY JSON: true, false or "?".
json_bool() {
	local v
	v=$(grep -o "\"$1\"[[:space:]]*:[[:space:]]*\(true\|false\)" <<<"$2" |
		head -n 1 | sed 's/.*:[[:space:]]*//') || true
	echo "${v:-?}"
}
