# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# guest.sh — start QEMU under the shim and follow the guest's serial log
# (sourced by run.sh, after lib.sh).
#
# Uses: WORK (private temp dir), VARIANT (anon|memfd|sandbox), SERVICE_SOCK
# (vmswapd's socket, or unset), GUEST_MIB, SMP, FILES,
# TMPFS_SIZE, SLEEP_S, WAIT_S. Sets QEMU_PID, SERIAL (serial log), QERR
# (QEMU's stderr, where the shim and the helper log).

QEMU_PID=""
SERIAL=""
QERR=""

# qemu_mem_args VARIANT: the guest-RAM options of that variant.
qemu_mem_args() {
	case $1 in
	anon) echo "-m ${GUEST_MIB}M" ;;
	# As libvirt runs QEMU: anonymous RAM, the sandbox it turns on by default.
	sandbox)
		echo "-m ${GUEST_MIB}M" \
			"-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
		;;
	memfd)
		echo "-m ${GUEST_MIB}M" \
			"-object memory-backend-memfd,id=mem,size=${GUEST_MIB}M,share=on" \
			"-machine memory-backend=mem"
		;;
	*) return 1 ;;
	esac
}

# qemu_start: QEMU in the background, with LD_PRELOAD=libvmswap.so.
# The serial console goes to a file; no monitor, no stdio, no network.
qemu_start() {
	local mem
	mem=$(qemu_mem_args "$VARIANT") || die "unknown variant '$VARIANT' (anon, memfd or sandbox)"
	SERIAL=$WORK/serial.log
	QERR=$WORK/qemu.err
	install -d -m 0700 "$WORK/run" "$WORK/swap"
	: >"$SERIAL"
	# $mem is a list of options on purpose.
	# shellcheck disable=SC2086
	env LD_PRELOAD="$BUILD/libvmswap.so" VMSWAP_HELPER="$BUILD/vmswap-helper" \
		VMSWAP_MIN_SIZE=256M VMSWAP_RUN_DIR="$WORK/run" \
		VMSWAP_SWAP_DIR="$WORK/swap" VMSWAP_LOG=info \
		VMSWAP_SERVICE_SOCKET="${SERVICE_SOCK:-none}" \
		qemu-system-x86_64 -accel tcg $mem -smp "$SMP" \
		-nographic -monitor none -nic none -no-reboot \
		-kernel "$KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 quiet loglevel=1 panic=-1 vmswap_files=$FILES vmswap_tmpfs=$TMPFS_SIZE vmswap_sleep=$SLEEP_S" \
		-serial "file:$SERIAL" </dev/null >"$WORK/qemu.out" 2>"$QERR" &
	# env execs QEMU: $! is QEMU's own pid.
	QEMU_PID=$!
}

# qemu_stop: end the QEMU this script started (by pid), and reap it.
qemu_stop() {
	local i
	[[ -n $QEMU_PID ]] || return 0
	if alive "$QEMU_PID"; then
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		# A frozen (SIGSTOPped) QEMU only acts on the TERM once continued.
		kill -CONT "$QEMU_PID" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			alive "$QEMU_PID" || break
			sleep 0.1
		done
		alive "$QEMU_PID" && kill -KILL "$QEMU_PID" 2>/dev/null
	fi
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=""
}

# The guest's lines, without the serial console's carriage returns.
serial_lines() { tr -d '\r' 2>/dev/null <"$SERIAL" | grep -ao 'VMSWAP-[A-Z]*.*' || true; }

rounds_total() { serial_lines | grep -c '^VMSWAP-ROUND ' || true; }
rounds_ok() { serial_lines | grep -c '^VMSWAP-ROUND [0-9]* OK' || true; }
# round_ms N: how long the guest took to check everything in round N, or "-".
round_ms() {
	local v
	v=$(serial_lines | sed -n "s/^VMSWAP-ROUND $1 OK .* ms=\([0-9]*\).*/\1/p" | head -n 1)
	echo "${v:--}"
}
# "<n> OK" or "<n> FAIL ..." of the newest round, or "-".
last_round() {
	local l
	l=$(serial_lines | grep '^VMSWAP-ROUND ' | tail -n 1 | sed 's/^VMSWAP-ROUND //; s/ OK .*/ OK/')
	echo "${l:--}"
}

# guest_check: fail on a FAIL round, a guest error, or a dead QEMU.
guest_check() {
	local bad
	bad=$(serial_lines | grep -m 1 -e '^VMSWAP-ROUND [0-9]* FAIL' -e '^VMSWAP-ERROR') || true
	[[ -z $bad ]] || die "guest reported: $bad"
	alive "$QEMU_PID" || die "QEMU (pid $QEMU_PID) exited; last serial lines: $(tail -c 300 "$SERIAL" | tr -d '\r' | tr '\n' '|')"
}

# wait_ready: until the guest printed VMSWAP-READY (WAIT_S).
wait_ready() {
	local t0
	t0=$(now_ms)
	until serial_lines | grep -q '^VMSWAP-READY'; do
		guest_check
		(($(now_ms) - t0 < WAIT_S * 1000)) ||
			die "no VMSWAP-READY from the guest within ${WAIT_S}s"
		sleep 0.2
	done
}

# wait_rounds N: until N more rounds than now are printed, all OK (WAIT_S each).
wait_rounds() {
	local target t0
	target=$(($(rounds_total) + $1))
	t0=$(now_ms)
	while (($(rounds_total) < target)); do
		guest_check
		(($(now_ms) - t0 < WAIT_S * 1000 * $1)) ||
			die "guest printed $(rounds_total) of $target rounds within $((WAIT_S * $1))s (last: $(last_round))"
		sleep 0.2
	done
	guest_check
}
