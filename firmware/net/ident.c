/*
 * The device's own identity (net/net.h): the provisioned section, the DRBG, the P-256
 * key the board generates at first boot and never sends, the certificate it enrolls for
 * with the bootstrap token, and the identity store that keeps both.
 *
 * Identity store: two 4 KiB slots at 0x2037A000 (MPS2 AN386), right below the app store
 * and, like it, outside every ELF segment (boards/mps2-an386/board_net.ld), so a warm
 * reset keeps it and a power cycle loses it (boards/mps2-an386/store.c). A save writes
 * the slot not holding the newest record, with a higher sequence number and a SHA-256,
 * so a save cut short leaves the previous record. On a board with flash each slot is a
 * sector of its own.
 */
#include <stdio.h>
#include <string.h>

#include "../boards/common/board.h"
#include "lan9118.h"
#include "mbedtls/ecp.h"
#include "mbedtls/entropy.h"
#include "mbedtls/oid.h"
#include "mbedtls/pem.h"
#include "mbedtls/sha256.h"
#include "mbedtls/x509_csr.h"
#include "json.h"
#include "net.h"

/* ---- provisioned section ---- */

__attribute__((section(".wb_net"), used, aligned(4))) const uint8_t wb_net[WBN_SECTION];

const wbn_prov *wbn_cfg;
mbedtls_ctr_drbg_context wbn_drbg;
mbedtls_x509_crt wbn_ca;

/* A string field: len bytes of printable ASCII, NUL-padded to max. */
static int field_ok(const char *s, uint32_t len, uint32_t max)
{
    if (len == 0 || len >= max)
        return 0;
    for (uint32_t i = 0; i < max; i++)
        if (i < len ? (s[i] < 0x21 || s[i] > 0x7e) : s[i] != 0)
            return 0;
    return 1;
}

static const char *check_prov(const wbn_prov *p)
{
    uint8_t sum[32];
    if (memcmp(p->magic, "WBN1", 4) != 0)
        return "no WBN1 provisioning";
    mbedtls_sha256_ret((const uint8_t *)p, offsetof(wbn_prov, sum), sum, 0);
    if (memcmp(sum, p->sum, 32) != 0)
        return "the provisioning's checksum is wrong";
    if (!field_ok(p->id, p->id_len, WBN_ID_MAX) || !memchr(p->id, '/', p->id_len))
        return "bad device identity";
    if (!field_ok(p->host, p->host_len, WBN_HOST_MAX))
        return "bad gateway host name";
    if (!field_ok(p->token, p->token_len, WBN_TOKEN_MAX))
        return "bad bootstrap token";
    if (p->port == 0 || p->enroll_port == 0 || p->ip[0] == 0)
        return "bad gateway address";
    if (p->ca_len == 0 || p->ca_len > WBN_CA_MAX)
        return "bad CA certificate length";
    return NULL;
}

/* ---- identity store ---- */

#define STORE_BASE 0x2037a000u
#define STORE_SLOT 4096u
#define STORE_MAGIC 0x31494257u /* "WBI1" */
#define CERT_MAX 2048u
typedef struct {
    uint32_t magic, seq;
    uint8_t has_key, pad[1];
    uint16_t cert_len;   /* 0: not enrolled */
    uint8_t key[32];     /* the P-256 private scalar */
    uint8_t seed[32];    /* the DRBG's seed for the next boot */
    uint8_t id_sum[32];  /* SHA-256 of the identity and CA provisioned when it was made */
    uint8_t cert[CERT_MAX];
    uint8_t sum[32];     /* SHA-256 of everything above */
} id_rec;
_Static_assert(sizeof(id_rec) <= STORE_SLOT, "a record fits its slot");
_Static_assert(STORE_BASE + 2u * STORE_SLOT == 0x2037c000u, "the identity store ends where the app store starts");

static id_rec rec;  /* the current record, in RAM */
static int rec_slot = -1;

static const id_rec *slot(int i) { return (const id_rec *)(STORE_BASE + (uint32_t)i * STORE_SLOT); }

static int rec_valid(const id_rec *r)
{
    uint8_t sum[32];
    if (r->magic != STORE_MAGIC || r->cert_len > CERT_MAX)
        return 0;
    mbedtls_sha256_ret((const uint8_t *)r, offsetof(id_rec, sum), sum, 0);
    return memcmp(sum, r->sum, 32) == 0;
}

