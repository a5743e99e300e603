/* futex_efault: futex on a word outside the caller's mappings.
 * Usage: futex_efault
 * A page mapped and unmapped again (still inside the arena, so the call
 * goes to the server): FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET and
 * FUTEX_WAKE_BITSET on it fail EFAULT with and without FUTEX_PRIVATE_FLAG,
 * and so do FUTEX_REQUEUE, FUTEX_CMP_REQUEUE and FUTEX_WAKE_OP with it as
 * uaddr or as uaddr2. A PROT_NONE mapping (LTP's bad address) answers EFAULT too, as
 * on MMU Linux (a server decision beside spec §8.3, docs/futex.md); a good
 * word still works (a wake finds nobody). A two-word operation from a word
 * outside the arena (a static) to a bad arena word is EFAULT too, and so is
 * a wait (on an arena word or a static) whose timeout points into an
 * unmapped or PROT_NONE arena page (the host maps the arena read-write). Prints "futex_efault: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "futex_efault"
#include "check.h"

static long call(int *uaddr, int op, int val, long val2, int *uaddr2, int val3) {
    errno = 0;
    return futex(uaddr, op, val, (const struct timespec *)(uintptr_t)val2, uaddr2, val3);
}

/* A wait that is wrongly accepted ends after 50 ms instead of hanging. */
static long wait_briefly(int *uaddr, int op) {
    struct timespec t = {0, 50 * 1000 * 1000};
    if ((op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
        struct timespec now;
        CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0, "clock_gettime");
        t.tv_sec = now.tv_sec;
        t.tv_nsec = now.tv_nsec + t.tv_nsec;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec += 1;
            t.tv_nsec -= 1000000000L;
        }
    }
    errno = 0;
    return futex(uaddr, op, 0, &t, NULL, -1);
}

/* FUTEX_WAKE_OP's val3 storing 0 over the good word's 0. */
#define SET_0 FUTEX_OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0)

/* Every form with `bad` as the word it checks, `good` the other word. */
static void every_form(int *bad, int *good, int err, const char *what) {
    static const int privs[] = {0, FUTEX_PRIVATE_FLAG};
    for (int p = 0; p < 2; p++) {
        int f = privs[p];
        CHECK(wait_briefly(bad, FUTEX_WAIT | f) == -1 && errno == err,
              "%s WAIT flag %#x", what, f);
        CHECK(call(bad, FUTEX_WAKE | f, 1, 0, NULL, 0) == -1 && errno == err,
              "%s WAKE flag %#x", what, f);
        CHECK(wait_briefly(bad, FUTEX_WAIT_BITSET | f) == -1 && errno == err,
              "%s WAIT_BITSET flag %#x", what, f);
        CHECK(call(bad, FUTEX_WAKE_BITSET | f, 1, 0, NULL, -1) == -1 && errno == err,
              "%s WAKE_BITSET flag %#x", what, f);
        CHECK(call(bad, FUTEX_REQUEUE | f, 1, 1, good, 0) == -1 && errno == err,
              "%s REQUEUE uaddr flag %#x", what, f);
        CHECK(call(good, FUTEX_REQUEUE | f, 1, 1, bad, 0) == -1 && errno == err,
              "%s REQUEUE uaddr2 flag %#x", what, f);
        CHECK(call(bad, FUTEX_CMP_REQUEUE | f, 1, 1, good, 0) == -1 && errno == err,
              "%s CMP_REQUEUE uaddr flag %#x", what, f);
        CHECK(call(good, FUTEX_CMP_REQUEUE | f, 1, 1, bad, 0) == -1 && errno == err,
              "%s CMP_REQUEUE uaddr2 flag %#x", what, f);
        CHECK(call(bad, FUTEX_WAKE_OP | f, 1, 1, good, SET_0) == -1 && errno == err,
              "%s WAKE_OP uaddr flag %#x", what, f);
        CHECK(call(good, FUTEX_WAKE_OP | f, 1, 1, bad, SET_0) == -1 && errno == err,
              "%s WAKE_OP uaddr2 flag %#x", what, f);
    }
}

static int in_arena(const void *p) {
    void *base;
    size_t size;
    CHECK(nommu_arena(&base, &size) == 0, "nommu_arena");
    return (const char *)p >= (const char *)base && (const char *)p + 4 <= (const char *)base + size;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    int *good = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(good != MAP_FAILED, "mmap good");
    CHECK(in_arena(good), "the good word is in the arena");
    int *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(none != MAP_FAILED, "mmap PROT_NONE");
    /* Unmapped last, so no later mapping takes its place. */
    int *gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(gone != MAP_FAILED, "mmap gone");
    CHECK(munmap(gone, page) == 0, "munmap gone");
    CHECK(in_arena(gone), "the unmapped word is in the arena");

    every_form(gone, good, EFAULT, "unmapped");
    every_form(none, good, EFAULT, "PROT_NONE");

    /* LTP's futex_cmp_requeue03: uaddr a static, uaddr2 bad. */
    static int host_word;
    int *bads[] = {gone, none};
    for (int i = 0; i < 2; i++) {
        CHECK(call(&host_word, FUTEX_CMP_REQUEUE, 1, 1, bads[i], 0) == -1 && errno == EFAULT,
              "CMP_REQUEUE from a static to bad word %d", i);
        CHECK(call(&host_word, FUTEX_WAKE_OP, 1, 1, bads[i], SET_0) == -1 && errno == EFAULT,
              "WAKE_OP from a static to bad word %d", i);
        /* LTP's futex_wait06: the timeout is the bad pointer, for an
         * arena word and for a static (which the host kernel waits on). */
        CHECK(call(good, FUTEX_WAIT, 0, (long)(uintptr_t)bads[i], NULL, 0) == -1 &&
                  errno == EFAULT,
              "WAIT with a timeout in bad word %d", i);
        CHECK(call(&host_word, FUTEX_WAIT, 0, (long)(uintptr_t)bads[i], NULL, 0) == -1 &&
                  errno == EFAULT,
              "WAIT on a static with a timeout in bad word %d", i);
    }

    /* The good word itself: nobody waits, nothing fails. */
    CHECK(call(good, FUTEX_WAKE, 1, 0, NULL, 0) == 0, "WAKE good");
    CHECK(call(good, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, NULL, 0) == 0, "WAKE_PRIVATE good");
    CHECK(call(good, FUTEX_CMP_REQUEUE, 1, 1, good + 1, 0) == 0, "CMP_REQUEUE good");
    CHECK(call(good, FUTEX_WAKE_OP, 1, 1, good + 1, SET_0) == 0, "WAKE_OP good");
    errno = 0;
    CHECK(call(good, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 1, 0, NULL, 0) == -1 && errno == EAGAIN,
          "WAIT_PRIVATE on a changed value");
    printf("futex_efault: ok\n");
    return 0;
}
