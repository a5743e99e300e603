/* futex_wake_op: FUTEX_WAKE_OP through the server, with val2 passed in the
 * timeout argument as Linux reads it.
 * Two threads wait on word a, two on word b (b holds 3). WAKE_OP(a, wake
 * 1, val2 = 1, b, ADD 1 if old == 3) returns 2 (one on each word) and b
 * becomes 4; WAKE_OP(a, 1, 1, b, SET 0 if old == 3) returns 1 (the
 * comparison of the old 4 fails: only a's last waiter) and b becomes 0;
 * WAKE_OP(a, 1, 1, b, XOR 8 if old < 1) wakes b's last one (returns 1),
 * b becomes 8. Operation 7 is ENOSYS and leaves b. Every waiter's futex
 * returns 0 (or EAGAIN if b changed before it slept: none here).
 * Prints "futex_wake_op: ok". */
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

#define CHECK_PROGRAM "futex_wake_op"
#include "check.h"
#include "waiters.h"

/* Waiters 0 and 1 wait on a, 2 and 3 on b. */
static int wait_on_a_or_b(int i) {
    int *word = i < 2 ? a : b;
    return futex(word, FUTEX_WAIT, *word, NULL, NULL, 0);
}

static int wake_op(int val3) {
    errno = 0;
    return futex(a, FUTEX_WAKE_OP, 1, VAL2(1), b, val3);
}

int main(void) {
    map_words();
    *b = 3;
    start_waiters(4, wait_on_a_or_b);
    CHECK(wake_op(FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 3)) == 2, "ADD 1 if old == 3");
    CHECK(*b == 4, "b after ADD: %d", *b);
    CHECK(wake_op(FUTEX_OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 3)) == 1, "SET 0 if old == 3");
    CHECK(*b == 0, "b after SET: %d", *b);
    CHECK(wake_op(FUTEX_OP(FUTEX_OP_XOR, 8, FUTEX_OP_CMP_LT, 1)) == 1, "XOR 8 if old < 1");
    CHECK(*b == 8, "b after XOR: %d", *b);
    CHECK(wake_op(FUTEX_OP(7, 1, FUTEX_OP_CMP_EQ, 0)) == -1 && errno == ENOSYS, "op 7");
    CHECK(*b == 8, "b after op 7: %d", *b);
    CHECK(wake_op(FUTEX_OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0)) == 0, "nobody left");
    join_waiters();
    unmap_words();
    printf("futex_wake_op: ok\n");
    return 0;
}
