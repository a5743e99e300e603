/* futex_requeue: FUTEX_CMP_REQUEUE and FUTEX_REQUEUE through the server,
 * with val2 passed in the timeout argument as Linux reads it.
 * Three threads wait on word a. CMP_REQUEUE(a, wake 1, val2 = 1 to b,
 * val3 = *a) returns 2 (one woken, one requeued); with a stale val3 it
 * fails EAGAIN. REQUEUE(a, wake 0, val2 = 5 to b) moves the last one
 * (returns 1). FUTEX_WAKE(b, 10) then wakes the two on b. Every waiter's
 * futex returns 0. Prints "futex_requeue: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "futex_requeue"
#include "check.h"
#include "waiters.h"

static int wait_on_a(int i) {
    (void)i;
    return futex(a, FUTEX_WAIT, 0, NULL, NULL, 0);
}

int main(void) {
    map_words();
    start_waiters(3, wait_on_a);
    errno = 0;
    CHECK(futex(a, FUTEX_CMP_REQUEUE, 1, VAL2(1), b, 7) == -1 && errno == EAGAIN,
          "stale val3");
    int r = futex(a, FUTEX_CMP_REQUEUE, 1, VAL2(1), b, 0);
    CHECK(r == 2, "CMP_REQUEUE returned %d", r);
    r = futex(a, FUTEX_REQUEUE, 0, VAL2(5), b, 0);
    CHECK(r == 1, "REQUEUE returned %d", r);
    CHECK(futex(a, FUTEX_WAKE, 10, NULL, NULL, 0) == 0, "a is empty");
    r = futex(b, FUTEX_WAKE, 10, NULL, NULL, 0);
    CHECK(r == 2, "wake b returned %d", r);
    join_waiters();
    unmap_words();
    printf("futex_requeue: ok\n");
    return 0;
}
