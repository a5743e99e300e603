/* threads: THREADS pthreads each map, fill, check and unmap ROUNDS times at
 * once through the one shared connection. Usage: threads THREADS ROUNDS. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int rounds;
static int failures;

static void *worker(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    for (int r = 0; r < rounds; r++) {
        size_t len = (size_t)((id + (uintptr_t)r) % 3 + 1) * 4096;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "threads: %lu: mmap: %s\n", (unsigned long)id, strerror(errno));
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        unsigned char mark = (unsigned char)(id * 31 + (uintptr_t)r);
        memset(p, mark, len);
        for (size_t i = 0; i < len; i++) {
            if (p[i] != mark) {
                fprintf(stderr, "threads: %lu: byte %zu changed under us\n",
                        (unsigned long)id, i);
                __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
                return NULL;
            }
        }
        if (munmap(p, len) != 0) {
            fprintf(stderr, "threads: %lu: munmap: %s\n", (unsigned long)id, strerror(errno));
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            return NULL;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: threads THREADS ROUNDS\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    rounds = atoi(argv[2]);
    pthread_t tids[64];
    if (threads < 1 || threads > 64)
        return 2;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i) != 0)
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    if (failures) {
        fprintf(stderr, "threads: %d failures\n", failures);
        return 1;
    }
    printf("threads: ok\n");
    return 0;
}