static void store_load(void)
{
    rec_slot = -1;
    for (int i = 0; i < 2; i++)
        if (rec_valid(slot(i)) && (rec_slot < 0 || (int32_t)(slot(i)->seq - slot(rec_slot)->seq) > 0))
            rec_slot = i;
    if (rec_slot >= 0)
        memcpy(&rec, slot(rec_slot), sizeof rec);
    else
        memset(&rec, 0, sizeof rec);
}

static void store_save(void)
{
    int to = rec_slot == 0 ? 1 : 0;
    rec.magic = STORE_MAGIC;
    rec.seq++;
    mbedtls_sha256_ret((const uint8_t *)&rec, offsetof(id_rec, sum), rec.sum, 0);
    memcpy((void *)(STORE_BASE + (uint32_t)to * STORE_SLOT), &rec, sizeof rec);
    rec_slot = to;
}

/* ---- entropy ----
 * Strong: the seed provisioned at flash time (32 bytes from the host's CSPRNG, unique per
 * image) hashed with the seed the previous boot stored, so every boot's DRBG differs even
 * where the board's own sources repeat. Weak: timer jitter (SysTick's current value and
 * the LAN9118's free-running counter around busy loops) and RAM that start-up does not
 * clear. docs/security.md says how little the weak sources give under QEMU. */
static uint32_t seed_polls;

static int src_seed(void *ctx, unsigned char *out, size_t len, size_t *olen)
{
    (void)ctx;
    mbedtls_sha256_context h;
    uint8_t d[32];
    mbedtls_sha256_init(&h);
    mbedtls_sha256_starts_ret(&h, 0);
    mbedtls_sha256_update_ret(&h, wbn_cfg->seed, 32);
    mbedtls_sha256_update_ret(&h, rec.seed, 32);
    mbedtls_sha256_update_ret(&h, (const uint8_t *)&seed_polls, sizeof seed_polls);
    mbedtls_sha256_finish_ret(&h, d);
    mbedtls_sha256_free(&h);
    seed_polls++;
    *olen = len < 32 ? len : 32;
    memcpy(out, d, *olen);
    return 0;
}

static int src_jitter(void *ctx, unsigned char *out, size_t len, size_t *olen)
{
    (void)ctx;
    mbedtls_sha256_context h;
    uint8_t d[32];
    mbedtls_sha256_init(&h);
    mbedtls_sha256_starts_ret(&h, 0);
    for (int i = 0; i < 64; i++) {
        uint32_t s[2] = {*(volatile uint32_t *)0xe000e018u /* SYST_CVR */, lan9118_free_run()};
        for (volatile uint32_t k = 0; k < (s[0] & 63u); k++) {
        }
        mbedtls_sha256_update_ret(&h, (const uint8_t *)s, sizeof s);
    }
    static int ram_done;
    if (!ram_done) { /* 64 KiB of the RAM no section uses (below the identity store) */
        mbedtls_sha256_update_ret(&h, (const uint8_t *)(STORE_BASE - 0x10000u), 0x10000u);
        ram_done = 1;
    }
    mbedtls_sha256_finish_ret(&h, d);
    mbedtls_sha256_free(&h);
    *olen = len < 32 ? len : 32;
    memcpy(out, d, *olen);
    return 0;
}

uint32_t wbn_rand32(void)
{
    uint32_t v = 0;
    mbedtls_ctr_drbg_random(&wbn_drbg, (unsigned char *)&v, sizeof v);
    return v;
}

static mbedtls_entropy_context entropy;

/* The identity and CA this record belongs to: a new provisioning starts afresh. */
static void prov_sum(uint8_t out[32])
{
    mbedtls_sha256_context h;
    mbedtls_sha256_init(&h);
    mbedtls_sha256_starts_ret(&h, 0);
    mbedtls_sha256_update_ret(&h, (const uint8_t *)wbn_cfg->id, WBN_ID_MAX);
    mbedtls_sha256_update_ret(&h, wbn_cfg->ca, wbn_cfg->ca_len);
    mbedtls_sha256_finish_ret(&h, out);
    mbedtls_sha256_free(&h);
}

