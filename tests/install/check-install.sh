#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# check-install.sh BUILD_DIR — what `make check-install` runs, as root.
#
# 1. make install DESTDIR=<tmp>: every file at its path with its mode, no
#    @PLACEHOLDER@ left; the man pages render without a groff warning, and
#    vmswapctl(1) names every command and option of `vmswapctl --help`;
#    make uninstall leaves no file behind.
# 2. make install with a PREFIX of its own, built in a build dir of its
#    own: the installed programs print the Makefile's VERSION, the units
#    pass systemd-analyze verify (where there is one), the installed shim
#    finds the helper in LIBEXECDIR by itself, and demo/run-demo.sh passes
#    on the installed files.
# Ends with "check-install: PASS", or "check-install: FAIL — <why>" (exit 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$1 # as make takes B: relative to $ROOT, or absolute

TMP=""
HELPER_PID=""
MADE_GROUP=""

fail() {
	echo "check-install: FAIL — $*"
	exit 1
}

ok() { echo "  ok: $*"; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	# Only the helper of the toyvmm this script ran, by its pid.
	if [[ -n $HELPER_PID && $(cat "/proc/$HELPER_PID/comm" 2>/dev/null) == vmswap-helper ]]; then
		kill -TERM "$HELPER_PID" 2>/dev/null
	fi
	[[ -n $TMP ]] && rm -rf "$TMP"
	# make install made the group for the PREFIX install: leave the host as found.
	[[ -n $MADE_GROUP ]] && getent group vmswap >/dev/null && groupdel vmswap
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_make LOG ARGS...: make in $ROOT, output to LOG, shown when it fails.
run_make() {
	local log=$1
	shift
	if ! make -C "$ROOT" --no-print-directory -j"$(nproc)" "$@" >"$log" 2>&1; then
		tail -n 30 "$log"
		fail "make $* failed"
	fi
}

[[ $(id -u) == 0 ]] || fail "run as root: the demo and an install without DESTDIR need it"
if ! command -v man >/dev/null; then
	echo "installing man-db"
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq man-db >/dev/null; }; then
		fail "cannot install man-db"
	fi
fi

# Nothing from the caller's make (jobserver, variables given to it) nor
# vmswap settings may reach what runs here.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES LD_PRELOAD
for v in $(compgen -e | grep '^VMSWAP_' || true); do
	unset "$v"
done
# The installed helper is what is tested: a vmswapd running on this host
# must not start its own instead (the shim asks it first when it listens).
export VMSWAP_SERVICE_SOCKET=none

VERSION=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
[[ -n $VERSION ]] || fail "no VERSION in the Makefile"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-install.XXXXXX")
echo "check-install: vmswap $VERSION, build dir $BUILD, scratch $TMP"

# --- 1. DESTDIR install: the tree ----------------------------------------

DEST=$TMP/dest
run_make "$TMP/destdir.log" B="$BUILD" DESTDIR="$DEST" install

# Path under DESTDIR (the Makefile's default layout) and mode.
declare -A WANT=(
	[usr/local/bin/vmswapctl]=755
	[usr/local/sbin/vmswapd]=755
	[usr/local/lib/libvmswap.so]=644
	[usr/local/libexec/vmswap/vmswap-helper]=755
	[usr/local/lib/systemd/system/vmswapd.service]=644
	[usr/local/lib/systemd/system/vmswapd.socket]=644
	[usr/local/lib/udev/rules.d/60-vmswap.rules]=644
	[usr/local/lib/tmpfiles.d/vmswap.conf]=644
	[usr/local/lib/sysusers.d/vmswap.conf]=644
	[usr/local/share/man/man1/vmswapctl.1]=644
	[usr/local/share/man/man7/vmswap.7]=644
	[usr/local/share/man/man8/vmswapd.8]=644
)
for f in "${!WANT[@]}"; do
	[[ -f $DEST/$f && ! -L $DEST/$f ]] || fail "make install did not put $f"
	mode=$(stat -c %a "$DEST/$f")
	[[ $mode == "${WANT[$f]}" ]] || fail "$f has mode $mode, not ${WANT[$f]}"
