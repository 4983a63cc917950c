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
