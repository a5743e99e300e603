/* host_files: a program's host files are the host's while no driver may
 * take their paths from it.
 * Usage: host_files DIR
 * Reads DIR/host (must hold "host file\n"), creates DIR/made with
 * "made by the program\n" and reads it back, after asking the server for
 * its mounts afresh. Prints "host_files: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "host_files"
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: host_files DIR");
    char path[4096];
    char buf[64];
    CHECK(nommu_refresh_mounts() == 0, "nommu_refresh_mounts");

    snprintf(path, sizeof path, "%s/host", argv[1]);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s", path);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    CHECK(n >= 0, "read %s", path);
    buf[n] = 0;
    CHECK(strcmp(buf, "host file\n") == 0, "%s holds %s", path, buf);
    CHECK(close(fd) == 0, "close");

    snprintf(path, sizeof path, "%s/made", argv[1]);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "create %s", path);
    const char *text = "made by the program\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    n = read(fd, buf, sizeof buf - 1);
    CHECK(n == (ssize_t)strlen(text), "read back");
    CHECK(close(fd) == 0, "close");

    printf("host_files: ok\n");
    return 0;
}
