/*
 * Fuzz target: the frame decoder. Any input must be refused cleanly or decode to a
 * message whose canonical re-encoding decodes again to the same bytes; the stream
 * reader must agree with the one-shot decoder. The same input, and a decoded Deploy's
 * manifest, go through the manifest decoder too: refused cleanly, or re-encoded to bytes
 * that decode to the same manifest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/wbp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out1[WBP_HARD_MAX_FRAME + 3], out2[WBP_HARD_MAX_FRAME + 3], body[WBP_HARD_MAX_FRAME];
static wbp_msg m1, m2;
static uint8_t man1[WBP_MAX_MANIFEST], man2[WBP_MAX_MANIFEST];

static void manifest(const uint8_t *p, size_t n)
{
    wbp_manifest a, b;
    if (wbp_manifest_decode(p, n, &a) != WBP_OK)
        return;
    size_t n1 = wbp_manifest_encode(&a, man1, sizeof man1);
    if (n1 == 0 || n1 > n || wbp_manifest_decode(man1, n1, &b) != WBP_OK)
        abort(); /* whatever decodes must encode, canonically (never longer) */
    if (wbp_manifest_encode(&b, man2, sizeof man2) != n1 || memcmp(man1, man2, n1) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t rel;
    size_t n1, n2;
    manifest(data, size);
    wbp_err e = wbp_decode_frame(data, size, WBP_HARD_MAX_FRAME, &m1, &rel);
    /* the stream reader, fed in pieces of 1..8 bytes, reaches the same verdict */
    wbp_reader r;
    wbp_reader_init(&r, body, sizeof body, WBP_HARD_MAX_FRAME);
    size_t pos = 0, blen = 0;
    wbp_err es = WBP_E_TRUNCATED;
    while (pos < size) {
        size_t used, piece = 1 + (data[pos] & 7);
        if (piece > size - pos)
            piece = size - pos;
        wbp_err fe = wbp_reader_push(&r, data + pos, piece, &used, &blen);
        pos += used;
        if (fe) {
            es = fe;
            break;
        }
        if (blen) {
            es = pos == size ? wbp_decode(body, blen, &m2, &rel) : WBP_E_MALFORMED;
            break;
        }
    }
    if (es != e)
        abort();
    if (e)
        return 0;
    if (wbp_encode_frame(&m1, out1, sizeof out1, WBP_HARD_MAX_FRAME, &n1))
        abort(); /* whatever decodes must encode */
    if (wbp_decode_frame(out1, n1, WBP_HARD_MAX_FRAME, &m2, &rel))
        abort();
    if (wbp_encode_frame(&m2, out2, sizeof out2, WBP_HARD_MAX_FRAME, &n2) || n1 != n2 || memcmp(out1, out2, n1))
        abort();
    if (n1 > size)
        abort(); /* canonical is never longer than the input */
    if (m1.type == WBP_DEPLOY && m1.u.deploy.manifest.n)
        manifest(m1.u.deploy.manifest.p, m1.u.deploy.manifest.n);
    return 0;
}
