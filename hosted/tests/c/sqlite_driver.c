/*
 * sqlite_driver - SQLite (the bundled sqlite3.c) on two directories:
 *
 *   sqlite_driver MEMDIR DISKDIR [ROWS]
 *
 * MEMDIR is a directory of the memory server's memory filesystem (ramfs),
 * DISKDIR one of its copy-only filesystem (a host directory mounted at its
 * own host path); the host build runs on two plain host directories. All
 * with SQLite's default VFS ("unix": fcntl() record locks, fsync) and
 * default synchronous. In each it first tries WAL mode (normal and
 * exclusive locking), maps a -shm-like file MAP_SHARED by hand, tries the
 * rollback-journal modes DELETE, TRUNCATE and PERSIST, then creates a
 * database with a journal mode that works there, inserts ROWS rows
 * (default 20000) in
 * transactions, builds indexes, queries with aggregates and ORDER BY,
 * updates, deletes, closes, reopens and checks integrity.
 *
 * Lines starting with "# " tell how the environment behaved (WAL, journal
 * modes) and differ between a no-MMU and a host run; every other line is
 * a result and must be the same under any allocator and libc.
 *
 * With -DNOMMU_MALLOC every SQLite allocation goes to the nommu allocator
 * (SQLITE_CONFIG_MALLOC), and its request counts go to stderr:
 *   nommu_malloc: mmap N munmap N mremap N mapped N
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sqlite3.h"

#ifdef NOMMU_MALLOC
#include "nommu_malloc.h"

static void *m_malloc(int n) { return nommu_malloc((size_t)n); }
static void m_free(void *p) { nommu_free(p); }
static void *m_realloc(void *p, int n) { return nommu_realloc(p, (size_t)n); }
static int m_size(void *p) { return (int)nommu_malloc_usable_size(p); }
static int m_roundup(int n) { return (n + 7) & ~7; }
static int m_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}
static void m_shutdown(void *ud) { (void)ud; }

static const sqlite3_mem_methods nommu_methods = {
    m_malloc, m_free, m_realloc, m_size, m_roundup, m_init, m_shutdown, NULL,
};
#endif

#include "malloc_stats.h"

static int failures;

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_driver: %s: %s (%d)\n", what, db ? sqlite3_errmsg(db) : "-",
            db ? sqlite3_extended_errcode(db) : -1);
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite_driver: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        die(db, "exec");
    }
}

/* Print every row of a query, columns separated by '|'; returns the row
 * count. Reals print with 6 decimals. */
static int query(sqlite3 *db, const char *label, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(db, sql);
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        printf("%s:", label);
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                printf("%s%lld", i ? "|" : " ", (long long)sqlite3_column_int64(st, i));
                break;
            case SQLITE_FLOAT:
                printf("%s%.6f", i ? "|" : " ", sqlite3_column_double(st, i));
                break;
            case SQLITE_NULL:
                printf("%sNULL", i ? "|" : " ");
                break;
            default:
                printf("%s%s", i ? "|" : " ", (const char *)sqlite3_column_text(st, i));
            }
        }
        printf("\n");
        rows++;
    }
    if (rc != SQLITE_DONE)
        die(db, sql);
    sqlite3_finalize(st);
    return rows;
}