int wbn_ident_start(mbedtls_pk_context *key, mbedtls_x509_crt *cert, int *have_cert)
{
    const wbn_prov *p = (const wbn_prov *)wb_net;
    __asm__("" : "+r"(p)); /* what flash holds after provisioning, not the initializer */
    const char *bad = check_prov(p);
    if (bad) {
        wbn_log("provisioning: %s", bad);
        return -1;
    }
    wbn_cfg = p;
    mbedtls_x509_crt_init(&wbn_ca);
    if (mbedtls_x509_crt_parse_der(&wbn_ca, p->ca, p->ca_len)) {
        wbn_log("provisioning: the CA certificate does not parse");
        return -1;
    }

    store_load();
    uint8_t ps[32];
    prov_sum(ps);
    if (rec_slot >= 0 && memcmp(rec.id_sum, ps, 32) != 0) {
        wbn_log("identity store: made for another identity or CA, starting afresh");
        uint8_t keep[32];
        memcpy(keep, rec.seed, 32);
        memset(&rec, 0, sizeof rec);
        memcpy(rec.seed, keep, 32);
    }
    memcpy(rec.id_sum, ps, 32);

    mbedtls_entropy_init(&entropy);
    mbedtls_entropy_add_source(&entropy, src_seed, NULL, 32, MBEDTLS_ENTROPY_SOURCE_STRONG);
    mbedtls_entropy_add_source(&entropy, src_jitter, NULL, 32, MBEDTLS_ENTROPY_SOURCE_WEAK);
    mbedtls_ctr_drbg_init(&wbn_drbg);
    if (mbedtls_ctr_drbg_seed(&wbn_drbg, mbedtls_entropy_func, &entropy, (const uint8_t *)p->id, p->id_len)) {
        wbn_log("DRBG: seeding failed");
        return -1;
    }
    /* The next boot's seed, stored before this boot uses a byte of the DRBG. */
    mbedtls_ctr_drbg_random(&wbn_drbg, rec.seed, sizeof rec.seed);

    mbedtls_pk_init(key);
    if (mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)))
        return -1;
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*key);
    int r;
    if (rec.has_key) {
        r = mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1);
        if (!r)
            r = mbedtls_mpi_read_binary(&ec->d, rec.key, 32);
        if (!r)
            r = mbedtls_ecp_check_privkey(&ec->grp, &ec->d);
        if (!r)
            r = mbedtls_ecp_mul(&ec->grp, &ec->Q, &ec->d, &ec->grp.G, mbedtls_ctr_drbg_random, &wbn_drbg);
        if (r) {
            wbn_log("identity store: the stored key is unusable (-0x%04x): a new one", (unsigned)-r);
            rec.has_key = 0;
            rec.cert_len = 0;
        }
    }
    if (!rec.has_key) {
        uint64_t t0 = wbn_clocks();
        r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, ec, mbedtls_ctr_drbg_random, &wbn_drbg);
        if (!r)
            r = mbedtls_mpi_write_binary(&ec->d, rec.key, 32);
        if (r) {
            wbn_log("key generation failed: -0x%04x", (unsigned)-r);
            return -1;
        }
        rec.has_key = 1;
        rec.cert_len = 0;
        wbn_log("generated a P-256 device key (%lu core clocks); it never leaves the board",
                (unsigned long)(wbn_clocks() - t0));
    } else {
        wbn_log("using the stored P-256 device key");
    }
    mbedtls_x509_crt_init(cert);
    *have_cert = 0;
    if (rec.cert_len) {
        uint32_t flags = 0;
        if (mbedtls_x509_crt_parse_der(cert, rec.cert, rec.cert_len) == 0 &&
            mbedtls_x509_crt_verify(cert, &wbn_ca, NULL, NULL, &flags, NULL, NULL) == 0) {
            *have_cert = 1;
            wbn_log("using the stored certificate for %s", p->id);
        } else {
            wbn_log("identity store: the stored certificate does not verify (flags 0x%lx): enrolling again",
                    (unsigned long)flags);
            mbedtls_x509_crt_free(cert);
            mbedtls_x509_crt_init(cert);
            rec.cert_len = 0;
        }
    }
    store_save();
    return 0;
}

/* ---- enrollment ---- */

/* The CSR: CN and one URI SAN wasmbed://<namespace>/<name>, signed with the key. The
 * gateway takes the identity from the token, not from here (docs/security.md). */
