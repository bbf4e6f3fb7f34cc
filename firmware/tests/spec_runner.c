/*
 * Runs the official WebAssembly core spec tests (converted by wast2json)
 * against the interpreter. Usage: spec_runner [-v] [-1] file.json...
 * -1 runs the 1.0 suite: modules are loaded under 1.0's rules where 2.0
 * changed them (wasm_load_limits.mvp).
 *
 * An argument @list names a file of JSON paths, one per line (the Cortex-M4
 * build gets its arguments over semihosting, whose command line is short).
 *
 * Every command is counted as passed, failed or skipped; a skip always has
 * a reason (see the skip list below). Exit status is 1 if anything failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wasm/wasm.h"
#include "json.h"
#include "paths.h"

/* ------------------------------------------------------------------ skip list
 *
 * 1. Whole files. None: every file runs, so the binary-format and validation
 *    assertions in proposal files still count when they apply to 1.0.
 *
 * 2. Commands, by rule:
 *    - assert_malformed on a text module: this interpreter only reads the
 *      binary format, so text-syntax errors do not apply to it.
 *    - any command on a module the loader rejects with an "unsupported
 *      feature" code: SIMD (v128), the one WebAssembly 2.0 feature outside
 *      the Wasmbed ABI (docs/abi.md). The reason printed is the feature.
 *    - invoke/assert with v128 arguments or results: same reason.
 *    The simd_*.wast files themselves are left out by the Makefile, by name.
 *
 * 3. Individual commands (file, line) listed in `skip_cmds` with their reason.
 */
static const struct {
    const char *file;
    int line;
    const char *reason;
} skip_cmds[] = {
    {NULL, 0, NULL},
};

/* ------------------------------------------------------------------ sizes
 *
 * The host gives every module its own ARENA_SIZE arena and a calloc'd memory of
 * up to MEM_PAGES pages (more when the minimum is larger, fewer when the maximum
 * is smaller): pages nobody touches cost nothing there. The Cortex-M4 build
 * (make spec-m4) has 24 MiB of RAM in all, so it sets SHARED_ARENA=1: all
 * modules of a file, memories included, come from one ARENA_SIZE arena in
 * command order, and the modules nothing can reach any more are given back from
 * the top (pool_reclaim). It also backs fewer pages (MEM_PAGES); a memory backed
 * with fewer pages than REF_MEM_PAGES, the host's figure, is "short", and the
 * one kind of failure that explains is skipped as lack of memory (memory_excuse).
 * The suite needs no deep stacks: it passes with 64 value slots and a call depth
 * of 25, so the M4 build's smaller stacks change no result.
 */
#ifndef ARENA_SIZE
#define ARENA_SIZE (8u << 20)
#endif
#ifndef STACK_SLOTS
#define STACK_SLOTS 65536u
#endif
#ifndef CALL_DEPTH
#define CALL_DEPTH 2000u
#endif
#define REF_MEM_PAGES 1024u
/* Elements backing each table a module can grow: table_grow.wast grows one to 803. */
#ifndef TABLE_CAP
#define TABLE_CAP 1024u
#endif
/* Results of one call, at most (func.wast returns 16 values from one call). */
#define MAX_RESULTS 64u
#ifndef MEM_PAGES
#define MEM_PAGES REF_MEM_PAGES
#endif
#ifndef SHARED_ARENA
#define SHARED_ARENA 0
#endif

typedef struct modent {
    char *name;                 /* "$name" or NULL */
    wasm_module *mod;
    wasm_instance *inst;
    wasm_err unsup;             /* non-zero: module rejected as unsupported */
    uint8_t *arena, *mem;       /* host: malloc'd arena and memory (NULL with SHARED_ARENA) */
    uint8_t *base;              /* start of the module's arena */
    size_t used;                /* bytes of it the module took */
    uint32_t ref_pages;         /* own memory is short: the pages the host run backs; else 0 */
    int grow_line;              /* short memory: line of the memory.grow it could not back */
} modent;

typedef struct reg {
    char *as;
    wasm_instance *inst;
    wasm_err unsup;     /* registered module was itself skipped as unsupported */
} reg;

static wasm_err link_unsup; /* set by resolve() when an import names a skipped module */

typedef struct counts {
    unsigned pass, fail, skip;
} counts;

