/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * When the helper dies under a command: did the VMM die too, and was it
 * the OOM killer? Two witnesses, taken before the command is sent and
 * read after: the kernel log (/dev/kmsg from its end, for "Killed process
 * <pid>", needs CAP_SYSLOG or dmesg_restrict=0) and the OOM-kill counter
 * of the VMM's memory cgroup (v2 memory.events, v1 memory.oom_control).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sys/memcg.h"
#include "ctl_common.h"

void vs_ctl_watch_start(struct vs_ctl_watch *w, int vmm_pid)
{
	memset(w, 0, sizeof(*w));
	w->vmm_pid = vmm_pid;
	w->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->kmsg >= 0 && lseek(w->kmsg, 0, SEEK_END) < 0) {
		close(w->kmsg);
		w->kmsg = -1;
	}
	if (!vs_memcg_of_pid(VS_MEMCG_ROOT, vmm_pid, &w->cg) &&
	    !vs_memcg_oom_kills(&w->cg, &w->kills))
		w->have_kills = true;
}

void vs_ctl_watch_end(struct vs_ctl_watch *w)
{
	if (w->kmsg >= 0)
		close(w->kmsg);
	w->kmsg = -1;
}

/* Gone, a zombie, or on its way out (SIGKILL pending: the OOM killer sent one). */
static bool vmm_died(int pid)
{
	char path[64], text[2048], state = '?', *p;
	unsigned long long pend = 0;

	if (!vs_ctl_alive(pid))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (vs_memcg_read(path, text, sizeof(text)) < 0)
		return !vs_ctl_alive(pid);
	if ((p = strstr(text, "\nState:")))
		sscanf(p + 7, " %c", &state);
	if ((p = strstr(text, "\nShdPnd:")))
		pend = strtoull(p + 8, NULL, 16);
	return state == 'Z' || state == 'X' || (pend & (1ull << (9 - 1))); /* SIGKILL */
}

/* "Killed process <pid> (comm) ..." of @rec, cut at the first comma, into @line. */
static bool killed_line(const char *rec, int pid, char *line, size_t n)
{
	const char *msg = strchr(rec, ';'), *hit;
	char pat[48];

	snprintf(pat, sizeof(pat), "Killed process %d (", pid);
	if (!msg || !(hit = strstr(msg, pat)))
		return false;
	snprintf(line, n, "%.*s", (int)strcspn(hit, ",\n"), hit);
	return true;
}

/* The kernel log since the watch began: OOM kills of the VMM and of the helper. */
static void kmsg_scan(struct vs_ctl_watch *w, pid_t helper, char *vmm_line, char *helper_line,
		      size_t n)
{
	char rec[8192];

	vmm_line[0] = helper_line[0] = '\0';
	while (w->kmsg >= 0) {
		ssize_t r = read(w->kmsg, rec, sizeof(rec) - 1);

		if (r < 0 && errno == EPIPE) /* records overwritten meanwhile: skip them */
			continue;
		if (r <= 0)
			break;
		rec[r] = '\0';
		killed_line(rec, w->vmm_pid, vmm_line, n);
		killed_line(rec, (int)helper, helper_line, n);
	}
}

void vs_ctl_report_death(struct vs_ctl_watch *w, pid_t helper_pid, const char *what)
{
	char vline[160], hline[160], why[VS_MEMCG_PATH_MAX + 320] = "";
	uint64_t kills = 0;
	bool counted = w->have_kills && !vs_memcg_oom_kills(&w->cg, &kills) && kills > w->kills;
	bool vmm_dead = vmm_died(w->vmm_pid);

	kmsg_scan(w, helper_pid, vline, hline, sizeof(vline));
	if (vmm_dead && vline[0])
		snprintf(why, sizeof(why), ", killed by the OOM killer (kernel log: %s)", vline);
	else if (hline[0])
		snprintf(why, sizeof(why), "; the helper was killed by the OOM killer (kernel log: %s)",
			 hline);
	else if (counted)
		snprintf(why, sizeof(why), "%s (oom_kill of memory cgroup %s went from %llu to %llu)",
			 vmm_dead ? ", killed by the OOM killer" : "; the OOM killer killed in its cgroup",
			 w->cg.path, (unsigned long long)w->kills, (unsigned long long)kills);
	if (vmm_dead)
		vs_ctl_err("vmswap helper (pid %d) for pid %d died before %s; the VMM (pid %d) died%s",
			   (int)helper_pid, w->vmm_pid, what, w->vmm_pid, why);
	else
		vs_ctl_err("vmswap helper (pid %d) for pid %d died before %s%s", (int)helper_pid,
			   w->vmm_pid, what, why);
}