/* A one-value text query (PRAGMA journal_mode answers this way). */
static void text_of(sqlite3 *db, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *st;
    snprintf(out, len, "(none)");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, len, "error %d: %s", sqlite3_extended_errcode(db), sqlite3_errmsg(db));
        return;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        snprintf(out, len, "error %d: %s", sqlite3_extended_errcode(db), sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

static sqlite3 *open_db(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    if (rc != SQLITE_OK)
        die(db, "open");
    sqlite3_extended_result_codes(db, 1);
    return db;
}

/* SQLite's own error log (unixLogError: which system call failed on
 * which file, with errno), as "# log" lines. */
static void log_line(void *ud, int code, const char *msg)
{
    (void)ud;
    printf("# log %d: %s\n", code, msg);
}

/* Try WAL mode in dir with the default VFS ("unix": fcntl() record locks,
 * the wal-index in the -shm file mapped MAP_SHARED) and default
 * synchronous, in exclusive locking mode if `exclusive` (the wal-index
 * then lives in heap memory, no -shm file is mapped): switch, then write
 * (the first write creates the -wal file and, in normal locking mode,
 * maps the -shm file). Reports each step. */
static void try_wal(const char *name, const char *dir, int exclusive)
{
    char path[512], mode[256];
    snprintf(path, sizeof path, "%s/wal-%s.db", dir, exclusive ? "excl" : "shared");
    sqlite3 *db = open_db(path, NULL);
    const char *how = exclusive ? "exclusive" : "normal";
    if (exclusive)
        exec(db, "PRAGMA locking_mode=EXCLUSIVE");
    text_of(db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    printf("# %s wal (%s locking): journal_mode=WAL answers %s\n", name, how, mode);
    char *err = NULL;
    int rc = sqlite3_exec(db, "CREATE TABLE w(x); INSERT INTO w VALUES (1)", NULL, NULL, &err);
    if (rc == SQLITE_OK)
        printf("# %s wal (%s locking): a write works\n", name, how);
    else
        printf("# %s wal (%s locking): a write fails: %s (extended code %d, errno %d %s)\n", name,
               how, err ? err : "?", sqlite3_extended_errcode(db), sqlite3_system_errno(db),
               strerror(sqlite3_system_errno(db)));
    sqlite3_free(err);
    sqlite3_close(db);
}

/* What SQLite's unixShmMap does with the -shm file, done by hand: extend
 * it to 32 KiB by writing the last byte of each 4 KiB page, then map the
 * 32 KiB region MAP_SHARED, read-write. */
static void probe_shm_map(const char *name, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/probe.db-shm", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        printf("# %s -shm probe: open fails, errno %d %s\n", name, errno, strerror(errno));
        return;
    }
    for (int pg = 0; pg < 8; pg++)
        if (pwrite(fd, "", 1, (off_t)pg * 4096 + 4095) != 1)
            printf("# %s -shm probe: pwrite fails, errno %d %s\n", name, errno, strerror(errno));
    void *p = mmap(NULL, 32768, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("# %s -shm probe: MAP_SHARED of 32 KiB fails, errno %d %s\n", name, errno,
               strerror(errno));
    } else {
        printf("# %s -shm probe: MAP_SHARED of 32 KiB works\n", name);
        munmap(p, 32768);
    }
    close(fd);
    unlink(path);
}

/* Try rollback-journal mode `journal` in dir: a table and two committed
 * transactions (the journal file is created, written, synced and, at each
 * commit, deleted / truncated / kept). Reports the outcome. */
static void try_journal(const char *name, const char *dir, const char *journal)
{
    char path[512], mode[256], sql[128];
    snprintf(path, sizeof path, "%s/journal-%s.db", dir, journal);
    sqlite3 *db = open_db(path, NULL);
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal);
    text_of(db, sql, mode, sizeof mode);
    char *err = NULL;
    int rc = sqlite3_exec(db,
                          "CREATE TABLE j(x); INSERT INTO j VALUES (1); "
                          "BEGIN; INSERT INTO j VALUES (2); UPDATE j SET x = x + 1; COMMIT",
                          NULL, NULL, &err);
    if (rc == SQLITE_OK)
        printf("# %s journal %s (answers %s): commits work\n", name, journal, mode);
    else
        printf("# %s journal %s (answers %s): a commit fails: %s (extended code %d, errno %d "
               "%s)\n",
               name, journal, mode, err ? err : "?", sqlite3_extended_errcode(db),
               sqlite3_system_errno(db), strerror(sqlite3_system_errno(db)));
    sqlite3_free(err);
    sqlite3_close(db);
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The workload on dir/NAME.db with journal mode `journal`. */
static void workload(const char *name, const char *dir, const char *vfs, const char *journal,
                     int rows)
{
    char path[512], mode[256], sql[256];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    sqlite3 *db = open_db(path, vfs);
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal);
    text_of(db, sql, mode, sizeof mode);
    printf("# %s: vfs %s, journal_mode=%s answers %s\n", name, vfs ? vfs : "default", journal,
           mode);
    exec(db, "PRAGMA cache_size=-512");
    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, "
             "data BLOB)");

    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", -1, &ins, NULL))
        die(db, "prepare insert");
    unsigned char blob[200];
    for (int i = 1; i <= rows; i++) {
        if (i % 1000 == 1)
            exec(db, "BEGIN");
        char text[64];
        uint32_t x = (uint32_t)i * 2654435761u;
        snprintf(text, sizeof text, "item-%05d-%08x", i, x);
        int n = (int)(x % sizeof blob);
        for (int k = 0; k < n; k++)
            blob[k] = (unsigned char)(x >> (k % 24));
        sqlite3_bind_int64(ins, 1, i);
        sqlite3_bind_int(ins, 2, (int)(x % 97));
        sqlite3_bind_text(ins, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(ins, 4, (double)(x % 100003) / 7.0);
        sqlite3_bind_blob(ins, 5, blob, n, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(ins);
        if (i % 1000 == 0 || i == rows)
            exec(db, "COMMIT");
    }
    sqlite3_finalize(ins);
    exec(db, "CREATE INDEX t_grp ON t(grp); CREATE INDEX t_val ON t(val)");

    query(db, "count", "SELECT count(*), sum(id), sum(length(data)), total(val) FROM t");
    query(db, "groups",
          "SELECT grp, count(*), sum(length(name)), round(avg(val), 3) FROM t "
          "WHERE grp < 5 GROUP BY grp ORDER BY grp");
    query(db, "top", "SELECT id, name, val FROM t ORDER BY val DESC, id LIMIT 5");
    query(db, "range", "SELECT count(*), min(id), max(id) FROM t WHERE val BETWEEN 1000 AND 2000");
    query(db, "like", "SELECT count(*) FROM t WHERE name LIKE 'item-1%-a%'");
    exec(db, "BEGIN; UPDATE t SET val = val * 2, name = upper(name) WHERE grp % 3 = 0; "
             "DELETE FROM t WHERE id % 7 = 0; COMMIT");
    query(db, "after", "SELECT count(*), round(total(val), 3), sum(grp) FROM t");
    query(db, "join",
          "SELECT count(*), sum(a.grp * b.grp) FROM t a JOIN t b ON b.id = a.id + 1 "
          "WHERE a.grp < 10");
    sqlite3_close(db);

    /* Reopen: the rows came back from the file. */
    db = open_db(path, vfs);
    text_of(db, sql, mode, sizeof mode);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, grp, name, val, data FROM t ORDER BY id", -1, &st,
                           NULL))
        die(db, "prepare scan");
    uint64_t h = 0xcbf29ce484222325ULL;
    int seen = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char line[128];
        int n = snprintf(line, sizeof line, "%lld|%d|%s|%.6f|", (long long)sqlite3_column_int64(st, 0),
                         sqlite3_column_int(st, 1), (const char *)sqlite3_column_text(st, 2),
                         sqlite3_column_double(st, 3));
        h = fnv(h, line, (size_t)n);
        h = fnv(h, sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4));
        seen++;
    }
    if (rc != SQLITE_DONE)
        die(db, "scan");
    sqlite3_finalize(st);
    printf("reopen: %d rows, checksum %016" PRIx64 "\n", seen, h);
    char check[256];
    text_of(db, "PRAGMA integrity_check", check, sizeof check);
    printf("integrity: %s\n", check);
    if (strcmp(check, "ok") != 0)
        failures++;
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: sqlite_driver MEMDIR DISKDIR [ROWS]\n");
        return 2;
    }
    int rows = argc == 4 ? atoi(argv[3]) : 20000;