enum { C_MODULE, C_REGISTER, C_ACTION, C_RETURN, C_TRAP, C_EXHAUST, C_INVALID, C_MALFORMED, C_UNLINKABLE,
       C_UNINST, C_OTHER, C_N };
static const char *cmd_names[C_N] = {"module", "register", "action", "assert_return", "assert_trap",
                                     "assert_exhaustion", "assert_invalid", "assert_malformed",
                                     "assert_unlinkable", "assert_uninstantiable", "other"};

static counts total[C_N];
static counts file_counts;
static unsigned nomem;      /* skipped for lack of memory (also counted in skip) */
static unsigned native_funcs, all_funcs; /* functions instantiated, and of those compiled (WASM_JIT) */
static int verbose;
static int mvp; /* -1: the 1.0 suite, run under 1.0's rules where 2.0 changed them (wasm_load_limits.mvp) */

static const char *cur_file;
static char dir[4096];
static modent *mods;
static size_t nmods;
static modent *cur_mod;
static reg *regs;
static size_t nregs;

#if SHARED_ARENA
/* The file arena. Its own section, so that the M4 image (tests/m4/spec_m4.ld) can give it a RAM bank. */
static uint8_t pool[ARENA_SIZE] __attribute__((aligned(8), section(".bss.spec_arena")));
static size_t pool_used, pool_peak; /* bytes held by kept modules; most ever in use */
#endif

/* ------------------------------------------------------------------ spectest host module */

static wasm_err host_print(wasm_instance *c, void *ctx, wasm_slot *sp)
{
    (void)c; (void)ctx; (void)sp;
    return WASM_OK;
}

static const uint8_t t_i32[] = {WASM_I32}, t_i64[] = {WASM_I64}, t_f32[] = {WASM_F32}, t_f64[] = {WASM_F64},
                     t_i32f32[] = {WASM_I32, WASM_F32}, t_f64f64[] = {WASM_F64, WASM_F64};
static const wasm_functype ft_print[] = {
    {NULL, NULL, 0, 0}, {t_i32, NULL, 1, 0}, {t_i64, NULL, 1, 0}, {t_f32, NULL, 1, 0},
    {t_f64, NULL, 1, 0}, {t_i32f32, NULL, 2, 0}, {t_f64f64, NULL, 2, 0},
};
static const char *print_names[] = {"print", "print_i32", "print_i64", "print_f32",
                                    "print_f64", "print_i32_f32", "print_f64_f64"};
static wasm_func spec_funcs[7];
static wasm_global g_i32, g_i64, g_f32, g_f64;
static wasm_table spec_table;
static wasm_ref spec_table_elems[10];
static wasm_memory spec_mem;
static uint8_t *spec_mem_buf;

static void spectest_reset(void)
{
    for (int i = 0; i < 7; i++) {
        spec_funcs[i].type = &ft_print[i];
        spec_funcs[i].host = host_print;
    }
    g_i32 = (wasm_global){666, WASM_I32, 0};
    g_i64 = (wasm_global){666, WASM_I64, 0};
    float f = 666.6f;
    uint32_t fb;
    memcpy(&fb, &f, 4);
    g_f32 = (wasm_global){fb, WASM_F32, 0};
    double d = 666.6;
    memcpy(&g_f64.val, &d, 8);
    g_f64.type = WASM_F64;
    g_f64.mut = 0;
    memset(spec_table_elems, 0, sizeof spec_table_elems);
    spec_table = (wasm_table){.elems = spec_table_elems, .size = 10, .max = 20, .cap = 10, .has_max = 1, .type = WASM_FUNCREF};
    if (!spec_mem_buf) spec_mem_buf = calloc(2, 65536);
    memset(spec_mem_buf, 0, 2 * 65536);
    spec_mem = (wasm_memory){spec_mem_buf, 65536, 2 * 65536, 1, 2, 1};
}

static int name_is(const wasm_import *im, const char *s)
{
    return im->name_len == strlen(s) && !memcmp(im->name, s, im->name_len);
}

