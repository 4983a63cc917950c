# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# host.sh — the host changes check.sh makes for its run, each undone at the
# end (sourced by check.sh, after tests/qemu/lib.sh).
#
# Every change pushes its undo first (undo_push); restore_host runs the
# undos last-first and records what it could not undo in RESTORE_ERRORS.
# Uses: WORK, HERE, die (check.sh's), alive (demo/lib.sh). Sets QEMU_USER,
# LIBVIRTD_MODE, SVC_PID, SVC_LOG.

QEMU_CONF=/etc/libvirt/qemu.conf
AA_LOCAL=/etc/apparmor.d/local/abstractions/libvirt-qemu
UFFD_DEV=/dev/userfaultfd
VMSWAP_GROUP=vmswap
# Saved before the group changes (groupadd and gpasswd rewrite them all).
GROUP_FILES=(/etc/group /etc/gshadow /etc/group- /etc/gshadow-)
SVC_SOCK=/run/vmswap/vmswapd.sock
SVC_RUN=/run/vmswap
VIRSH=(virsh -q -c qemu:///system)
# libvirt's default cgroup_device_acl (libvirt 9.0), for a qemu.conf
# without the commented default list to read it from.
DEFAULT_ACL=('"/dev/null"' '"/dev/full"' '"/dev/zero"' '"/dev/random"'
	'"/dev/urandom"' '"/dev/ptmx"' '"/dev/kvm"')

UNDO=()
RESTORED=()
RESTORE_ERRORS=()
QEMU_USER=""
LIBVIRTD_MODE=""   # started | systemd-started | systemd-restarted | running
SVC_PID=""         # the vmswapd this run started
SVC_LOG=""

# undo_push CMD ARGS...: run CMD ARGS at the end (quoted now).
undo_push() {
	local q
	printf -v q '%q ' "$@"
	UNDO+=("$q")
}

# restore_host: every undo, last-first; a failed one is kept in
# RESTORE_ERRORS and the others still run.
restore_host() {
	local i
	for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do
		eval "${UNDO[i]}" || RESTORE_ERRORS+=("${UNDO[i]% }")
	done
	UNDO=()
}

restored() { RESTORED+=("$*"); }

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# host_packages: libvirt-daemon-system (QEMU and the guest come from
# tests/qemu/prepare.sh). apt-get as root; else the command to run.
host_packages() {
	local pkgs=(libvirt-daemon-system) missing=() p
	for p in "${pkgs[@]}"; do
		have_pkg "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] ||
		die "missing packages; run: sudo apt-get install -y ${missing[*]}"
	echo "  installing ${missing[*]}"
	{ DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
		>"$WORK/apt.log" 2>&1 ||
		die "apt-get install ${missing[*]} failed: $(tail -n 5 "$WORK/apt.log" | tr '\n' ' ')"
}

# host_qemu_user: the user libvirt runs QEMU as (qemu.conf `user`, else
# Debian's libvirt-qemu); it must not be root.
host_qemu_user() {
	local u
	u=$(sed -n 's/^[[:space:]]*user[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$QEMU_CONF" | tail -n 1)
	QEMU_USER=${u:-libvirt-qemu}
	id "$QEMU_USER" >/dev/null 2>&1 || die "no user $QEMU_USER, whom libvirt runs QEMU as"
	[[ $(id -u "$QEMU_USER") != 0 ]] ||
		die "qemu.conf runs QEMU as root; this test checks libvirt's default, a user of its own"
}

# host_group: group vmswap, QEMU's user in it.
host_group() {
	local f
	if getent group "$VMSWAP_GROUP" >/dev/null &&
		id -nG "$QEMU_USER" | tr ' ' '\n' | grep -qx "$VMSWAP_GROUP"; then
		return 0
	fi
	# groupadd and gpasswd leave their own backups (/etc/group- ...): the
	# files are saved, and checked and put back after the group undos.
	mkdir -p "$WORK/etc"
	for f in "${GROUP_FILES[@]}"; do
		[[ ! -e $f ]] || cp -p "$f" "$WORK/etc/" || die "cannot save $f"
	done
	undo_push undo_group_files
	if ! getent group "$VMSWAP_GROUP" >/dev/null; then
		undo_push undo_group
		groupadd -r "$VMSWAP_GROUP" || die "groupadd -r $VMSWAP_GROUP failed"
		echo "  made the group $VMSWAP_GROUP (removed at the end)"
	fi
	if ! id -nG "$QEMU_USER" | tr ' ' '\n' | grep -qx "$VMSWAP_GROUP"; then
		undo_push undo_member
		gpasswd -a "$QEMU_USER" "$VMSWAP_GROUP" >/dev/null ||
			die "gpasswd -a $QEMU_USER $VMSWAP_GROUP failed"
		echo "  added $QEMU_USER to group $VMSWAP_GROUP (removed at the end)"
	fi
}
undo_group_files() {
	local f ok=1
	for f in /etc/group /etc/gshadow; do
		[[ ! -e $WORK/etc/${f##*/} ]] || cmp -s "$WORK/etc/${f##*/}" "$f" || {
			echo "  $f differs from before the run" >&2
			ok=""
		}
	done
	for f in /etc/group- /etc/gshadow-; do
		[[ ! -e $WORK/etc/${f##*/} ]] || cp -p "$WORK/etc/${f##*/}" "$f" || ok=""
	done
	[[ -n $ok ]] && restored "/etc/group and /etc/gshadow as before, their - backups put back"
}
undo_group() {
	groupdel "$VMSWAP_GROUP" && restored "group $VMSWAP_GROUP removed"
}
undo_member() {
	# The group may be gone already (undo_group runs after this one).
	getent group "$VMSWAP_GROUP" >/dev/null || return 0
	gpasswd -d "$QEMU_USER" "$VMSWAP_GROUP" >/dev/null &&
		restored "$QEMU_USER taken out of group $VMSWAP_GROUP"
}

# host_uffd: /dev/userfaultfd to group vmswap, mode 0660.
host_uffd() {
	local was
	[[ -c $UFFD_DEV ]] || die "no $UFFD_DEV (Linux 6.1 and later have it): a non-root QEMU cannot get a userfaultfd"
	was=$(stat -c '%u:%g %a' "$UFFD_DEV")
	[[ $was == "0:$(getent group "$VMSWAP_GROUP" | cut -d: -f3) 660" ]] && return 0
	undo_push undo_uffd "${was% *}" "${was#* }"
	if ! chgrp "$VMSWAP_GROUP" "$UFFD_DEV" || ! chmod 0660 "$UFFD_DEV"; then
		die "cannot give $UFFD_DEV to group $VMSWAP_GROUP"
	fi
	echo "  $UFFD_DEV: group $VMSWAP_GROUP, mode 0660 (was uid:gid ${was% *}, mode ${was#* })"
}
undo_uffd() {
	chown "$1" "$UFFD_DEV" && chmod "$2" "$UFFD_DEV" &&
		restored "$UFFD_DEV back to uid:gid $1, mode $2"
}

# acl_needs_uffd: 0 when qemu.conf must get "/dev/userfaultfd" in
# cgroup_device_acl, 1 when libvirt already lets QEMU have it. A list of the
# admin's own without it is left alone: the test stops and says so.
acl_needs_uffd() {
	local set
	set=$(sed -n '/^[[:space:]]*cgroup_device_acl[[:space:]]*=/,/\]/p' "$QEMU_CONF")
	if [[ -n $set ]]; then
		grep -qF '"/dev/userfaultfd"' <<<"$set" && return 1
		die "$QEMU_CONF sets cgroup_device_acl without \"/dev/userfaultfd\";" \
			"add it there and restart libvirtd (the test does not edit an admin's list)"
	fi
	# Unset: libvirt's default, as the commented list shows it.
	! default_acl | grep -qxF '"/dev/userfaultfd"'
}

# default_acl: libvirt's default device list, one quoted path a line.
default_acl() {
	local l
	l=$(sed -n '/^#cgroup_device_acl = \[/,/^#\]/p' "$QEMU_CONF" | grep -o '"/dev/[^"]*"' || true)
	if [[ -n $l ]]; then
		echo "$l"
	else
		printf '%s\n' "${DEFAULT_ACL[@]}"
	fi
}

# host_qemu_conf: append cgroup_device_acl = [ <libvirt's defaults>,
# "/dev/userfaultfd" ] to qemu.conf.
host_qemu_conf() {
	local list
	cp -p "$QEMU_CONF" "$WORK/qemu.conf.orig" || die "cannot save $QEMU_CONF"
	undo_push undo_qemu_conf
	list=$( (default_acl; echo '"/dev/userfaultfd"') | paste -sd, | sed 's/,/, /g')
	printf '\n%s\n%s\n' \
		"# vmswap tests/libvirt/check.sh, for its run: libvirt's default list and /dev/userfaultfd" \
		"cgroup_device_acl = [ $list ]" >>"$QEMU_CONF" || die "cannot write $QEMU_CONF"
	echo "  $QEMU_CONF: cgroup_device_acl = [ $list ] (restored at the end)"
}
undo_qemu_conf() {
	cp -p "$WORK/qemu.conf.orig" "$QEMU_CONF" && cmp -s "$WORK/qemu.conf.orig" "$QEMU_CONF" &&
		restored "$QEMU_CONF restored"
}

# host_apparmor LIBDIR: where the kernel has AppArmor and libvirt confines
# QEMU with it, the rules of tests/libvirt/apparmor-local go into the
# domain profiles' local include. NOT TESTED: written from AppArmor's and
# libvirt's documentation on a kernel without AppArmor.
host_apparmor() {
	local libdir=$1
	[[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] || return 0
	grep -Eq '^[[:space:]]*security_driver[[:space:]]*=[[:space:]]*"?none' "$QEMU_CONF" && return 0
	[[ -d ${AA_LOCAL%/*} ]] || die "AppArmor is on but ${AA_LOCAL%/*} is missing"
	if [[ -e $AA_LOCAL ]]; then
		cp -p "$AA_LOCAL" "$WORK/aa-local.orig" || die "cannot save $AA_LOCAL"
	fi
	undo_push undo_apparmor
	sed "s|@LIBDIR@|$libdir|g" "$HERE/apparmor-local" >>"$AA_LOCAL" ||
		die "cannot write $AA_LOCAL"
	echo "  AppArmor is on: tests/libvirt/apparmor-local added to $AA_LOCAL (restored at the end;" \
		"NOT TESTED: written without an AppArmor kernel)"
}
undo_apparmor() {
	if [[ -e $WORK/aa-local.orig ]]; then
		cp -p "$WORK/aa-local.orig" "$AA_LOCAL" && restored "$AA_LOCAL restored"
	else
		rm -f "$AA_LOCAL" && restored "$AA_LOCAL removed"
	fi
}

systemd_host() { [[ -d /run/systemd/system ]]; }

# pid_of NAME: live processes (zombies left out) whose command is exactly NAME.
pid_of() {
	local p
	for p in $(pgrep -x "$1" || true); do
		alive "$p" && echo "$p"
	done
	return 0
}

# wait_gone PID SECONDS
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	return 1
}

# host_libvirtd_plan: how libvirtd gets a qemu.conf changed for the run
# (called before the change, so that a restart at the end comes after its
# undo). LIBVIRTD_MODE:
#   started            not running: started by hand here, stopped at the end
#   systemd-started    not running, systemd host: systemctl start/stop
#   systemd-restarted  running under systemd: restarted now and at the end
#   running            running, and qemu.conf needs no change
# A libvirtd running outside systemd while qemu.conf needs the change
# stops the test: it reads qemu.conf only when it starts, and the test
# restarts only the daemons it can restart exactly as they were.
host_libvirtd_plan() {
	local need=$1 pids
	pids=$(pid_of libvirtd)
	if [[ -z $pids ]]; then
		if systemd_host; then LIBVIRTD_MODE=systemd-started; else LIBVIRTD_MODE=started; fi
	elif ((!need)); then
		LIBVIRTD_MODE=running
	elif systemd_host && systemctl is-active --quiet libvirtd.service; then
		LIBVIRTD_MODE=systemd-restarted
		undo_push undo_libvirtd_restart
	else
		die "libvirtd (pid $(paste -sd' ' <<<"$pids")) runs, started neither by this test nor by systemd;" \
			"it reads $QEMU_CONF only when it starts, and cgroup_device_acl needs \"/dev/userfaultfd\" for the test:" \
			"stop it (the test then starts and stops its own), or add the entry and restart it yourself"
	fi
}
undo_libvirtd_restart() {
	systemctl restart libvirtd.service && restored "libvirtd restarted (systemctl) with the original $QEMU_CONF"
}

# libvirt_ready: until virsh reaches libvirtd (20 s).
libvirt_ready() {
	local i
	for ((i = 0; i < 100; i++)); do
		"${VIRSH[@]}" version >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# host_daemons: virtlogd (QEMU's log goes through it) and libvirtd, as planned.
host_daemons() {
	local pid
	case $LIBVIRTD_MODE in
	started)
		# Its runtime state (the autostarted markers too) goes with it.
		[[ -e /run/libvirt ]] || undo_push undo_run_libvirt
		if [[ -z $(pid_of virtlogd) ]]; then
			undo_push undo_daemon virtlogd /run/virtlogd.pid
			virtlogd -d || die "virtlogd -d failed"
			echo "  started virtlogd, pid $(cat /run/virtlogd.pid 2>/dev/null) (stopped at the end)"
		fi
		undo_push undo_daemon libvirtd /run/libvirtd.pid
		libvirtd -d || die "libvirtd -d failed"
		pid=$(cat /run/libvirtd.pid 2>/dev/null || true)
		echo "  started libvirtd, pid ${pid:-?} (stopped at the end)"
		;;
	systemd-started)
		undo_push undo_systemd_stop
		systemctl start libvirtd.service || die "systemctl start libvirtd failed"
		echo "  started libvirtd.service (stopped at the end)"
		;;
	systemd-restarted)
		systemctl restart libvirtd.service || die "systemctl restart libvirtd failed"
		echo "  restarted libvirtd.service to read $QEMU_CONF (restarted again at the end)"
		;;
	running)
		echo "  libvirtd runs already (pid $(pid_of libvirtd | paste -sd' ')); $QEMU_CONF needs no change"
		;;
	esac
	libvirt_ready || die "libvirtd does not answer virsh -c qemu:///system"
}
# undo_daemon NAME PIDFILE: stop the daemon this run started, by its pid.
undo_daemon() {
	local pid
	pid=$(cat "$2" 2>/dev/null || true)
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || {
		echo "  $1: no running $1 in $2 to stop" >&2
		return 1
	}
	kill -TERM "$pid" && wait_gone "$pid" 20 && restored "$1 (pid $pid) stopped"
}
undo_run_libvirt() {
	if [[ -n $(pid_of libvirtd) || -n $(pid_of virtlogd) ]]; then
		echo "  /run/libvirt kept: a libvirtd or virtlogd still runs" >&2
		return 1
	fi
	rm -rf /run/libvirt && restored "/run/libvirt removed"
}
undo_systemd_stop() {
	systemctl stop libvirtd.service && restored "libvirtd.service stopped"
}

# svc_listening: does something listen on vmswapd's socket?
svc_listening() {
	[[ -S $SVC_SOCK ]] || return 1
	command -v ss >/dev/null || return 0
	ss -xlnH | grep -qF " $SVC_SOCK "
}

# host_vmswapd PREFIX: vmswapd as root on /run/vmswap/vmswapd.sock, group
# vmswap, unless one listens there already (then it is used).
host_vmswapd() {
	local prefix=$1 i
	if svc_listening; then
		echo "  a vmswapd listens on $SVC_SOCK already: the test uses it (its helper, its log)"
		return 0
	fi
	if [[ ! -e $SVC_RUN ]]; then
		undo_push undo_svc_run
	fi
	SVC_LOG=$WORK/vmswapd.log
	undo_push undo_vmswapd
	"$prefix/sbin/vmswapd" --foreground --socket "$SVC_SOCK" --run-dir "$SVC_RUN" \
		--group "$VMSWAP_GROUP" --log info </dev/null >"$SVC_LOG" 2>&1 &
	SVC_PID=$!
	for ((i = 0; i < 100; i++)); do
		svc_listening && break
		alive "$SVC_PID" || break
		sleep 0.05
	done
	svc_listening || die "vmswapd did not start: $(tr '\n' ' ' <"$SVC_LOG")"
	echo "  started vmswapd, pid $SVC_PID, on $SVC_SOCK, group $VMSWAP_GROUP (stopped at the end)"
}
undo_vmswapd() {
	[[ -n $SVC_PID ]] || return 0
	# A Ctrl-C reaches it too (same process group): then it has stopped.
	alive "$SVC_PID" && kill -TERM "$SVC_PID"
	wait "$SVC_PID"
	if [[ -e $SVC_SOCK ]] && ! svc_listening; then
		rm -f "$SVC_SOCK"
	fi
	restored "vmswapd (pid $SVC_PID) stopped"
}
# /run/vmswap was made for the run: it goes once empty (vmswapd removes
# its socket and the run directories of VMMs that are gone).
undo_svc_run() {
	rmdir "$SVC_RUN" 2>/dev/null && { restored "$SVC_RUN removed"; return 0; }
	[[ -e $SVC_RUN ]] || return 0
	echo "  $SVC_RUN is not empty: $(find "$SVC_RUN" -mindepth 1 -maxdepth 1 -printf "%f ")" >&2
	return 1
}
