/*
 * A mutation loop for the fuzz targets where libFuzzer is not available (gcc, CI):
 * seeds from files, random byte flips, inserts, deletes, truncations and splices.
 * Usage: fuzz_driver <iterations> seed...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXLEN (20 * 1024)
static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 10000;
    int nseeds = argc - 2;
    if (nseeds <= 0) {
        fprintf(stderr, "usage: fuzz_driver <iterations> seed...\n");
        return 2;
    }
    uint8_t **seeds = calloc((size_t)nseeds, sizeof *seeds);
    size_t *lens = calloc((size_t)nseeds, sizeof *lens);
    for (int i = 0; i < nseeds; i++) {
        FILE *f = fopen(argv[i + 2], "rb");
        seeds[i] = malloc(MAXLEN);
        lens[i] = f ? fread(seeds[i], 1, MAXLEN, f) : 0;
        if (f)
            fclose(f);
        LLVMFuzzerTestOneInput(seeds[i], lens[i]);
    }
    static uint8_t buf[MAXLEN];
    for (long it = 0; it < iters; it++) {
        int s = (int)(next() % (uint32_t)nseeds);
        size_t n = lens[s];
        memcpy(buf, seeds[s], n);
        int muts = 1 + (int)(next() % 4);
        for (int k = 0; k < muts; k++) {
            uint32_t op = next() % 6, pos = n ? next() % (uint32_t)n : 0;
            switch (op) {
            case 0: if (n) buf[pos] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: if (n) buf[pos] = (uint8_t)next(); break;
            case 2: if (n < MAXLEN) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = (uint8_t)next(); n++; } break;
            case 3: if (n) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;
            case 4: n = pos; break;
            case 5: { /* splice the tail of another seed */
                int o = (int)(next() % (uint32_t)nseeds);
                size_t from = lens[o] ? next() % lens[o] : 0, k2 = lens[o] - from;
                if (pos + k2 > MAXLEN) k2 = MAXLEN - pos;
                memcpy(buf + pos, seeds[o] + from, k2);
                n = pos + k2;
                break;
            }
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_driver: %ld mutations of %d seeds, no crash\n", iters, nseeds);
    for (int i = 0; i < nseeds; i++)
        free(seeds[i]);
    free(seeds);
    free(lens);
    return 0;
}
