/*
 * check.h - a minimal test harness for the C unit tests: CHECK(cond) counts
 * and reports failures with file:line; DONE() prints "N passed, N failed"
 * and returns the exit status.
 */
#ifndef JETLUA_CHECK_H
#define JETLUA_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond)                                                            \
            check_passed++;                                                  \
        else {                                                               \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define DONE()                                                               \
    (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed ? 1 : 0)

#endif
