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
# NET=1 builds the network image instead (boards with a board_net.ld: mps2-an386), into
# $(BUILD)/<board>-net: net/ (LAN9118, lwIP glue, TLS, the device's own key and
# enrollment) with lwIP 2.1.3 and Mbed TLS 2.28.3 from Debian's source packages, which
# hack/deps.sh unpacks into NET_SRC (never into the checkout); the UART is its console.
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
OUT := $(BUILD)/$(BOARD)$(if $(filter 1,$(NET)),-net)
LDSCRIPT := boards/$(BOARD)/board$(if $(filter 1,$(NET)),_net).ld

ifeq ($(NET),1)
ifeq ($(wildcard $(LDSCRIPT)),)
$(error boards/$(BOARD) has no network image (no $(LDSCRIPT)))
endif
NET_SRC ?= $(or $(WASMBED_NET_SRC),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wasmbed/src)
LWIP    := $(NET_SRC)/lwip-2.1.3/src
MBEDTLS := $(NET_SRC)/mbedtls-2.28.3
ifeq ($(wildcard $(LWIP)/core/tcp.c $(MBEDTLS)/library/ssl_tls.c),)
$(error lwIP 2.1.3 or Mbed TLS 2.28.3 not found in $(NET_SRC): run hack/deps.sh, which fetches Debian's source packages there)
endif
NET_INC    := -Inet -I$(LWIP)/include -I$(MBEDTLS)/include -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"'
NET_CFLAGS := -DWB_NET -DWBD_END_ON_CLOSE=1 $(NET_INC)
LWIP_FILES := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c core/memp.c core/netif.c core/pbuf.c \
              core/tcp.c core/tcp_in.c core/tcp_out.c core/timeouts.c core/ipv4/etharp.c core/ipv4/icmp.c \
              core/ipv4/ip4.c core/ipv4/ip4_addr.c core/ipv4/ip4_frag.c netif/ethernet.c
MBEDTLS_FILES := aes asn1parse asn1write base64 bignum cipher cipher_wrap constant_time ctr_drbg ecdh ecdsa ecp \
                 ecp_curves entropy gcm md memory_buffer_alloc oid pem pk pk_wrap pkparse pkwrite platform \
                 platform_util sha256 sha512 ssl_ciphersuites ssl_cli ssl_msg ssl_tls x509 x509_crt x509_create \
                 x509write_csr
# Their code is theirs: built with the image's CPU, size and section flags, not our warnings.
EXT_CFLAGS := $(BOARD_CPU) -Os -g -std=c11 -ffunction-sections -fdata-sections --specs=picolibc.specs $(NET_INC)
EXT_OBJ := $(LWIP_FILES:%.c=$(OUT)/obj/ext/lwip/%.o) $(MBEDTLS_FILES:%=$(OUT)/obj/ext/mbedtls/%.o)
endif

FW_CFLAGS := $(strip $(BOARD_CPU) -Os -g -std=c11 \
             -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -ffunction-sections -fdata-sections \
             --specs=picolibc.specs $(BOARD_DEFS) $(BOARD_CFLAGS) $(DEFS) $(if $(filter 1,$(FAULT_INJECT)),-DWB_FAULT_INJECT) \
             -DWB_DEVICE_ID='"$(WB_DEVICE_ID)"' $(NET_CFLAGS))
FW_LDFLAGS := $(strip -nostartfiles -Wl,--gc-sections -T $(LDSCRIPT) -Wl,-Map=$(OUT)/firmware.map $(BOARD_LDFLAGS))

SRC := boards/$(BOARD)/board.c boards/common/startup.c boards/common/main.c boards/common/fault.c boards/common/mpu.c \
       $(BOARD_STORE_SRC) $(if $(filter 1,$(FAULT_INJECT)),boards/common/inject.c) \
       device/device.c device/sha256.c crypto/ed25519.c crypto/sha512.c \
       proto/cbor.c proto/wbp.c app/wasmbed_app.c \
       wasm/wasm_load.c wasm/wasm_exec.c wasm/wasm_num.c wasm/wasm_jit.c common/utf8.c
HDR := $(wildcard boards/common/*.h boards/$(BOARD)/*.h common/*.h device/*.h crypto/*.h proto/*.h app/*.h wasm/*.h) \
       boards/common/sections.ld $(LDSCRIPT) boards/$(BOARD)/board.mk boards/board.mk \
       $(if $(BUDGET_OF),boards/$(BUDGET_OF)/board.mk)
OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(SRC))


# The flags in force are kept in $(OUT)/cflags.txt, rewritten only when they change, and
# every object depends on it: a new signing key, device id or buffer size rebuilds the image.
FLAGS_FILE := $(OUT)/cflags.txt
ifneq ($(file <$(FLAGS_FILE)),$(FW_CFLAGS) $(FW_LDFLAGS))
$(shell mkdir -p $(OUT))
$(file >$(FLAGS_FILE),$(FW_CFLAGS) $(FW_LDFLAGS))
endif

ifeq ($(NET),1)
SRC += net/net.c net/tls.c net/ident.c net/json.c net/lan9118.c
HDR += $(wildcard net/*.h net/arch/*.h)
OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(SRC)) $(EXT_OBJ)
$(OUT)/obj/ext/lwip/%.o: $(LWIP)/%.c net/lwipopts.h net/arch/cc.h $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(EXT_CFLAGS) -c $< -o $@
$(OUT)/obj/ext/mbedtls/%.o: $(MBEDTLS)/library/%.c net/mbedtls_config.h $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(EXT_CFLAGS) -c $< -o $@
endif

$(OUT)/firmware.bin: $(OUT)/firmware.elf
	$(ARM_OBJCOPY) -O binary $< $@

$(OUT)/firmware.elf: $(OBJ) $(FLAGS_FILE)
	$(ARM_CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ $(OBJ)

$(OUT)/obj/%.o: %.c $(HDR) $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(FW_CFLAGS) -c $< -o $@
