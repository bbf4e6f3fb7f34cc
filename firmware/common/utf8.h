/*
 * The one UTF-8 validator of the firmware: the loader's names, the ABI's publish topics,
 * the protocol's text strings and the device's log lines all check text with it.
 */
#ifndef WB_COMMON_UTF8_H
#define WB_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * 1 when s[0..n) is well-formed UTF-8 (RFC 3629, the Unicode standard's table 3-7): no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence at the end; else 0. An empty string is valid.
 */
int wb_utf8_valid(const uint8_t *s, size_t n);

#endif
