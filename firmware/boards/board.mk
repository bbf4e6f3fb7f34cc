# Builds one board image: make -f boards/board.mk BOARD=<dir under boards/> [BUILD=build]
# (the firmware Makefile's `boards` target calls it for every board).
BUILD ?= build
BOARD ?= stm32f4-discovery
include boards/$(BOARD)/board.mk

ARM_CC      ?= arm-none-eabi-gcc
ARM_OBJCOPY ?= arm-none-eabi-objcopy
WB_DEVICE_ID ?= default/$(BOARD)
OUT := $(BUILD)/$(BOARD)

FW_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -g -std=c11 \
             -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -ffunction-sections -fdata-sections \
             --specs=picolibc.specs -DWASM_THREADED=0 $(BOARD_DEFS) -DWB_DEVICE_ID='"$(WB_DEVICE_ID)"'
FW_LDFLAGS := -nostartfiles -Wl,--gc-sections -T boards/$(BOARD)/board.ld -Wl,-Map=$(OUT)/firmware.map

SRC := boards/$(BOARD)/board.c boards/common/startup.c boards/common/main.c \
       device/device.c device/sha256.c proto/cbor.c proto/wbp.c app/wasmbed_app.c \
       wasm/wasm_load.c wasm/wasm_exec.c wasm/wasm_num.c
HDR := $(wildcard boards/common/*.h device/*.h proto/*.h app/*.h wasm/*.h) boards/common/sections.ld \
       boards/$(BOARD)/board.ld boards/$(BOARD)/board.mk boards/board.mk
OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(SRC))

$(OUT)/firmware.bin: $(OUT)/firmware.elf
	$(ARM_OBJCOPY) -O binary $< $@

$(OUT)/firmware.elf: $(OBJ)
	$(ARM_CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ $(OBJ)

$(OUT)/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(FW_CFLAGS) -c $< -o $@
