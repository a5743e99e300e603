/* limits: run the steps named on the command line against memsrvd's
 * limits and print one line per step.
 *   map:N     mmap N anonymous pages      -> "map ok" or "map <errno>"
 *   status    /proc/self/status as the server writes it (nommu_read_proc)
 *   hold      print "ready" and wait to be killed */
#include <errno.h>
#include <nommu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EAGAIN: return "EAGAIN";
    default: return strerror(e);
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *step = argv[i];
        if (strncmp(step, "map:", 4) == 0) {
            size_t len = (size_t)atoi(step + 4) * 4096;
            void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            printf("map %s\n", p == MAP_FAILED ? errno_name(errno) : "ok");
        } else if (strcmp(step, "status") == 0) {
            static char text[4096];
            if (nommu_read_proc("self/status", text, sizeof text) < 0) {
                printf("status %s\n", errno_name(errno));
            } else {
                fputs(text, stdout);
            }
        } else if (strcmp(step, "hold") == 0) {
            printf("ready\n");
            fflush(stdout);
            for (;;)
                pause();
        } else {
            fprintf(stderr, "limits: unknown step %s\n", step);
            return 2;
        }
    }
    return 0;
}
