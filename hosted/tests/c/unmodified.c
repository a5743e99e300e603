/* An ordinary C program, built without libnommu, that does what breaks on
 * a machine without an MMU: MAP_FIXED, MAP_SHARED of a disk file, two
 * shmat()s of one segment, fork() (and vfork + exec, which works). Under nommu-run each answer is the
 * no-MMU one; it prints what it got, one line each, and leaves one
 * anonymous mapping and the segment mapped for the report at exit.
 * argv[1]: a directory for its scratch file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int e)
{
    switch (e) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case ENODEV: return "ENODEV";
    case ENOSYS: return "ENOSYS";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }

    /* An anonymous mapping placed at a chosen address. */
    void *fixed = mmap((void *)0x10000000, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("map_fixed %s\n", fixed == MAP_FAILED ? err(errno) : "OK");

    /* A disk file shared, then a private copy of it. */
    char path[4096];
    snprintf(path, sizeof path, "%s/unmodified.dat", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "hello, file\n", 12) != 12) {
        perror(path);
        return 1;
    }
    void *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("map_shared_file %s\n", shared == MAP_FAILED ? err(errno) : "OK");
    char *copy = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("map_private_file %s\n",
           copy == MAP_FAILED ? err(errno) : (memcmp(copy, "hello, file\n", 12) ? "WRONG" : "OK"));
    if (copy != MAP_FAILED)
        munmap(copy, 4096);
    close(fd);

    /* One segment attached twice: no MMU, so one address. */
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    void *a = shmat(id, NULL, 0);
    void *b = shmat(id, NULL, 0);
    printf("shmat %s\n", id < 0 || a == (void *)-1 || b == (void *)-1 ? err(errno)
                         : a == b ? "same" : "different");
    shmdt(b);

    /* fork: no MMU to copy the address space with. */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    if (child > 0)
        waitpid(child, NULL, 0);
    printf("fork %s\n", child < 0 ? err(errno) : "OK");

    /* vfork + exec: what a no-MMU program does instead. */
    fflush(stdout);
    pid_t spawned = vfork();
    if (spawned == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status = -1;
    if (spawned > 0)
        waitpid(spawned, &status, 0);
    printf("vfork_exec %s\n", spawned < 0 ? err(errno)
                             : WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "OK" : "FAILED");

    /* Left mapped on purpose: the report at exit lists it. */
    char *left = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (left == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(left, 1, 3 * 4096);
    printf("left %lx-%lx\n", (unsigned long)left, (unsigned long)(left + 3 * 4096));
    return 0;
}
