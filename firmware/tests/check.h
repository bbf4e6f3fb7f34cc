/*
 * The host tests' assertion: CHECK(cond, fmt, ...) counts a check, and on failure counts
 * it failed and prints the file, line and message. Each test program includes this once
 * and ends with `return failures ? 1 : 0;`.
 */
#ifndef WB_TESTS_CHECK_H
#define WB_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

#endif
