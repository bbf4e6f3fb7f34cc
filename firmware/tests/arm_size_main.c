/*
 * Smallest embedder, only for `make size`: links the interpreter for
 * Cortex-M4 with newlib-nano so the figure includes what it pulls from
 * libgcc (soft double) and libc (memcpy/memset).
 */
#include "../wasm/wasm.h"

static uint8_t arena[16384];
extern const uint8_t app_bin[];
const uint8_t app_bin[] = {0, 'a', 's', 'm', 1, 0, 0, 0};

int main(void)
{
    wasm_arena a;
    wasm_module *m;
    wasm_instance *inst;
    wasm_config cfg = {0};
    wasm_slot s[4] = {0};
    wasm_arena_init(&a, arena, sizeof arena);
    if (wasm_module_load(app_bin, sizeof app_bin, &a, &m)) return 1;
    if (wasm_instantiate(m, &cfg, &a, 1000000, &inst)) return 2;
    return (int)wasm_call(inst, 0, s);
}
