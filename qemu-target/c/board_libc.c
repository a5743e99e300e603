/*
 * The board's libc glue for picolibc: stdin/stdout/stderr as tinystdio
 * streams on the kernel console, and the per-task slots the Rust side
 * reaches through thread-local storage (each C task has its own TLS
 * block, made from the image's .tdata/.tbss, with tp at its start).
 *
 * Output is kept a line at a time per task (thread-local), so lines of two
 * C tasks never interleave, and written with board_console_write (Rust,
 * the kernel's Console call).
 */
#include <errno.h>
#include <stdio.h>

void board_console_write(const char *bytes, size_t len);

static __thread char line[160];
static __thread size_t used;
/* The task's memsrv connection (-1: none), set before main runs. */
static __thread long connection = -1;

static int board_flush(FILE *f)
{
    (void)f;
    if (used) {
        board_console_write(line, used);
        used = 0;
    }
    return 0;
}

static int board_put(char c, FILE *f)
{
    line[used++] = c;
    if (c == '\n' || used == sizeof line)
        board_flush(f);
    return (unsigned char)c;
}

static int board_get(FILE *f)
{
    (void)f;
    return EOF;
}

static FILE board_out = FDEV_SETUP_STREAM(board_put, NULL, board_flush, _FDEV_SETUP_WRITE);
static FILE board_in = FDEV_SETUP_STREAM(NULL, board_get, NULL, _FDEV_SETUP_READ);

FILE *const stdin = &board_in;
FILE *const stdout = &board_out;
FILE *const stderr = &board_out;

/* The calling task's errno (picolibc's, thread-local). */
int *board_errno(void)
{
    return &errno;
}

/* The calling task's memsrv connection slot. */
long *board_connection(void)
{
    return &connection;
}

/* Write out a partial last line (called after main returns). */
void board_stdio_flush(void)
{
    board_flush(stdout);
}

/* The calling task's malloc state (the shim's allocator keeps one per
 * process: tasks share this image's data, but not their mappings). */
static __thread void *board_heap;

void **board_malloc_slot(void)
{
    return &board_heap;
}
