#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# run.sh BUILD_DIR — what `make bench` runs (see tests/bench/README.md).
#
# Runs build/bench/vmswap-bench and makes sure, whatever happens to it,
# that the kernel swap file it may have created is swapped off and
# deleted, that its memory cgroup and its temp dir are removed. The program cleans up after
# itself on any normal exit or fatal signal; this catches a SIGKILL.
set -uo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
SWAP_DIR=${BENCH_SWAP_DIR:-/var/tmp}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-bench.XXXXXX")
export BENCH_WORK=$WORK
export BENCH_KSWAP_FILE=$SWAP_DIR/vmswap-bench-$$.swap
export BENCH_CGROUP_NAME=vmswap-bench-$$

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if grep -qF "$BENCH_KSWAP_FILE " /proc/swaps 2>/dev/null; then
		echo "bench: swapoff $BENCH_KSWAP_FILE (left on)" >&2
		swapoff "$BENCH_KSWAP_FILE"
	fi
	rm -f "$BENCH_KSWAP_FILE"
	# The kernel-swap child's memory cgroup (its process dies with ours).
	local cg i
	for cg in /sys/fs/cgroup/memory /sys/fs/cgroup; do
		[[ -d $cg ]] || continue
		while IFS= read -r d; do
			for ((i = 0; i < 50; i++)); do
				rmdir "$d" 2>/dev/null && break
				sleep 0.1
			done
		done < <(find "$cg" -maxdepth 8 -type d -name "$BENCH_CGROUP_NAME" 2>/dev/null)
	done
	if [[ -n ${BENCH_KEEP:-} ]]; then
		echo "bench: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
"$BUILD/bench/vmswap-bench" "$BUILD"
rc=$?
echo "bench: finished in $(($(date +%s) - start)) s (exit $rc)"
exit "$rc"
