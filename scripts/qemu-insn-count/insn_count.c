/*
 * SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * insn_count: a QEMU TCG plugin that counts the guest instructions a process executes under
 * qemu-user, and prints the total when it exits. scripts/arm-instruction-counts.sh builds and
 * uses it; it is a measurement aid, not part of cxr.
 *
 * It needs qemu-plugin.h from QEMU's source tree (include/qemu/qemu-plugin.h), plugin API
 * version 1 (QEMU_PLUGIN_VERSION 1, as in Debian 12's qemu-user 7.2; later QEMUs replaced
 * qemu_plugin_register_vcpu_tb_exec_inline with a per-vCPU "scoreboard" form). The header is
 * GPL-2.0-or-later and is not kept in this repository; only the few functions below are used.
 *
 *   gcc -O2 -shared -fPIC -I DIR_WITH_QEMU_PLUGIN_H -o insn_count.so insn_count.c
 *   qemu-aarch64 -d plugin -D count.log -plugin ./insn_count.so[,exact=on][,top=N] PROGRAM ARGS...
 *
 * Output (in the -D file): "insn_count: insns=N vcpus=M mode=inline|exact", and with top=N the N
 * guest functions that executed most instructions, one "insn_count: top COUNT SYMBOL" line each.
 *
 * Default mode: one inline add per executed translation block (N_INSNS of the block) into one
 * counter, as QEMU's own contrib/plugins do; cheap, but the adds are not atomic, so guest
 * threads running at the same time could lose counts. vcpus is how many guest threads ran
 * (qemu-user makes one vCPU per thread). "exact=on" counts through a callback with an atomic
 * add instead: slower, exact with any number of threads; compare both once to trust the inline
 * count for a given program. top=N adds one inline counter per translated block, attributed to
 * the symbol of its first instruction (the guest binary's symbol table; "?" without one).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t insns;
static uint64_t vcpus;
static bool exact;
static long top;

/* One per translated block when top=N: its executions' instructions, and where it lies. */
struct block {
    uint64_t insns;
    const char *symbol;
    struct block *next;
};
static struct block *blocks;

static void on_tb_exec(unsigned int vcpu_index, void *n_insns)
{
    (void)vcpu_index;
    __atomic_fetch_add(&insns, (uint64_t)(uintptr_t)n_insns, __ATOMIC_RELAXED);
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (top > 0) {
        struct block *b = calloc(1, sizeof *b);
        if (b) {
            b->symbol = qemu_plugin_insn_symbol(qemu_plugin_tb_get_insn(tb, 0));
            b->next = __atomic_load_n(&blocks, __ATOMIC_RELAXED);
            while (!__atomic_compare_exchange_n(&blocks, &b->next, b, false, __ATOMIC_RELEASE,
                                                __ATOMIC_RELAXED)) {
            }
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns, n);
        }
    }
    if (exact) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)n);
    } else {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, n);
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    (void)vcpu_index;
    __atomic_fetch_add(&vcpus, 1, __ATOMIC_RELAXED);
}

static const char *name_of(const struct block *b)
{
    return b->symbol && *b->symbol ? b->symbol : "?";
}

static int by_name(const void *a, const void *b)
{
    return strcmp(name_of(*(struct block *const *)a), name_of(*(struct block *const *)b));
}

static int by_insns_desc(const void *a, const void *b)
{
    uint64_t x = (*(struct block *const *)a)->insns, y = (*(struct block *const *)b)->insns;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The top functions: blocks grouped by symbol (summed into the first of each group). */
static void print_top(void)
{
    size_t n = 0, groups = 0;
    struct block *b, **all;
    char line[512];
    for (b = blocks; b; b = b->next) {
        n++;
    }
    all = malloc(n * sizeof *all);
    if (!all) {
        return;
    }
    n = 0;
    for (b = blocks; b; b = b->next) {
        all[n++] = b;
    }
    qsort(all, n, sizeof *all, by_name);
    for (size_t i = 0; i < n; i++) {
        if (groups > 0 && strcmp(name_of(all[groups - 1]), name_of(all[i])) == 0) {
            all[groups - 1]->insns += all[i]->insns;
        } else {
            all[groups++] = all[i];
        }
    }
    qsort(all, groups, sizeof *all, by_insns_desc);
    for (size_t i = 0; i < groups && i < (size_t)top; i++) {
        snprintf(line, sizeof line, "insn_count: top %" PRIu64 " %s\n", all[i]->insns,
                 name_of(all[i]));
        qemu_plugin_outs(line);
    }
    free(all);
}

static void on_atexit(qemu_plugin_id_t id, void *userdata)
{
    char line[128];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "insn_count: insns=%" PRIu64 " vcpus=%" PRIu64 " mode=%s\n",
             __atomic_load_n(&insns, __ATOMIC_RELAXED), __atomic_load_n(&vcpus, __ATOMIC_RELAXED),
             exact ? "exact" : "inline");
    qemu_plugin_outs(line);
    if (top > 0) {
        print_top();
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "exact=on") == 0) {
            exact = true;
        } else if (strncmp(argv[i], "top=", 4) == 0) {
            top = strtol(argv[i] + 4, NULL, 10);
        } else if (strcmp(argv[i], "exact=off") != 0) {
            fprintf(stderr, "insn_count: unknown argument %s (exact=on|off, top=N)\n", argv[i]);
            return -1;
        }
    }
    if (info->version.cur < 1) {
        fprintf(stderr, "insn_count: this QEMU's plugin API (%d) is older than 1\n",
                info->version.cur);
        return -1;
    }
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
