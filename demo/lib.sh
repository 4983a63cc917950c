# shellcheck shell=bash
# lib.sh — shell helpers shared by demo/run-demo.sh and tests/qemu/ (sourced,
# not run): reading vmswapctl's JSON status and cleaning up after a VMM.

# alive PID: is PID a live (not zombie) process?
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

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

# reap_helper PID WHAT: the helper leaves with its VMM (WHAT names it); if it
# lingers 3 s, end it by the pid it published, if that is still a
# vmswap-helper. Says so on stderr.
reap_helper() {
	local pid=$1 i

	[[ -n $pid && $pid != "?" && $pid != 0 ]] || return 0
	for ((i = 0; i < 30; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == vmswap-helper ]]; then
		echo "vmswap: helper $pid still running after $2 exited; killing it" >&2
		kill -TERM "$pid" 2>/dev/null
	fi
	return 0
}

# host_used_kb: host memory in use now (MemTotal - MemAvailable), in KiB; no fork.
host_used_kb() {
	local k v _ t=0 a=0
	while read -r k v _; do
		case $k in
		MemTotal:) t=$v ;;
		MemAvailable:) a=$v; break ;;
		esac
	done </proc/meminfo
	echo $((t - a))
}

# memwatch_start: sample host memory in use every 10 ms in the background,
# from now; memwatch_stop: its peak above the level at the start, in KiB,
# in MEMWATCH_PEAK_KB. What the host needed beyond what it had, whoever
# asked for it: run nothing else meanwhile.
memwatch_start() {
	MEMWATCH_FILE=$(mktemp "${TMPDIR:-/tmp}/vmswap-memwatch.XXXXXX")
	(
		base=$(host_used_kb) peak=0 fd=
		exec {fd}<> <(:) # read -t on it: a 10 ms sleep without a fork
		while :; do
			used=$(($(host_used_kb) - base))
			if ((used > peak)); then
				peak=$used
				echo "$peak" >"$MEMWATCH_FILE"
			fi
			read -r -t 0.01 -u "$fd" _ || true
		done
	) &
	MEMWATCH_PID=$!
}

memwatch_stop() {
	MEMWATCH_PEAK_KB=0
	[[ -n ${MEMWATCH_PID:-} ]] || return 0
	kill "$MEMWATCH_PID" 2>/dev/null || true
	wait "$MEMWATCH_PID" 2>/dev/null || true
	MEMWATCH_PID=
	# shellcheck disable=SC2034 # read by the scripts that source this
	MEMWATCH_PEAK_KB=$(cat "$MEMWATCH_FILE" 2>/dev/null || echo 0)
	rm -f "$MEMWATCH_FILE"
}