static wasm_err resolve(void *ctx, const wasm_import *im, wasm_extern *out)
{
    (void)ctx;
    if (im->module_len == 8 && !memcmp(im->module, "spectest", 8)) {
        for (int i = 0; i < 7; i++)
            if (name_is(im, print_names[i])) { out->kind = WASM_EXTERN_FUNC; out->func = &spec_funcs[i]; return WASM_OK; }
        if (name_is(im, "global_i32")) { out->kind = WASM_EXTERN_GLOBAL; out->global = &g_i32; return WASM_OK; }
        if (name_is(im, "global_i64")) { out->kind = WASM_EXTERN_GLOBAL; out->global = &g_i64; return WASM_OK; }
        if (name_is(im, "global_f32")) { out->kind = WASM_EXTERN_GLOBAL; out->global = &g_f32; return WASM_OK; }
        if (name_is(im, "global_f64")) { out->kind = WASM_EXTERN_GLOBAL; out->global = &g_f64; return WASM_OK; }
        if (name_is(im, "table")) { out->kind = WASM_EXTERN_TABLE; out->table = &spec_table; return WASM_OK; }
        if (name_is(im, "memory")) { out->kind = WASM_EXTERN_MEMORY; out->memory = &spec_mem; return WASM_OK; }
        return WASM_E_UNKNOWN_IMPORT;
    }
    for (size_t i = nregs; i-- > 0;) {
        if (strlen(regs[i].as) == im->module_len && !memcmp(regs[i].as, im->module, im->module_len)) {
            if (regs[i].unsup) {
                link_unsup = regs[i].unsup;
                return WASM_E_UNKNOWN_IMPORT;
            }
            return wasm_instance_export(regs[i].inst, (const char *)im->name, im->name_len, out);
        }
    }
    return WASM_E_UNKNOWN_IMPORT;
}

/* ------------------------------------------------------------------ helpers */

static void report(int line, const char *kind, const char *fmt, const char *detail)
{
    printf("  FAIL %s:%d %s: %s%s%s\n", cur_file, line, kind, fmt, detail ? " " : "", detail ? detail : "");
}

static uint8_t *read_file(const char *name, size_t *len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); fclose(f); return NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static uint8_t **bins;
static size_t nbins;

/* Pages backed for a memory: its maximum, but at most `cap` unless its minimum is larger. */
static uint64_t backed_pages(uint32_t minp, uint32_t maxp, int has_max, uint32_t cap)
{
    uint64_t pages = has_max ? maxp : 65536;
    uint64_t want = minp > cap ? minp : cap;
    return pages < want ? pages : want;
}

/* Append a loaded module to the file's live modules (it keeps its arena). */
static void keep_module(const modent *e)
{
    mods = realloc(mods, (nmods + 1) * sizeof *mods);
    mods[nmods++] = *e;
#if SHARED_ARENA
    if (!e->base) return; /* the file could not be read: it took nothing */
    pool_used = (size_t)(e->base - pool) + ((e->used + 7u) & ~(size_t)7u);
    if (pool_used > pool_peak) pool_peak = pool_used;
#endif
}

/* A module checked and thrown away: its arena goes back (SHARED_ARENA: it was never kept). */
static void drop_module(modent *e)
{
#if SHARED_ARENA
    size_t top = e->base ? (size_t)(e->base - pool) + e->used : 0;
    if (top > pool_peak) pool_peak = top;
#endif
    free(e->arena);
    free(e->mem);
}

#if SHARED_ARENA
/*
 * Can a later command still reach the module? Yes while it is the current
 * module, has a name (actions and register name it), is registered (others
 * import its exports), or imported a table: its element segments may have put
 * its functions there, where a later call_indirect finds them. Imported
 * memories and globals only ever hold values, never a way back to it.
 */
static int reachable(const modent *m)
{
    if (m == cur_mod || m->name) return 1;
    if (!m->inst) return 0;
    for (size_t i = 0; i < nregs; i++)
        if (regs[i].inst == m->inst) return 1;
    const uint8_t *t = (const uint8_t *)wasm_instance_table(m->inst);
    return t && (t < m->base || t >= m->base + m->used);
}

/* Give the arena of unreachable modules back, from the top while the top one is unreachable. */
static void pool_reclaim(void)
{
    while (nmods && !reachable(&mods[nmods - 1])) {
        nmods--;
        if (mods[nmods].base) pool_used = (size_t)(mods[nmods].base - pool); /* NULL: file unread, took nothing */
    }
}
#endif

