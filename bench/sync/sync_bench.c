/*
 * How fast can this disk make spool writes durable? Three ways of making a batch of writes
 * durable, measured on a directory of the disk under test (bench/sync/run builds and runs this):
 *
 *   file     one fdatasync per file, as many in flight as --threads (the libuv pool), the files
 *            renamed into place and their directory fsynced once per batch (Sluice before group
 *            commit)
 *   syncfs   the batch written without any sync, one syncfs(), the renames, one fsync of the
 *            directory (the renames need the data on disk first, or a crash can leave a named
 *            but empty file)
 *   journal  the batch appended to one shared log, one fdatasync
 *   journal0 the same, but the log is extended with zeros a megabyte at a time ahead of the
 *            records, which overwrite them: most syncs then change no block map or size
 *
 * for accepted messages (a new file of --size bytes each) and for recipient state changes (a
 * 60-byte record appended to an existing file of its own each). Every case runs -r times,
 * interleaved (so a disk that drifts affects all alike); printed per case: the median operations
 * and syncs per second, the lowest and highest rate, and the median's ratio to the 'file' case.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_RECORD 60
#define ZERO_CHUNK (1024 * 1024)

static const char *dir;
static size_t msg_size = 5120;
static int batch = 20, threads = 4, count = 2000, runs = 3;
static char *payload;
static int dir_fd, tmp_fd, queue_fd, state_fd;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0)
            die("write");
        p += w, n -= (size_t)w;
    }
}

static int dir_open(const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        die(path);
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        die(path);
    return fd;
}

/* Empties a subdirectory between cases, so every case starts alike. */
static void dir_clear(int fd)
{
    int dup_fd = dup(fd);
    DIR *d = fdopendir(dup_fd);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            unlinkat(fd, de->d_name, 0);
    closedir(d);
    fsync(fd);
}

/* ---- accepted messages ---- */

static void msg_write(int i, int sync)
{
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    int fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        die("open");
    write_all(fd, payload, msg_size);
    if (sync && fdatasync(fd) < 0)
        die("fdatasync");
    close(fd);
}

static void msg_rename(int i)
{
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    if (renameat(tmp_fd, name, queue_fd, name) < 0)
        die("rename");
}

struct slice {
    int first, n, state;
};

/* A thread's share of a batch in the file case: write, fdatasync, rename. */
static void *file_worker(void *arg)
{
    struct slice *s = arg;
    for (int i = s->first; i < s->first + s->n; i++) {
        if (s->state) {
            char name[32];
            snprintf(name, sizeof name, "s%d", i % batch);
            int fd = openat(state_fd, name, O_WRONLY | O_APPEND);
            write_all(fd, payload, STATE_RECORD);
            if (fdatasync(fd) < 0)
                die("fdatasync");
            close(fd);
        } else {
            msg_write(i, 1);
            msg_rename(i);
        }
    }
    return NULL;
}

static void batch_threads(int first, int n, int state)
{
    pthread_t t[64];
    struct slice s[64];
    int k = threads < n ? threads : n;
    for (int j = 0; j < k; j++) {
        s[j] = (struct slice){first + j * n / k, (j + 1) * n / k - j * n / k, state};
        pthread_create(&t[j], NULL, file_worker, &s[j]);
    }
    for (int j = 0; j < k; j++)
        pthread_join(t[j], NULL);
}

static double accept_file(long *syncs)
{
    double t0 = now();
    for (int i = 0; i < count; i += batch) {
        int n = count - i < batch ? count - i : batch;
        batch_threads(i, n, 0);
        if (fsync(queue_fd) < 0)
            die("fsync");
        *syncs += n + 1;
    }
    return now() - t0;
}

static double accept_syncfs(long *syncs)
{
    double t0 = now();
    for (int i = 0; i < count; i += batch) {
        int n = count - i < batch ? count - i : batch;
        for (int j = i; j < i + n; j++)
            msg_write(j, 0);
        if (syncfs(dir_fd) < 0)
            die("syncfs");
        for (int j = i; j < i + n; j++)
            msg_rename(j);
        if (fsync(queue_fd) < 0)
            die("fsync");
        *syncs += 2;
    }
    return now() - t0;
}

/* Appends batches of records to one file, one fdatasync per batch. zeroed: the file is first
 * extended with zeros a megabyte at a time and records overwrite them, so that most syncs carry
 * no change of the file's size or blocks, only data. */
