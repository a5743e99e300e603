/* shm_victim: hold every kind of shared object, then block in a futex
 * wait until killed.
 * Usage: shm_victim KEY NAME
 * Attaches SysV segment KEY (8192 bytes, created if need be), opens and
 * maps POSIX shm object NAME (4096 bytes, MAP_SHARED, kept open), prints
 * "READY <shmid> <segment addr> <shm addr>", then waits on the futex word
 * at the start of the segment (value 0) — forever, unless woken, in which
 * case it prints "WOKEN" and exits 1 (nobody should wake it). */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "shm_victim"
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc == 3, "usage: shm_victim KEY NAME");
    int id = shmget(atoi(argv[1]), 8192, IPC_CREAT | 0600);
    CHECK(id >= 0, "shmget");
    int *word = shmat(id, NULL, 0);
    CHECK(word != (void *)-1, "shmat");
    int fd = shm_open(argv[2], O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0, "shm_open %s", argv[2]);
    CHECK(ftruncate(fd, 4096) == 0, "ftruncate");
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap");
    strcpy(p, "victim");
    printf("READY %d %p %p\n", id, (void *)word, (void *)p);
    fflush(stdout);
    for (;;) {
        int r = futex(word, FUTEX_WAIT, 0, NULL, NULL, 0);
        if (r == 0 && *word != 0) {
            printf("WOKEN\n");
            return 1;
        }
    }
}
