/* futex_wait: the waiting half of the futex demonstration in the patch
 * "NOMMU: Make futexes work under NOMMU conditions" (David Howells), nearly
 * verbatim: attach SysV segment 23, print "WAIT: <addr>{<value>}", wait on
 * the word until another process changes it and wakes us, print
 * "WAITED: <result>". (Added: includes, and fflush so the line is seen
 * through a pipe before the wait.) */
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "nommu.h"

#define SYSERROR(X, Y) \
    do { if ((long)(X) == -1L) { perror(Y); exit(1); }} while(0)

int main() {
    int shmid, tmp, *f, n;
    shmid = shmget(23, 4, IPC_CREAT|0666);
    SYSERROR(shmid, "shmget");
    f = shmat(shmid, NULL, 0);
    SYSERROR(f, "shmat");
    n = *f;
    printf("WAIT: %p{%x}\n", f, n);
    fflush(stdout);
    tmp = futex(f, FUTEX_WAIT, n, NULL, NULL, 0);
    SYSERROR(tmp, "futex");
    printf("WAITED: %d\n", tmp);
    tmp = shmdt(f);
    SYSERROR(tmp, "shmdt");
    exit(0);
}
