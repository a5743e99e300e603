/* file_attributes: chmod, chown and their relatives on a server file, as
 * Linux's tmpfs answers them, and /dev/shm's sticky bit.
 * Usage: file_attributes UID   (started as root, against a memsrvd with a
 * /dev/shm ramfs mount; UID is an unprivileged user, taken as its group
 * too)
 *  - root's new file is root's; chmod, fchmod, chown, lchown, fchownat (by
 *    path and AT_EMPTY_PATH) change what stat and fstat show; chown drops
 *    S_ISUID; fchmodat(AT_SYMLINK_NOFOLLOW) fails EOPNOTSUPP; a missing
 *    path ENOENT;
 *  - as UID (seteuid): chmod and chown of root's file fail EPERM, opening
 *    it for writing EACCES, unlinking it EPERM (sticky /dev/shm); its own
 *    new file is its own, chmod of it works, giving it to root fails EPERM,
 *    chgrp to its own group works;
 *  - root unlinks both.
 * Prints "file_attributes: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "file_attributes"
#include "check.h"

#define FAILS(call, err)                                                     \
    do {                                                                     \
        errno = 0;                                                           \
        int rc_ = (call);                                                    \
        CHECK(rc_ == -1 && errno == (err), "%s gave %d, want errno %s",     \
              #call, rc_, #err);                                             \
    } while (0)

static const char *const ROOTS = "/dev/shm/attr-root";
static const char *const USERS = "/dev/shm/attr-user";

/* What stat says of a server path: mode bits, owner, group. */
static void expect(const char *path, unsigned mode, uid_t uid, gid_t gid) {
    struct stat st;
    CHECK(stat(path, &st) == 0, "stat %s", path);
    CHECK(S_ISREG(st.st_mode), "%s is not a regular file", path);
    CHECK((st.st_mode & 07777) == mode && st.st_uid == uid && st.st_gid == gid,
          "%s is %o %u:%u, want %o %u:%u", path, st.st_mode & 07777,
          (unsigned)st.st_uid, (unsigned)st.st_gid, mode, (unsigned)uid,
          (unsigned)gid);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: file_attributes UID");
    uid_t uid = (uid_t)atol(argv[1]);
    gid_t gid = (gid_t)uid;
    CHECK(geteuid() == 0, "start as root");
    umask(0);

    int fd = open(ROOTS, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0, "create %s", ROOTS);
    expect(ROOTS, 0600, 0, 0);
    CHECK(chmod(ROOTS, 0644) == 0, "chmod");
    expect(ROOTS, 0644, 0, 0);
    CHECK(fchmod(fd, 04755) == 0, "fchmod");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 04755, "fstat mode %o",
          st.st_mode & 07777);
    /* chown drops S_ISUID, even root's. */
    CHECK(chown(ROOTS, uid, gid) == 0, "chown");
    expect(ROOTS, 0755, uid, gid);
    CHECK(lchown(ROOTS, 0, (gid_t)-1) == 0, "lchown");
    expect(ROOTS, 0755, 0, gid);
    CHECK(fchownat(AT_FDCWD, ROOTS, (uid_t)-1, 0, 0) == 0, "fchownat");
    expect(ROOTS, 0755, 0, 0);
    CHECK(fchown(fd, (uid_t)-1, gid) == 0, "fchown");
    expect(ROOTS, 0755, 0, gid);
    CHECK(fchownat(fd, "", (uid_t)-1, 0, AT_EMPTY_PATH) == 0, "fchownat AT_EMPTY_PATH");
    expect(ROOTS, 0755, 0, 0);
    CHECK(fchmodat(AT_FDCWD, ROOTS, 0644, 0) == 0, "fchmodat");
    expect(ROOTS, 0644, 0, 0);
    FAILS(fchmodat(AT_FDCWD, ROOTS, 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
    FAILS(fchmodat(AT_FDCWD, ROOTS, 0600, 0x4000), EINVAL);
    FAILS(chmod("/dev/shm/attr-none", 0600), ENOENT);
    FAILS(chown("/dev/shm/attr-none", 0, 0), ENOENT);
    CHECK(close(fd) == 0, "close");

    CHECK(setegid(gid) == 0 && seteuid(uid) == 0, "become %u", (unsigned)uid);
    FAILS(chmod(ROOTS, 0666), EPERM);
    FAILS(chown(ROOTS, uid, (gid_t)-1), EPERM);
    FAILS(chown(ROOTS, (uid_t)-1, gid), EPERM);
    FAILS(open(ROOTS, O_RDWR), EACCES);
    FAILS(unlink(ROOTS), EPERM);
    expect(ROOTS, 0644, 0, 0);

    int mine = open(USERS, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(mine >= 0, "create %s as %u", USERS, (unsigned)uid);
    expect(USERS, 0644, uid, gid);
    CHECK(fchmod(mine, 0600) == 0, "fchmod of its own file");
    CHECK(chmod(USERS, 0640) == 0, "chmod of its own file");
    FAILS(chown(USERS, 0, (gid_t)-1), EPERM);
    FAILS(chown(USERS, (uid_t)-1, 0), EPERM);
    CHECK(chown(USERS, uid, gid) == 0, "chown of its own file to itself");
    expect(USERS, 0640, uid, gid);
    CHECK(close(mine) == 0, "close");

    CHECK(seteuid(0) == 0 && setegid(0) == 0, "back to root");
    /* Root passes the permission bits and the sticky bit. */
    CHECK(chmod(USERS, 0) == 0, "chmod as root");
    fd = open(USERS, O_RDWR);
    CHECK(fd >= 0, "root opens a 000 file");
    CHECK(close(fd) == 0, "close");
    CHECK(unlink(USERS) == 0, "unlink %s", USERS);
    CHECK(unlink(ROOTS) == 0, "unlink %s", ROOTS);

    printf("file_attributes: ok\n");
    return 0;
}
