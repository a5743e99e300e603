/*
 * wordfreq - count the words on standard input and print the most frequent,
 * as an ordinary C program would. Built with -include nommu_malloc_names.h
 * (see the Makefile), its malloc/realloc/free take every byte from the
 * memory server's mmap, as a port to a no-MMU board does; it ends by
 * printing what it asked of the server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nommu.h>
#include <nommu_malloc.h>

struct word {
    char *text;
    unsigned long count;
};

static int by_count(const void *a, const void *b)
{
    const struct word *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->text, y->text);
}

int main(void)
{
    struct word *words = NULL;
    size_t n = 0, cap = 0, len = 0;
    char buf[128];
    int c;

    do {
        c = getchar();
        if (c != EOF && (isalnum(c) || c == '_')) {
            if (len < sizeof buf - 1)
                buf[len++] = (char)tolower(c);
            continue;
        }
        if (len == 0)
            continue;
        buf[len] = '\0';
        len = 0;
        size_t i;
        for (i = 0; i < n && strcmp(words[i].text, buf) != 0; i++)
            ;
        if (i == n) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                struct word *grown = realloc(words, cap * sizeof *words);
                if (!grown) {
                    perror("realloc");
                    return 1;
                }
                words = grown;
            }
            words[n].text = malloc(strlen(buf) + 1);
            if (!words[n].text) {
                perror("malloc");
                return 1;
            }
            strcpy(words[n].text, buf);
            words[n++].count = 0;
        }
        words[i].count++;
    } while (c != EOF);

    qsort(words, n, sizeof *words, by_count);
    for (size_t i = 0; i < n && i < 5; i++)
        printf("%6lu %s\n", words[i].count, words[i].text);
    printf("%zu distinct words; heap at %p in the server's arena\n", n, (void *)words);
    for (size_t i = 0; i < n; i++)
        free(words[i].text);
    free(words);

    struct nommu_malloc_stats stats;
    nommu_malloc_stats(&stats);
    printf("server calls: mmap %llu, munmap %llu, mremap %llu\n",
           (unsigned long long)stats.mmap_calls, (unsigned long long)stats.munmap_calls,
           (unsigned long long)stats.mremap_calls);
    return 0;
}
