//  tests/selftest.c: runs the self-tests that live at the bottom of each module.
//  `selftest` runs all, `selftest -l` lists them, `selftest -t NAME [-v]` runs one.
//  A failing self-test aborts (assert), so tests/run.sh runs each in its own process.
//  SPDX-License-Identifier: Apache-2.0
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "selftest_table.h"

typedef struct {
    const char *name;
    void (*fn)(bool verbose);
} selftest_t;

static const selftest_t s_tests[] = {SELFTEST_TABLE};

int main(int argc, char **argv)
{
    const char *only = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-l")) {
            for (size_t t = 0; t < sizeof s_tests / sizeof s_tests[0]; t++)
                printf("%s\n", s_tests[t].name);
            return 0;
        } else if (!strcmp(argv[i], "-v"))
            verbose = true;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: selftest [-l] [-t NAME] [-v]\n");
            return 2;
        }
    }
    int ran = 0;
    for (size_t t = 0; t < sizeof s_tests / sizeof s_tests[0]; t++) {
        if (only && strcmp(only, s_tests[t].name))
            continue;
        printf("selftest %s ...\n", s_tests[t].name);
        fflush(stdout);
        s_tests[t].fn(verbose);
        printf("selftest %s OK\n", s_tests[t].name);
        ran++;
    }
    if (only && !ran) {
        fprintf(stderr, "selftest: no test named %s\n", only);
        return 2;
    }
    return 0;
}
