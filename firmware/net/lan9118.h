/*
 * SMSC LAN9118 Ethernet controller (QEMU's mps2-an386 maps it at 0x40200000, external
 * interrupt 13). The main loop polls it; the receive interrupt only wakes the core from
 * its wait (wfi) when a frame arrives, instead of at the next SysTick.
 */
#ifndef WB_LAN9118_H
#define WB_LAN9118_H

#include <stdint.h>

#define LAN9118_BASE 0x40200000u
#define LAN9118_MAX_FRAME 1514u /* without the FCS */
#define LAN9118_IRQ 13u /* AN386 (QEMU hw/arm/mps2.c): ethernet on external interrupt 13 */

/* Resets the controller, reads its MAC address into mac and enables transmit and
 * receive (own address and broadcast). 0, or -1 when no LAN9118 answers at the base. */
int lan9118_init(uint8_t mac[6]);
/* Queues one frame of len bytes (14..LAN9118_MAX_FRAME) gathered from the parts
 * (ptr, n) that next() returns in turn; 0, or -1 when it does not fit the TX FIFO now. */
typedef const uint8_t *(*lan9118_part)(void *ctx, uint32_t *n);
int lan9118_send(uint32_t len, lan9118_part next, void *ctx);
/* Takes the next received frame into buf (cap bytes, at least LAN9118_MAX_FRAME):
 * its length without the FCS, 0 when none is waiting. A frame with an error or of
 * another size is dropped, counted in *dropped. */
uint32_t lan9118_recv(uint8_t *buf, uint32_t cap, uint32_t *dropped);
/* Raises the interrupt line (active high) when a frame is received; the handler below
 * acknowledges it and counts it (lan9118_irqs), the frames wait for lan9118_recv. */
void lan9118_irq_on(void);
void lan9118_irq_handler(void);
extern volatile uint32_t lan9118_irqs;
/* The controller's free-running 25 MHz counter (FREE_RUN), for jitter sampling. */
uint32_t lan9118_free_run(void);

#endif
