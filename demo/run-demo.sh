#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# run-demo.sh BUILD_DIR — what `make demo` runs.
#
# Starts a 512 MiB toyvmm under libvmswap.so and walks it through
# fill/verify -> enable -> trim -> out -> verify (pages fault back from the
# swap file) -> churn while Active -> disable -> verify, printing one table
# row per step. Ends with "demo: PASS ..." or "demo: FAIL — <why>" (exit 1).
# PASS needs: RSS after out < 5% of guest memory, every verify and the
# churn ok, final state Ready.
set -euo pipefail

# shellcheck source=demo/lib.sh
. "$(dirname "$0")/lib.sh"

GUEST_MIB=512
RSS_MAX_PCT=5
VM_TIMEOUT=600   # seconds for one toyvmm answer (a verify may fault 512 MiB back)
CTL_TIMEOUT=600  # seconds for one vmswapctl call

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
CTL=$BUILD/vmswapctl

WORK=""
VM_PID=""
HELPER_PID=""
VM_IN=""
VM_OUT=""
FAILED=""        # first failure of a step that let the demo go on

fail() {
	echo "demo: FAIL — $*"
	if [[ -n $WORK && -s $WORK/toyvmm.log ]]; then
		echo "--- last lines of toyvmm's stderr:"
		tail -n 20 "$WORK/toyvmm.log"
	fi
	exit 1
}

# Record a failure but keep walking, so the table shows the whole run.
soft_fail() {
	[[ -n $FAILED ]] || FAILED=$*
}

now_ms() { date +%s%3N; }

cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM
	[[ -n $VM_IN ]] && exec {VM_IN}>&-
	memwatch_stop
	if [[ -n $VM_PID ]]; then
		# Only the toyvmm this script started, by its pid.
		alive "$VM_PID" && kill -KILL "$VM_PID" 2>/dev/null
		wait "$VM_PID" 2>/dev/null
	fi
	reap_helper "$HELPER_PID" toyvmm
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- talking to toyvmm -----------------------------------------------------

# vm CMD...: send one command, leave its one-line answer in $ANSWER.
vm() {
	# In a subshell: if toyvmm is gone, SIGPIPE ends that, not the script.
	(printf '%s\n' "$*" >&"$VM_IN") 2>/dev/null || fail "toyvmm is gone (sending '$*')"
	IFS= read -r -t "$VM_TIMEOUT" ANSWER <&"$VM_OUT" ||
		fail "toyvmm did not answer '$*' (died or took more than ${VM_TIMEOUT}s)"
}

# vm_ok CMD...: like vm, but an "err" answer ends the demo.
vm_ok() {
	vm "$@"
	[[ $ANSWER == ok* ]] || fail "toyvmm: '$*' answered '$ANSWER'"
}

# "ok rss kb=123 shmem_kb=..." -> RSS_KB
read_rss() {
	vm_ok rss
	RSS_KB=$(sed -n 's/.* kb=\([0-9]*\).*/\1/p' <<<"$ANSWER")
	[[ -n $RSS_KB ]] || fail "cannot parse toyvmm's rss answer '$ANSWER'"
}

# --- talking to vmswapctl --------------------------------------------------

# ctl ARGS...: run vmswapctl for our VMM; non-zero exit ends the demo.
ctl() {
	local out rc=0
	out=$(timeout "$CTL_TIMEOUT" "$CTL" -p "$VM_PID" "$@" 2>"$WORK/ctl.err") || rc=$?
	if ((rc)); then
		echo "vmswapctl $*: exit $rc" >&2
		[[ -s $WORK/ctl.err ]] && sed 's/^/  vmswapctl: /' "$WORK/ctl.err" >&2
		[[ $rc == 124 ]] && fail "vmswapctl $* timed out after ${CTL_TIMEOUT}s"
		fail "vmswapctl $* failed (exit $rc)"
	fi
	CTL_OUT=$out
}

# Sets STATUS (one line), STATE, STAGING, SWAP.
read_status() {
	ctl status --json
	STATUS=$(tr '\n' ' ' <<<"$CTL_OUT")
	STATE=$(json_str state "$STATUS")
	STAGING=$(json_num staging_pages "$STATUS")
	SWAP=$(json_num swap_pages "$STATUS")
}

# --- the table -------------------------------------------------------------

ROW_FMT="%-10s %9s %10s %10s  %-18s %8s  %s\n"

# row STEP MS RESULT: one line with RSS and vmswap's view right after STEP.
row() {
	read_rss
	read_status
	# shellcheck disable=SC2059
	printf "$ROW_FMT" "$1" "$(awk -v kb="$RSS_KB" 'BEGIN { printf "%.1f", kb / 1024 }')" \
		"$STAGING" "$SWAP" "$STATE" "$2" "$3"
}

