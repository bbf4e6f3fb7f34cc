/* See paths.h. */
#include "paths.h"

#include <stdio.h>
#include <string.h>

int each_path(const char *arg, void (*fn)(const char *path, void *ctx), void *ctx)
{
    char line[4096];
    FILE *f;
    if (arg[0] != '@') {
        fn(arg, ctx);
        return 0;
    }
    if (!(f = fopen(arg + 1, "r"))) return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) fn(line, ctx);
    }
    fclose(f);
    return 0;
}
