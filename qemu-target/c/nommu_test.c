/*
 * The board's C test program: picolibc for stdio, the shim's C ABI for
 * memory. Run as a task with its own memsrv connection (its process):
 *
 *   nommu_test main  ARENA_START ARENA_END   every check, then waits on a
 *                                            futex in a SysV segment
 *   nommu_test waker ARENA_START ARENA_END   wakes that futex
 *
 * Prints "c: ok CHECK" per passed check, "c: FAILED ..." otherwise; exits
 * with the number of failures. Everything it maps, opens or creates is
 * unmapped, closed or removed again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nommu_board.h"

#define PAGE 4096
#define FLASH_START 0x20000000ul
#define FLASH_END 0x24000000ul
#define ROM_T_LEN 20000
#define DATA_F_LEN 10000
/* The segment the two roles meet in. */
#define FUTEX_KEY 0x4e4d5521

/* Both tasks run this one image, and on no-MMU they share its data and
   bss: per-task state is thread-local (each task has its own TLS block). */
static __thread int failures;
static __thread const char *role = "main";
static __thread uintptr_t arena_start, arena_end;

static void check(const char *what, int passed)
{
    if (passed) {
        printf("c: ok %s\n", what);
    } else {
        printf("c: FAILED %s [%s] (errno %d)\n", what, role, errno);
        failures++;
    }
}

static int in_arena(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    return a >= arena_start && a + len <= arena_end;
}

static int in_flash(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    return a >= FLASH_START && a + len <= FLASH_END;
}

static unsigned char rom_t_byte(size_t i) { return (unsigned char)((i * 13 + 101) % 241); }
static unsigned char data_f_byte(size_t i) { return (unsigned char)((i * 31 + 7) % 251); }

/* Sleep about `ms` milliseconds: a futex wait nobody wakes. */
static void nap(uint32_t *word, long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    nommu_futex(word, FUTEX_WAIT, *word, &ts, NULL, 0);
}

static void anonymous(void)
{
    size_t len = 3 * PAGE;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("anonymous mmap", p != MAP_FAILED && in_arena(p, len));
    if (p == MAP_FAILED)
        return;
    int zero = 1, same = 1;
    for (size_t i = 0; i < len; i++)
        zero &= p[i] == 0;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 7);
    for (size_t i = 0; i < len; i++)
        same &= p[i] == (unsigned char)(i * 7);
    check("anonymous mmap: zero filled, then written and read back", zero && same);
    check("anonymous munmap", munmap(p, len) == 0);
    errno = 0;
    check("munmap of an unmapped range: EINVAL",
          munmap(p, len) == -1 && errno == NOMMU_EINVAL);
    errno = 0;
    void *q = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("mmap of length 0: EINVAL", q == MAP_FAILED && errno == NOMMU_EINVAL);
    errno = 0;
    check("open of a missing file: ENOENT",
          open("/rom/missing", O_RDONLY) == -1 && errno == NOMMU_ENOENT);
}

static void rom_file(void)
{
    int fd = open("/rom/t", O_RDONLY);
    check("open /rom/t", fd >= 0);
    if (fd < 0)
        return;
    unsigned char buf[64];
    int good = pread(fd, buf, sizeof buf, 1000) == (ssize_t)sizeof buf;
    for (size_t i = 0; good && i < sizeof buf; i++)
        good = buf[i] == rom_t_byte(1000 + i);
    check("pread /rom/t", good);
    good = lseek(fd, 19990, SEEK_SET) == 19990 && read(fd, buf, sizeof buf) == 10;
    for (size_t i = 0; good && i < 10; i++)
        good = buf[i] == rom_t_byte(19990 + i);
    check("lseek + read /rom/t to the end", good);
    const unsigned char *p = mmap(NULL, ROM_T_LEN, PROT_READ, MAP_PRIVATE, fd, 0);
    check("mmap /rom/t PROT_READ MAP_PRIVATE is direct (in flash)",
          p != MAP_FAILED && in_flash(p, ROM_T_LEN));
    if (p != MAP_FAILED) {
        good = 1;
        for (size_t i = 0; i < ROM_T_LEN; i++)
            good &= p[i] == rom_t_byte(i);
        check("mmap /rom/t: the file's bytes", good);
        check("munmap /rom/t", munmap((void *)p, ROM_T_LEN) == 0);
    }
    check("close /rom/t", close(fd) == 0);
}