# step NAME CMD...: time a toyvmm command; a verify/churn "err" is recorded.
vm_step() {
	local name=$1 t0 ms
	shift
	t0=$(now_ms)
	vm "$@"
	ms=$(($(now_ms) - t0))
	[[ $ANSWER == ok* ]] || soft_fail "$name: toyvmm answered '$ANSWER'"
	row "$name" "$ms" "${ANSWER}"
}

# ctl_step NAME ARGS...: time a vmswapctl command (which must succeed).
ctl_step() {
	local name=$1 t0 ms
	shift
	t0=$(now_ms)
	ctl "$@"
	ms=$(($(now_ms) - t0))
	row "$name" "$ms" "-"
}

# --- the demo --------------------------------------------------------------

main() {
	local f i rc t0 ms out_rss_kb pct

	for f in libvmswap.so vmswap-helper vmswapctl toyvmm; do
		[[ -x $BUILD/$f || ( $f == libvmswap.so && -f $BUILD/$f ) ]] ||
			fail "$BUILD/$f is missing (run make first)"
	done

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-demo.XXXXXX")
	mkdir -m 0700 "$WORK/run"
	export VMSWAP_RUN_DIR=$WORK/run
	export VMSWAP_SWAP_DIR=/var/tmp
	export VMSWAP_HELPER=$BUILD/vmswap-helper

	# exec: the coprocess pid is toyvmm's own pid.
	coproc TOYVMM {
		exec env LD_PRELOAD="$BUILD/libvmswap.so" "$BUILD/toyvmm" \
			--size "${GUEST_MIB}M" --regions 2 --threads 2 2>"$WORK/toyvmm.log"
	}
	VM_PID=$TOYVMM_PID
	# Own copies of the pipe fds: bash drops TOYVMM[] when toyvmm exits.
	exec {VM_IN}>&"${TOYVMM[1]}" {VM_OUT}<&"${TOYVMM[0]}"

	vm_ok info
	echo "vmswap demo: toyvmm pid $VM_PID, ${GUEST_MIB} MiB guest in 2 memfd regions, 2 vCPUs"
	echo "  run dir $VMSWAP_RUN_DIR, swap dir $VMSWAP_SWAP_DIR"

	# The shim starts the helper when it sees guest memory; wait until it
	# publishes status and check it took the VMM over.
	t0=$(now_ms)
	until timeout 10 "$CTL" -p "$VM_PID" status --json >/dev/null 2>&1; do
		(($(now_ms) - t0 < 10000)) || { ctl status --json; fail "no status from the helper"; }
		sleep 0.2
	done
	read_status
	HELPER_PID=$(json_num helper_pid "$STATUS")
	[[ $(json_bool managed "$STATUS") != false ]] ||
		fail "vmswap does not manage toyvmm: $(json_str reason "$STATUS")"

	echo
	# shellcheck disable=SC2059
	printf "$ROW_FMT" step "RSS MiB" staging swap state ms result
	row start 0 "-"
	vm_step fill fill
	vm_step verify verify
	memwatch_start
	ctl_step enable enable
	ctl_step trim trim --wait
	ctl_step out out --wait
	memwatch_stop
	out_rss_kb=$RSS_KB
	vm_step verify verify

	t0=$(now_ms)
	vm_ok churn start
	sleep 2
	vm churn stop
	ms=$(($(now_ms) - t0))
	[[ $ANSWER == ok* ]] || soft_fail "churn: toyvmm answered '$ANSWER'"
	row churn "$ms" "$ANSWER"

	ctl_step disable disable --wait
	vm_step verify verify
	echo

	vm_ok quit
	for ((i = 0; i < 100; i++)); do
		alive "$VM_PID" || break
		sleep 0.1
	done
	alive "$VM_PID" && fail "toyvmm did not exit after quit"
	rc=0
	wait "$VM_PID" || rc=$?
	VM_PID=""
	((rc == 0)) || soft_fail "toyvmm exited with status $rc"

	pct=$(awk -v kb="$out_rss_kb" -v g="$GUEST_MIB" 'BEGIN { printf "%.1f", kb / 1024 / g * 100 }')
	[[ -z $FAILED ]] || fail "$FAILED"
	((out_rss_kb * 100 < RSS_MAX_PCT * GUEST_MIB * 1024)) ||
		fail "RSS after out $((out_rss_kb / 1024)) MiB is ${pct}% of the ${GUEST_MIB} MiB guest (limit ${RSS_MAX_PCT}%)"
	[[ $STATE == Ready ]] || fail "final state $STATE, not Ready"
	echo "demo: peak extra host memory from enable to out: $(awk -v kb="$MEMWATCH_PEAK_KB" -v g="$GUEST_MIB" 'BEGIN { printf "%.1f MiB (%.1f%% of the guest)", kb / 1024, kb / 1024 / g * 100 }')"
	echo "demo: PASS — RSS after out $(awk -v kb="$out_rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }') MiB (${pct}% of ${GUEST_MIB} MiB guest), all verifies ok, state Ready"
}

main
