#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# run.sh VARIANT — boot a Linux guest in QEMU (TCG) under libvmswap.so and
# walk it through a swap cycle, while the guest keeps checking its data.
#   VARIANT anon:  QEMU's default guest RAM (-m 512M, anonymous memory)
#   VARIANT memfd: -object memory-backend-memfd,share=on
#   VARIANT sandbox: anon under QEMU's sandbox as libvirt sets it
#     (-sandbox on,...,spawn=deny): the shim may not start the helper, so
#     this run starts vmswapd and the helper comes from it
# After boot, the helper must manage exactly the guest RAM (1 region,
# 512 MiB of pages). Walk: boot -> 1 OK round -> enable -> trim -> out ->
# 2 rounds (faults back) -> enable -> out -> 1 round -> disable -> 2
# rounds. One table row per step; ends with "qemu-VARIANT: PASS — ..." or "... FAIL — <why>"
# (exit 1, with the tail of QEMU's stderr, where the shim and helper log).
# PASS needs: every round OK, RSS after the first out at least
# RSS_DROP_PCT% of the workload's tmpfs fill below RSS before enable, and
# the final state Ready. Needs tests/qemu/prepare.sh to have run.
set -euo pipefail

[[ $# -eq 1 ]] || {
	echo "usage: $0 anon|memfd|sandbox" >&2
	exit 2
}
VARIANT=$1
LOG_TAG=qemu-$VARIANT
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/qemu/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/qemu/guest.sh
. "$HERE/guest.sh"
# shellcheck source=tests/qemu/walk.sh
. "$HERE/walk.sh"

GUEST_MIB=512
FILES=${VMSWAP_QEMU_FILES:-280}     # 1 MiB files in the guest's tmpfs
TMPFS_SIZE=300M
SLEEP_S=${VMSWAP_QEMU_SLEEP:-1}     # guest pause between rounds
SMP=${VMSWAP_QEMU_SMP:-1}           # guest vCPUs
WAIT_S=${VMSWAP_QEMU_WAIT:-120}     # for READY, for each round, per vmswapctl call
HELPER_WAIT_S=10                    # for the helper's first status
RSS_DROP_PCT=80

CTL=$BUILD/vmswapctl
WORK=""
HELPER_PID=""
SVC_PID=""
SERVICE_SOCK=""
FAIL_MSG=""

# die WHY: end the run; cleanup prints the diagnostics, then the FAIL line.
die() {
	FAIL_MSG=$*
	exit 1
}

cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM
	memwatch_stop
	if ((rc)) && [[ -n $WORK ]]; then
		if [[ -n $(serial_lines) ]]; then
			echo "--- last guest lines:"
			serial_lines | tail -n 3
		fi
		if [[ -n $QERR && -s $QERR ]]; then
			echo "--- last lines of QEMU's stderr (shim and helper log; status requests left out):"
			grep -v ': status published$' "$QERR" | tail -n 25
		elif [[ -n $QERR ]]; then
			echo "--- QEMU's stderr (shim and helper log) is empty"
		fi
	fi
	qemu_stop
	reap_helper "$HELPER_PID" QEMU
	if [[ -n $SVC_PID ]] && alive "$SVC_PID"; then
		kill -TERM "$SVC_PID" 2>/dev/null
		wait "$SVC_PID" 2>/dev/null
	fi
	if ((rc)) && [[ -n $WORK && -s $WORK/vmswapd.log ]]; then
		echo "--- vmswapd's log:"
		tail -n 10 "$WORK/vmswapd.log"
	fi
	[[ -n $WORK ]] && rm -rf "$WORK"
	if ((rc)); then
		echo "$LOG_TAG: FAIL — ${FAIL_MSG:-exit status $rc}"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_helper: until the helper publishes status; it must manage QEMU.
# Gives up HELPER_WAIT_S after the guest's firmware started printing (QEMU
# maps guest RAM before that), or after 3 * HELPER_WAIT_S in all.
wait_helper() {
	local t0 t_serial="" rc err
	t0=$(now_ms)
	while :; do
		rc=0
		timeout 10 "$CTL" -p "$QEMU_PID" status --json >/dev/null 2>"$WORK/ctl.err" || rc=$?
		((rc == 0)) && break
		alive "$QEMU_PID" || die "QEMU exited before a vmswap helper appeared"
		[[ -n $t_serial || ! -s $SERIAL ]] || t_serial=$(now_ms)
		if [[ -n $t_serial ]] && (($(now_ms) - t_serial > HELPER_WAIT_S * 1000)) ||
			(($(now_ms) - t0 > 3 * HELPER_WAIT_S * 1000)); then
			err=$(tr '\n' ' ' <"$WORK/ctl.err")
			die "no vmswap helper for QEMU (pid $QEMU_PID) $((($(now_ms) - t0) / 1000))s after start:" \
				"the shim did not take its guest memory over" \
				"(QEMU RSS $(mib "$(proc_kb "$QEMU_PID" VmRSS)") MiB:" \
				"anon $(mib "$(proc_kb "$QEMU_PID" RssAnon)")," \
				"shmem $(mib "$(proc_kb "$QEMU_PID" RssShmem)"));" \
				"vmswapctl status exit $rc: ${err% }"
		fi
		sleep 0.2
	done
	read_status
	HELPER_PID=$(json_num helper_pid "$STATUS")
	[[ $(json_bool managed "$STATUS") != false ]] ||
		die "vmswap runs QEMU unmanaged: $(json_str reason "$STATUS")"
}

summary() {
	local s=$STATUS
	echo "  faults $(json_num faults "$s") (p50 $(json_num fault_p50_us "$s") us," \
		"p99 $(json_num fault_p99_us "$s") us, max $(json_num fault_max_us "$s") us);" \
		"pages back from staging $(json_num copied_from_staging_pages "$s")," \
		"from file $(json_num copied_from_file_pages "$s"), zeroed $(json_num zeroed_pages "$s");" \
		"trimmed zero $(json_num trimmed_zero_pages "$s"), clean $(json_num trimmed_clean_pages "$s")"
}

# round_times: the rounds that ran into each out against the last before
# enable (printed, not judged: a timing on a shared machine).
round_times() {
	local base a b c
	base=$(round_ms "$base_round")
	a=$(round_ms $((out1_round + 1)))
	b=$(round_ms $((out1_round + 2)))
	c=$(round_ms $((out2_round + 1)))
	echo "  rounds (the guest checking all $FILES MiB): before enable ${base} ms;" \
		"after the first out ${a} ms ($(ratio "$a" "$base")x), then ${b} ms;" \
		"after the second out ${c} ms ($(ratio "$c" "$base")x)"
}

ratio() {
	[[ $1 =~ ^[0-9]+$ && $2 =~ ^[1-9][0-9]*$ ]] || { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# start_service: vmswapd for this run, its run root ours.
start_service() {
	local i
	SERVICE_SOCK=$WORK/vmswapd.sock
	install -d -m 0700 "$WORK/run"
	"$BUILD/vmswapd" --foreground --socket "$SERVICE_SOCK" --run-dir "$WORK/run" \
		--helper "$BUILD/vmswap-helper" 2>"$WORK/vmswapd.log" &
	SVC_PID=$!
	for ((i = 0; i < 100; i++)); do
		[[ -S $SERVICE_SOCK ]] && break
		sleep 0.05
	done
	[[ -S $SERVICE_SOCK ]] || die "vmswapd did not start: $(tr '\n' ' ' <"$WORK/vmswapd.log")"
	echo "  vmswapd pid $SVC_PID starts the helper (QEMU may not: -sandbox spawn=deny)"
}

main() {
	local t0 f rss_before rss_out swap_out

	for f in libvmswap.so vmswap-helper vmswapctl vmswapd; do
		[[ -e $BUILD/$f ]] || die "$BUILD/$f is missing (run make first)"
	done
	[[ -s $KERNEL && -s $INITRD ]] || die "no guest kernel/initramfs in $QDIR (run tests/qemu/prepare.sh)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (run tests/qemu/prepare.sh)"

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-qemu-$VARIANT.XXXXXX")
	# For vmswapctl too: it finds the helper through the run dir.
	export VMSWAP_RUN_DIR=$WORK/run
	[[ $VARIANT != sandbox ]] || start_service
	t0=$(now_ms)
	qemu_start
	echo "== $LOG_TAG: QEMU pid $QEMU_PID, ${GUEST_MIB} MiB guest ($VARIANT), TCG;" \
		"guest fills $FILES MiB of tmpfs, rewrites 5%/round"
	CTL_TARGET=(-p "$QEMU_PID")
	wait_helper
	echo "  helper pid $HELPER_PID, run dir $WORK/run, swap dir $WORK/swap"
	wait_ready
	check_guest_ram
	row_header
	row boot $(($(now_ms) - t0))
	rounds_step "+1 round" 1
	rss_before=$RSS_KB
	base_round=$(rounds_total)
	memwatch_start
	ctl_step enable enable
	ctl_step trim trim --wait
	ctl_step out out --wait
	memwatch_stop
	rss_out=$RSS_KB
	swap_out=$SWAP_BYTES
	out1_round=$(rounds_total)
	rounds_step "+2 rounds" 2
	ctl_step enable enable
	ctl_step out out --wait
	out2_round=$(rounds_total)
	rounds_step "+1 round" 1
	ctl_step disable disable --wait
	rounds_step "+2 rounds" 2
	summary
	round_times

	echo "  peak extra host memory from enable to out: $(mib "$MEMWATCH_PEAK_KB") MiB" \
		"($(awk -v kb="$MEMWATCH_PEAK_KB" -v g="$GUEST_MIB" 'BEGIN { printf "%.1f", kb / 1024 / g * 100 }')% of the ${GUEST_MIB} MiB guest)"
	check_rss_drop "$rss_before" "$rss_out" "$swap_out"
	[[ $STATE == Ready ]] || die "final state $STATE, not Ready"
	if [[ $VARIANT == sandbox ]]; then
		grep -q "helper started by vmswapd" "$QERR" ||
			die "the shim did not say the helper came from vmswapd"
		alive "$QEMU_PID" || die "QEMU died under its sandbox"
	fi
	echo "$LOG_TAG: PASS — $(rounds_ok) rounds OK, RSS after out $(mib "$rss_out") MiB" \
		"(dropped ${RSS_DROP_PCT_SEEN}% of $FILES MiB touched), final state Ready, $(($(now_ms) - t0)) ms"
}

main
