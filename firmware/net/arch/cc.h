/* lwIP's port header for the Cortex-M firmware (picolibc, little-endian, no RTOS). */
#ifndef WB_LWIP_CC_H
#define WB_LWIP_CC_H

#include <stdint.h>
#include <stdlib.h>

#define BYTE_ORDER LITTLE_ENDIAN
#define LWIP_NO_INTTYPES_H 1
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "lu"
#define S32_F "ld"
#define X32_F "lx"
#define SZT_F "u"

/* No diagnostics; an assertion is a firmware bug: it reports the message on the UART
 * and resets (net/net.c). */
void wbn_assert(const char *msg);
#define LWIP_PLATFORM_DIAG(x) do { } while (0)
#define LWIP_PLATFORM_ASSERT(x) wbn_assert(x)

#endif