#ifdef NOMMU_MALLOC
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &nommu_methods) != SQLITE_OK) {
        fprintf(stderr, "sqlite_driver: SQLITE_CONFIG_MALLOC refused\n");
        return 1;
    }
#endif
    sqlite3_config(SQLITE_CONFIG_LOG, log_line, NULL);
    if (sqlite3_initialize() != SQLITE_OK) {
        fprintf(stderr, "sqlite_driver: sqlite3_initialize failed\n");
        return 1;
    }
    printf("sqlite %s\n", sqlite3_libversion());
    /* The default VFS ("unix": fcntl() record locks, fsync) and default
     * synchronous (FULL) throughout. */
    const char *dirs[2][2] = {{"mem", argv[1]}, {"disk", argv[2]}};
    for (int i = 0; i < 2; i++) {
        try_wal(dirs[i][0], dirs[i][1], 0);
        try_wal(dirs[i][0], dirs[i][1], 1);
        probe_shm_map(dirs[i][0], dirs[i][1]);
        try_journal(dirs[i][0], dirs[i][1], "DELETE");
        try_journal(dirs[i][0], dirs[i][1], "TRUNCATE");
        try_journal(dirs[i][0], dirs[i][1], "PERSIST");
    }
    /* The workload in a rollback-journal mode that works on each: DELETE
     * (SQLite's default) on ramfs; on the copy-only filesystem, whose
     * files can be neither truncated nor unlinked through the server,
     * PERSIST. */
    workload("mem", argv[1], NULL, "DELETE", rows);
    workload("disk", argv[2], NULL, "PERSIST", rows);
    sqlite3_shutdown();
    fflush(stdout);
    print_malloc_stats();
    return failures ? 1 : 0;
}
