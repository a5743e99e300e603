/* waiters.h: two futex words and threads that each block in one futex
 * wait, for the programs that then wake or requeue them through the server
 * (futex_requeue.c, futex_wake_op.c). Include after check.h. */
#ifndef NOMMU_TESTS_WAITERS_H
#define NOMMU_TESTS_WAITERS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The two words, 64 bytes apart in one private anonymous page. */
static int *a, *b;

static void map_words(void) {
    int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED, "mmap");
    a = page;
    b = page + 16;
}

static void unmap_words(void) {
    CHECK(munmap(a, 4096) == 0, "munmap");
}

/* The timeout argument carrying a count, as the kernel reads it. */
#define VAL2(n) ((const struct timespec *)(uintptr_t)(n))

#define MAX_WAITERS 4

static pthread_t waiter_threads[MAX_WAITERS];
static int waiter_results[MAX_WAITERS];
static int waiters_started;
static int waiters;
static int (*waiter_wait)(int);

static void *waiter_main(void *arg) {
    int i = (int)(intptr_t)arg;
    __atomic_add_fetch(&waiters_started, 1, __ATOMIC_SEQ_CST);
    waiter_results[i] = waiter_wait(i);
    return NULL;
}

/* Start n threads, thread i returning wait(i) (its futex call), and return
 * once all have started and had 200 ms to block in the server. */
static void start_waiters(int n, int (*wait)(int)) {
    CHECK(n <= MAX_WAITERS, "%d waiters", n);
    waiters = n;
    waiter_wait = wait;
    for (int i = 0; i < n; i++) {
        waiter_results[i] = -2;
        CHECK(pthread_create(&waiter_threads[i], NULL, waiter_main, (void *)(intptr_t)i) == 0,
              "pthread_create");
    }
    while (__atomic_load_n(&waiters_started, __ATOMIC_SEQ_CST) < n)
        usleep(1000);
    usleep(200000);
}

/* Join the waiters; every one's futex returned 0 (woken). */
static void join_waiters(void) {
    for (int i = 0; i < waiters; i++) {
        pthread_join(waiter_threads[i], NULL);
        CHECK(waiter_results[i] == 0, "waiter %d got %d", i, waiter_results[i]);
    }
}

#endif