done
extra=$(cd "$DEST" && find . ! -type d | sed 's|^\./||' | while read -r f; do
	[[ -n ${WANT[$f]+set} ]] || echo "$f"
done)
[[ -z $extra ]] || fail "make install put files it should not: $extra"
ok "make install DESTDIR: ${#WANT[@]} files, each at its path with its mode"

# -I: text files only (the binaries may hold any byte).
left=$(grep -rIl '@' "$DEST" || true)
[[ -z $left ]] || fail "a placeholder is left in: $left"
grep -qx 'ExecStart=/usr/local/sbin/vmswapd --foreground' \
	"$DEST/usr/local/lib/systemd/system/vmswapd.service" ||
	fail "vmswapd.service does not start /usr/local/sbin/vmswapd --foreground"
ok "no @ placeholder left in any installed text"

# --- 1. the man pages -------------------------------------------------------

export MANWIDTH=80 LC_ALL=C.UTF-8
for page in man1/vmswapctl.1 man7/vmswap.7 man8/vmswapd.8; do
	f=$DEST/usr/local/share/man/$page
	# --warnings=w: every groff warning; man itself reports on stderr too.
	man --warnings=w -l "$f" >"$TMP/${page#*/}.txt" 2>"$TMP/man.err" ||
		fail "man -l $page failed: $(cat "$TMP/man.err")"
	[[ ! -s $TMP/man.err ]] || fail "man -l $page warns: $(cat "$TMP/man.err")"
	[[ $(wc -l <"$TMP/${page#*/}.txt") -gt 20 ]] || fail "man -l $page rendered almost nothing"
done
ok "man -l renders vmswapctl.1, vmswap.7 and vmswapd.8 without a warning"

