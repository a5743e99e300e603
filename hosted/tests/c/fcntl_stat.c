/*
 * fcntl_stat - the calls SQLite's unix VFS makes besides read and write,
 * on server files and on host files:
 *
 *   fcntl_stat SERVERDIR HOSTDIR
 *
 * SERVERDIR is a directory of the server's ramfs, HOSTDIR a host
 * directory outside every mount. Record locks (F_GETLK/F_SETLK, POSIX
 * semantics: one process's locks never conflict with each other), status
 * and descriptor flags, stat/lstat/access/unlink of paths, fsync and
 * fdatasync; then the same calls on a host file fall through to the host
 * kernel (there OFD locks of two open file descriptions do conflict).
 * Prints "ok WHAT" per check, "stat-root ..." for the mount point, and
 * "all ok" at the end; a failed check prints "FAIL ..." and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

static int failed;

static void expect(int cond, const char *what)
{
    if (cond) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s (errno %d %s)\n", what, errno, strerror(errno));
        failed = 1;
    }
}

/* -1 with errno `e`. */
static int fails(int ret, int e) { return ret == -1 && errno == e; }

static int lock(int fd, int cmd, short type, short whence, off_t start, off_t len,
                struct flock *out)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = whence;
    fl.l_start = start;
    fl.l_len = len;
    errno = 0;
    int ret = fcntl(fd, cmd, &fl);
    if (out)
        *out = fl;
    return ret;
}

