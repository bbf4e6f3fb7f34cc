/*
 * Fuzz target: the frame decoder. Any input must be refused cleanly or decode to a
 * message whose canonical re-encoding decodes again to the same bytes; the stream
 * reader must agree with the one-shot decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/wbp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out1[WBP_HARD_MAX_FRAME + 3], out2[WBP_HARD_MAX_FRAME + 3], body[WBP_HARD_MAX_FRAME];
static wbp_msg m1, m2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t rel;
    size_t n1, n2;
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
    return 0;
}
