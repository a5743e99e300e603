/* check.h: CHECK(cond, fmt, ...), the one way the test programs here fail.
 * On a false cond it prints "<program>: FILE:LINE: <message> (<strerror of
 * errno>)" on stderr and exits 1, so the Rust test that runs the program
 * sees which check failed and why.
 * Define CHECK_PROGRAM (the program's name, a string literal) before
 * including; a program whose processes fork may define CHECK_PREFIX() to
 * print a prefix of its own (e.g. with the pid). */
#ifndef NOMMU_TESTS_CHECK_H
#define NOMMU_TESTS_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_PREFIX
#ifndef CHECK_PROGRAM
#error "define CHECK_PROGRAM before including check.h"
#endif
#define CHECK_PREFIX() fprintf(stderr, CHECK_PROGRAM ": ")
#endif

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            CHECK_PREFIX();                                                  \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " (%s)\n", strerror(errno));                     \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#endif