static void data_file(void)
{
    int fd = open("/data/f", O_RDONLY);
    check("open /data/f", fd >= 0);
    if (fd < 0)
        return;
    const unsigned char *p = mmap(NULL, DATA_F_LEN, PROT_READ, MAP_PRIVATE, fd, 0);
    check("mmap /data/f (copy-only fs) is a copy in the arena",
          p != MAP_FAILED && in_arena(p, DATA_F_LEN));
    if (p != MAP_FAILED) {
        int good = 1;
        for (size_t i = 0; i < DATA_F_LEN; i++)
            good &= p[i] == data_f_byte(i);
        check("mmap /data/f: the file's bytes", good);
        check("munmap /data/f", munmap((void *)p, DATA_F_LEN) == 0);
    }
    check("close /data/f", close(fd) == 0);
}

static void sysv_shm(void)
{
    int id = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
    check("shmget IPC_PRIVATE", id >= 0);
    if (id < 0)
        return;
    char *a = shmat(id, NULL, 0);
    char *b = shmat(id, NULL, 0);
    check("shmat twice: one address, in the arena",
          a != MAP_FAILED && a == b && in_arena(a, 2 * PAGE));
    struct shmid_ds ds;
    memset(&ds, 0, sizeof ds);
    check("shmctl IPC_STAT: size and two attaches",
          shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_segsz == 2 * PAGE && ds.shm_nattch == 2);
    ds.shm_perm.mode = 0640;
    check("shmctl IPC_SET mode",
          shmctl(id, IPC_SET, &ds) == 0 && shmctl(id, IPC_STAT, &ds) == 0 &&
              (ds.shm_perm.mode & 0777) == 0640);
    if (a != MAP_FAILED) {
        strcpy(a, "shared");
        check("shm: a write through one attach is seen through the other",
              strcmp(b, "shared") == 0);
    }
    check("shmdt both", shmdt(a) == 0 && shmdt(b) == 0);
    check("shmctl IPC_RMID", shmctl(id, IPC_RMID, NULL) == 0);
    errno = 0;
    check("shmat after IPC_RMID: EINVAL",
          shmat(id, NULL, 0) == MAP_FAILED && errno == NOMMU_EINVAL);
}

static void posix_shm(void)
{
    const size_t len = 2 * PAGE;
    int fd = shm_open("/c-test", O_CREAT | O_EXCL | O_RDWR, 0600);
    check("shm_open O_CREAT", fd >= 0);
    if (fd < 0)
        return;
    check("ftruncate", ftruncate(fd, len) == 0);
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("mmap MAP_SHARED of /dev/shm twice: one block in the arena",
          p != MAP_FAILED && p == q && in_arena(p, len));
    if (p != MAP_FAILED) {
        strcpy(p + PAGE, "posix shm");
        char buf[16] = { 0 };
        check("a write to the shared mapping is the file's content",
              pread(fd, buf, 10, PAGE) == 10 && strcmp(buf, "posix shm") == 0);
        check("pwrite to the file shows in the mapping",
              pwrite(fd, "PO", 2, PAGE) == 2 && memcmp(p + PAGE, "POsix shm", 9) == 0);
        check("munmap both", munmap(p, len) == 0 && munmap(q, len) == 0);
    }
    check("close", close(fd) == 0);
    check("shm_unlink", shm_unlink("/c-test") == 0);
    errno = 0;
    check("shm_open after shm_unlink: ENOENT",
          shm_open("/c-test", O_RDWR, 0) == -1 && errno == NOMMU_ENOENT);
}

