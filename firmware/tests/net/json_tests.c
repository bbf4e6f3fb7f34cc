/*
 * The network image's enrollment parsing (net/json.c) on the host with the sanitizers:
 * the request's JSON strings, the gateway's answer read back, and hostile answers:
 * missing or nested keys, bad escapes, non-ASCII and NUL escapes, values too long,
 * strings cut short, HTTP heads that are not.
 */
#include <string.h>

#include "../../net/json.h"
#include "../check.h"

static int get(const char *js, const char *name, char *out, size_t cap)
{
    return wbn_json_get(js, strlen(js), name, out, cap);
}

int main(void)
{
    char buf[256], out[128];

    /* put: escapes what JSON needs, drops what it cannot carry, stops short of cap */
    size_t n = wbn_json_put(buf, 0, sizeof buf, "a\"b\\c\nd\te\x01\xff");
    buf[n] = 0;
    CHECK(strcmp(buf, "a\\\"b\\\\c\\nde") == 0, "put escapes: %s", buf);
    n = wbn_json_put(buf, 0, 12, "0123456789abcdef");
    CHECK(n == 5 && n + 8 > 12, "put stops once the next escape might not fit: %u", (unsigned)n);

    /* get: the gateway's answer, as Go's encoder writes it */
    const char *answer = "{\"certificate\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\u002b/=\\n-----END CERTIFICATE-----\\n\","
                         "\"ca\":\"x\\/y\"}\n";
    CHECK(get(answer, "certificate", out, sizeof out) == 62 &&
              strcmp(out, "-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n") == 0,
          "certificate: %s", out);
    CHECK(get(answer, "ca", out, sizeof out) == 3 && strcmp(out, "x/y") == 0, "ca: %s", out);

    /* round trip through put */
    const char *pem = "-----BEGIN CERTIFICATE REQUEST-----\nMII\"\\\n";
    strcpy(buf, "{\"csr\":\"");
    n = wbn_json_put(buf, strlen(buf), sizeof buf, pem);
    memcpy(buf + n, "\"}", 3);
    CHECK(get(buf, "csr", out, sizeof out) == (int)strlen(pem) && strcmp(out, pem) == 0, "round trip: %s", out);

    static const struct {
        const char *js, *name, *why;
    } bad[] = {
        {"{\"ca\":\"x\"}", "certificate", "missing"},
        {"{\"certificate\":1}", "certificate", "not a string"},
        {"{\"certificate\":\"abc", "certificate", "cut short"},
        {"{\"certificate\":\"a\\qb\"}", "certificate", "unknown escape"},
        {"{\"certificate\":\"a\\u00e9\"}", "certificate", "non-ASCII escape"},
        {"{\"certificate\":\"a\\u0000b\"}", "certificate", "NUL escape"},
        {"{\"certificate\":\"a\\u00\"}", "certificate", "short \\u"},
        {"{\"certificate\":\"a\\u00g1\"}", "certificate", "bad hex"},
        {"{\"certificate\":\"a\nb\"}", "certificate", "raw control character"},
        {"{\"certificate\":\"a\\", "certificate", "backslash at the end"},
        {"{\"x\":{\"certificate\":\"nested\"}}", "certificate", "nested, not top-level"},
        {"{\"x\":\"certificate\",\"y\":\"z\"}", "certificate", "a value, not a key"},
        {"{\"certificatex\":\"v\"}", "certificate", "a longer key"},
        {"", "certificate", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(get(bad[i].js, bad[i].name, out, sizeof out) < 0, "refused (%s): %s", bad[i].why, bad[i].js);
    char small[4];
    CHECK(get("{\"ca\":\"abcd\"}", "ca", small, sizeof small) < 0, "a value longer than the buffer");
    CHECK(get("{\"ca\":\"abc\"}", "ca", small, sizeof small) == 3, "a value that just fits");
    CHECK(wbn_json_get("{\"ca\":\"abc\"}", 7, "ca", out, sizeof out) < 0, "n bounds the input, not a NUL");

    /* HTTP heads */
    int status = 0;
    size_t body = 0;
    const char *ok = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}";
    CHECK(wbn_http_response(ok, strlen(ok), &status, &body) == 0 && status == 200 && strcmp(ok + body, "{}") == 0,
          "200 answer");
    const char *denied = "HTTP/1.1 403 Forbidden\r\n\r\nrefused\n";
    CHECK(wbn_http_response(denied, strlen(denied), &status, &body) == 0 && status == 403, "403 answer");
    static const char *not_http[] = {"HTTP/1.1 200 OK\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
                                     "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 2000\r\n\r\n", "HTTP/1.1 ", "SSH-2.0\r\n\r\n"};
    for (size_t i = 0; i < sizeof not_http / sizeof not_http[0]; i++)
        CHECK(wbn_http_response(not_http[i], strlen(not_http[i]), &status, &body) < 0, "not an answer: %s",
              not_http[i]);

    printf("json_tests: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
