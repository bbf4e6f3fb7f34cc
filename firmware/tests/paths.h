/* Command-line file arguments of the test drivers: a path, or @list for the paths in a file. */
#ifndef WASMBED_TESTS_PATHS_H
#define WASMBED_TESTS_PATHS_H

/* Calls fn(path, ctx) for arg, or for every non-empty line of file list when arg is "@list"
 * (the Cortex-M4 images get their arguments over semihosting, whose command line is short).
 * Returns -1 when the list cannot be opened, else 0. */
int each_path(const char *arg, void (*fn)(const char *path, void *ctx), void *ctx);

#endif
