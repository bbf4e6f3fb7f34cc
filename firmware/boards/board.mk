# Builds one board image: make -f boards/board.mk BOARD=<dir under boards/> [BUILD=build] [DEFS=...]
# (the firmware Makefile's `boards` target calls it for every board).
#
# Each boards/<board>/board.mk sets:
#   BOARD_CPU     core and float ABI, e.g. -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
#   BOARD_DEFS    the device runtime's buffer sizes (-DWBD_MAX_APPS=... and so on)
#   BOARD_CFLAGS  optional: further compiler flags for this board
#   BOARD_LDFLAGS optional: further linker flags for this board
#   BOARD_STORE_SRC optional: the board's app store driver (board_store(), boards/common/board.h),
#                 built with -DWBD_STORE=1 in BOARD_DEFS; not part of the HAL's footprint
# DEFS carries build-wide defines from the caller (the platform signing key).
# BUDGET_OF=<board> builds BOARD's image with another board's BOARD_DEFS (the QEMU test
# runs the RA4M1's buffer budget on mps2-an386); use its own BUILD directory.
# FAULT_INJECT=1 adds boards/common/inject.c, faults an app provokes through sensor_read
# (the QEMU fault tests); never in a shipped image. Its own BUILD directory too.
BUILD ?= build
BOARD ?= stm32f4-discovery
BOARD_CPU :=
BOARD_DEFS :=
BOARD_CFLAGS :=
BOARD_LDFLAGS :=
BOARD_STORE_SRC :=
include boards/$(BOARD)/board.mk
ifneq ($(BUDGET_OF),)
own_cpu := $(BOARD_CPU)
include boards/$(BUDGET_OF)/board.mk
BOARD_CPU := $(own_cpu)
endif
ifeq ($(strip $(BOARD_CPU)),)
$(error boards/$(BOARD)/board.mk does not set BOARD_CPU (e.g. -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16))
endif

ARM_CC      ?= arm-none-eabi-gcc
ARM_OBJCOPY ?= arm-none-eabi-objcopy
WB_DEVICE_ID ?= default/$(BOARD)
DEFS ?=
OUT := $(BUILD)/$(BOARD)

FW_CFLAGS := $(strip $(BOARD_CPU) -Os -g -std=c11 \
             -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -ffunction-sections -fdata-sections \
             --specs=picolibc.specs $(BOARD_DEFS) $(BOARD_CFLAGS) $(DEFS) $(if $(filter 1,$(FAULT_INJECT)),-DWB_FAULT_INJECT) \
             -DWB_DEVICE_ID='"$(WB_DEVICE_ID)"')
FW_LDFLAGS := $(strip -nostartfiles -Wl,--gc-sections -T boards/$(BOARD)/board.ld -Wl,-Map=$(OUT)/firmware.map $(BOARD_LDFLAGS))

SRC := boards/$(BOARD)/board.c boards/common/startup.c boards/common/main.c boards/common/fault.c boards/common/mpu.c \
       $(BOARD_STORE_SRC) $(if $(filter 1,$(FAULT_INJECT)),boards/common/inject.c) \
       device/device.c device/sha256.c crypto/ed25519.c crypto/sha512.c \
       proto/cbor.c proto/wbp.c app/wasmbed_app.c \
       wasm/wasm_load.c wasm/wasm_exec.c wasm/wasm_num.c wasm/wasm_jit.c common/utf8.c
HDR := $(wildcard boards/common/*.h boards/$(BOARD)/*.h common/*.h device/*.h crypto/*.h proto/*.h app/*.h wasm/*.h) \
       boards/common/sections.ld boards/$(BOARD)/board.ld boards/$(BOARD)/board.mk boards/board.mk \
       $(if $(BUDGET_OF),boards/$(BUDGET_OF)/board.mk)
OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(SRC))

# The flags in force are kept in $(OUT)/cflags.txt, rewritten only when they change, and
# every object depends on it: a new signing key, device id or buffer size rebuilds the image.
FLAGS_FILE := $(OUT)/cflags.txt
ifneq ($(file <$(FLAGS_FILE)),$(FW_CFLAGS) $(FW_LDFLAGS))
$(shell mkdir -p $(OUT))
$(file >$(FLAGS_FILE),$(FW_CFLAGS) $(FW_LDFLAGS))
endif

$(OUT)/firmware.bin: $(OUT)/firmware.elf
	$(ARM_OBJCOPY) -O binary $< $@

$(OUT)/firmware.elf: $(OBJ) $(FLAGS_FILE)
	$(ARM_CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ $(OBJ)

$(OUT)/obj/%.o: %.c $(HDR) $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(FW_CFLAGS) -c $< -o $@
