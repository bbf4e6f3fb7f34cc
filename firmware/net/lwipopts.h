/*
 * lwIP 2.1.3 options of the mps2-an386 network image: raw API only, NO_SYS=1 (no RTOS:
 * the firmware's main loop polls the LAN9118 and runs lwIP's timers), IPv4, ARP, ICMP and
 * TCP with a static address, one network interface and at most two TCP connections (the
 * gateway session, and the enrollment request at first boot). Sized for one TLS stream:
 * a 6-segment receive window, fed from a pool of full-frame buffers.
 */
#ifndef WB_LWIPOPTS_H
#define WB_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_TIMERS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_ALTCP 0
#define LWIP_SINGLE_NETIF 1

#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_TCP 1
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_STATS 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_CHECKSUM_CTRL_PER_NETIF 0

#define MEM_ALIGNMENT 4
#define MEM_SIZE (16 * 1024)
#define MEMP_NUM_PBUF 16
#define MEMP_NUM_TCP_PCB 2
#define MEMP_NUM_TCP_PCB_LISTEN 0
#define MEMP_NUM_TCP_SEG 32
#define PBUF_POOL_SIZE 24
#define PBUF_POOL_BUFSIZE 1536

#define TCP_MSS 1460
/* The receive window fits the LAN9118's RX data FIFO (2,640 words in QEMU's model, as on
 * the chip: 10,560 bytes; a full frame takes 380 words): the sender can never have more
 * in flight than the FIFO holds, so no frame is dropped while the core is busy (a drop
 * costs a retransmission timeout, a second or more). */
#define TCP_WND (6 * TCP_MSS)
#define TCP_SND_BUF (4 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_QUEUE_OOSEQ 0
#define LWIP_WND_SCALE 0

#define LWIP_CHKSUM_ALGORITHM 3
#define LWIP_PROVIDE_ERRNO 1

/* TCP's initial sequence numbers and local ports: from the DRBG (net/ident.c). */
#include <stdint.h>
uint32_t wbn_rand32(void);
#define LWIP_RAND() wbn_rand32()

#endif
