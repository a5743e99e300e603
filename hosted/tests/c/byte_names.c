/* byte_names: a file name is bytes, not text. Against a memsrvd with a
 * /dev/shm ramfs mount:
 *  - a file named with every byte 0x80..0xff is created, stat'ed, written,
 *    mapped MAP_SHARED and so listed in this process's /proc maps, with its
 *    name escaped as \ooo (Linux's seq_file escapes; the text is UTF-8);
 *  - a second name differing in one byte is another file;
 *  - both are unlinked, and are gone (ENOENT).
 * Prints "byte_names: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "byte_names"
#include "check.h"

#define PREFIX "/dev/shm/"

int main(void) {
    char path[sizeof PREFIX + 128];
    char other[sizeof path];
    char escaped[sizeof PREFIX + 128 * 4];
    memcpy(path, PREFIX, strlen(PREFIX));
    memcpy(escaped, PREFIX, strlen(PREFIX));
    char *name = path + strlen(PREFIX);
    char *text = escaped + strlen(PREFIX);
    for (int b = 0x80; b <= 0xff; b++) {
        name[b - 0x80] = (char)b;
        text += sprintf(text, "\\%03o", b);
    }
    name[128] = '\0';
    memcpy(other, path, sizeof path);
    other[strlen(PREFIX)] = (char)0xc3; /* "\xc3\x81": valid UTF-8 "Á" */

    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0, "create the 0x80..0xff name");
    CHECK(write(fd, "bytes", 5) == 5, "write");
    CHECK(ftruncate(fd, 4096) == 0, "ftruncate");
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 4096, "stat");
    int fd2 = open(other, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd2 >= 0, "a name one byte away is another file");

    char *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED, "mmap");
    CHECK(memcmp(map, "bytes", 5) == 0, "mapped bytes");
    static char maps[65536];
    ssize_t n = nommu_read_proc("self/maps", maps, sizeof maps - 1);
    CHECK(n > 0, "read self/maps");
    maps[n] = '\0';
    CHECK(strstr(maps, escaped) != NULL, "self/maps lists %s:\n%s", escaped, maps);
    CHECK(munmap(map, 4096) == 0, "munmap");

    CHECK(close(fd) == 0 && close(fd2) == 0, "close");
    CHECK(unlink(path) == 0, "unlink the 0x80..0xff name");
    errno = 0;
    CHECK(open(path, O_RDONLY) == -1 && errno == ENOENT, "gone");
    CHECK(stat(other, &st) == 0, "the other name stays");
    CHECK(unlink(other) == 0, "unlink the other");
    errno = 0;
    CHECK(unlink(other) == -1 && errno == ENOENT, "the other is gone");

    printf("byte_names: ok\n");
    return 0;
}
