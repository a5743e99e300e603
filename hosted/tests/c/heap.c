/* An ordinary C program, built without libnommu, that uses the C
 * library's allocator: plain malloc/calloc/realloc/free, aligned forms,
 * and glibc functions that allocate inside (strdup). Prints where a small
 * and a large block lie, so a test can tell whose heap they came from,
 * and "heap ok" when every block held what was written. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *small = malloc(100);
    char *large = malloc(2 << 20);
    if (!small || !large)
        return 1;
    memset(small, 's', 100);
    memset(large, 'l', 2 << 20);
    printf("small %lx\nlarge %lx\n", (unsigned long)small, (unsigned long)large);

    int ok = 1;
    char *copy = strdup("no mmu");
    ok &= copy && strcmp(copy, "no mmu") == 0;
    int *zeroes = calloc(1000, sizeof(int));
    for (int i = 0; zeroes && i < 1000; i++)
        ok &= zeroes[i] == 0;
    small = realloc(small, 100000);
    ok &= small && small[99] == 's' && malloc_usable_size(small) >= 100000;
    void *aligned = NULL;
    ok &= posix_memalign(&aligned, 4096, 5000) == 0 && ((uintptr_t)aligned & 4095) == 0;
    void *aligned2 = aligned_alloc(256, 512);
    ok &= aligned2 && ((uintptr_t)aligned2 & 255) == 0;
    ok &= large[(2 << 20) - 1] == 'l';
    free(copy);
    free(zeroes);
    free(small);
    free(large);
    free(aligned);
    free(aligned2);
    printf("heap %s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
