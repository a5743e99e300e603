/* bad_pointers: every pointer the library reads or writes for its caller
 * gives EFAULT when the kernel would reject it, never a crash.
 * Usage: bad_pointers   (against a memsrvd with a ramfs at /srv)
 * Tries shmctl(IPC_STAT/IPC_SET), futex timeouts, read/write/pread/pwrite
 * buffers, fstat/stat buffers, path strings (open, stat, access, unlink,
 * shm_open) and fcntl locks with pointers that are
 * unmapped ((void *)8), read-only (for writes) or run off the end of a
 * mapping. Prints "bad_pointers: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "bad_pointers"
#include "check.h"

/* `call` fails -1 (or MAP_FAILED-like) with EFAULT. */
#define EFAULTS(call, what)                                                  \
    do {                                                                     \
        errno = 0;                                                           \
        long ret_ = (long)(call);                                            \
        CHECK(ret_ == -1 && errno == EFAULT, "%s gave %ld", what, ret_);     \
    } while (0)

/* (void *)8, read through a volatile so the compiler does not know it. */
static void *volatile bad_pointer = (void *)8;
#define BAD (bad_pointer)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    /* A host page that can be read but not written, with no mapping
     * after it, taken from the kernel (syscall, not the library's mmap,
     * whose pages are the server's). Its bytes are not NUL, so a string
     * running into its end never ends. */
    char *host = (char *)syscall(SYS_mmap, NULL, 2 * page, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(host != MAP_FAILED, "host mmap");
    CHECK(syscall(SYS_munmap, host + page, page) == 0, "host munmap");
    char *end = host + page; /* unmapped */
    memset(host, 'a', page);
    CHECK(syscall(SYS_mprotect, host, page, PROT_READ) == 0, "mprotect");
    char *readonly = host;

    /* SysV: IPC_STAT writes, IPC_SET reads. */
    int id = shmget(IPC_PRIVATE, page, IPC_CREAT | 0600);
    CHECK(id >= 0, "shmget");
    EFAULTS(shmctl(id, IPC_STAT, BAD), "shmctl(IPC_STAT, 8)");
    EFAULTS(shmctl(id, IPC_STAT, (struct shmid_ds *)readonly), "shmctl(IPC_STAT, read-only)");
    EFAULTS(shmctl(id, IPC_STAT, (struct shmid_ds *)(end - 8)), "shmctl(IPC_STAT, across the end)");
    EFAULTS(shmctl(id, IPC_SET, BAD), "shmctl(IPC_SET, 8)");
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_segsz == (size_t)page, "IPC_STAT");

    /* A futex word in the arena, its timeout unreadable. */
    int *word = shmat(id, NULL, 0);
    CHECK(word != (void *)-1, "shmat");
    *word = 0;
    EFAULTS(futex(word, FUTEX_WAIT, 0, BAD, NULL, 0), "futex(WAIT, timeout 8)");
    EFAULTS(futex(word, FUTEX_WAIT_BITSET, 0, (struct timespec *)(end - 4), NULL,
                  FUTEX_BITSET_MATCH_ANY),
            "futex(WAIT_BITSET, timeout across the end)");
    CHECK(shmdt(word) == 0, "shmdt");
    CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");

    /* Server files: buffers and paths. */
    int fd = open("/srv/f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open /srv/f");
    EFAULTS(write(fd, BAD, 16), "write(8)");
    EFAULTS(write(fd, end - 8, 16), "write(across the end)");
    EFAULTS(pwrite(fd, BAD, 16, 0), "pwrite(8)");
    CHECK(write(fd, "0123456789abcdef", 16) == 16, "write");
    EFAULTS(pread(fd, BAD, 16, 0), "pread(8)");
    EFAULTS(pread(fd, readonly, 16, 0), "pread(read-only)");
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    EFAULTS(read(fd, BAD, 16), "read(8)");
    EFAULTS(fstat(fd, BAD), "fstat(8)");
    EFAULTS(fstat(fd, (struct stat *)readonly), "fstat(read-only)");
    EFAULTS(fcntl(fd, F_SETLK, BAD), "fcntl(F_SETLK, 8)");
    EFAULTS(fcntl(fd, F_GETLK, (struct flock *)(end - 4)), "fcntl(F_GETLK, across the end)");
    char back[16];
    CHECK(pread(fd, back, 16, 0) == 16 && memcmp(back, "0123456789abcdef", 16) == 0,
          "pread back");
    /* A buffer in the arena (the library's own mmap) is copied directly. */
    char *arena = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(arena != MAP_FAILED, "mmap in the arena");
    CHECK(pread(fd, arena + page - 16, 16, 0) == 16 &&
              memcmp(arena + page - 16, "0123456789abcdef", 16) == 0,
          "pread into the arena");
    CHECK(pwrite(fd, arena + page - 16, 16, 16) == 16, "pwrite from the arena");
    CHECK(munmap(arena, page) == 0, "munmap");
    CHECK(close(fd) == 0, "close");
    struct stat st;
    EFAULTS(stat("/srv/f", BAD), "stat(/srv/f, 8)");
    EFAULTS(lstat("/srv/f", (struct stat *)readonly), "lstat(/srv/f, read-only)");
    CHECK(stat("/srv/f", &st) == 0 && st.st_size == 32, "stat");
    EFAULTS(open(BAD, O_RDONLY), "open(8)");
    EFAULTS(stat(BAD, &st), "stat(8)");
    EFAULTS(access(BAD, F_OK), "access(8)");
    EFAULTS(unlink(BAD), "unlink(8)");
    EFAULTS(shm_open(BAD, O_RDONLY, 0), "shm_open(8)");
    /* A path whose NUL lies past the end of the mapping. */
    EFAULTS(open(end - 4, O_RDONLY), "open(unterminated at the end)");
    /* A path that ends right before the unmapped page is fine. */
    char *tail = readonly + page - 8;
    CHECK(syscall(SYS_mprotect, host, page, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    memcpy(tail, "/srv/f", 7);
    CHECK(access(tail, F_OK) == 0, "access of a path at a page's end");
    CHECK(unlink("/srv/f") == 0, "unlink");

    printf("bad_pointers: ok\n");
    return 0;
}
