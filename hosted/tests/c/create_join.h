/* create_join.h: the C side of create_and_join() in common/daemon.rs, for
 * the programs that share one 8 KiB MAP_SHARED object between a creating
 * and a joining process (shm.c, posix_shm.c). Include after check.h. */
#ifndef NOMMU_TESTS_CREATE_JOIN_H
#define NOMMU_TESTS_CREATE_JOIN_H

#include <stdio.h>
#include <string.h>

/* The creator's half: store "from create" at 0, print "ready", wait for
 * a line on stdin, then find the joiner's "from join" at 4096. */
static void create_then_wait_for_join(char *p) {
    strcpy(p, "from create");
    printf("ready\n");
    fflush(stdout);
    char line[16];
    CHECK(fgets(line, sizeof line, stdin) != NULL, "stdin closed");
    CHECK(strcmp(p + 4096, "from join") == 0, "join's bytes missing");
}

/* The joiner's half: find "from create" at 0, store "from join" at 4096. */
static void join_created(char *p) {
    CHECK(strcmp(p, "from create") == 0, "create's bytes missing");
    strcpy(p + 4096, "from join");
}

#endif
