/* fork_child: a child made by fork() never speaks for its parent.
 * Usage: fork_child UID GID   (started as root; a ramfs at /srv)
 * The parent maps a page, makes a 0600 segment and opens a server file,
 * then forks twice:
 *  - a child that stays root is a new process of the server: its pid
 *    differs, the parent's page is not its mapping (munmap EINVAL, not in
 *    its /proc/self/maps), the parent's server file is not its own (EBADF),
 *    and the segment it attaches counts as a second attachment;
 *  - a child that opens a host file, then switches to UID/GID before its
 *    first server call, acts as that user: shmat of the 0600 root segment
 *    fails EACCES.
 * Afterwards the parent's connection, page, segment and file still work.
 * Prints "fork_child: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PREFIX() fprintf(stderr, "fork_child[%d]: ", (int)getpid())
#include "check.h"

static long page;
static char *mapped;
static int id, fd, parent_pid;

static void wait_ok(pid_t child, const char *what) {
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid %s", what);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s child failed (%#x)", what,
          status);
}

static void as_root_child(void) {
    int pid = nommu_pid();
    CHECK(pid > 0 && pid != parent_pid, "child pid %d, parent's %d", pid, parent_pid);
    errno = 0;
    CHECK(munmap(mapped, page) == -1 && errno == EINVAL,
          "munmap of the parent's page in the child");
    static char maps[16384];
    CHECK(nommu_read_proc("self/maps", maps, sizeof maps) >= 0, "read maps");
    char addr[32];
    snprintf(addr, sizeof addr, "%lx-", (unsigned long)mapped);
    CHECK(strstr(maps, addr) == NULL, "the parent's page is in the child's maps:\n%s", maps);
    char byte;
    errno = 0;
    CHECK(read(fd, &byte, 1) == -1 && errno == EBADF, "read of the parent's server file");
    char *seg = shmat(id, NULL, 0);
    CHECK(seg != (void *)-1, "shmat as root");
    CHECK(strcmp(seg, "parent") == 0, "segment bytes");
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2, "nattch %lu",
          (unsigned long)ds.shm_nattch);
    CHECK(shmdt(seg) == 0, "shmdt");
    /* The arena is still mapped in the child: the parent's page reads. */
    CHECK(mapped[0] == 'p', "the arena in the child");
    exit(0);
}

static void as_user_child(uid_t uid, gid_t gid) {
    /* A host file opened first (as LTP's harness writes its child's
     * /proc/self/oom_score_adj) is the host's: no connection yet, so the
     * first server call below still connects as the new user. */
    int host = open("/proc/self/status", O_RDONLY);
    CHECK(host >= 0 && close(host) == 0, "open a host file");
    CHECK(setgroups(0, NULL) == 0, "setgroups");
    CHECK(setgid(gid) == 0, "setgid");
    CHECK(setuid(uid) == 0, "setuid");
    errno = 0;
    CHECK(shmat(id, NULL, 0) == (void *)-1 && errno == EACCES,
          "shmat of a 0600 root segment as uid %u", (unsigned)uid);
    int own = shmget(IPC_PRIVATE, page, IPC_CREAT | 0600);
    CHECK(own >= 0, "shmget as uid %u", (unsigned)uid);
    struct shmid_ds ds;
    CHECK(shmctl(own, IPC_STAT, &ds) == 0 && ds.shm_perm.uid == uid, "owner %u",
          (unsigned)ds.shm_perm.uid);
    CHECK(shmctl(own, IPC_RMID, NULL) == 0, "IPC_RMID");
    exit(0);
}

int main(int argc, char **argv) {
    CHECK(argc == 3, "usage: fork_child UID GID");
    page = sysconf(_SC_PAGESIZE);
    mapped = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mapped != MAP_FAILED, "mmap");
    mapped[0] = 'p';
    parent_pid = nommu_pid();
    id = shmget(IPC_PRIVATE, page, IPC_CREAT | 0600);
    CHECK(id >= 0, "shmget");
    char *seg = shmat(id, NULL, 0);
    CHECK(seg != (void *)-1, "shmat");
    strcpy(seg, "parent");
    fd = open("/srv/parent", O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0, "open /srv/parent");
    CHECK(write(fd, "x", 1) == 1, "write");

    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0)
        as_root_child();
    wait_ok(child, "root");
    child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0)
        as_user_child((uid_t)atol(argv[1]), (gid_t)atol(argv[2]));
    wait_ok(child, "user");

    /* The parent's connection, page, segment and file are its own still. */
    CHECK(nommu_pid() == parent_pid, "the parent's pid");
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 1, "nattch after");
    char byte;
    CHECK(pread(fd, &byte, 1, 0) == 1 && byte == 'x', "pread");
    CHECK(close(fd) == 0 && unlink("/srv/parent") == 0, "close, unlink");
    CHECK(shmdt(seg) == 0 && shmctl(id, IPC_RMID, NULL) == 0, "shmdt, IPC_RMID");
    CHECK(munmap(mapped, page) == 0, "munmap");
    printf("fork_child: ok\n");
    return 0;
}
