#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# check.sh [VARIANT...] — what `make check-qemu` runs: prepare.sh, then
# run.sh for each variant (default: memfd anon sandbox), then the end of
# each failed variant's output again, then one line
#   check-qemu: N passed, M failed
# Exits 1 when any variant failed (or prepare did).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VARIANTS=("$@")
((${#VARIANTS[@]})) || VARIANTS=(memfd anon sandbox)

t0=$(date +%s)
if ! "$HERE/prepare.sh"; then
	echo "check-qemu: prepare.sh failed; 0 passed, ${#VARIANTS[@]} failed"
	exit 1
fi

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/vmswap-check-qemu.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT

passed=0
failed=()
for v in "${VARIANTS[@]}"; do
	echo
	if "$HERE/run.sh" "$v" 2>&1 | tee "$LOGS/$v.log"; then
		passed=$((passed + 1))
	else
		failed+=("$v")
	fi
done

# A failed variant's diagnostics again, last: a log cut to its tail keeps them.
for v in "${failed[@]}"; do
	echo
	echo "--- why qemu-$v failed (the end of its output, repeated):"
	tail -n 40 "$LOGS/$v.log"
done

echo
msg="check-qemu: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0)) || msg+=" (${failed[*]})"
echo "$msg in $(($(date +%s) - t0)) s"
((${#failed[@]} == 0))