# Every command in --help must have its entry in the rendered page (a
# line of its own at the entries' indent), and every option, of vmswapctl
# or of a command, must be in it as a word.
help=$("$DEST/usr/local/bin/vmswapctl" --help)
cmds=$(awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f && /^  [a-z]/ { print $1 }' <<<"$help")
opts=$(awk '/^Options:/ { f = 1; next } /^$/ { f = 0 }
	f { for (i = 1; i <= NF && $i ~ /^-/; i++) { sub(/,$/, "", $i); print $i } }' <<<"$help")
cmdopts=$(awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f' <<<"$help" |
	grep -o '\[--[a-z=|]*' | tr -d '[' | sort -u)
[[ $(wc -w <<<"$cmds") -ge 6 && $(wc -w <<<"$opts") -ge 8 ]] ||
	fail "cannot read the commands and options from vmswapctl --help"
for w in $cmds; do
	grep -qE "^ {7}$w( \[|$)" "$TMP/vmswapctl.1.txt" || fail "vmswapctl(1) has no entry for $w"
done
for w in $opts $cmdopts; do
	grep -qFw -- "$w" "$TMP/vmswapctl.1.txt" || fail "vmswapctl(1) does not mention $w"
done
ok "vmswapctl(1) mentions every command and option of vmswapctl --help:" "$(paste -sd ' ' <<<"$cmds")"
unset MANWIDTH LC_ALL

# --- 1. uninstall -----------------------------------------------------------

run_make "$TMP/uninstall.log" B="$BUILD" DESTDIR="$DEST" uninstall
left=$(find "$DEST" ! -type d)
[[ -z $left ]] || fail "make uninstall left: $left"
ok "make uninstall DESTDIR leaves no file"

# --- 2. an install with a PREFIX of its own ---------------------------------

PREFIX=$TMP/prefix
# As root without DESTDIR, install makes the group vmswap when it is missing.
getent group vmswap >/dev/null || MADE_GROUP=maybe
run_make "$TMP/prefix.log" B="$TMP/build" PREFIX="$PREFIX" install
if [[ -n $MADE_GROUP ]]; then
	if command -v groupadd >/dev/null; then
		getent group vmswap >/dev/null || fail "make install as root did not make the group vmswap"
		ok "make install as root made the group vmswap (removed again at the end)"
		MADE_GROUP=yes
	else
		MADE_GROUP=""
	fi
fi
if ! grep -q 'systemctl\|vmswapd' "$TMP/prefix.log" || ! grep -q 'userfaultfd' "$TMP/prefix.log"; then
	fail "make install as root did not print the next steps"
fi
ok "make install PREFIX=$PREFIX as root; it printed what to do next"

for prog in bin/vmswapctl sbin/vmswapd; do
	got=$("$PREFIX/$prog" --version) || fail "$prog --version failed"
	[[ $got == "${prog#*/} $VERSION" ]] || fail "$prog --version says '$got', not '${prog#*/} $VERSION'"
done
ok "installed vmswapctl and vmswapd print version $VERSION"

if command -v systemd-analyze >/dev/null; then
	# --man=no: the installed man pages are not on MANPATH.
	systemd-analyze verify --man=no "$PREFIX/lib/systemd/system/vmswapd.socket" \
		"$PREFIX/lib/systemd/system/vmswapd.service" >"$TMP/verify.log" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
	[[ ! -s $TMP/verify.log ]] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.log")"
	ok "systemd-analyze verify accepts vmswapd.socket and vmswapd.service"
fi

# The shim looks for the helper next to libvmswap.so's real path first,
# then in the LIBEXECDIR compiled in. With none next to it and
# VMSWAP_HELPER unset, the installed one must be found.
INSTALLED_HELPER=$PREFIX/libexec/vmswap/vmswap-helper
[[ ! -e $PREFIX/lib/vmswap-helper ]] || fail "$PREFIX/lib holds a vmswap-helper"
mkdir -m 0700 "$TMP/run"
printf 'fill\nquit\n' |
	VMSWAP_RUN_DIR=$TMP/run VMSWAP_LOG=info LD_PRELOAD=$PREFIX/lib/libvmswap.so \
		"$TMP/build/toyvmm" --size 128M >"$TMP/toyvmm.out" 2>"$TMP/toyvmm.err" ||
	fail "toyvmm under the installed shim failed: $(cat "$TMP/toyvmm.err")"
grep -q '^ok fill' "$TMP/toyvmm.out" || fail "toyvmm did not fill: $(cat "$TMP/toyvmm.out")"
line=$(grep 'vmswap: helper started by ' "$TMP/toyvmm.err" || true)
[[ $line == "vmswap: helper started by $INSTALLED_HELPER for pid "* ]] ||
	fail "the shim did not start $INSTALLED_HELPER: ${line:-no 'helper started by' line}; stderr: $(cat "$TMP/toyvmm.err")"
vm_pid=${line##* }
# The helper leaves with its VMM, and removes its run directory then.
HELPER_PID=$(cat "$TMP/run/$vm_pid/helper.pid" 2>/dev/null || true)
for ((i = 0; i < 100; i++)); do
	[[ -e $TMP/run/$vm_pid ]] || break
	sleep 0.1
done
[[ ! -e $TMP/run/$vm_pid ]] || fail "the helper of toyvmm $vm_pid did not exit with it"
HELPER_PID=""
ok "the installed shim started $INSTALLED_HELPER by itself"

# The demo on the installed files (toyvmm is not installed: from the build).
mkdir "$TMP/bin"
ln -s "$PREFIX/lib/libvmswap.so" "$TMP/bin/libvmswap.so"
ln -s "$PREFIX/bin/vmswapctl" "$TMP/bin/vmswapctl"
ln -s "$INSTALLED_HELPER" "$TMP/bin/vmswap-helper"
ln -s "$TMP/build/toyvmm" "$TMP/bin/toyvmm"
echo
"$ROOT/demo/run-demo.sh" "$TMP/bin" || fail "the demo failed on the installed files"
echo
echo "check-install: PASS"
