/* identity: the server judges each call by the caller's credentials as they
 * are at that moment, and creates files as Linux's tmpfs does.
 * Usage: identity UID   (started as root, against a memsrvd with a
 * /dev/shm ramfs mount)
 *  - a SysV segment root made 0600 is refused to root after seteuid(UID)
 *    (EACCES) and readable again after seteuid(0);
 *  - a segment made after seteuid(UID) is owned by UID;
 *  - shm_open(O_CREAT, 0666) under umask 022 makes a 0644 file, under
 *    umask 077 a 0600 one.
 * Prints "identity: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "identity"
#include "check.h"

static unsigned created_mode(const char *name, mode_t mask) {
    umask(mask);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0666);
    CHECK(fd >= 0, "shm_open %s", name);
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat %s", name);
    CHECK(close(fd) == 0, "close");
    CHECK(shm_unlink(name) == 0, "shm_unlink %s", name);
    return (unsigned)(st.st_mode & 07777);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: identity UID");
    uid_t uid = (uid_t)atol(argv[1]);
    CHECK(geteuid() == 0, "start as root");

    int mine = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK(mine >= 0, "shmget as root");
    struct shmid_ds ds;
    CHECK(shmctl(mine, IPC_STAT, &ds) == 0, "IPC_STAT as root");

    CHECK(seteuid(uid) == 0, "seteuid(%u)", (unsigned)uid);
    errno = 0;
    CHECK(shmctl(mine, IPC_STAT, &ds) == -1 && errno == EACCES,
          "IPC_STAT of root's 0600 segment as uid %u", (unsigned)uid);
    int theirs = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK(theirs >= 0, "shmget as uid %u", (unsigned)uid);
    CHECK(shmctl(theirs, IPC_STAT, &ds) == 0, "IPC_STAT of its own segment");
    CHECK(ds.shm_perm.uid == uid && ds.shm_perm.cuid == uid, "owner %u",
          (unsigned)ds.shm_perm.cuid);
    CHECK(shmctl(theirs, IPC_RMID, NULL) == 0, "IPC_RMID of its own segment");

    CHECK(seteuid(0) == 0, "seteuid(0)");
    CHECK(shmctl(mine, IPC_STAT, &ds) == 0, "IPC_STAT as root again");
    CHECK(shmctl(mine, IPC_RMID, NULL) == 0, "IPC_RMID");

    unsigned m = created_mode("/identity-a", 022);
    CHECK(m == 0644, "mode %o under umask 022", m);
    m = created_mode("/identity-b", 077);
    CHECK(m == 0600, "mode %o under umask 077", m);

    printf("identity: ok\n");
    return 0;
}