/* Load (and optionally instantiate) a module file. Returns the error of the failing step. */
static wasm_err load_module(const char *file, modent *e, int instantiate, int *stage)
{
    size_t len;
    uint8_t *bin = read_file(file, &len);
    *stage = 0;
    memset(e, 0, sizeof *e);
    if (!bin) return WASM_E_ARG;
    bins = realloc(bins, (nbins + 1) * sizeof *bins);
    bins[nbins++] = bin;
    wasm_arena a;
#if SHARED_ARENA
    pool_reclaim();
    e->base = pool + pool_used;
    wasm_arena_init(&a, e->base, ARENA_SIZE - pool_used);
#else
    e->base = e->arena = malloc(ARENA_SIZE);
    wasm_arena_init(&a, e->arena, ARENA_SIZE);
#endif
    wasm_load_limits lim = {.mvp = (uint8_t)mvp};
    wasm_err err = wasm_module_load_limited(bin, (uint32_t)len, &lim, &a, &e->mod);
    e->used = a.used;
    if (err || !instantiate) return err;
    *stage = 1;
    wasm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.resolve = resolve;
    cfg.stack_slots = STACK_SLOTS;
    cfg.call_depth = CALL_DEPTH;
    cfg.table_cap = TABLE_CAP;
    uint32_t minp, maxp;
    int has_max;
    uint64_t ref = 0;
    if (wasm_module_memory(e->mod, &minp, &maxp, &has_max)) {
        uint64_t pages = backed_pages(minp, maxp, has_max, MEM_PAGES);
        uint64_t bytes = pages * 65536;
        if (bytes > 0xffffffffu) bytes = 0xffff0000u;
        ref = backed_pages(minp, maxp, has_max, REF_MEM_PAGES);
#if SHARED_ARENA
        cfg.mem_buf = NULL; /* taken from the arena (the interpreter zeroes it) */
#else
        e->mem = calloc(1, (size_t)bytes + 1);
        cfg.mem_buf = e->mem;
#endif
        cfg.mem_cap = (uint32_t)bytes;
    }
    link_unsup = WASM_OK;
    err = wasm_instantiate(e->mod, &cfg, &a, UINT64_MAX, &e->inst);
    e->used = a.used;
    if (e->inst) {
        uint32_t defined, n = wasm_instance_native_funcs(e->inst, &defined, NULL);
        native_funcs += n;
        all_funcs += defined;
    }
    wasm_memory *mem = e->inst ? wasm_instance_memory(e->inst) : NULL;
    /* own memory (the struct lies in this module's arena; an imported one does not), backed short */
    if (mem && (uint8_t *)mem >= e->base && (uint8_t *)mem < e->base + e->used && mem->cap / 65536 < ref)
        e->ref_pages = (uint32_t)ref;
    if (err && link_unsup) err = link_unsup; /* depends on a module we skipped: skip too */
    if (err && wasm_err_classify(err) == WASM_CLASS_TRAP) *stage = 2;
    return err;
}

static int is_ref(const char *t) { return !strcmp(t, "funcref") || !strcmp(t, "externref"); }

/*
 * A reference value as the runner passes it: null is 0 (NULL), and the host's
 * `ref.extern n` is n + 1, so that ref.extern 0 is not null.
 */
static wasm_slot ref_value(const char *s) { return strcmp(s, "null") ? strtoull(s, NULL, 10) + 1 : 0; }

static int parse_val(const jval *v, wasm_slot *out, const char **why)
{
    const char *t = json_str(v, "type"), *s = json_str(v, "value");
    if (!t) { *why = "no type"; return 0; }
    if (strcmp(t, "i32") && strcmp(t, "i64") && strcmp(t, "f32") && strcmp(t, "f64") && !is_ref(t)) {
        *why = "SIMD values (v128: outside the ABI)";
        return -1;
    }
    if (!s) { *why = "no value"; return 0; }
    *out = is_ref(t) ? ref_value(s) : strtoull(s, NULL, 10);
    return 1;
}

