/*
 * The native tier against the interpreter on an emulated Cortex-M4F (QEMU
 * mps2-an386): every case runs on a fresh instance of each engine under a
 * ladder of fuel budgets, and the result, the trap and the fuel left must be
 * the same. The spec suite (make spec-m4) runs with unlimited fuel; this is
 * where fuel exhaustion, the value stack and call depth limits, and calls
 * between compiled and interpreted functions meet the interpreter's answers.
 */
#include <stdint.h>
#include <string.h>

#include "../../wasm/wasm.h"
#include "parity_mods.h" /* fib_wasm, crc32_wasm, traps_wasm, translate_wasm, calls_wasm, floats_wasm (xxd -i) */

#include "m4.h"

typedef struct {
    const unsigned char *bin;
    const unsigned int *len;
    const char *func;
    uint32_t args[2];
} kase;

static const kase cases[] = {
    {fib_wasm, &fib_wasm_len, "fib", {15}},
    {fib_wasm, &fib_wasm_len, "fib_iter", {60}},
    {crc32_wasm, &crc32_wasm_len, "crc32", {0, 9}},
    {crc32_wasm, &crc32_wasm_len, "crc32", {65530, 100}}, /* runs off the end of memory */
    {traps_wasm, &traps_wasm_len, "unreachable", {0}},
    {traps_wasm, &traps_wasm_len, "div0", {0}},
    {traps_wasm, &traps_wasm_len, "div0", {7}},
    {traps_wasm, &traps_wasm_len, "overflow", {0}},
    {traps_wasm, &traps_wasm_len, "oob", {65532}},
    {traps_wasm, &traps_wasm_len, "oob", {65533}},
    {traps_wasm, &traps_wasm_len, "oob", {0xfffffffdu}},
    {traps_wasm, &traps_wasm_len, "store", {65535, 1}},
    {traps_wasm, &traps_wasm_len, "bad_conv", {0}},   /* a trapping float conversion, by the helper */
    {traps_wasm, &traps_wasm_len, "indirect", {0}},
    {traps_wasm, &traps_wasm_len, "indirect", {1}},
    {traps_wasm, &traps_wasm_len, "indirect", {2}},
    {traps_wasm, &traps_wasm_len, "spin", {0}},
    {traps_wasm, &traps_wasm_len, "deep", {0}},       /* call stack exhausted */
    {traps_wasm, &traps_wasm_len, "count", {1000}},
    {translate_wasm, &translate_wasm_len, "defer_block", {5, 0}},
    {translate_wasm, &translate_wasm_len, "defer_block", {5, 1}},
    {translate_wasm, &translate_wasm_len, "defer_set", {9}},
    {translate_wasm, &translate_wasm_len, "retarget", {3}},
    {translate_wasm, &translate_wasm_len, "drop_then_set", {4}},
    {translate_wasm, &translate_wasm_len, "br_if_value", {7, 0}},
    {translate_wasm, &translate_wasm_len, "br_if_value", {7, 1}},
    {translate_wasm, &translate_wasm_len, "br_table_value", {0}},
    {translate_wasm, &translate_wasm_len, "br_table_value", {1}},
    {translate_wasm, &translate_wasm_len, "br_table_value", {9}},
    {translate_wasm, &translate_wasm_len, "if_eqz", {0}},
    {translate_wasm, &translate_wasm_len, "if_eqz", {3}},
    {translate_wasm, &translate_wasm_len, "const_left", {-5}},
    {translate_wasm, &translate_wasm_len, "select_mem", {1}},
    {translate_wasm, &translate_wasm_len, "count", {100}},
    {translate_wasm, &translate_wasm_len, "cmp_branch", {3, 4}},
    {translate_wasm, &translate_wasm_len, "cmp_branch", {0x80000000u, 1}},
    /* floats: templates (f32) and the helper (the rest), at their edges */
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x7fc00000u, 0x3f800000u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x7fc00000u, 0x3f800000u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x7fc00000u, 0x3f800000u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x7fc00000u, 0x3f800000u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x3f800000u, 0x7fa00001u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x3f800000u, 0x7fa00001u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x3f800000u, 0x7fa00001u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x3f800000u, 0x7fa00001u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0xffc00001u, 0x7fc00002u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0xffc00001u, 0x7fc00002u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0xffc00001u, 0x7fc00002u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0xffc00001u, 0x7fc00002u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x7f800000u, 0xff800000u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x7f800000u, 0xff800000u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x7f800000u, 0xff800000u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x7f800000u, 0xff800000u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x0u, 0x80000000u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x0u, 0x80000000u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x0u, 0x80000000u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x0u, 0x80000000u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x1u, 0x3f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x1u, 0x3f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x1u, 0x3f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x1u, 0x3f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x7f7fffffu, 0x7f7fffffu}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x7f7fffffu, 0x7f7fffffu}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x7f7fffffu, 0x7f7fffffu}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x7f7fffffu, 0x7f7fffffu}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x40490fdbu, 0xc0000000u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x40490fdbu, 0xc0000000u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x40490fdbu, 0xc0000000u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x40490fdbu, 0xc0000000u}},
    {floats_wasm, &floats_wasm_len, "f32_arith", {0x3f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_misc", {0x3f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_cmp", {0x3f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_branch", {0x3f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x7fc00000u, 0x13c00000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x7fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x7fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x7fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x7f800001u, 0x45b779b1u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x7f800001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x7f800001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x7f800001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xffc00001u, 0x31f779b1u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xffc00001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xffc00001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xffc00001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x7f800000u, 0xa7800000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x7f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x7f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x7f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xff800000u, 0x27800000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xff800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xff800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xff800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x80000000u, 0x80000000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x80000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x0u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x0u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x0u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x0u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x1u, 0x9e3779b1u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x1u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x1u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x1u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x7f7fffffu, 0x948864fu}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x7f7fffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x7f7fffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x7f7fffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x4f000000u, 0x9f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x4f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x4f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x4f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xcf000000u, 0x1f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xcf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xcf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xcf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x4f800000u, 0x77800000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x4f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x4f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x4f800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xbf800000u, 0xe7800000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xbf800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xbf800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xbf800000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xbf000000u, 0xf000000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xbf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xbf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xbf000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x3f000000u, 0x8f000000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x3f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x3f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x3f000000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x3fc00000u, 0xd3c00000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x3fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x3fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x3fc00000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x40200000u, 0x76200000u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x40200000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x40200000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x40200000u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0xcf000001u, 0xbd3779b1u}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0xcf000001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0xcf000001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0xcf000001u, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_conv", {0x4effffffu, 0xc8864fu}},
    {floats_wasm, &floats_wasm_len, "f32_sqrt", {0x4effffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_s", {0x4effffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_trunc_u", {0x4effffffu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f64_ops", {0x7u, 0x9u}},
    {floats_wasm, &floats_wasm_len, "f64_ops", {0xfffffffbu, 0x75bcd15u}},
    {floats_wasm, &floats_wasm_len, "f64_ops", {0x80000000u, 0xffffffffu}},
    {floats_wasm, &floats_wasm_len, "f32_sum", {0x1eu, 0x0u}},
    {floats_wasm, &floats_wasm_len, "f32_sum", {0x186a0u, 0x0u}},
    /* call depth 40: 41 levels are allowed, whatever the kind of call */
    {calls_wasm, &calls_wasm_len, "down", {10}},
    {calls_wasm, &calls_wasm_len, "down", {40}},
    {calls_wasm, &calls_wasm_len, "down", {41}},
    {calls_wasm, &calls_wasm_len, "direct", {40}},
    {calls_wasm, &calls_wasm_len, "direct", {41}},
    {calls_wasm, &calls_wasm_len, "mixed", {10}},
    {calls_wasm, &calls_wasm_len, "mixed", {40}},
    {calls_wasm, &calls_wasm_len, "mixed", {41}},
};

/* Fuel budgets: none, tiny (stops in the entry charge), and around each case's needs. */
static const uint64_t budgets[] = {0, 1, 2, 3, 5, 8, 13, 40, 100, 333, 1000, 4096, 20000, 1000000};

static uint8_t arena_buf[2][65536 + 32768];
static uint32_t machine_stack; /* wasm_config.machine_stack of the runs (0: the default) */

typedef struct {
    wasm_err err;
    wasm_slot res;
    uint64_t fuel;
    uint32_t native, defined;
} outcome;

/* Runs k on a fresh instance; arena: bytes of arena to use (0: all of it). */
static int run_in(const kase *k, uint64_t fuel, int interpret_only, size_t arena, outcome *o, size_t *used)
{
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg;
    wasm_slot s[2] = {k->args[0], k->args[1]};
    memset(&cfg, 0, sizeof cfg);
    cfg.interpret_only = (uint8_t)interpret_only;
    cfg.call_depth = 40;
    cfg.stack_slots = 300;
    cfg.machine_stack = machine_stack;
    cfg.code_guard = M4_CODE_GUARD;
    m4_release(arena_buf[interpret_only], sizeof arena_buf[0]);
    wasm_arena_init(&a, arena_buf[interpret_only], arena ? arena : sizeof arena_buf[0]);
    if (wasm_module_load(k->bin, *k->len, &a, &m) || wasm_instantiate(m, &cfg, &a, fuel, &inst)) return -1;
    int32_t f = wasm_module_export(m, k->func, (uint32_t)strlen(k->func), WASM_EXTERN_FUNC);
    if (f < 0) return -1;
    o->err = wasm_call(inst, (uint32_t)f, s);
    o->res = o->err ? 0 : s[0];
    o->fuel = wasm_get_fuel(inst);
    o->native = wasm_instance_native_funcs(inst, &o->defined, NULL);
    if (used) *used = a.used;
    return 0;
}

static int run(const kase *k, uint64_t fuel, int interpret_only, outcome *o)
{
    return run_in(k, fuel, interpret_only, 0, o, NULL);
}

static int same(const outcome *in, const outcome *nat) { return in->err == nat->err && in->res == nat->res && in->fuel == nat->fuel; }

/*
 * Machine stack high-water mark of a native run, by painting the free stack below the
 * caller (tests/m4/m4.ld: the stack grows down from the top of RAM towards .bss).
 */
extern uint32_t _ebss;
#define PAINT 0xa5a5a5a5u
static uint32_t *paint_lo, *paint_hi;

__attribute__((noinline)) static void paint(void)
{
    uint32_t *sp = __builtin_frame_address(0);
    paint_hi = sp - 64;
    paint_lo = sp - 12288 > &_ebss ? sp - 12288 : &_ebss;
    for (uint32_t *p = paint_lo; p < paint_hi; p++) *p = PAINT;
}

static uint32_t painted_use(void)
{
    uint32_t *p = paint_lo;
    while (p < paint_hi && *p == PAINT) p++;
    return (uint32_t)(paint_hi - p) * 4u;
}

static uint32_t stack_of(const char *func, uint32_t n)
{
    kase k = {calls_wasm, &calls_wasm_len, func, {n, 0}};
    outcome o;
    paint();
    if (run(&k, 1000000, 0, &o) || o.err) return 0xffffffffu;
    return painted_use();
}

/*
 * Compiled code keeps {r4, lr} on the machine stack a call: a chain of calls through the
 * table must cost about what the same chain of direct calls does, and not the C frames
 * of a trip through the interpreter at every level (~260 bytes: 10 KiB at this depth,
 * more than the 8 KiB stack of the smaller boards at their depth of 64).
 */
static uint32_t check_stack(void)
{
    uint32_t direct = stack_of("direct", 40), down = stack_of("down", 40), mixed = stack_of("mixed", 40);
    m4_put_u("machine stack, 40 calls deep: direct ", direct);
    m4_put_u(" B, through the table ", down);
    m4_put_u(" B, compiled and interpreted in turn ", mixed);
    m4_puts(" B\n");
    if (direct == 0xffffffffu || down > direct + 128) {
        m4_puts("FAIL: calls through the table grow the machine stack more than direct calls\n");
        return 1;
    }
    /*
     * A machine stack budget smaller than that mix needs: the call traps as call stack
     * exhausted within the budget (plus the runner's own frames), instead of running on
     * below it, as it did past a board's stack before the budget existed.
     */
    kase k = {calls_wasm, &calls_wasm_len, "mixed", {40, 0}};
    outcome o;
    machine_stack = 3072;
    paint();
    int r = run(&k, 1000000, 0, &o);
    uint32_t used = painted_use();
    machine_stack = 0;
    m4_put_u("with a 3072 B machine stack budget: trap ", r ? 0 : o.err);
    m4_put_u(", machine stack used ", used);
    m4_puts(" B\n");
    if (r || o.err != WASM_TRAP_STACK_OVERFLOW || used > 3072 + 512) {
        m4_puts("FAIL: the machine stack budget does not hold\n");
        return 1;
    }
    return 0;
}

/*
 * A function of n loads in a loop, built here (its binary is ~10 n bytes): at n = 25000
 * its code is ~500 KiB and every B<cond>.W to its trap stubs needs the high offset bits;
 * at n = 60000 it is past the +-1 MiB those branches reach and must stay interpreted.
 * (param a, b) (result i32): a = 12345 loads out of bounds before the loop, a = 777 hits
 * unreachable after it, else the sum of the loads at b, twice. Module, arena and memory
 * live in the board's 16 MiB PSRAM at 0x21000000, which tests/m4/m4.ld leaves alone.
 */
#define PSRAM ((uint8_t *)0x21000000)

static uint32_t leb(uint8_t *p, uint32_t v)
{
    uint32_t n = 0;
    do { p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
    return n;
}

static uint32_t big_module(uint8_t *out, uint32_t n)
{
    static const uint8_t head[] = {0, 'a', 's', 'm', 1, 0, 0, 0,
        1, 7, 1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f,  /* type (i32 i32) -> i32 */
        3, 2, 1, 0, 5, 3, 1, 0, 1,              /* one function; memory 1 */
        7, 7, 1, 3, 'b', 'i', 'g', 0, 0};       /* export "big" */
    static const uint8_t pre[] = {1, 2, 0x7f,   /* locals s, i */
        0x20, 0, 0x41, 0xb9, 0xe0, 0, 0x46, 0x04, 0x40, 0x41, 0xf0, 0xa2, 0x04, 0x28, 2, 0, 0x0f, 0x0b,
        0x03, 0x40};                           /* if a == 12345: return load(70000); loop */
    static const uint8_t post[] = {0x20, 3, 0x41, 1, 0x6a, 0x22, 3, 0x41, 2, 0x49, 0x0d, 0, 0x0b,
        0x20, 0, 0x41, 0x89, 0x06, 0x46, 0x04, 0x40, 0x00, 0x0b, 0x20, 2, 0x0b};
    uint32_t body = sizeof pre + 10 * n + sizeof post, len = sizeof head, k;
    uint8_t lb[5];
    uint32_t nb = leb(lb, body);
    memcpy(out, head, sizeof head);
    out[len++] = 10;
    len += leb(out + len, 1 + nb + body);
    out[len++] = 1;
    memcpy(out + len, lb, nb);
    len += nb;
    memcpy(out + len, pre, sizeof pre);
    len += sizeof pre;
    for (k = 0; k < n; k++) {                   /* s += load offset=(k % 64) (b) */
        const uint8_t one[10] = {0x20, 2, 0x20, 1, 0x28, 2, (uint8_t)(k % 64), 0x6a, 0x21, 2};
        memcpy(out + len, one, 10);
        len += 10;
    }
    memcpy(out + len, post, sizeof post);
    return len + sizeof post;
}

static uint32_t check_big(void)
{
    static const uint32_t sizes[] = {25000, 60000};
    static const uint32_t args[][2] = {{0, 100}, {12345, 0}, {777, 0}, {0, 65533}, {1, 65000}};
    uint32_t fails = 0;
    for (uint32_t z = 0; z < 2; z++) {
        uint32_t len = big_module(PSRAM, sizes[z]);
        for (uint32_t c = 0; c < sizeof args / sizeof args[0]; c++) {
            outcome o[2];
            for (int interp = 0; interp < 2; interp++) {
                wasm_arena a;
                wasm_module *m;
                wasm_instance *inst;
                wasm_config cfg;
                wasm_slot s[2] = {args[c][0], args[c][1]};
                memset(&cfg, 0, sizeof cfg);
                cfg.interpret_only = (uint8_t)interp;
                cfg.code_guard = M4_CODE_GUARD;
                m4_release(PSRAM + (1u << 20), 14u << 20);
                wasm_arena_init(&a, PSRAM + (1u << 20), 14u << 20);
                if (wasm_module_load(PSRAM, len, &a, &m) || wasm_instantiate(m, &cfg, &a, 10000000, &inst)) {
                    m4_puts("FAIL: cannot instantiate the big function\n");
                    return 1;
                }
                o[interp].err = wasm_call(inst, 0, s);
                o[interp].res = o[interp].err ? 0 : s[0];
                o[interp].fuel = wasm_get_fuel(inst);
                o[interp].native = wasm_instance_native_funcs(inst, NULL, NULL);
            }
            if (o[0].err != o[1].err || o[0].res != o[1].res || o[0].fuel != o[1].fuel) {
                m4_put_u("MISMATCH big function of ", sizes[z]);
                m4_put_u(" loads, case ", c);
                m4_put_u(": interpreter err ", o[1].err);
                m4_put_u(" result ", (uint32_t)o[1].res);
                m4_put_u("; native tier err ", o[0].err);
                m4_put_u(" result ", (uint32_t)o[0].res);
                m4_puts("\n");
                fails++;
            }
            if (c == 0) {
                m4_put_u("big function of ", sizes[z]);
                m4_put_u(" loads: compiled ", o[0].native);
                m4_puts("\n");
                if (o[0].native != (z == 0)) {
                    m4_puts("FAIL: expected compiled below the branch range, interpreted above\n");
                    fails++;
                }
            }
        }
    }
    return fails;
}

int main(void)
{
    uint32_t checks = 0, fails = 0, compiled = 0;
    for (uint32_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (uint32_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
            outcome in, nat;
            checks++;
            if (run(&cases[c], budgets[b], 1, &in) || run(&cases[c], budgets[b], 0, &nat)) {
                m4_puts("cannot instantiate ");
                m4_puts(cases[c].func);
                m4_puts("\n");
                fails++;
                continue;
            }
            compiled += nat.native > 0;
            if (!same(&in, &nat) || in.native) {
                m4_puts("MISMATCH ");
                m4_puts(cases[c].func);
                m4_put_u(" budget ", (uint32_t)budgets[b]);
                m4_put_u(": interpreter err ", in.err);
                m4_put_u(" result ", (uint32_t)in.res);
                m4_put_u(" fuel left ", (uint32_t)in.fuel);
                m4_put_u("; native tier err ", nat.err);
                m4_put_u(" result ", (uint32_t)nat.res);
                m4_put_u(" fuel left ", (uint32_t)nat.fuel);
                m4_puts("\n");
                fails++;
            }
        }
    }
    /*
     * Arenas with room for only part of the code: the largest functions stay
     * interpreted, the rest is compiled, and the answers do not change.
     */
    uint32_t partial = 0;
    for (uint32_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        outcome in, nat;
        size_t base;
        if (run_in(&cases[c], 1000000, 1, 0, &in, &base)) { fails++; continue; }
        for (size_t extra = 0; extra <= 2048; extra += 124) { /* not a multiple of 8 either */
            /* the same arena for both: too small to load in is too small for both */
            int ri = run_in(&cases[c], 1000000, 1, base + extra, &in, NULL);
            int rn = run_in(&cases[c], 1000000, 0, base + extra, &nat, NULL);
            checks++;
            if (ri && rn) continue;
            partial += !rn && nat.native && nat.native < nat.defined;
            if (ri != rn || !same(&in, &nat)) {
                m4_puts("MISMATCH in a small arena: ");
                m4_puts(cases[c].func);
                m4_put_u(" extra ", (uint32_t)extra);
                m4_puts(ri != rn ? " (only one engine instantiated)\n" : "\n");
                fails++;
            }
        }
    }
    m4_put_u("runs with part of the module compiled: ", partial);
    m4_puts("\n");
    if (!partial) { m4_puts("no arena left part of a module compiled\n"); fails++; }
    m4_put_u("native tier vs interpreter: ", checks);
    m4_put_u(" cases x budgets, ", fails);
    m4_put_u(" mismatches; compiled code ran in ", compiled);
    m4_puts("\n");
    if (!compiled) m4_puts("nothing was compiled: is WASM_JIT defined?\n");
    fails += check_stack();
    fails += check_big();
    return fails || !compiled;
}
