/*
 * board_posix.c - the few system interfaces picolibc expects from an OS,
 * for C programs on the board (Lua's libraries reach them through abort,
 * raise, clock and time).
 *
 * The C heap is the shim's mmap-only malloc, as in a uClinux port: every
 * malloc is the memory server's memory, and picolibc's sbrk-based malloc
 * is never linked (its heap symbols are not even defined).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "nommu_malloc.h"

/* Ends the calling task (the board's Rust side). */
void board_task_exit(int code) __attribute__((noreturn));

void *malloc(size_t size) { return nommu_malloc(size); }
void free(void *ptr) { nommu_free(ptr); }
void *calloc(size_t n, size_t size) { return nommu_calloc(n, size); }
void *realloc(void *ptr, size_t size) { return nommu_realloc(ptr, size); }
int posix_memalign(void **out, size_t align, size_t size)
{
    return nommu_posix_memalign(out, align, size);
}
void *aligned_alloc(size_t align, size_t size) { return nommu_aligned_alloc(align, size); }
void *memalign(size_t align, size_t size) { return nommu_aligned_alloc(align, size); }

void _exit(int code) { board_task_exit(code); }

/* picolibc's exit() runs the fini array and then _fini, which a bare image
 * has no other source of: nothing is left to finish here. */
void _fini(void) {}

/* One process per task; the board has no signals to deliver, so a signal
 * sent to oneself (raise, abort) ends the task like a fatal one would. */
pid_t getpid(void) { return 1; }
int kill(pid_t pid, int sig)
{
    (void)pid;
    board_task_exit(128 + sig);
}

static unsigned long long board_ticks(void)
{
    unsigned long long t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}

/* QEMU virt's timer runs at 10 MHz; time is counted from reset. */
#define BOARD_TICKS_PER_SEC 10000000ULL

clock_t times(struct tms *t)
{
    clock_t now = (clock_t)(board_ticks() / (BOARD_TICKS_PER_SEC / CLOCKS_PER_SEC));
    if (t) {
        t->tms_utime = now;
        t->tms_stime = 0;
        t->tms_cutime = 0;
        t->tms_cstime = 0;
    }
    return now;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    (void)tz;
    unsigned long long t = board_ticks();
    if (tv) {
        tv->tv_sec = (time_t)(t / BOARD_TICKS_PER_SEC);
        tv->tv_usec = (suseconds_t)(t % BOARD_TICKS_PER_SEC / 10);
    }
    return 0;
}
