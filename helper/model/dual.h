/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Double copies: a page that guest memory holds while its page-table
 * entry says its only copy is saved (STAGING or FILE). Only something
 * that touched guest memory without a userfaultfd makes one (a write()
 * to the memfd, a process mapping it unregistered): the helper's own
 * moves keep entry and memory in step under vs.lock. Which copy is right
 * cannot be known, so the helper never picks one by itself: it keeps
 * both, goes to Failed naming the pages, and `disable keep=guest|saved`
 * resolves them (README "Double copies").
 *
 * Everything here needs vs.lock held.
 */
#ifndef VS_DUAL_H
#define VS_DUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keep.h"
#include "helper.h"

/* The choice of the disable about to run (the worker sets it). */
void vs_dual_set_keep(enum vs_cmd_keep keep);
enum vs_cmd_keep vs_dual_keep(void);

/* Does guest memory hold page @pg of @o? */
bool vs_dual_in_guest(const struct vs_obj *o, uint64_t pg);
/* An operation met such a page and left both copies; counted until vs_dual_noted(). */
void vs_dual_note(void);
/* Pages noted since the last call. */
uint64_t vs_dual_noted(void);

/* Look at every saved page of every object; record what guest memory also holds. */
uint64_t vs_dual_scan(void);
/*
 * The cheap check: guest memfd blocks against the pages the table says
 * are resident. Scans only when they do not fit (or pages are recorded).
 * Returns the pages held twice.
 */
uint64_t vs_dual_check(void);
/* Pages held twice at the last look (status metric "double_pages"). */
uint64_t vs_dual_pages(void);
/* The message naming them (object, first page, count, uncovered process). */
void vs_dual_describe(char *buf, size_t n);
/* last_error names them; set only when the finding changed (then true). */
bool vs_dual_set_error(void);
/* What was found is why the operation fails: the message in @msg (and last_error), -EEXIST. */
int vs_dual_fail(char *msg, size_t n);
/* At the start of an operation that would go on past them: vs_dual_fail(), or 0 when none. */
int vs_dual_refuse(char *msg, size_t n);

#endif
