/*
 * Fuzz target: the enrollment answer's parsing (net/json.c), hostile bytes from the
 * network. Any input must be refused or give values that fit their buffers, hold no NUL
 * and survive wbn_json_put and wbn_json_get again unchanged (printable ASCII and '\n').
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../net/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char val[2600], again[2600], enc[6000];

static void field(const char *js, size_t n, const char *name)
{
    int l = wbn_json_get(js, n, name, val, sizeof val);
    if (l < 0)
        return;
    if ((size_t)l >= sizeof val || val[l] != 0 || strlen(val) != (size_t)l)
        abort();
    for (int i = 0; i < l; i++)
        if (((unsigned char)val[i] < 0x20 && val[i] != '\n') || (unsigned char)val[i] > 0x7f)
            return; /* \t, \r, \b, \f: valid JSON the request writer drops, no round trip */
    strcpy(enc, "{\"v\":\"");
    size_t e = wbn_json_put(enc, strlen(enc), sizeof enc, val);
    memcpy(enc + e, "\"}", 3);
    int l2 = wbn_json_get(enc, e + 2, "v", again, sizeof again);
    size_t kept = 0;
    for (int i = 0; i < l; i++)
        kept += val[i] != 0x7f;
    if (l2 < 0 || (size_t)l2 != kept)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *r = (const char *)data;
    int status;
    size_t body = 0;
    if (wbn_http_response(r, size, &status, &body) == 0) {
        if (body > size || status < 100 || status > 999)
            abort();
        r += body;
        size -= body;
    }
    field(r, size, "certificate");
    field(r, size, "ca");
    return 0;
}
