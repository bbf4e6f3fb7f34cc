# Arduino Uno R4 Minima (Renesas RA4M1, Cortex-M4F at 48 MHz; Renode only). 32 KiB RAM:
# 1 app, 2 x 3 KiB module buffers (max_module 3 KiB; the spare receives a new version),
# a 15 KiB interpreter arena: 6 KiB of linear memory (a C app built by the builder needs
# its 4 KiB stack plus data: up to 2 KiB of data here; Rust's 8 KiB stack does not fit),
# the value stack cut to 256 slots (2 KiB) and 32 call frames, and ~7 KiB for the
# module's tables and its translated code (1.8-3.3x the code section). The largest example
# app (AssemblyScript config-driven, 1.7 KiB of code) needs a 14 KiB arena: qemutest runs
# every example that fits on QEMU's MPS2 with this budget. Frames up to 2 KiB (the
# protocol's floor), 1 KiB send buffer, 256-byte configurations, 4 KiB stack (the
# Ed25519 check needs ~1.9 KiB).
# Budget: 6 + 16 + 2 (rx) + 1 (tx) + ~2.7 (app and message state) + 4 (stack)
# = ~31.7 KiB of 32 (`make footprint` has the exact static figure).
# Tables (WB_MAX_TABLE): at most 512 elements of 4 bytes (2 KiB, a quarter of the ~7 KiB left for tables and code); a larger one is refused at load.
BOARD_CPU  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_DEFS := -DWBD_MAX_APPS=1 -DWBD_SLOT_SIZE=3072 -DWBD_ARENA_SIZE=15360 -DWBD_MEM_CAP=6144 \
              -DWBD_MAX_FRAME=2048 -DWBD_TX_SIZE=1024 -DWBD_CONFIG_SIZE=256 \
              -DWB_STACK_SLOTS=256 -DWB_CALL_DEPTH=32 -DWB_MAX_TABLE=512 -DWB_UART_RX_RING=512 -DWB_UART_TX_RING=512
# No native tier (wasm/wasm_jit.c): 32 KiB of RAM leaves no room for compiled code.
BOARD_CFLAGS :=
