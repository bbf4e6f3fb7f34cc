# Arm MPS2 AN386 (QEMU mps2-an386, Cortex-M4 at 25 MHz). 4 MiB RAM, 528 KiB of it the app store:
# 4 apps, 5 x 64 KiB module buffers, 4 x 160 KiB arenas each backing 128 KiB (two pages)
# of linear memory, frames up to 16 KiB.
# Tables (WB_MAX_TABLE): at most 2048 elements of 4 bytes (8 KiB of the 32 KiB left); a larger one is refused at load.
BOARD_CPU  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_DEFS := -DWBD_MAX_APPS=4 -DWBD_SLOT_SIZE=65536 -DWBD_ARENA_SIZE=163840 -DWBD_MEM_CAP=131072 \
              -DWBD_MAX_FRAME=16384 -DWBD_TX_SIZE=2048 -DWBD_CONFIG_SIZE=1024 \
              -DWB_MAX_TABLE=2048 -DWB_UART_RX_RING=1024 -DWB_UART_TX_RING=2048 -DWBD_STORE=1
# Native tier: functions compiled to Thumb-2 at load time (wasm/wasm_jit.c), in SRAM, which executes;
# 12 KiB of the 16 KiB stack are its machine stack budget (compiled and interpreted functions
# recursing into each other to the full call depth of 64 need ~9.4 KiB).
BOARD_CFLAGS := -DWASM_JIT -DWB_MACHINE_STACK=12288
# App store: the top 528 KiB of the RAM, which board.ld leaves out of the image and a warm
# reset does not clear (store.c; 3,568 KiB remain for the image).
BOARD_STORE_SRC := boards/mps2-an386/store.c
QEMU_MACHINE := mps2-an386
