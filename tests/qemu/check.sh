#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# check.sh [VARIANT...] — what `make check-qemu` runs: prepare.sh, then
# run.sh for each variant (default: memfd anon sandbox), then one line
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

passed=0
failed=()
for v in "${VARIANTS[@]}"; do
	echo
	if "$HERE/run.sh" "$v"; then
		passed=$((passed + 1))
	else
		failed+=("$v")
	fi
done

echo
msg="check-qemu: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0)) || msg+=" (${failed[*]})"
echo "$msg in $(($(date +%s) - t0)) s"
((${#failed[@]} == 0))
