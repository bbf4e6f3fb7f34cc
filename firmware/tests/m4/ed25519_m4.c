/*
 * Ed25519 verification time on an emulated Cortex-M4F (QEMU mps2-an386, -icount:
 * SysTick counts 40 executed instructions per tick) and its stack use (the stack below
 * main's frame is painted, then scanned after the call).
 */
#include <stdint.h>
#include <string.h>

#include "../../crypto/ed25519.h"

#include "m4.h"

/* RFC 8032 TEST 2 */
static const uint8_t pub[32] = {0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
                                0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c};
static const uint8_t sig[64] = {0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f, 0x64, 0x25, 0x40,
                                0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76, 0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda,
                                0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99, 0x6e, 0x45, 0x8f, 0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c,
                                0x38, 0x7b, 0x2e, 0xae, 0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00};
static const uint8_t msg[1] = {0x72};

#define PAINT 8192u

static uint32_t sp(void)
{
    uint32_t v;
    __asm__ volatile("mov %0, sp" : "=r"(v));
    return v;
}

int main(void)
{
    SYST_RVR = 0xffffff;
    SYST_CVR = 0;
    SYST_CSR = 5;
    uint32_t base = sp();
    volatile uint8_t *lo = (volatile uint8_t *)(base - PAINT); /* below the stack pointer: unused yet */
    for (uint32_t i = 0; i < PAINT; i++)
        lo[i] = 0xa5;
    uint32_t t = m4_now();
    int ok = wb_ed25519_verify(sig, msg, 1, pub) == 0;
    t = (m4_now() - t) & 0xffffff;
    uint32_t i = 0;
    while (i < PAINT && lo[i] == 0xa5)
        i++;
    uint32_t stack = PAINT - i; /* bytes below main's frame written by the call */
    uint8_t bad[64];
    memcpy(bad, sig, 64);
    bad[1] ^= 1;
    ok = ok && wb_ed25519_verify(bad, msg, 1, pub) != 0;
    m4_put_u("ed25519 verify (RFC 8032 TEST 2): instructions ", t * 40);
    m4_put_u(", stack bytes ~", stack);
    m4_puts(ok ? "\nverify ok\n" : "\nVERIFY FAILED\n");
    return !ok;
}