/* Run an action; returns the error, results in res[] (nres = number of expected values). */
static wasm_err do_action(const jval *act, wasm_slot *res, int *skipped, const char **why, modent **target)
{
    const char *type = json_str(act, "type"), *mname = json_str(act, "module"), *field = json_str(act, "field");
    jval *fv = json_get(act, "field");
    modent *m = cur_mod;
    *skipped = 0;
    if (mname) {
        m = NULL;
        for (size_t i = nmods; i-- > 0;)
            if (mods[i].name && !strcmp(mods[i].name, mname)) { m = &mods[i]; break; }
    }
    *target = m;
    if (!m || !field) { *why = "no module"; return WASM_E_ARG; }
    if (m->unsup) { *skipped = 1; *why = wasm_err_str(m->unsup); return WASM_OK; }
    if (!m->inst) { *why = "module not instantiated"; return WASM_E_ARG; }
    wasm_extern ex;
    if (wasm_instance_export(m->inst, field, (uint32_t)fv->slen, &ex)) { *why = "unknown export"; return WASM_E_ARG; }
    if (!strcmp(type, "get")) {
        if (ex.kind != WASM_EXTERN_GLOBAL) { *why = "not a global"; return WASM_E_ARG; }
        res[0] = ex.global->val;
        return WASM_OK;
    }
    if (ex.kind != WASM_EXTERN_FUNC) { *why = "not a function"; return WASM_E_ARG; }
    jval *args = json_get(act, "args");
    static wasm_slot slots[1024];
    for (size_t i = 0; args && i < args->n && i < 1024; i++) {
        int r = parse_val(args->items[i], &slots[i], why);
        if (r < 0) { *skipped = 1; return WASM_OK; }
        if (!r) return WASM_E_ARG;
    }
    wasm_err err = wasm_call_func(m->inst, ex.func, slots);
    const wasm_functype *ft = wasm_func_type(ex.func);
    for (uint32_t i = 0; i < ft->nresults && i < MAX_RESULTS; i++) res[i] = slots[i];
    return err;
}

