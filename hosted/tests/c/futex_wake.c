/* futex_wake: the waking half of the futex demonstration in the patch
 * "NOMMU: Make futexes work under NOMMU conditions" (David Howells), nearly
 * verbatim: attach SysV segment 23, increment the word, print
 * "WAKE: <addr>{<value>}", wake one waiter, print "WOKE: <count>".
 * (Added: includes.) */
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "nommu.h"

#define SYSERROR(X, Y) \
    do { if ((long)(X) == -1L) { perror(Y); exit(1); }} while(0)

int main() {
    int shmid, tmp, *f;
    shmid = shmget(23, 4, IPC_CREAT|0666);
    SYSERROR(shmid, "shmget");
    f = shmat(shmid, NULL, 0);
    SYSERROR(f, "shmat");
    (*f)++;
    printf("WAKE: %p{%x}\n", f, *f);
    tmp = futex(f, FUTEX_WAKE, 1, NULL, NULL, 0);
    SYSERROR(tmp, "futex");
    printf("WOKE: %d\n", tmp);
    tmp = shmdt(f);
    SYSERROR(tmp, "shmdt");
    exit(0);
}
