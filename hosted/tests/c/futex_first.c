/* futex_first: a FUTEX_WAIT that is the program's first call of the
 * library is woken like any other (LTP's futex_wait03).
 * Usage: futex_first
 * A thread's first call is FUTEX_WAIT on a word of the program's own
 * memory (so the library connects inside that call). The main thread,
 * which has made no call of the library, watches the thread's state in
 * /proc (read by system call) until it is asleep, then FUTEX_WAKEs the
 * word: one waiter must be woken, and the wait must return 0. Prints
 * "futex_first: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "futex_first"
#include "check.h"

static int word;
static volatile pid_t waiter_tid;
static int wait_ret, wait_errno;

static void *waiter(void *arg) {
    (void)arg;
    waiter_tid = (pid_t)syscall(SYS_gettid);
    struct timespec limit = {.tv_sec = 5};
    wait_ret = futex(&word, FUTEX_WAIT, 0, &limit, NULL, 0);
    wait_errno = errno;
    return NULL;
}

/* The state letter of thread `tid` (from /proc, by system call only). */
static char state_of(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0)
        return '?';
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

int main(void) {
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, waiter, NULL) == 0, "pthread_create");
    while (waiter_tid == 0)
        sched_yield();
    while (state_of(waiter_tid) != 'S')
        ;
    int woken = futex(&word, FUTEX_WAKE, 1, NULL, NULL, 0);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    errno = wait_errno;
    CHECK(wait_ret == 0, "FUTEX_WAIT returned %d (FUTEX_WAKE woke %d)", wait_ret, woken);
    CHECK(woken == 1, "FUTEX_WAKE woke %d", woken);
    printf("futex_first: ok\n");
    return 0;
}
