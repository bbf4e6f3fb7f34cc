# STM32F4 Discovery (QEMU: netduinoplus2, STM32F405 at 168 MHz). 128 KiB SRAM:
# 2 apps, 3 x 16 KiB module buffers (one receives a new version while the old runs),
# 2 x 24 KiB interpreter arenas with 12 KiB of linear memory each.
# Tables (WB_MAX_TABLE): at most 512 elements of 4 bytes (2 KiB of the 12 KiB the arena leaves beside linear memory); a larger one is refused at load.
BOARD_CPU  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_DEFS := -DWBD_MAX_APPS=2 -DWBD_SLOT_SIZE=16384 -DWBD_ARENA_SIZE=24576 -DWBD_MEM_CAP=12288 \
              -DWBD_MAX_FRAME=4096 -DWBD_TX_SIZE=2048 -DWBD_CONFIG_SIZE=512 \
              -DWB_MAX_TABLE=512 -DWB_UART_RX_RING=1024 -DWB_UART_TX_RING=1024 -DWBD_STORE=1
# Native tier: functions compiled to Thumb-2 at load time (wasm/wasm_jit.c) into the arena, in SRAM;
# 10 KiB of the 12 KiB stack are its machine stack budget (compiled and interpreted functions
# recursing into each other to the full call depth of 64 need ~9.4 KiB).
# board_init reports its clock path in the boot log line (boards/common/main.c).
BOARD_CFLAGS := -DWB_BOOT_NOTE -DWASM_JIT -DWB_MACHINE_STACK=10240
# App store: flash sectors 10 and 11 (flash.c; off by itself under QEMU, which lacks the flash interface).
BOARD_STORE_SRC := boards/stm32f4-discovery/flash.c
QEMU_MACHINE := netduinoplus2
