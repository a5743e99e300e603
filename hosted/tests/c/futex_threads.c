/* futex_threads: futex calls of one process through the memory server.
 * - FUTEX_WAIT with a value that differs: EAGAIN; FUTEX_WAKE with nobody
 *   waiting: 0.
 * - FUTEX_WAIT with a 100 ms relative timeout, FUTEX_WAIT_BITSET with an
 *   absolute CLOCK_MONOTONIC deadline 100 ms ahead (and one on
 *   CLOCK_REALTIME): ETIMEDOUT, after at least 100 ms and well before 5 s.
 * - A thread waits on a word of an arena mapping; meanwhile the main thread
 *   keeps mapping and unmapping (a waiting thread blocks no other thread),
 *   then wakes it: FUTEX_WAKE returns 1, the waiter's futex returns 0.
 * - A word outside the arena (static data) is the host kernel's.
 * Prints "futex_threads: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "futex_threads"
#include "check.h"

static long long now_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int *word;
static volatile int waiter_result = -2;
static volatile int waiter_started;

static void *waiter(void *arg) {
    (void)arg;
    waiter_started = 1;
    int r;
    do {
        r = futex(word, FUTEX_WAIT, 0, NULL, NULL, 0);
    } while (r == -1 && errno == EAGAIN && __atomic_load_n(word, __ATOMIC_SEQ_CST) == 0);
    waiter_result = r;
    return NULL;
}

static void expect_timeout(int op, const struct timespec *ts, const char *what) {
    long long start = now_ms(CLOCK_MONOTONIC);
    errno = 0;
    int r = futex(word, op, 0, ts, NULL, FUTEX_BITSET_MATCH_ANY);
    long long took = now_ms(CLOCK_MONOTONIC) - start;
    CHECK(r == -1 && errno == ETIMEDOUT, "%s: r %d", what, r);
    CHECK(took >= 95 && took < 5000, "%s took %lld ms", what, took);
}

static int host_word;

int main(void) {
    word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(word != MAP_FAILED, "mmap");
    errno = 0;
    CHECK(futex(word, FUTEX_WAIT, 1, NULL, NULL, 0) == -1 && errno == EAGAIN, "EAGAIN");
    CHECK(futex(word, FUTEX_WAKE, 1, NULL, NULL, 0) == 0, "wake nobody");

    struct timespec rel = {0, 100 * 1000000};
    expect_timeout(FUTEX_WAIT, &rel, "relative FUTEX_WAIT");
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 100 * 1000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    expect_timeout(FUTEX_WAIT_BITSET, &abs, "absolute FUTEX_WAIT_BITSET");
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 100 * 1000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    expect_timeout(FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, &abs,
                   "absolute FUTEX_WAIT_BITSET, CLOCK_REALTIME");

    pthread_t t;
    CHECK(pthread_create(&t, NULL, waiter, NULL) == 0, "pthread_create");
    while (!waiter_started)
        usleep(1000);
    usleep(100000);
    /* The waiter is blocked in the server: this thread is not. */
    for (int i = 0; i < 50; i++) {
        void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(p != MAP_FAILED, "mmap while a thread waits");
        CHECK(munmap(p, 8192) == 0, "munmap while a thread waits");
    }
    CHECK(waiter_result == -2, "the waiter returned early (%d)", waiter_result);
    __atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
    int woke = 0;
    for (int i = 0; i < 1000 && woke == 0; i++) {
        woke = futex(word, FUTEX_WAKE, 1, NULL, NULL, 0);
        CHECK(woke >= 0, "wake");
        if (woke == 0)
            usleep(1000);
    }
    pthread_join(t, NULL);
    CHECK(waiter_result == 0, "waiter got %d", waiter_result);
    CHECK(woke == 1, "woke %d", woke);

    /* Host memory: the host kernel's futex. */
    errno = 0;
    CHECK(futex(&host_word, FUTEX_WAIT, 1, NULL, NULL, 0) == -1 && errno == EAGAIN,
          "host EAGAIN");
    CHECK(futex(&host_word, FUTEX_WAKE, 1, NULL, NULL, 0) == 0, "host wake");

    CHECK(munmap(word, 4096) == 0, "munmap");
    printf("futex_threads: ok\n");
    return 0;
}