static double journal_run(long *syncs, size_t record, int zeroed)
{
    int fd = openat(dir_fd, "journal", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("journal");
    fsync(dir_fd);
    static char zeros[ZERO_CHUNK];
    off_t pos = 0, filled = 0;
    double t0 = now();
    for (int i = 0; i < count; i += batch) {
        int n = count - i < batch ? count - i : batch;
        while (zeroed && pos + (off_t)(n * record) > filled) {
            if (pwrite(fd, zeros, sizeof zeros, filled) != (ssize_t)sizeof zeros)
                die("pwrite");
            filled += sizeof zeros;
        }
        for (int j = 0; j < n; j++, pos += (off_t)record)
            if (pwrite(fd, payload, record, pos) != (ssize_t)record)
                die("pwrite");
        if (fdatasync(fd) < 0)
            die("fdatasync");
        *syncs += 1;
    }
    double t = now() - t0;
    close(fd);
    unlinkat(dir_fd, "journal", 0);
    return t;
}

static double accept_journal(long *syncs)
{
    return journal_run(syncs, msg_size, 0);
}

static double accept_journal_zeroed(long *syncs)
{
    return journal_run(syncs, msg_size, 1);
}

/* ---- recipient state changes: batch files get one record each per round ---- */

static void state_files_make(void)
{
    for (int j = 0; j < batch; j++) {
        char name[32];
        snprintf(name, sizeof name, "s%d", j);
        int fd = openat(state_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        close(fd);
    }
    syncfs(dir_fd);
}

static double state_file(long *syncs)
{
    state_files_make();
    double t0 = now();
    for (int i = 0; i < count; i += batch) {
        int n = count - i < batch ? count - i : batch;
        batch_threads(i, n, 1);
        *syncs += n;
    }
    return now() - t0;
}

static double state_syncfs(long *syncs)
{
    state_files_make();
    double t0 = now();
    for (int i = 0; i < count; i += batch) {
        int n = count - i < batch ? count - i : batch;
        for (int j = 0; j < n; j++) {
            char name[32];
            snprintf(name, sizeof name, "s%d", j);
            int fd = openat(state_fd, name, O_WRONLY | O_APPEND);
            write_all(fd, payload, STATE_RECORD);
            close(fd);
        }
        if (syncfs(dir_fd) < 0)
            die("syncfs");
        *syncs += 1;
    }
    return now() - t0;
}

static double state_journal(long *syncs)
{
    return journal_run(syncs, STATE_RECORD, 0);
}

static double state_journal_zeroed(long *syncs)
{
    return journal_run(syncs, STATE_RECORD, 1);
}

#define RUNS_MAX 64

static int double_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double sorted[RUNS_MAX];
    memcpy(sorted, v, sizeof *v * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, double_compare);
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

struct bench_case {
    const char *what, *how;
    double (*run)(long *syncs);
};

int main(int argc, char **argv)
{
    int opt;
    const char *only = NULL;
    while ((opt = getopt(argc, argv, "n:b:s:t:o:r:")) != -1) {
        switch (opt) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 's':
            msg_size = (size_t)atol(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'o':
            only = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1 || count < 1 || batch < 1 || batch > 4096 || threads < 1 ||
        threads > 64 || msg_size < STATE_RECORD || runs < 1 || runs > RUNS_MAX)
        goto usage;
    dir = argv[optind];
    payload = malloc(msg_size);
    memset(payload, 'x', msg_size);
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0)
        die(dir);
    tmp_fd = dir_open("tmp");
    queue_fd = dir_open("queue");
    state_fd = dir_open("state");

    static const struct bench_case cases[] = {
        {"accept", "file", accept_file},       {"accept", "syncfs", accept_syncfs},
        {"accept", "journal", accept_journal}, {"accept", "journal0", accept_journal_zeroed},
        {"state", "file", state_file},         {"state", "syncfs", state_syncfs},
        {"state", "journal", state_journal},   {"state", "journal0", state_journal_zeroed},
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };
    static double ops[NCASES][RUNS_MAX], syncs_per_s[NCASES][RUNS_MAX];
    printf("# %d operations, batches of %d, %zu-byte messages, %d threads for 'file', "
           "median of %d runs\n",
           count, batch, msg_size, threads, runs);
    for (int r = 0; r < runs; r++) {
        for (size_t c = 0; c < NCASES; c++) {
            if (only != NULL && strcmp(only, cases[c].how) != 0)
                continue;
            long syncs = 0;
            double t = cases[c].run(&syncs);
            ops[c][r] = count / t;
            syncs_per_s[c][r] = syncs / t;
            dir_clear(tmp_fd);
            dir_clear(queue_fd);
            dir_clear(state_fd);
        }
    }
    printf("%-7s %-8s %9s %9s %19s %8s\n", "what", "how", "ops/s", "syncs/s", "ops/s low-high",
           "x file");
    double file_ops = 0;
    for (size_t c = 0; c < NCASES; c++) {
        if (only != NULL && strcmp(only, cases[c].how) != 0)
            continue;
        double lo = ops[c][0], hi = ops[c][0];
        for (int r = 1; r < runs; r++) {
            lo = ops[c][r] < lo ? ops[c][r] : lo;
            hi = ops[c][r] > hi ? ops[c][r] : hi;
        }
        double med = median(ops[c], runs);
        if (strcmp(cases[c].how, "file") == 0)
            file_ops = med;
        printf("%-7s %-8s %9.0f %9.0f %9.0f-%-9.0f %8.1f\n", cases[c].what, cases[c].how, med,
               median(syncs_per_s[c], runs), lo, hi, file_ops > 0 ? med / file_ops : 0);
    }
    return 0;
usage:
    fprintf(stderr, "usage: sync_bench [-n ops] [-b batch] [-s msg-size] [-t threads] [-r runs] "
                    "[-o file|syncfs|journal|journal0] DIR\n");
    return 2;
}