static void futex_errors(void)
{
    uint32_t *w = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        check("futex: a word to wait on", 0);
        return;
    }
    *w = 5;
    errno = 0;
    check("FUTEX_WAIT on a mismatched value: EAGAIN",
          nommu_futex(w, FUTEX_WAIT, 4, NULL, NULL, 0) == -1 && errno == NOMMU_EAGAIN);
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000000L };
    errno = 0;
    check("FUTEX_WAIT with a timeout: ETIMEDOUT",
          nommu_futex(w, FUTEX_WAIT, 5, &ts, NULL, 0) == -1 && errno == NOMMU_ETIMEDOUT);
    check("FUTEX_WAKE with nobody waiting: 0", nommu_futex(w, FUTEX_WAKE, 1, NULL, NULL, 0) == 0);
    check("munmap the futex word", munmap(w, PAGE) == 0);
}

/* The segment both roles attach: word 0 the futex, 1 "waiter ready",
   2 a word nobody wakes (for naps). */
static uint32_t *meet(int *id)
{
    *id = shmget(FUTEX_KEY, PAGE, IPC_CREAT | 0600);
    if (*id < 0)
        return NULL;
    uint32_t *w = shmat(*id, NULL, 0);
    return w == MAP_FAILED ? NULL : w;
}

static void futex_waiter(void)
{
    int id;
    uint32_t *w = meet(&id);
    check("futex: the waiter attaches the segment by key", w != NULL);
    if (!w)
        return;
    __atomic_store_n(&w[1], 1, __ATOMIC_SEQ_CST);
    int slept = 0;
    for (int tries = 0; tries < 10 && __atomic_load_n(&w[0], __ATOMIC_SEQ_CST) == 0; tries++) {
        struct timespec ts = { .tv_sec = 5, .tv_nsec = 0 };
        if (nommu_futex(&w[0], FUTEX_WAIT, 0, &ts, NULL, 0) == 0)
            slept = 1;
    }
    check("futex: FUTEX_WAIT in one task, woken by FUTEX_WAKE from another",
          slept && __atomic_load_n(&w[0], __ATOMIC_SEQ_CST) == 1);
    check("futex: the waiter detaches and removes the segment",
          shmdt(w) == 0 && shmctl(id, IPC_RMID, NULL) == 0);
}

static void futex_waker(void)
{
    int id;
    uint32_t *w = meet(&id);
    check("futex: the waker attaches the segment by key", w != NULL);
    if (!w)
        return;
    for (int i = 0; i < 2000 && __atomic_load_n(&w[1], __ATOMIC_SEQ_CST) == 0; i++)
        nap(&w[2], 5);
    /* Give the waiter time to be inside its wait. */
    nap(&w[2], 20);
    __atomic_store_n(&w[0], 1, __ATOMIC_SEQ_CST);
    long woken = 0;
    for (int i = 0; i < 200 && woken == 0; i++) {
        long r = nommu_futex(&w[0], FUTEX_WAKE, 1, NULL, NULL, 0);
        if (r > 0)
            woken += r;
        else
            nap(&w[2], 5);
    }
    check("futex: FUTEX_WAKE woke the waiting task", woken == 1);
    check("futex: the waker detaches", shmdt(w) == 0);
}

int main(int argc, char **argv)
{
    if (argc >= 4) {
        role = argv[1];
        arena_start = strtoul(argv[2], NULL, 16);
        arena_end = strtoul(argv[3], NULL, 16);
    }
    if (strcmp(role, "waker") == 0) {
        futex_waker();
    } else {
        printf("c: %s, arena %#lx..%#lx\n", role, (unsigned long)arena_start,
               (unsigned long)arena_end);
        anonymous();
        rom_file();
        data_file();
        sysv_shm();
        posix_shm();
        futex_errors();
        futex_waiter();
    }
    printf("c: %s done, %d failures\n", role, failures);
    return failures;
}
