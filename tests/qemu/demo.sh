#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# demo.sh — what `make demo-qemu` runs: the QEMU swap walk for a person,
# memfd-backed guest RAM first, then QEMU's default anonymous RAM.
# Exits 1 when a variant failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

"$HERE/prepare.sh"
cat <<'TXT'
vmswap with a real VMM: QEMU (TCG) boots a Linux guest with 512 MiB of RAM
under LD_PRELOAD=libvmswap.so. The guest fills a tmpfs with random files,
then checks them all every round (VMSWAP-ROUND <n> OK) and rewrites 5%.
While it runs, vmswapctl moves its memory to staging (enable), drops zero
pages (trim), writes it to the swap file (out); the guest faults pages back
on demand as it keeps checking; disable swaps everything back in.
Columns: ms = time of the step; RSS/anon/shmem = QEMU's VmRSS/RssAnon/
RssShmem; state and swap-file size from `vmswapctl status --json`; the
newest round the guest printed.
TXT
rc=0
for v in memfd anon; do
	echo
	"$HERE/run.sh" "$v" || rc=1
done
exit "$rc"
