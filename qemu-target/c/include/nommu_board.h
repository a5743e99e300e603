/*
 * nommu_board.h - what a C program on the riscv64 board (qemu-target)
 * gets from the shim's C ABI (libc-shim, feature c-abi): mmap and
 * friends, SysV and POSIX shared memory, the file calls and futexes, all
 * answered by the memory server over the task's own connection.
 *
 * The program is linked with picolibc for stdio and strings. Use this
 * header instead of picolibc's <fcntl.h> and <sys/mman.h>: the constants
 * here are Linux's (asm-generic), which the memory server speaks, and
 * picolibc's <fcntl.h> numbers O_* its own way.
 *
 * errno: on failure a call returns MAP_FAILED or -1 and stores a Linux
 * errno value in picolibc's (thread-local) errno. picolibc's <errno.h>
 * numbers a few codes differently from Linux (ETIMEDOUT is 116 there, 110
 * on Linux), so compare with the NOMMU_E* values below.
 *
 * Descriptors and paths are the memory server's own (/rom, /data,
 * /dev/shm, ...). There is no fstat (picolibc's struct stat is not
 * Linux's) and no syscall(): futexes go through nommu_futex().
 */
#ifndef NOMMU_BOARD_H
#define NOMMU_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Linux errno values (what the calls store in errno). */
#define NOMMU_EPERM 1
#define NOMMU_ENOENT 2
#define NOMMU_EBADF 9
#define NOMMU_EAGAIN 11
#define NOMMU_ENOMEM 12
#define NOMMU_EACCES 13
#define NOMMU_EFAULT 14
#define NOMMU_EEXIST 17
#define NOMMU_ENODEV 19
#define NOMMU_EINVAL 22
#define NOMMU_ENOSYS 38
#define NOMMU_ETIMEDOUT 110

/* mmap */
#define PROT_NONE 0x0
#define PROT_READ 0x1
#define PROT_WRITE 0x2
#define PROT_EXEC 0x4
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_ANON MAP_ANONYMOUS
#define MAP_FAILED ((void *)-1)
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int munmap(void *addr, size_t len);
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...);

/* files (asm-generic O_* values) */
#define O_RDONLY 00
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#ifndef SEEK_SET
#define SEEK_SET 0
#define SEEK_CUR 1
#define SEEK_END 2
#endif

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int close(int fd);
ssize_t read(int fd, void *buf, size_t len);
ssize_t write(int fd, const void *buf, size_t len);
ssize_t pread(int fd, void *buf, size_t len, off_t offset);
ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset);
off_t lseek(int fd, off_t offset, int whence);
int ftruncate(int fd, off_t len);
int ftruncate64(int fd, off_t len);
int unlink(const char *path);

/* SysV shared memory (Linux's 64-bit struct layout) */
#define IPC_PRIVATE 0
#define IPC_CREAT 01000
#define IPC_EXCL 02000
#define IPC_RMID 0
#define IPC_SET 1
#define IPC_STAT 2
#define SHM_RDONLY 010000
#define SHM_RND 020000
#define SHM_DEST 01000

struct nommu_ipc_perm {
    int32_t key;
    uint32_t uid, gid, cuid, cgid;
    uint32_t mode;
    uint16_t seq, pad;
    uint64_t reserved[2];
};

struct shmid_ds {
    struct nommu_ipc_perm shm_perm;
    size_t shm_segsz;
    int64_t shm_atime, shm_dtime, shm_ctime;
    int32_t shm_cpid, shm_lpid;
    uint64_t shm_nattch;
    uint64_t reserved[2];
};

int shmget(int key, size_t size, int shmflg);
void *shmat(int shmid, const void *shmaddr, int shmflg);
int shmdt(const void *shmaddr);
int shmctl(int shmid, int cmd, struct shmid_ds *buf);

/* POSIX shared memory: /dev/shm/NAME on the server's ramfs */
int shm_open(const char *name, int oflag, unsigned int mode);
int shm_unlink(const char *name);

/* futexes */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

/* The futex system call's shape: 0 after a wait, the number woken or
   requeued, or -1 with errno (NOMMU_EAGAIN: *uaddr != val;
   NOMMU_ETIMEDOUT). The FUTEX_WAIT timeout is relative. */
long nommu_futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *timeout,
                 uint32_t *uaddr2, uint32_t val3);

#ifdef __cplusplus
}
#endif

#endif