static int match_val(const jval *exp, wasm_slot got, char *buf, size_t bl)
{
    const char *t = json_str(exp, "type"), *s = json_str(exp, "value");
    int is32 = !strcmp(t, "i32") || !strcmp(t, "f32");
    uint64_t g = is32 ? (uint32_t)got : got;
    snprintf(buf, bl, "got 0x%" PRIx64 " want %s %s", g, t, s ? s : "?");
    if (is_ref(t)) return s ? got == ref_value(s) : got != 0; /* no value: any non-null reference */
    if (!s) return 0;
    if (!strncmp(s, "nan:", 4)) {
        int canon = !strcmp(s, "nan:canonical");
        if (!strcmp(t, "f32")) {
            uint32_t u = (uint32_t)got;
            return canon ? (u & 0x7fffffffu) == 0x7fc00000u : (u & 0x7fc00000u) == 0x7fc00000u;
        }
        return canon ? (got & 0x7fffffffffffffffull) == 0x7ff8000000000000ull
                     : (got & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
    }
    uint64_t want = strtoull(s, NULL, 10);
    return is32 ? (uint32_t)want == (uint32_t)got : want == got;
}

/* Trap text from the spec vs ours: the spec text starts with ours or vice versa. */
static int trap_text_ok(const char *text, wasm_err err)
{
    const char *mine = wasm_err_str(err);
    size_t a = strlen(text), b = strlen(mine);
    return !strncmp(text, mine, a < b ? a : b);
}

/* The module owning `mem` when that memory is short (backed with fewer pages than on the host). */
static modent *short_owner(const wasm_memory *mem)
{
    for (size_t i = 0; mem && i < nmods; i++)
        if (mods[i].ref_pages && mods[i].inst && wasm_instance_memory(mods[i].inst) == mem) return &mods[i];
    return NULL;
}

/*
 * Turns the result r of an action command (1 pass, 0 fail, -1 skip) into -2,
 * skipped for lack of memory, when the memory of the command's module is short
 * and either
 *   - the command failed as a memory.grow that backing refused: the result is -1
 *     where the spec wants the memory's current size (a growing call returns the
 *     old size, a refused one leaves the size as it was); the memory is marked;
 *   - or such a grow was refused earlier on this memory: its size differs from the
 *     host run's from then on, so no later result on it, passed or failed, says
 *     anything about the interpreter.
 * Any other failure on a short memory is still a failure.
 */
static int memory_excuse(const jval *c, int kind, int line, const modent *tm, const wasm_slot *res, int r,
                         const char **why)
{
    static char buf[200];
    wasm_memory *mem = tm && tm->inst ? wasm_instance_memory(tm->inst) : NULL;
    modent *o = r >= 0 ? short_owner(mem) : NULL;
    if (!o) return r;
    if (!o->grow_line) {
        jval *exp = json_get(c, "expected");
        const char *t = exp && exp->n == 1 ? json_str(exp->items[0], "type") : NULL;
        const char *v = t ? json_str(exp->items[0], "value") : NULL;
        if (r || kind != C_RETURN || !v || strcmp(t, "i32") || (uint32_t)res[0] != 0xffffffffu ||
            strtoull(v, NULL, 10) != mem->pages)
            return r;
        o->grow_line = line;
        snprintf(buf, sizeof buf, "memory.grow beyond the %" PRIu32 " pages (%" PRIu32 " KiB) backed here; the host backs %" PRIu32,
                 mem->cap / 65536, mem->cap / 1024, o->ref_pages);
    } else {
        snprintf(buf, sizeof buf, "memory size differs from the host run since the refused memory.grow at line %d", o->grow_line);
    }
    *why = buf;
    return -2;
}

static int cmd_kind(const char *t)
{
    if (!strcmp(t, "module")) return C_MODULE;
    if (!strcmp(t, "register")) return C_REGISTER;
    if (!strcmp(t, "action")) return C_ACTION;
    if (!strcmp(t, "assert_return")) return C_RETURN;
    if (!strcmp(t, "assert_trap")) return C_TRAP;
    if (!strcmp(t, "assert_exhaustion")) return C_EXHAUST;
    if (!strcmp(t, "assert_invalid")) return C_INVALID;
    if (!strcmp(t, "assert_malformed")) return C_MALFORMED;
    if (!strcmp(t, "assert_unlinkable")) return C_UNLINKABLE;
    if (!strcmp(t, "assert_uninstantiable")) return C_UNINST;
    return C_OTHER;
}

static const char *listed_skip(int line)
{
    const char *base = strrchr(cur_file, '/');
    base = base ? base + 1 : cur_file;
    for (size_t i = 0; skip_cmds[i].file; i++) {
        size_t n = strlen(skip_cmds[i].file);
        if (!strncmp(base, skip_cmds[i].file, n) && base[n] == '.' && skip_cmds[i].line == line)
            return skip_cmds[i].reason;
    }
    return NULL;
}

/* An action command (action, assert_return, assert_trap, assert_exhaustion): 1 pass, 0 fail, -1 skip.
 * The results land in res, and *tm is the module the action ran in (NULL if none). */
static int run_action(const jval *c, int kind, wasm_slot *res, modent **tm, const char **why)
{
    static char buf[256];
    int skipped;
    jval *exp = json_get(c, "expected");
    wasm_err err = do_action(json_get(c, "action"), res, &skipped, why, tm);
    if (skipped) return -1;
    for (size_t i = 0; exp && i < exp->n; i++) {
        const char *t = json_str(exp->items[i], "type");
        if (t && strcmp(t, "i32") && strcmp(t, "i64") && strcmp(t, "f32") && strcmp(t, "f64") && !is_ref(t)) {
            *why = "SIMD values (v128: outside the ABI)";
            return -1;
        }
    }
    if (err == WASM_E_ARG) return 0;
    if (kind == C_ACTION) {
        if (err) { *why = wasm_err_str(err); return 0; }
        return 1;
    }
    if (kind == C_RETURN) {
        if (err) { *why = wasm_err_str(err); return 0; }
        if (exp && exp->n > MAX_RESULTS) { *why = "more results than the runner holds"; return 0; }
        for (size_t i = 0; exp && i < exp->n; i++)
            if (!match_val(exp->items[i], res[i], buf, sizeof buf)) { *why = buf; return 0; }
        return 1;
    }
    if (kind == C_EXHAUST) {
        if (err != WASM_TRAP_STACK_OVERFLOW) { *why = err ? wasm_err_str(err) : "no trap"; return 0; }
        return 1;
    }
    if (wasm_err_classify(err) != WASM_CLASS_TRAP) { *why = err ? wasm_err_str(err) : "no trap"; return 0; }
    if (!trap_text_ok(json_str(c, "text"), err)) {
        snprintf(buf, sizeof buf, "trap '%s', want '%s'", wasm_err_str(err), json_str(c, "text"));
        *why = buf;
        return 0;
    }
    return 1;
}

/* Returns 1 pass, 0 fail, -1 skip, -2 skip for lack of memory; *why explains fail/skip. */
static int run_cmd(const jval *c, int kind, int line, const char **why)
{
    static char buf[256];
    const char *file = json_str(c, "filename");
    const char *listed = listed_skip(line);
    int stage;
    wasm_err err;
    modent e;
    if (listed) { *why = listed; return -1; }
    switch (kind) {
    case C_MODULE: {
        cur_mod = NULL; /* replaced: unless named or registered, the old one is now unreachable */
        err = load_module(file, &e, 1, &stage);
        const char *name = json_str(c, "name");
        e.name = name ? strdup(name) : NULL;
        if (wasm_err_classify(err) == WASM_CLASS_UNSUPPORTED) e.unsup = err;
        keep_module(&e);
        cur_mod = &mods[nmods - 1];
        if (e.unsup) { *why = wasm_err_str(err); return -1; }
        if (err) {
            snprintf(buf, sizeof buf, "%s failed: %s", stage ? "instantiate" : "load", wasm_err_str(err));
            *why = buf;
            cur_mod->inst = NULL;
            return 0;
        }
        return 1;
    }
    case C_REGISTER: {
        const char *name = json_str(c, "name"), *as = json_str(c, "as");
        modent *m = cur_mod;
        if (name)
            for (size_t i = nmods; i-- > 0;)
                if (mods[i].name && !strcmp(mods[i].name, name)) { m = &mods[i]; break; }
        if (!m) { *why = "no module"; return 0; }
        if (!m->unsup && !m->inst) { *why = "module not instantiated"; return 0; }
        regs = realloc(regs, (nregs + 1) * sizeof *regs);
        regs[nregs].as = strdup(as);
        regs[nregs].unsup = m->unsup;
        regs[nregs++].inst = m->inst;
        if (m->unsup) { *why = wasm_err_str(m->unsup); return -1; }
        return 1;
    }
    case C_ACTION: case C_RETURN: case C_TRAP: case C_EXHAUST: {
        wasm_slot res[MAX_RESULTS] = {0};
        modent *tm = NULL;
        int r = run_action(c, kind, res, &tm, why);
        return memory_excuse(c, kind, line, tm, res, r, why);
    }
    case C_INVALID: case C_MALFORMED: case C_UNLINKABLE: case C_UNINST: {
        const char *mt = json_str(c, "module_type");
        if (mt && strcmp(mt, "binary")) {
            *why = "text-format module: not applicable to a binary-only interpreter";
            return -1;
        }
        int inst = kind == C_UNLINKABLE || kind == C_UNINST;
        err = load_module(file, &e, inst, &stage);
        int ok;
        wasm_err_class cl = wasm_err_classify(err);
        if (cl == WASM_CLASS_UNSUPPORTED) { *why = wasm_err_str(err); ok = -1; }
        else if (kind == C_INVALID) ok = cl == WASM_CLASS_INVALID;
        else if (kind == C_MALFORMED) ok = cl == WASM_CLASS_MALFORMED;
        else if (kind == C_UNLINKABLE) ok = stage == 1 && cl == WASM_CLASS_LINK;
        else ok = stage == 2;
        if (ok == 0) {
            snprintf(buf, sizeof buf, "got '%s' (stage %d), want '%s'", err ? wasm_err_str(err) : "success", stage,
                     json_str(c, "text"));
            *why = buf;
        }
        if (e.inst) {
            /* keep it: instantiation side effects on shared tables/memories stay visible (a
             * failed instantiation may have put its functions in an imported table) */
            size_t ci = cur_mod ? (size_t)(cur_mod - mods) : 0;
            int had = cur_mod != NULL;
            keep_module(&e);
            cur_mod = had ? &mods[ci] : NULL;
        } else {
            drop_module(&e);
        }
        return ok;
    }
    default:
        *why = "unknown command";
        return 0;
    }
}

/*
 * A file's commands are parsed one at a time: the tree of a whole file takes about
 * six times its text (5 MiB for memory_copy.json), more than the M4 image's heap.
 * These two scan the text for the elements of the top-level "commands" array; the
 * scan knows strings and nesting and nothing else, json_parse checks each element.
 */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* p is at a '"' or a nesting bracket: returns what follows the matching '"' or bracket, or NULL. */
static const char *skip_nested(const char *p, const char *end)
{
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\') p++;
            if (p >= end) return NULL;
            if (!depth) return p + 1;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth <= 0) {
            return depth ? NULL : p + 1;
        }
    }
    return NULL;
}

