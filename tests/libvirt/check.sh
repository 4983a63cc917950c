#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# check.sh — what `make check-libvirt` runs, as root: the QEMU test guest
# (tests/qemu/) as a libvirt domain, run as libvirt runs QEMU by default
# (user libvirt-qemu, libvirt's seccomp sandbox with spawn=deny), its
# helper started by vmswapd, walked through a swap cycle by name:
#   boot -> 1 OK round -> enable -> trim -> out -> 2 rounds -> disable -> 1 round
# with `vmswapctl -n NAME`. One table row per step; ends with
#   check-libvirt: PASS — ...   or   check-libvirt: FAIL — <why>
# (exit 1, with the tail of QEMU's log and vmswapd's).
# PASS needs: every round OK; RSS after out at least RSS_DROP_PCT% of the
# guest's tmpfs fill below RSS before enable; state Ready after disable;
# the domain still running; the host restored as it was found.
#
# What it changes on the host, each undone at the end, failure or not
# (host.sh): group vmswap (made if missing), QEMU's user in it,
# /dev/userfaultfd to that group mode 0660, "/dev/userfaultfd" in
# qemu.conf's cgroup_device_acl, virtlogd/libvirtd started (or, under
# systemd, restarted) to read it, vmswapd on /run/vmswap/vmswapd.sock, the
# domain and its log. vmswap is installed with `make install` into a temp
# dir QEMU's user can read. Packages (libvirt-daemon-system; QEMU and the
# guest through tests/qemu/prepare.sh) stay installed.
set -euo pipefail

LOG_TAG=check-libvirt
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/qemu/lib.sh
. "$HERE/../qemu/lib.sh"
# shellcheck source=tests/qemu/guest.sh
. "$HERE/../qemu/guest.sh"
# shellcheck source=tests/qemu/walk.sh
. "$HERE/../qemu/walk.sh"
# shellcheck source=tests/libvirt/host.sh
. "$HERE/host.sh"

GUEST_MIB=512
FILES=${VMSWAP_QEMU_FILES:-280}     # 1 MiB files in the guest's tmpfs
TMPFS_SIZE=300M
SLEEP_S=${VMSWAP_QEMU_SLEEP:-1}     # guest pause between rounds
WAIT_S=${VMSWAP_QEMU_WAIT:-120}     # for READY, for each round, per vmswapctl call
HELPER_WAIT_S=30                    # for the helper's first status after start
RSS_DROP_PCT=80
NAME=vmswap-check-$$
QLOG=/var/log/libvirt/qemu/$NAME.log

WORK=""
PREFIX=""
CTL=""
QEMU_PID=""
HELPER_PID=""
KEEPER_PID=""
FAIL_MSG=""
PASS_MSG=""

# die WHY: end the run; cleanup prints the diagnostics, then the FAIL line.
die() {
	FAIL_MSG=$*
	exit 1
}