static int make_csr(mbedtls_pk_context *key, unsigned char *pem, size_t cap)
{
    char cn[8 + WBN_ID_MAX];
    uint8_t san[16 + WBN_ID_MAX];
    size_t ul = 10u + wbn_cfg->id_len; /* "wasmbed://" + id: at most 137 bytes */
    size_t h = 0;                      /* SEQUENCE { [6] IA5String uri }, DER lengths */
    size_t inner = 1 + (ul > 127 ? 2 : 1) + ul; /* the [6] element: tag, length, URI */
    san[h++] = 0x30;
    if (inner > 127)
        san[h++] = 0x81;
    san[h++] = (uint8_t)inner;
    san[h++] = 0x86;
    if (ul > 127)
        san[h++] = 0x81;
    san[h++] = (uint8_t)ul;
    if (h + ul > sizeof san)
        return -1;
    memcpy(san + h, "wasmbed://", 10);
    memcpy(san + h + 10, wbn_cfg->id, wbn_cfg->id_len);
    snprintf(cn, sizeof cn, "CN=%s", wbn_cfg->id);
    mbedtls_x509write_csr csr;
    mbedtls_x509write_csr_init(&csr);
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&csr, key);
    int r = mbedtls_x509write_csr_set_subject_name(&csr, cn);
    if (!r)
        r = mbedtls_x509write_csr_set_extension(&csr, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), san, h + ul);
    if (!r)
        r = mbedtls_x509write_csr_pem(&csr, pem, cap, mbedtls_ctr_drbg_random, &wbn_drbg);
    mbedtls_x509write_csr_free(&csr);
    return r;
}

/* The certificate's one URI SAN is wasmbed://<id> (what internal/pki issues). */
static int names_me(const mbedtls_x509_crt *c)
{
    char want[16 + WBN_ID_MAX];
    int wl = snprintf(want, sizeof want, "wasmbed://%s", wbn_cfg->id);
    for (const mbedtls_x509_sequence *s = &c->subject_alt_names; s && s->buf.p; s = s->next)
        if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6) && s->buf.len == (size_t)wl &&
            memcmp(s->buf.p, want, (size_t)wl) == 0)
            return 1;
    return 0;
}

static int same_public_key(mbedtls_pk_context *a, mbedtls_pk_context *b)
{
    static unsigned char da[160], db[160];
    int la = mbedtls_pk_write_pubkey_der(a, da, sizeof da), lb = mbedtls_pk_write_pubkey_der(b, db, sizeof db);
    return la > 0 && la == lb && memcmp(da + sizeof da - la, db + sizeof db - lb, (size_t)la) == 0;
}

static wbn_conn enroll_conn;
static char http[6144]; /* the request, then the response */
static char pem_buf[2600];