/* The '[' of the "commands" array (the value of that key in the top-level object), or NULL. */
static const char *find_commands(const char *p, const char *end)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return NULL;
    for (p++;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        const char *key = p + 1, *q = skip_nested(p, end);
        if (!q) return NULL;
        int is_cmds = q - key == 9 && !memcmp(key, "commands\"", 9);
        p = skip_ws(q, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (is_cmds) return p < end && *p == '[' ? p : NULL;
        if (p < end && (*p == '"' || *p == '{' || *p == '[')) p = skip_nested(p, end);
        else while (p < end && *p != ',' && *p != '}') p++; /* number, true, false, null */
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end || *p != ',') return NULL;
        p++;
    }
}

static void run_file(const char *path)
{
    size_t len;
    char *text;
    FILE *f = fopen(path, "rb");
    cur_file = path;
    memset(&file_counts, 0, sizeof file_counts);
    if (!f) { printf("%s: cannot open\n", path); total[C_OTHER].fail++; return; }
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc(len + 1);
    len = fread(text, 1, len, f);
    fclose(f);
    const char *p = find_commands(text, text + len), *end = text + len;
    if (!p) { printf("%s: bad json\n", path); total[C_OTHER].fail++; free(text); return; }
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    spectest_reset();
    for (p = skip_ws(p + 1, end); p < end && *p != ']'; p = skip_ws(p, end)) {
        const char *q = *p == '{' ? skip_nested(p, end) : NULL;
        jval *c = q ? json_parse(p, (size_t)(q - p)) : NULL;
        if (!c) { printf("%s: bad json\n", path); total[C_OTHER].fail++; break; }
        p = skip_ws(q, end);
        if (p < end && *p == ',') p++;
        const char *why = NULL;
        jval *lv = json_get(c, "line");
        int line = lv ? atoi(lv->s) : 0;
        int kind = cmd_kind(json_str(c, "type"));
        int r = run_cmd(c, kind, line, &why);
        if (r > 0) { total[kind].pass++; file_counts.pass++; }
        else if (r == 0) { total[kind].fail++; file_counts.fail++; report(line, cmd_names[kind], why ? why : "", NULL); }
        else {
            total[kind].skip++; file_counts.skip++;
            if (r == -2) {
                nomem++;
                printf("  MEMORY %s:%d %s: skipped, lack of memory: %s\n", path, line, cmd_names[kind], why);
            } else if (verbose) {
                printf("  skip %s:%d %s: %s\n", path, line, cmd_names[kind], why);
            }
        }
        json_free(c);
    }
    printf("%-40s passed %5u  failed %4u  skipped %4u\n", path, file_counts.pass, file_counts.fail, file_counts.skip);
    free(text);
    for (size_t i = 0; i < nmods; i++) { free(mods[i].arena); free(mods[i].mem); free(mods[i].name); }
    free(mods); mods = NULL; nmods = 0; cur_mod = NULL;
#if SHARED_ARENA
    pool_used = 0;
#endif
    for (size_t i = 0; i < nregs; i++) free(regs[i].as);
    free(regs); regs = NULL; nregs = 0;
    for (size_t i = 0; i < nbins; i++) free(bins[i]);
    free(bins); bins = NULL; nbins = 0;
}

