/* memcalls: the small memory calls. On a mapping of the server (inside the
 * arena) each is what no-MMU Linux has: not built, -1 ENOSYS, whatever the
 * arguments; mlockall/munlockall (the server's mappings) likewise. On host
 * memory (here a page the host kernel mapped) they are the host's own and
 * succeed. Prints "memcalls: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "memcalls"
#include "check.h"

#define ENOSYS_CALL(expr)                                                    \
    do {                                                                     \
        errno = 0;                                                           \
        CHECK((expr) == -1 && errno == ENOSYS, #expr);                       \
    } while (0)

int main(void) {
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    unsigned char vec[2];
    ENOSYS_CALL(msync(p, 8192, MS_SYNC));
    ENOSYS_CALL(mprotect(p, 4096, PROT_READ));
    ENOSYS_CALL(madvise(p, 8192, MADV_DONTNEED));
    ENOSYS_CALL(mlock(p, 8192));
    ENOSYS_CALL(mlock2(p, 8192, 0));
    ENOSYS_CALL(munlock(p, 8192));
    ENOSYS_CALL(mincore(p, 8192, vec));
    ENOSYS_CALL(mlockall(MCL_CURRENT));
    ENOSYS_CALL(munlockall());
    /* The mapping is untouched: still writable. */
    p[4096] = 1;
    CHECK(munmap(p, 8192) == 0, "munmap");

    char *h = (char *)syscall(SYS_mmap, 0L, 8192L, (long)(PROT_READ | PROT_WRITE),
                              (long)(MAP_PRIVATE | MAP_ANONYMOUS), -1L, 0L);
    CHECK(h != MAP_FAILED, "host mmap");
    h[0] = 1;
    CHECK(madvise(h, 8192, MADV_NORMAL) == 0, "host madvise");
    CHECK(msync(h, 8192, MS_ASYNC) == 0, "host msync");
    CHECK(mincore(h, 8192, vec) == 0 && (vec[0] & 1), "host mincore");
    CHECK(mprotect(h, 8192, PROT_READ) == 0, "host mprotect");
    CHECK(syscall(SYS_munmap, h, 8192L) == 0, "host munmap");
    printf("memcalls: ok\n");
    return 0;
}