int wbn_enroll(mbedtls_pk_context *key, mbedtls_x509_crt *cert)
{
    unsigned char csr[1100];
    uint64_t t0 = wbn_clocks();
    int r = make_csr(key, csr, sizeof csr);
    uint64_t csr_clocks = wbn_clocks() - t0;
    if (r) {
        wbn_log("enroll: CSR failed: -0x%04x", (unsigned)-r);
        return -1;
    }
    /* The body first, after room for the header. */
    char *body = http + 256;
    size_t bl = 0, cap = sizeof http - 256;
    static const char k1[] = "{\"token\":\"", k2[] = "\",\"csr\":\"";
    memcpy(body, k1, sizeof k1 - 1);
    bl = wbn_json_put(body, sizeof k1 - 1, cap, wbn_cfg->token); /* printable, NUL-padded (checked at boot) */
    memcpy(body + bl, k2, sizeof k2 - 1);
    bl = wbn_json_put(body, bl + sizeof k2 - 1, cap, (const char *)csr);
    if (bl + 3 > cap)
        return -1;
    memcpy(body + bl, "\"}", 2);
    bl += 2;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /enroll HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %u\r\n\r\n",
                      wbn_cfg->host, (unsigned)bl);
    if (hl <= 0 || (size_t)hl >= sizeof head)
        return -1;

    mbedtls_ssl_config conf;
    char why[120];
    if (wbn_tls_config(&conf, NULL, NULL)) {
        mbedtls_ssl_config_free(&conf);
        return -1;
    }
    wbn_log("enroll: POST /enroll to %u.%u.%u.%u:%u as %s (CSR signed in %lu core clocks)", wbn_cfg->ip[0],
            wbn_cfg->ip[1], wbn_cfg->ip[2], wbn_cfg->ip[3], wbn_cfg->enroll_port, wbn_cfg->id, (unsigned long)csr_clocks);
    if (wbn_conn_open(&enroll_conn, &conf, wbn_cfg->enroll_port, 20000u, why, sizeof why)) {
        wbn_log("enroll: %s", why);
        mbedtls_ssl_config_free(&conf);
        return -1;
    }
    r = wbn_conn_write(&enroll_conn, (const uint8_t *)head, (uint32_t)hl, 10000u);
    if (!r)
        r = wbn_conn_write(&enroll_conn, (const uint8_t *)body, (uint32_t)bl, 10000u);
    /* The response, until the gateway closes (HTTP/1.0). */
    size_t n = 0;
    uint32_t start = wbn_now();
    while (!r && n < sizeof http - 1 && wbn_now() - start < 20000u) {
        int got = wbn_conn_read(&enroll_conn, (uint8_t *)http + n, (uint32_t)(sizeof http - 1 - n));
        if (got < 0)
            break;
        n += (size_t)got;
        if (!got)
            wbn_wait_step();
    }
    wbn_conn_close(&enroll_conn);
    mbedtls_ssl_config_free(&conf);
    http[n] = 0;
    if (r || n == 0) {
        wbn_log("enroll: no answer from the gateway");
        return -1;
    }
    int status = 0;
    size_t at = 0;
    if (wbn_http_response(http, n, &status, &at)) {
        wbn_log("enroll: not an HTTP answer (%u bytes)", (unsigned)n);
        return -1;
    }
    const char *b = http + at;
    if (status != 200) {
        char msg[100];
        size_t ml = 0;
        while (at + ml < n && ml < 90 && b[ml] >= 0x20 && b[ml] < 0x7f)
            ml++;
        snprintf(msg, sizeof msg, "%.*s", (int)ml, b);
        wbn_log("enroll: refused, HTTP %d: %s", status, msg);
        return status == 403 || status == 400 ? -2 : -1; /* a refused token stays refused */
    }
    size_t bn = n - at;
    mbedtls_x509_crt got, ca;
    mbedtls_x509_crt_init(&got);
    mbedtls_x509_crt_init(&ca);
    const char *fail = NULL;
    uint32_t flags = 0;
    if (wbn_json_get(b, bn, "ca", pem_buf, sizeof pem_buf) < 0 ||
        mbedtls_x509_crt_parse(&ca, (const unsigned char *)pem_buf, strlen(pem_buf) + 1))
        fail = "no CA certificate in the answer";
    else if (ca.raw.len != wbn_cfg->ca_len || memcmp(ca.raw.p, wbn_cfg->ca, ca.raw.len) != 0)
        fail = "the answer names another CA than the provisioned one";
    else if (wbn_json_get(b, bn, "certificate", pem_buf, sizeof pem_buf) < 0 ||
             mbedtls_x509_crt_parse(&got, (const unsigned char *)pem_buf, strlen(pem_buf) + 1))
        fail = "no certificate in the answer";
    else if (mbedtls_x509_crt_verify(&got, &wbn_ca, NULL, NULL, &flags, NULL, NULL))
        fail = "the certificate is not signed by the platform CA";
    else if (!same_public_key(&got.pk, key))
        fail = "the certificate is for another key";
    else if (!names_me(&got))
        fail = "the certificate names another device";
    else if (got.raw.len > CERT_MAX)
        fail = "the certificate is too large to store";
    if (fail) {
        wbn_log("enroll: %s", fail);
        mbedtls_x509_crt_free(&got);
        mbedtls_x509_crt_free(&ca);
        return -1;
    }
    memcpy(rec.cert, got.raw.p, got.raw.len);
    rec.cert_len = (uint16_t)got.raw.len;
    store_save();
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(cert);
    mbedtls_x509_crt_init(cert);
    *cert = got; /* ownership of the parsed chain moves */
    wbn_log("enroll: certificate for %s stored (%u bytes); handshake %lu core clocks of CPU", wbn_cfg->id,
            (unsigned)rec.cert_len, (unsigned long)enroll_conn.hs_clocks);
    return 0;
}
