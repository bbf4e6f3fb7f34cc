# Arduino Nano 33 BLE (nRF52840, Cortex-M4F at 64 MHz; Renode only). 256 KiB RAM:
# 2 apps, 3 x 16 KiB module buffers (one receives a new version while the old runs),
# 2 x 84 KiB interpreter arenas, each backing one full 64 KiB page of linear memory (no
# module needs a compact memory here) and leaving 20 KiB for the value stack (4 KiB),
# call frames, the module's tables and its translated code (1.8-3.3x the code section:
# code sections up to ~4.5 KiB). Frames up to 8 KiB, 8 KiB stack.
# Budget: 48 + 168 + 8 (rx) + 2 (tx) + ~5 (app and message state) + 8 (stack)
# = ~239 KiB of 256 (`make footprint` has the exact static figure).
# Tables (WB_MAX_TABLE): at most 1024 elements of 4 bytes (4 KiB of the 20 KiB left); a larger one is refused at load.
BOARD_CPU  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_DEFS := -DWBD_MAX_APPS=2 -DWBD_SLOT_SIZE=16384 -DWBD_ARENA_SIZE=86016 -DWBD_MEM_CAP=65536 \
              -DWBD_MAX_FRAME=8192 -DWBD_TX_SIZE=2048 -DWBD_CONFIG_SIZE=512 \
              -DWB_MAX_TABLE=1024 -DWB_UART_RX_RING=1024 -DWB_UART_TX_RING=2048
# Native tier: functions compiled to Thumb-2 at load time (wasm/wasm_jit.c), in SRAM, which executes;
# 10 KiB of the 12 KiB stack are its machine stack budget (compiled and interpreted functions
# recursing into each other to the full call depth of 64 need ~9.4 KiB).
BOARD_CFLAGS := -DWASM_JIT -DWB_MACHINE_STACK=10240
