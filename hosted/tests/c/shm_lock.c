/* shm_lock: shmctl(SHM_LOCK) / shmctl(SHM_UNLOCK) through the C calls.
 * Usage: shm_lock                     (as the segment's owner)
 *        shm_lock stranger ID UID GID (started as root, switches to UID/GID
 *                                      before its first call)
 * Owner: a 0666 segment; SHM_LOCK succeeds and IPC_STAT shows SHM_LOCKED,
 * twice is no error; SHM_UNLOCK clears it; IPC_SET keeps the lock bit;
 * unknown or removed ids fail EINVAL. Leaves the segment locked and prints
 * "shm_lock: ok ID". Stranger: SHM_LOCK and SHM_UNLOCK fail EPERM (the
 * permission bits grant nothing here) and the bit stays set; prints
 * "shm_lock: stranger ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "shm_lock"
#include "check.h"

static unsigned mode_of(int id) {
    struct shmid_ds ds;
    memset(&ds, 0, sizeof ds);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT %d", id);
    return ds.shm_perm.mode;
}

static void fails(int id, int cmd, int err, const char *what) {
    errno = 0;
    CHECK(shmctl(id, cmd, NULL) == -1 && errno == err, "%s: want %s", what, strerror(err));
}

static int stranger(int id, uid_t uid, gid_t gid) {
    CHECK(setgroups(0, NULL) == 0, "setgroups");
    CHECK(setgid(gid) == 0, "setgid");
    CHECK(setuid(uid) == 0, "setuid");
    CHECK(getuid() != 0, "the stranger must not be root");
    CHECK(mode_of(id) & SHM_LOCKED, "locked before");
    fails(id, SHM_LOCK, EPERM, "stranger SHM_LOCK");
    fails(id, SHM_UNLOCK, EPERM, "stranger SHM_UNLOCK");
    CHECK(mode_of(id) & SHM_LOCKED, "still locked");
    printf("shm_lock: stranger ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "stranger") == 0)
        return stranger(atoi(argv[2]), (uid_t)atol(argv[3]), (gid_t)atol(argv[4]));
    CHECK(argc == 1, "usage: shm_lock [stranger ID UID GID]");
    int id = shmget(IPC_PRIVATE, 2048, IPC_CREAT | 0666);
    CHECK(id >= 0, "shmget");
    CHECK(mode_of(id) == 0666, "mode %o", mode_of(id));

    CHECK(shmctl(id, SHM_LOCK, NULL) == 0, "SHM_LOCK");
    CHECK(mode_of(id) == (0666 | SHM_LOCKED), "locked mode %o", mode_of(id));
    CHECK(shmctl(id, SHM_LOCK, NULL) == 0, "SHM_LOCK twice");
    CHECK(shmctl(id, SHM_UNLOCK, NULL) == 0, "SHM_UNLOCK");
    CHECK(mode_of(id) == 0666, "unlocked mode %o", mode_of(id));
    CHECK(shmctl(id, SHM_UNLOCK, NULL) == 0, "SHM_UNLOCK twice");

    /* IPC_SET changes the permission bits only. */
    CHECK(shmctl(id, SHM_LOCK, NULL) == 0, "SHM_LOCK again");
    struct shmid_ds ds;
    memset(&ds, 0, sizeof ds);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT");
    ds.shm_perm.mode = 0644;
    CHECK(shmctl(id, IPC_SET, &ds) == 0, "IPC_SET");
    CHECK(mode_of(id) == (0644 | SHM_LOCKED), "after IPC_SET %o", mode_of(id));

    /* Unknown and removed ids. */
    int gone = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK(gone >= 0, "second shmget");
    CHECK(shmctl(gone, IPC_RMID, NULL) == 0, "IPC_RMID");
    fails(gone, SHM_LOCK, EINVAL, "removed SHM_LOCK");
    fails(gone, SHM_UNLOCK, EINVAL, "removed SHM_UNLOCK");
    fails(-1, SHM_LOCK, EINVAL, "negative id");

    printf("shm_lock: ok %d\n", id);
    return 0;
}
