/*
 * SMSC LAN9118 driver (net/lan9118.h): 32-bit FIFO access, one TX buffer per frame,
 * received frames read whole from the RX data FIFO. Register offsets and bits are the
 * datasheet's (SMSC LAN9118 rev. 1.5), checked against what QEMU's model implements.
 */
#include "lan9118.h"

#define REG(off) (*(volatile uint32_t *)(LAN9118_BASE + (off)))
#define RX_DATA 0x00u
#define TX_DATA 0x20u
#define RX_STATUS 0x40u
#define TX_STATUS 0x48u
#define IRQ_CFG 0x54u
#define INT_STS 0x58u
#define ID_REV 0x50u
#define INT_EN 0x5cu
#define BYTE_TEST 0x64u
#define RX_CFG 0x6cu
#define TX_CFG 0x70u
#define HW_CFG 0x74u
#define RX_FIFO_INF 0x7cu
#define TX_FIFO_INF 0x80u
#define PMT_CTRL 0x84u
#define FREE_RUN 0x9cu
#define MAC_CSR_CMD 0xa4u
#define MAC_CSR_DATA 0xa8u

#define HW_CFG_SRST 1u
#define PMT_READY 1u
#define TX_CFG_ON (1u << 1)
#define CSR_BUSY (1u << 31)
#define CSR_READ (1u << 30)
#define MAC_CR 1u
#define MAC_ADDRH 2u
#define MAC_ADDRL 3u
#define MAC_CR_RXEN (1u << 2)
#define MAC_CR_TXEN (1u << 3)
#define CMDA_FIRST (1u << 13)
#define CMDA_LAST (1u << 12)
#define RXS_ERROR (1u << 15)
#define IRQ_CFG_EN (1u << 8)
#define IRQ_CFG_POL (1u << 4)  /* active high */
#define IRQ_CFG_TYPE (1u << 0) /* push-pull */
#define INT_RSFL (1u << 3)     /* RX status FIFO above its level (0: any frame) */

volatile uint32_t lan9118_irqs;

void lan9118_irq_on(void)
{
    REG(INT_STS) = 0xffffffffu;
    REG(IRQ_CFG) = IRQ_CFG_EN | IRQ_CFG_POL | IRQ_CFG_TYPE;
    REG(INT_EN) = INT_RSFL;
}

void lan9118_irq_handler(void)
{
    REG(INT_STS) = INT_RSFL; /* the frames stay in the FIFO for the main loop */
    lan9118_irqs++;
}

static int csr_wait(void)
{
    for (uint32_t i = 0; i < 100000u; i++)
        if (!(REG(MAC_CSR_CMD) & CSR_BUSY))
            return 0;
    return -1;
}

static uint32_t mac_read(uint32_t reg)
{
    if (csr_wait())
        return 0;
    REG(MAC_CSR_CMD) = CSR_BUSY | CSR_READ | reg;
    csr_wait();
    return REG(MAC_CSR_DATA);
}

static void mac_write(uint32_t reg, uint32_t v)
{
    if (csr_wait())
        return;
    REG(MAC_CSR_DATA) = v;
    REG(MAC_CSR_CMD) = CSR_BUSY | reg;
    csr_wait();
}

int lan9118_init(uint8_t mac[6])
{
    if (REG(BYTE_TEST) != 0x87654321u || REG(ID_REV) >> 16 != 0x0118u)
        return -1;
    REG(HW_CFG) = HW_CFG_SRST;
    uint32_t i;
    for (i = 0; i < 100000u && (REG(HW_CFG) & HW_CFG_SRST); i++) {
    }
    for (; i < 200000u && !(REG(PMT_CTRL) & PMT_READY); i++) {
    }
    if (REG(HW_CFG) & HW_CFG_SRST)
        return -1;
    REG(INT_EN) = 0;
    uint32_t lo = mac_read(MAC_ADDRL), hi = mac_read(MAC_ADDRH);
    for (int k = 0; k < 4; k++)
        mac[k] = (uint8_t)(lo >> (8 * k));
    mac[4] = (uint8_t)hi;
    mac[5] = (uint8_t)(hi >> 8);
    REG(RX_CFG) = 0;           /* no offset, no end padding */
    REG(TX_CFG) = TX_CFG_ON;
    mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN); /* own address and broadcast, not promiscuous */
    return 0;
}

int lan9118_send(uint32_t len, lan9118_part next, void *ctx)
{
    if (len < 14 || len > LAN9118_MAX_FRAME)
        return -1;
    if ((REG(TX_FIFO_INF) & 0xffffu) < len + 8u)
        return -1;
    REG(TX_DATA) = CMDA_FIRST | CMDA_LAST | len;
    REG(TX_DATA) = len << 16 | len; /* tag (the length), length */
    uint32_t word = 0, nb = 0, left = len;
    while (left) {
        uint32_t n = 0;
        const uint8_t *p = next(ctx, &n);
        if (!p)
            break;
        if (n > left)
            n = left;
        left -= n;
        for (uint32_t k = 0; k < n; k++) { /* bytes go into FIFO words little-endian */
            word |= (uint32_t)p[k] << (8 * nb);
            if (++nb == 4) {
                REG(TX_DATA) = word;
                word = nb = 0;
            }
        }
    }
    while (left) { /* parts shorter than promised: pad, never leave the FIFO half a frame */
        if (++nb == 4) {
            REG(TX_DATA) = word;
            word = nb = 0;
        }
        left--;
    }
    if (nb)
        REG(TX_DATA) = word;
    while ((REG(TX_FIFO_INF) >> 16) & 0xffu) /* the status of sent frames: not needed */
        (void)REG(TX_STATUS);
    return 0;
}

uint32_t lan9118_recv(uint8_t *buf, uint32_t cap, uint32_t *dropped)
{
    while ((REG(RX_FIFO_INF) >> 16) & 0xffu) {
        uint32_t st = REG(RX_STATUS);
        uint32_t len = (st >> 16) & 0x3fffu; /* with the 4-byte FCS */
        uint32_t words = (len + 3u) / 4u;
        int ok = !(st & RXS_ERROR) && len >= 14u + 4u && len - 4u <= cap && len - 4u <= LAN9118_MAX_FRAME;
        for (uint32_t w = 0; w < words; w++) {
            uint32_t v = REG(RX_DATA);
            if (!ok)
                continue;
            for (uint32_t k = 0; k < 4 && 4 * w + k < len - 4u; k++)
                buf[4 * w + k] = (uint8_t)(v >> (8 * k));
        }
        if (ok)
            return len - 4u;
        (*dropped)++;
    }
    return 0;
}

uint32_t lan9118_free_run(void)
{
    return REG(FREE_RUN);
}
