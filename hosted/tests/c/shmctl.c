/* shmctl: SysV shared memory through the C calls.
 * Usage: shmctl KEY
 * shmget(KEY, 5000, IPC_CREAT|IPC_EXCL|0600); IPC_STAT fills a real
 * struct shmid_ds (key, size, mode, cpid, nattch 0); two attaches return
 * one address and count 2; IPC_SET changes the mode bits; IPC_RMID while
 * attached sets SHM_DEST and hides the key (shmget ENOENT) while shmat by
 * id still works; the last shmdt destroys it (IPC_STAT EINVAL). Bad
 * commands and arguments fail as Linux's do. Prints "shmctl: ok". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "shmctl"
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: shmctl KEY");
    key_t key = atoi(argv[1]);
    int id = shmget(key, 5000, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(id >= 0, "shmget");
    errno = 0;
    CHECK(shmget(key, 5000, IPC_CREAT | IPC_EXCL | 0600) == -1 && errno == EEXIST, "EEXIST");
    errno = 0;
    CHECK(shmget(key, 9000, 0) == -1 && errno == EINVAL, "bigger than the segment");
    CHECK(shmget(key, 0, 0) == id, "lookup by key");

    struct shmid_ds ds;
    memset(&ds, 0xff, sizeof ds);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT");
    CHECK(ds.shm_perm.__key == key, "key %d", ds.shm_perm.__key);
    CHECK(ds.shm_segsz == 5000, "size %zu", ds.shm_segsz);
    CHECK((ds.shm_perm.mode & 0777) == 0600, "mode %o", ds.shm_perm.mode);
    CHECK(ds.shm_perm.uid == getuid() && ds.shm_perm.cuid == getuid(), "uid");
    CHECK(ds.shm_cpid == getpid(), "cpid %d", ds.shm_cpid);
    CHECK(ds.shm_nattch == 0, "nattch %lu", (unsigned long)ds.shm_nattch);

    char *a = shmat(id, NULL, 0);
    CHECK(a != (void *)-1, "shmat");
    char *b = shmat(id, NULL, SHM_RDONLY);
    CHECK(b == a, "second attach at %p, first at %p", (void *)b, (void *)a);
    strcpy(a, "segment");
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2, "nattch 2");
    CHECK(ds.shm_lpid == getpid(), "lpid");

    ds.shm_perm.mode = 0640;
    CHECK(shmctl(id, IPC_SET, &ds) == 0, "IPC_SET");
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0640, "mode now %o",
          ds.shm_perm.mode);

    CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT after RMID");
    CHECK(ds.shm_perm.mode & 01000, "SHM_DEST missing: mode %o", ds.shm_perm.mode);
    errno = 0;
    CHECK(shmget(key, 0, 0) == -1 && errno == ENOENT, "key still visible");
    char *c = shmat(id, NULL, 0);
    CHECK(c == a && strcmp(c, "segment") == 0, "shmat by id after RMID");
    CHECK(shmdt(c) == 0 && shmdt(b) == 0, "shmdt");
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 1, "nattch 1");
    errno = 0;
    CHECK(shmdt(a + 1) == -1 && errno == EINVAL, "unaligned shmdt");
    CHECK(shmdt(a) == 0, "last shmdt");
    errno = 0;
    CHECK(shmctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL, "destroyed");
    errno = 0;
    CHECK(shmctl(id, 12345, &ds) == -1 && errno == EINVAL, "bad command");
    errno = 0;
    CHECK(shmat(-1, NULL, 0) == (void *)-1 && errno == EINVAL, "shmat -1");
    printf("shmctl: ok\n");
    return 0;
}