cleanup() {
	local rc=$? keep=""
	set +e
	trap - EXIT INT TERM
	if ((rc)) && [[ -n $WORK ]]; then
		if [[ -n $SERIAL && -n $(serial_lines) ]]; then
			echo "--- last guest lines:"
			serial_lines | tail -n 3
		fi
		if [[ -s $QLOG ]]; then
			echo "--- last lines of $QLOG (QEMU's stderr: the shim logs there; libvirt's QEMU command line left out):"
			awk '/^LC_ALL=/ { cmd = 1 } cmd { if (!/\\$/) cmd = 0; next } 1' "$QLOG" | tail -n 25
		fi
		if [[ -n $SVC_LOG && -s $SVC_LOG ]]; then
			echo "--- last lines of vmswapd's log (the helper logs there):"
			grep -v ': status published$' "$SVC_LOG" | tail -n 15
		fi
	fi
	restore_host
	((${#RESTORED[@]} == 0)) || echo "  host restored: $(printf '%s; ' "${RESTORED[@]}" | sed 's/; $//')"
	if ((${#RESTORE_ERRORS[@]})); then
		echo "  NOT restored (see the lines above): ${RESTORE_ERRORS[*]}"
		rc=1
		FAIL_MSG="${FAIL_MSG:+$FAIL_MSG; }the host is not as it was found: ${RESTORE_ERRORS[*]}"
		# It may hold the originals (qemu.conf.orig).
		keep=1
	fi
	if [[ -n $WORK ]]; then
		if [[ -n $keep ]]; then
			echo "  kept $WORK (the saved originals are there)"
		else
			rm -rf "$WORK"
		fi
	fi
	if ((rc)); then
		echo "$LOG_TAG: FAIL — ${FAIL_MSG:-exit status $rc}"
	else
		echo "$LOG_TAG: PASS — $PASS_MSG, $(($(now_ms) - T0)) ms in all"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'FAIL_MSG="interrupted by a signal"; exit 130' INT TERM

# install_vmswap: make install into $WORK/prefix (a build dir of its own),
# which QEMU's user can read.
install_vmswap() {
	PREFIX=$WORK/prefix
	if ! (unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES &&
		make -C "$ROOT" --no-print-directory -j"$(nproc)" \
			B="$WORK/build" PREFIX="$PREFIX" install) >"$WORK/install.log" 2>&1; then
		tail -n 20 "$WORK/install.log"
		die "make install PREFIX=$PREFIX failed"
	fi
	CTL=$PREFIX/bin/vmswapctl
	runuser -u "$QEMU_USER" -- test -r "$PREFIX/lib/libvmswap.so" ||
		die "$QEMU_USER cannot read $PREFIX/lib/libvmswap.so (TMPDIR=${TMPDIR:-/tmp})"
	runuser -u "$QEMU_USER" -- test -x "$PREFIX/libexec/vmswap/vmswap-helper" ||
		die "$QEMU_USER cannot run $PREFIX/libexec/vmswap/vmswap-helper"
	echo "  make install PREFIX=$PREFIX (readable by $QEMU_USER)"
}

# domain_xml: the test guest of tests/qemu as a TCG domain; the shim and its
# settings through <qemu:env>. Kernel, initramfs and the serial log are in
# $WORK, where libvirt may relabel them for QEMU's user.
domain_xml() {
	cat <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$NAME</name>
  <memory unit='MiB'>$GUEST_MIB</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$WORK/guest/vmlinuz</kernel>
    <initrd>$WORK/guest/initramfs.gz</initrd>
    <cmdline>console=ttyS0 quiet loglevel=1 panic=-1 vmswap_files=$FILES vmswap_tmpfs=$TMPFS_SIZE vmswap_sleep=$SLEEP_S</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <serial type='file'>
      <source path='$SERIAL'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:env name='LD_PRELOAD' value='$PREFIX/lib/libvmswap.so'/>
    <qemu:env name='VMSWAP_LOG' value='info'/>
    <qemu:env name='VMSWAP_MIN_SIZE' value='256M'/>
    <qemu:env name='VMSWAP_SWAP_DIR' value='$WORK/swap'/>
  </qemu:commandline>
</domain>
EOF
}

# start_domain: define and start it; QEMU_PID.
start_domain() {
	local i
	install -d -m 0755 "$WORK/guest"
	install -m 0644 "$KERNEL" "$INITRD" "$WORK/guest/"
	install -d -m 0700 -o "$QEMU_USER" "$WORK/swap"
	SERIAL=$WORK/serial.log
	: >"$SERIAL"
	domain_xml >"$WORK/$NAME.xml"
	undo_push undo_domain
	"${VIRSH[@]}" define "$WORK/$NAME.xml" >"$WORK/virsh.out" 2>&1 ||
		die "virsh define failed: $(tr '\n' ' ' <"$WORK/virsh.out")"
	"${VIRSH[@]}" start "$NAME" >"$WORK/virsh.out" 2>&1 ||
		die "virsh start $NAME failed: $(tr '\n' ' ' <"$WORK/virsh.out")"
	for ((i = 0; i < 50; i++)); do
		QEMU_PID=$(cat "/run/libvirt/qemu/$NAME.pid" 2>/dev/null || true)
		[[ -n $QEMU_PID ]] && break
		sleep 0.1
	done
	[[ -n $QEMU_PID ]] || die "no /run/libvirt/qemu/$NAME.pid after virsh start"
}

# undo_domain: destroy (if running) and undefine the domain; the helper
# and its keeper leave with QEMU, vmswapd removes the run directory; the
# domain's log goes (the diagnostics printed it already).
undo_domain() {
	local st ok=1 i t0 took=""
	t0=$(now_ms)
	st=$("${VIRSH[@]}" domstate "$NAME" 2>/dev/null)
	if [[ -n $st && $st != "shut off" ]]; then
		"${VIRSH[@]}" destroy "$NAME" >/dev/null || ok=""
	fi
	if [[ -n $QEMU_PID ]]; then
		wait_gone "$QEMU_PID" 10 || { echo "  QEMU (pid $QEMU_PID) still runs" >&2; ok=""; }
		took=" (QEMU gone in $(($(now_ms) - t0)) ms)"
		reap_helper "$HELPER_PID" QEMU
		reap_helper "$KEEPER_PID" QEMU
		for ((i = 0; i < 50; i++)); do
			[[ -e $SVC_RUN/$QEMU_PID ]] || break
			sleep 0.1
		done
		if [[ -e $SVC_RUN/$QEMU_PID ]]; then
			echo "  $SVC_RUN/$QEMU_PID was still there 5 s after QEMU and its helper: removed" >&2
			rm -rf "${SVC_RUN:?}/$QEMU_PID"
		fi
	fi
	"${VIRSH[@]}" domstate "$NAME" >/dev/null 2>&1 && { "${VIRSH[@]}" undefine "$NAME" >/dev/null || ok=""; }
	rm -f "$QLOG" "$QLOG".[0-9]*
	[[ -n $ok ]] && restored "domain $NAME destroyed$took and undefined, its log removed"
}

# wait_helper: until `vmswapctl -n NAME status` answers (HELPER_WAIT_S); it
# must manage QEMU.
wait_helper() {
	local t0 rc
	t0=$(now_ms)
	while :; do
		rc=0
		timeout 10 "$CTL" -n "$NAME" status --json >/dev/null 2>"$WORK/ctl.err" || rc=$?
		((rc == 0)) && break
		alive "$QEMU_PID" || die "QEMU exited before a vmswap helper appeared"
		(($(now_ms) - t0 < HELPER_WAIT_S * 1000)) ||
			die "no vmswap helper for domain $NAME (QEMU pid $QEMU_PID) within ${HELPER_WAIT_S}s:" \
				"vmswapctl -n $NAME status exit $rc: $(tr '\n' ' ' <"$WORK/ctl.err")"
		sleep 0.2
	done
	read_status
	HELPER_PID=$(json_num helper_pid "$STATUS")
	KEEPER_PID=$(json_num keeper_pid "$STATUS")
	[[ $(json_bool managed "$STATUS") != false ]] ||
		die "vmswap runs QEMU unmanaged: $(json_str reason "$STATUS")"
}

# uid_of PID
uid_of() { awk '$1 == "Uid:" { print $2 }' "/proc/$1/status" 2>/dev/null; }

# check_as_libvirt: QEMU runs as libvirt runs it by default, and its helper
# came from vmswapd, as QEMU's user; `vmswapctl list` names the domain.
check_as_libvirt() {
	local quid cmd seccomp line
	quid=$(id -u "$QEMU_USER")
	[[ $(uid_of "$QEMU_PID") == "$quid" ]] ||
		die "QEMU runs as uid $(uid_of "$QEMU_PID"), not $QEMU_USER ($quid)"
	cmd=$(tr '\0' ' ' <"/proc/$QEMU_PID/cmdline")
	seccomp=$(awk '$1 == "Seccomp:" { print $2 }' "/proc/$QEMU_PID/status")
	[[ $cmd == *"-sandbox on,"*"spawn=deny"* && $seccomp == 2 ]] ||
		die "QEMU is not under libvirt's default sandbox (-sandbox ...spawn=deny; Seccomp $seccomp)"
	[[ $cmd == *"-name guest=$NAME,"* || $cmd == *"-name guest=$NAME "* ]] ||
		die "QEMU's command line has no -name guest=$NAME"
	echo "  QEMU pid $QEMU_PID: user $QEMU_USER, -sandbox on,...,spawn=deny (Seccomp filter), -name guest=$NAME"
	grep -q "helper started by vmswapd" "$QLOG" ||
		die "the shim did not say the helper came from vmswapd"
	[[ $(uid_of "$HELPER_PID") == "$quid" ]] ||
		die "the helper (pid $HELPER_PID) runs as uid $(uid_of "$HELPER_PID"), not $QEMU_USER"
	echo "  helper pid $HELPER_PID, started by vmswapd, runs as $QEMU_USER; swap dir $WORK/swap"
	"$CTL" list >"$WORK/list.out" 2>&1 || die "vmswapctl list failed: $(tr '\n' ' ' <"$WORK/list.out")"
	line=$(grep -F "$NAME" "$WORK/list.out" || true)
	[[ -n $line ]] || die "vmswapctl list does not name $NAME: $(tr '\n' '|' <"$WORK/list.out")"
	echo "  vmswapctl list: $(tr -s ' ' <<<"$line")"
}

setup_host() {
	local need
	"$ROOT/tests/qemu/prepare.sh" >"$WORK/prepare.log" 2>&1 ||
		die "tests/qemu/prepare.sh failed: $(tail -n 3 "$WORK/prepare.log" | tr '\n' ' ')"
	host_packages
	[[ $(id -u) == 0 ]] ||
		die "run as root: the test changes groups, /dev/userfaultfd and qemu.conf, and starts daemons"
	[[ -s $KERNEL && -s $INITRD ]] || die "no guest kernel/initramfs in $QDIR"
	if findmnt -no OPTIONS -T "$WORK" | tr ',' '\n' | grep -qx noexec; then
		die "$WORK is on a noexec mount: QEMU could not load the shim from it (set TMPDIR)"
	fi
	host_qemu_user
	# First, as it may stop the test: can libvirtd read a changed qemu.conf?
	if acl_needs_uffd; then need=1; else need=0; fi
	host_libvirtd_plan "$need"
	host_group
	install_vmswap
	host_uffd
	if ((need)); then
		host_qemu_conf
	else
		echo "  $QEMU_CONF: libvirt gives QEMU /dev/userfaultfd already (cgroup_device_acl)"
	fi
	host_apparmor "$PREFIX/lib"
	host_daemons
	host_vmswapd "$PREFIX"
}

main() {
	local t_boot rss_before rss_out swap_out st

	T0=$(now_ms)
	CTL_TARGET=(-n "$NAME") # every vmswapctl call by name, as libvirt users do
	# Nothing of the caller's vmswap settings may reach vmswapctl here.
	unset LD_PRELOAD
	for v in $(compgen -e | grep '^VMSWAP_' || true); do
		unset "$v"
	done
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-libvirt.XXXXXX")
	chmod 0755 "$WORK"
	echo "== $LOG_TAG: domain $NAME, ${GUEST_MIB} MiB TCG guest under libvirt;" \
		"guest fills $FILES MiB of tmpfs, rewrites 5%/round"
	setup_host
	t_boot=$(now_ms)
	start_domain
	wait_helper
	check_as_libvirt
	wait_ready
	check_guest_ram
	row_header
	row boot $(($(now_ms) - t_boot))
	rounds_step "+1 round" 1
	rss_before=$RSS_KB
	ctl_step enable enable
	ctl_step trim trim --wait
	ctl_step out out --wait
	rss_out=$RSS_KB
	swap_out=$SWAP_BYTES
	rounds_step "+2 rounds" 2
	ctl_step disable disable --wait
	rounds_step "+1 round" 1

	check_rss_drop "$rss_before" "$rss_out" "$swap_out"
	[[ $STATE == Ready ]] || die "state after disable $STATE, not Ready"
	st=$("${VIRSH[@]}" domstate "$NAME" 2>&1 || true)
	[[ $st == running ]] || die "virsh domstate $NAME says '$st', not running"
	echo "  virsh domstate $NAME: $st"
	PASS_MSG="$(rounds_ok) rounds OK, RSS after out $(mib "$rss_out") MiB (dropped ${RSS_DROP_PCT_SEEN}% of $FILES MiB touched),"
	PASS_MSG+=" state Ready after disable, domain running under libvirt's sandbox as $QEMU_USER, driven by name"
}

main