static void run_path(const char *path, void *ctx)
{
    (void)ctx;
    run_file(path);
}

int main(int argc, char **argv)
{
    counts all = {0, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) { verbose = 1; continue; }
        if (!strcmp(argv[i], "-1")) { mvp = 1; continue; }
        if (each_path(argv[i], run_path, NULL)) { printf("%s: cannot open\n", argv[i] + 1); total[C_OTHER].fail++; }
    }
    printf("\n%-24s %8s %8s %8s\n", "command", "passed", "failed", "skipped");
    for (int k = 0; k < C_N; k++) {
        if (!total[k].pass && !total[k].fail && !total[k].skip) continue;
        printf("%-24s %8u %8u %8u\n", cmd_names[k], total[k].pass, total[k].fail, total[k].skip);
        all.pass += total[k].pass; all.fail += total[k].fail; all.skip += total[k].skip;
    }
    printf("%-24s %8u %8u %8u\n", "TOTAL", all.pass, all.fail, all.skip);
    if (nomem) printf("%u of the skipped commands lack memory here (MEMORY lines above)\n", nomem);
    if (native_funcs) printf("native tier: %u of the %u functions instantiated were compiled\n", native_funcs, all_funcs);
#if SHARED_ARENA
    printf("arena: at most %zu of %u KiB in use\n", pool_peak >> 10, (unsigned)(ARENA_SIZE >> 10));
#endif
    free(spec_mem_buf);
    return all.fail ? 1 : 0;
}
