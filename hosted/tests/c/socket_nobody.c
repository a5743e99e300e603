/* socket_nobody: a process that drops its privileges before its first call
 * still reaches memsrvd.
 * Usage: socket_nobody UID GID   (started as root)
 * Switches to GID and UID (setgroups, setgid, setuid) before any call of
 * the library, then maps an anonymous page, writes and reads it back,
 * checks that the server sees the new uid (a segment it creates is owned
 * by UID), and unmaps. Prints "socket_nobody: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "socket_nobody"
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc == 3, "usage: socket_nobody UID GID");
    uid_t uid = (uid_t)atol(argv[1]);
    gid_t gid = (gid_t)atol(argv[2]);
    CHECK(setgroups(0, NULL) == 0, "setgroups");
    CHECK(setgid(gid) == 0, "setgid");
    CHECK(setuid(uid) == 0, "setuid");
    CHECK(getuid() == uid && geteuid() == uid, "uid");

    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap as uid %u", (unsigned)uid);
    memset(p, 0x5a, page);
    CHECK(p[0] == 0x5a && p[page - 1] == 0x5a, "contents");

    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHECK(id >= 0, "shmget");
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT");
    CHECK(ds.shm_perm.uid == uid && ds.shm_perm.cuid == uid, "owner %u", (unsigned)ds.shm_perm.uid);
    CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");

    CHECK(munmap(p, page) == 0, "munmap");
    printf("socket_nobody: ok\n");
    return 0;
}
