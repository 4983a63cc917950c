# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# walk.sh — the steps of a swap-cycle walk and their table, shared by
# tests/qemu/run.sh and tests/libvirt/check.sh (sourced, after lib.sh and
# guest.sh).
#
# Uses: CTL (vmswapctl), CTL_TARGET (its target: -p PID or -n NAME), WORK,
# WAIT_S, QEMU_PID, GUEST_MIB, FILES, RSS_DROP_PCT, die. Sets CTL_OUT,
# STATUS (one line), STATE, SWAP_BYTES, RSS_KB, RSS_DROP_PCT_SEEN.

CTL_TARGET=()
RSS_KB=0
ROW_FMT="%-9s %7s %8s %8s %9s  %-18s %9s  %s\n"

# ctl ARGS...: vmswapctl for our VMM; a non-zero exit fails the run.
# Every command but status takes --timeout (status never waits long).
ctl() {
	local rc=0 tmo=(--timeout "$WAIT_S")
	[[ $1 != status ]] || tmo=()
	CTL_OUT=$("$CTL" "${CTL_TARGET[@]}" "$@" "${tmo[@]}" 2>"$WORK/ctl.err") || rc=$?
	if ((rc)); then
		die "vmswapctl ${CTL_TARGET[*]} $* failed (exit $rc): $(tr '\n' ' ' <"$WORK/ctl.err")"
	fi
}

# Sets STATUS (one line), STATE, SWAP_BYTES.
read_status() {
	ctl status --json
	STATUS=$(tr '\n' ' ' <<<"$CTL_OUT")
	STATE=$(json_str state "$STATUS")
	SWAP_BYTES=$(json_num swap_file_bytes "$STATUS")
}

# check_guest_ram: after boot, the helper manages exactly the guest's RAM,
# one region of GUEST_MIB MiB, and nothing of QEMU's own memory (the TCG
# translation buffer, VGA RAM, ROMs, thread stacks, malloc arenas).
check_guest_ram() {
	local regions pages want=$((GUEST_MIB * 1024 / 4))
	read_status
	regions=$(json_num regions "$STATUS")
	pages=$(json_num guest_pages "$STATUS")
	[[ $regions == 1 && $pages == "$want" ]] ||
		die "the helper manages $regions region(s) of $pages pages in all;" \
			"want exactly the guest RAM: 1 region of $want pages (${GUEST_MIB} MiB)"
	echo "  helper manages exactly the guest RAM: 1 region, $pages pages (${GUEST_MIB} MiB)"
}

# The swap file's size in MiB, or "?".
swap_mib() {
	if [[ $SWAP_BYTES == "?" ]]; then
		echo "?"
	else
		mib $((SWAP_BYTES / 1024))
	fi
}

row_header() {
	# shellcheck disable=SC2059
	printf "$ROW_FMT" step ms "RSS MiB" "anon" "shmem" state "swap MiB" "last round"
}

# row STEP MS: one table line with QEMU's RSS and vmswap's view now.
row() {
	local anon shmem
	RSS_KB=$(proc_kb "$QEMU_PID" VmRSS)
	anon=$(proc_kb "$QEMU_PID" RssAnon)
	shmem=$(proc_kb "$QEMU_PID" RssShmem)
	read_status
	# shellcheck disable=SC2059
	printf "$ROW_FMT" "$1" "$2" "$(mib "$RSS_KB")" "$(mib "$anon")" "$(mib "$shmem")" \
		"$STATE" "$(swap_mib)" "$(last_round)"
	guest_check
}

# ctl_step NAME ARGS...: time one vmswapctl command, then a row.
ctl_step() {
	local name=$1 t0
	shift
	t0=$(now_ms)
	ctl "$@"
	row "$name" $(($(now_ms) - t0))
}

# rounds_step NAME N: wait for N more OK rounds, then a row.
rounds_step() {
	local t0
	t0=$(now_ms)
	wait_rounds "$2"
	row "$1" $(($(now_ms) - t0))
}

# check_rss_drop BEFORE_KB OUT_KB SWAP_BYTES: QEMU's RSS after out must be
# RSS_DROP_PCT% of the guest's FILES MiB below what it was before enable.
# Sets RSS_DROP_PCT_SEEN.
check_rss_drop() {
	local drop_kb=$(($1 - $2)) need_kb=$((FILES * 1024 * RSS_DROP_PCT / 100))
	RSS_DROP_PCT_SEEN=$(awk -v d="$drop_kb" -v t="$FILES" 'BEGIN { printf "%.0f", d / 1024 / t * 100 }')
	echo "  RSS before enable $(mib "$1") MiB, after out $(mib "$2") MiB:" \
		"dropped $(mib "$drop_kb") MiB = ${RSS_DROP_PCT_SEEN}% of the $FILES MiB the guest touched" \
		"(needs ${RSS_DROP_PCT}%); swap file after out $(mib $(($3 / 1024))) MiB"
	((drop_kb >= need_kb)) ||
		die "RSS after out dropped only $(mib "$drop_kb") MiB, less than ${RSS_DROP_PCT}% of the $FILES MiB touched"
}