static void server_files(const char *dir)
{
    char path[512], missing[512];
    snprintf(path, sizeof path, "%s/locked.db", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    expect(fd >= 0, "server open read-write");
    char buf[100];
    memset(buf, 'x', sizeof buf);
    expect(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf, "server write 100 bytes");
    int ro = open(path, O_RDONLY);
    expect(ro >= 0, "server open read-only");

    /* Record locks: POSIX locks of one process never conflict. */
    struct flock fl;
    expect(lock(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10, NULL) == 0, "F_SETLK write lock");
    expect(lock(fd, F_SETLKW, F_RDLCK, SEEK_SET, 20, 0, NULL) == 0, "F_SETLKW read lock to EOF");
    expect(lock(ro, F_GETLK, F_WRLCK, SEEK_SET, 0, 10, &fl) == 0 && fl.l_type == F_UNLCK &&
               fl.l_start == 0 && fl.l_len == 10,
           "F_GETLK through another open file: own locks do not conflict (F_UNLCK)");
    expect(lock(ro, F_SETLK, F_RDLCK, SEEK_SET, 0, 10, NULL) == 0,
           "F_SETLK read lock over own write lock");
    expect(fails(lock(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 1, NULL), EBADF),
           "F_SETLK write lock on a read-only descriptor: EBADF");
    expect(fails(lock(fd, F_SETLK, 99, SEEK_SET, 0, 1, NULL), EINVAL), "bad l_type: EINVAL");
    expect(fails(lock(fd, F_SETLK, F_RDLCK, 7, 0, 1, NULL), EINVAL), "bad l_whence: EINVAL");
    expect(fails(lock(fd, F_SETLK, F_RDLCK, SEEK_SET, -1, 1, NULL), EINVAL),
           "negative start: EINVAL");
    expect(fails(lock(fd, F_SETLK, F_RDLCK, SEEK_END, -101, 1, NULL), EINVAL),
           "SEEK_END before the start of the file: EINVAL");
    expect(lock(fd, F_SETLK, F_RDLCK, SEEK_END, -100, 5, NULL) == 0, "SEEK_END range");
    expect(fails(lock(fd, F_GETLK, F_UNLCK, SEEK_SET, 0, 1, NULL), EINVAL),
           "F_GETLK of F_UNLCK: EINVAL");
    expect(lock(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0, NULL) == 0, "F_SETLK unlock all");
    expect(fails(lock(fd, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1, NULL), EINVAL),
           "F_OFD_SETLK on a server file: EINVAL (not served)");
    errno = 0;
    expect(fails(fcntl(fd, F_SETLK, NULL), EFAULT), "F_SETLK with no struct flock: EFAULT");

    /* Flags. */
    expect((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "F_GETFL read-write");
    expect((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "F_GETFL read-only");
    errno = 0;
    expect(fails(fcntl(fd, F_SETFL, O_APPEND), EINVAL), "F_SETFL O_APPEND: EINVAL");
    expect(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK),
           "F_SETFL O_NONBLOCK");
    expect(fcntl(fd, F_SETFD, 0) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC,
           "F_SETFD 0 keeps FD_CLOEXEC");

    /* Paths. */
    struct stat st, fst;
    expect(fstat(fd, &fst) == 0, "fstat");
    expect(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 100 &&
               st.st_ino == fst.st_ino && st.st_dev == fst.st_dev,
           "stat of a server path: regular, 100 bytes, the fstat identity");
    memset(&st, 0, sizeof st);
    expect(lstat(path, &st) == 0 && st.st_size == 100, "lstat of a server path");
    errno = 0;
    expect(fails(stat(missing, &st), ENOENT), "stat of a missing server path: ENOENT");
    errno = 0;
    int r = stat(dir, &st);
    printf("stat-root %s: %s\n", dir,
           r == 0 ? (S_ISDIR(st.st_mode) ? "directory" : "not a directory") : strerror(errno));
    expect(access(path, F_OK) == 0, "access F_OK");
    expect(access(path, R_OK | W_OK) == 0, "access R_OK|W_OK");
    errno = 0;
    expect(fails(access(path, X_OK), EACCES), "access X_OK of a 0644 file: EACCES");
    errno = 0;
    expect(fails(access(missing, F_OK), ENOENT), "access of a missing path: ENOENT");
    errno = 0;
    expect(fails(access(path, 0100), EINVAL), "access with a bad mode: EINVAL");

    /* fsync. */
    expect(fsync(fd) == 0, "fsync of a server file");
    expect(fdatasync(fd) == 0, "fdatasync of a server file");

    /* unlink: the name goes, the open file stays. */
    expect(unlink(path) == 0, "unlink of a server path");
    errno = 0;
    expect(fails(stat(path, &st), ENOENT), "stat after unlink: ENOENT");
    errno = 0;
    expect(fails(unlink(path), ENOENT), "unlink again: ENOENT");
    char back[100];
    expect(pread(ro, back, sizeof back, 0) == (ssize_t)sizeof back && back[99] == 'x',
           "the unlinked file still reads");
    expect(close(ro) == 0 && close(fd) == 0, "close both");
}

static void host_files(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/host.db", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    expect(fd >= 0, "host open");
    expect(write(fd, "abcdef", 6) == 6, "host write");
    struct stat st;
    expect(stat(path, &st) == 0 && st.st_size == 6, "host stat");
    expect(lstat(path, &st) == 0 && st.st_size == 6, "host lstat");
    expect(access(path, R_OK | W_OK) == 0, "host access");
    expect(fsync(fd) == 0 && fdatasync(fd) == 0, "host fsync, fdatasync");
    expect(lock(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1, NULL) == 0, "host F_SETLK");
    /* OFD locks of two open file descriptions conflict in the host kernel. */
    int other = open(path, O_RDWR);
    struct flock fl;
    expect(lock(fd, F_OFD_SETLK, F_WRLCK, SEEK_SET, 2, 1, NULL) == 0, "host F_OFD_SETLK");
    expect(lock(other, F_OFD_GETLK, F_WRLCK, SEEK_SET, 2, 1, &fl) == 0 && fl.l_type == F_WRLCK,
           "host F_OFD_GETLK sees the other description's lock");
    expect(fails(lock(other, F_OFD_SETLK, F_WRLCK, SEEK_SET, 2, 1, NULL), EAGAIN),
           "host F_OFD_SETLK conflicts: EAGAIN");
    expect((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "host F_GETFL");
    expect(close(other) == 0 && close(fd) == 0, "host close");
    expect(unlink(path) == 0, "host unlink");
    errno = 0;
    expect(fails(stat(path, &st), ENOENT), "host stat after unlink: ENOENT");
    errno = 0;
    expect(fails(fsync(999), EBADF), "fsync of a closed descriptor: EBADF");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fcntl_stat SERVERDIR HOSTDIR\n");
        return 2;
    }
    server_files(argv[1]);
    host_files(argv[2]);
    if (failed)
        return 1;
    printf("all ok\n");
    return 0;
}
