/*
 * Size arithmetic that cannot wrap, for every place a count becomes a size (wasm/, app/,
 * device/, proto/). A product or sum that does not fit size_t saturates at SIZE_MAX: no
 * arena, buffer or limit holds that many bytes, so the request fails where it is checked
 * instead of wrapping to a small size that passes. On the boards size_t has 32 bits, where
 * 2^30 table entries of 4 bytes would otherwise come to 0 bytes.
 */
#ifndef WB_COMMON_SIZE_H
#define WB_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* a * b, or SIZE_MAX when it does not fit. */
static inline size_t wb_size_mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* a + b, or SIZE_MAX when it does not fit (so SIZE_MAX stays SIZE_MAX through a sum). */
static inline size_t wb_size_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

#endif
