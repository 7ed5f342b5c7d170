#include "lib/log.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/log_events.h"

/* More than a pipe holds (64 KiB), so a writer facing a pipe nobody reads is stuck behind. */
#define PIPE_FILLING_LINES 1000

static char tmpdir[64];

static void path_in_tmp(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void read_to_eof(int fd, struct buf *out)
{
    for (;;) {
        char *p = buf_reserve(out, 65536);
        ssize_t n = read(fd, p, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        out->len += (size_t)n;
    }
}

static void read_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        read_to_eof(fd, out);
        close(fd);
    }
}

/* A thread that collects everything written to a pipe until every write end is closed. */
struct pipe_reader {
    int fd;
    struct buf data;
    uv_thread_t thread;
};

static void reader_on_start(void *arg)
{
    struct pipe_reader *pr = arg;
    read_to_eof(pr->fd, &pr->data);
}

static void reader_start(struct pipe_reader *pr, int fd)
{
    pr->fd = fd;
    pr->data = (struct buf)BUF_INIT;
    uv_thread_create(&pr->thread, reader_on_start, pr);
}

static void reader_join(struct pipe_reader *pr)
{
    uv_thread_join(&pr->thread);
    close(pr->fd);
}

/* Opens the write end of a new pipe as the log target; the caller keeps both ends. */
static int log_open_pipe(int fds[2])
{
    char path[64];
    if (pipe(fds) < 0)
        return -1;
    snprintf(path, sizeof path, "/dev/fd/%d", fds[1]);
    return log_open(path);
}

static size_t count_lines(const struct buf *b, const char *needle)
{
    size_t n = 0;
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        struct buf line = BUF_INIT;
        buf_append(&line, p, (size_t)(nl - p));
        buf_append(&line, "", 1);
        if (strstr(line.data, needle) != NULL)
            n++;
        buf_free(&line);
        p = nl + 1;
    }
    return n;
}

static void log_padded(const char *event, int seq)
{
    struct logrec r;
    log_begin(&r, LOG_INFO, event);
    log_int(&r, "seq", seq);
    log_str(&r, "pad", "................................................................");
    log_end(&r);
}

/* Runs in a child with stderr on a pipe the parent reads only later: the queued lines must all
 * come out before the process ends. */
static void child_log_then_die(int panic)
{
    log_open(NULL);
    for (int i = 0; i < PIPE_FILLING_LINES; i++)
        log_padded("test.before_exit", i);
    if (panic)
        log_panic("the last line: %d", 42);
    log_fatal("test.fatal", "the last line: %d", 42);
}

static void test_exit_delivers_queued_lines(int panic)
{
    int fds[2];
    CHECK_INT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        child_log_then_die(panic);
    }
    close(fds[1]);
    usleep(100 * 1000); /* let the child fill the pipe and queue the rest */
    struct buf out = BUF_INIT;
    read_to_eof(fds[0], &out);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (panic) {
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    } else {
        CHECK(WIFEXITED(status));
        CHECK_INT_EQ(WEXITSTATUS(status), 1);
    }
    CHECK_INT_EQ(count_lines(&out, "\"event\":\"test.before_exit\""), PIPE_FILLING_LINES);
    const char *last = panic ? "\"event\":\"panic\",\"msg\":\"the last line: 42\"}\n"
                             : "\"event\":\"test.fatal\",\"msg\":\"the last line: 42\"}\n";
    CHECK(out.len > strlen(last) && strcmp(out.data + out.len - strlen(last), last) == 0);
    buf_free(&out);
}

#define THREADS 4
#define LINES_PER_THREAD 3000

static void thread_on_start(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        struct logrec r;
        log_begin(&r, LOG_INFO, "test.thread");
        log_int(&r, "thread", id);
        log_int(&r, "seq", i);
        log_str(&r, "pad", "the same text in every line so a torn line shows");
        log_end(&r);
    }
}

/* Every line is whole, and each thread's lines arrive in the order it logged them. */
static void test_threads_never_interleave(void)
{
    char path[128];
    path_in_tmp(path, sizeof path, "threads.log");
    CHECK_INT_EQ(log_open(path), 0);
    uv_thread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        uv_thread_create(&threads[t], thread_on_start, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        uv_thread_join(&threads[t]);
    log_flush();

    struct buf out = BUF_INIT;
    read_file(path, &out);
    buf_append(&out, "", 1);
    int next_seq[THREADS] = {0};
    int lines = 0, torn = 0;
    for (char *save, *line = strtok_r(out.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "\"event\":\"log.unknown_event\"") != NULL)
            continue; /* test.thread is no event of the daemon's */
        const char *fields = strstr(line, ",\"event\":\"test.thread\",");
        int id, seq, end = 0;
        if (strncmp(line, "{\"ts\":\"", 7) != 0 || fields == NULL ||
            sscanf(fields,
                   ",\"event\":\"test.thread\",\"thread\":%d,\"seq\":%d,\"pad\":\"the same text in "
                   "every line so a torn line shows\"}%n",
                   &id, &seq, &end) != 2 ||
            fields[end] != '\0' || id < 0 || id >= THREADS) {
            torn++;
            continue;
        }
        if (seq != next_seq[id])
            torn++;
        next_seq[id] = seq + 1;
        lines++;
    }
    CHECK_INT_EQ(torn, 0);
    CHECK_INT_EQ(lines, THREADS * LINES_PER_THREAD);
    for (int t = 0; t < THREADS; t++)
        CHECK_INT_EQ(next_seq[t], LINES_PER_THREAD);
    buf_free(&out);
}

/* Lines logged before log_open() go to the old target even while it is stuck; later lines only to
 * the new one, and only after the old target's lines. */
static void test_reopen_switches_in_order(void)
{
    int fds[2];
    char path[128];
    path_in_tmp(path, sizeof path, "after.log");
    CHECK_INT_EQ(log_open_pipe(fds), 0);
    for (int i = 0; i < PIPE_FILLING_LINES; i++)
        log_padded("test.before_switch", i);
    CHECK_INT_EQ(log_open(path), 0);
    for (int i = 0; i < 100; i++)
        log_padded("test.after_switch", i);
    usleep(50 * 1000);

    struct buf after = BUF_INIT;
    read_file(path, &after);
    CHECK_INT_EQ(after.len, 0); /* the old target has not drained yet */

    struct pipe_reader pr;
    reader_start(&pr, fds[0]);
    log_flush(); /* the writer has closed its copy of the pipe */
    close(fds[1]);
    reader_join(&pr);
    read_file(path, &after);
    CHECK_INT_EQ(count_lines(&pr.data, "\"event\":\"test.before_switch\""), PIPE_FILLING_LINES);
    CHECK_INT_EQ(count_lines(&pr.data, "\"event\":\"test.after_switch\""), 0);
    CHECK_INT_EQ(count_lines(&after, "\"event\":\"test.after_switch\""), 100);
    CHECK_INT_EQ(count_lines(&after, "\"event\":\"test.before_switch\""), 0);
    buf_free(&pr.data);
    buf_free(&after);
}

/* Sums the "count" fields of the log.dropped records. */
static long long dropped_count(struct buf *b)
{
    static const char key[] = "\"event\":\"log.dropped\",\"count\":";
    long long sum = 0;
    buf_append(b, "", 1);
    for (const char *p = strstr(b->data, key); p != NULL; p = strstr(p + 1, key))
        sum += strtoll(p + strlen(key), NULL, 10);
    b->len--;
    return sum;
}

/* A target nobody reads: memory stays bounded, the excess is counted and reported once the writer
 * catches up, and nothing else is lost. */
static void test_stuck_target_drops_and_counts(void)
{
    enum { TOTAL = 2000 };
    int fds[2];
    char path[128];
    path_in_tmp(path, sizeof path, "dropped_after.log");
    log_set_queue_limit(16 * 1024);
    CHECK_INT_EQ(log_open_pipe(fds), 0);
    for (int i = 0; i < TOTAL; i++)
        log_padded("test.drop", i);

    struct pipe_reader pr;
    reader_start(&pr, fds[0]);
    log_flush();
    CHECK_INT_EQ(log_open(path), 0);
    log_flush();
    close(fds[1]);
    reader_join(&pr);
    log_set_queue_limit(8 * 1024 * 1024);

    long long received = (long long)count_lines(&pr.data, "\"event\":\"test.drop\"");
    long long dropped = dropped_count(&pr.data);
    CHECK(dropped > 0);
    CHECK(received < TOTAL);
    CHECK_INT_EQ(received + dropped, TOTAL);
    /* One record per catching up: the writer may catch up briefly before the pipe fills. */
    CHECK(count_lines(&pr.data, "\"event\":\"log.dropped\"") >= 1);
    buf_free(&pr.data);
}

struct tap_seen {
    struct buf records; /* each with a newline */
    int calls;
};

static void tap_on_record(void *arg, const struct log_event *event, const char *record, size_t len)
{
    struct tap_seen *seen = arg;
    CHECK(memmem(record, len, event->name, strlen(event->name)) != NULL);
    buf_append(&seen->records, record, len);
    buf_append(&seen->records, "\n", 1);
    seen->calls++;
}

static void log_one(enum log_level level, const char *event, const char *id)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "queue_id", id);
    log_end(&r);
}

/* The tap gets the selected events' records as written, and those of a level the log leaves out;
 * nothing once unselected or unset. */
static void test_tap_gets_selected_records(void)
{
    char path[128];
    struct tap_seen seen = {BUF_INIT, 0};
    path_in_tmp(path, sizeof path, "tap.log");
    CHECK_INT_EQ(log_open(path), 0);
    log_set_level(LOG_INFO);
    log_tap_set(tap_on_record, &seen);
    CHECK_INT_EQ(log_tap_select("smtp.accepted", 1), 0);
    CHECK_INT_EQ(log_tap_select("smtp.state", 1), 0);
    CHECK_INT_EQ(log_tap_select("no.such_event", 1), -ENOENT);
    log_one(LOG_INFO, "smtp.accepted", "TAPPED1");
    log_one(LOG_DEBUG, "smtp.state", "TAPPED2");
    log_one(LOG_INFO, "smtp.connect", "UNSELECTED");
    CHECK_INT_EQ(log_tap_select("smtp.state", 0), 0);
    log_one(LOG_DEBUG, "smtp.state", "UNSELECTED");
    log_tap_set(NULL, NULL);
    log_one(LOG_INFO, "smtp.accepted", "UNSET");
    log_flush();

    struct buf file = BUF_INIT;
    read_file(path, &file);
    CHECK_INT_EQ(seen.calls, 2);
    CHECK_INT_EQ(count_lines(&seen.records, "TAPPED1"), 1);
    CHECK_INT_EQ(count_lines(&seen.records, "TAPPED2"), 1);
    CHECK_INT_EQ(count_lines(&seen.records, "UNSELECTED") + count_lines(&seen.records, "UNSET"), 0);
    /* As the log has it, byte for byte; the debug record only in the tap. */
    const char *first_end = memchr(seen.records.data, '\n', seen.records.len);
    CHECK(first_end != NULL && memmem(file.data, file.len, seen.records.data,
                                      (size_t)(first_end - seen.records.data) + 1) != NULL);
    CHECK_INT_EQ(count_lines(&file, "TAPPED2"), 0);
    CHECK_INT_EQ(count_lines(&file, "UNSET"), 1);
    buf_free(&file);
    buf_free(&seen.records);
}

/* The recent alarms: the last LOG_ALARMS_MAX error records, oldest first, no other level; one too
 * long to keep whole keeps its time, level and event. */
static void test_recent_alarms(void)
{
    char path[128];
    path_in_tmp(path, sizeof path, "alarms.log");
    CHECK_INT_EQ(log_open(path), 0);
    for (int i = 0; i < LOG_ALARMS_MAX + 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "ALARM%02d", i);
        log_one(LOG_ERROR, "spool.commit_failed", id);
        log_one(LOG_WARN, "smtp.accepted", "NOT_AN_ALARM");
    }
    static char big[LOG_ALARM_LINE_MAX];
    memset(big, 'x', sizeof big - 1);
    log_one(LOG_ERROR, "spool.journal_failed", big);
    struct buf got = BUF_INIT;
    log_alarms(&got);
    CHECK_INT_EQ(count_lines(&got, "\"level\":\"error\""), LOG_ALARMS_MAX);
    CHECK_INT_EQ(count_lines(&got, "NOT_AN_ALARM"), 0);
    CHECK_INT_EQ(count_lines(&got, "ALARM03"), 0);
    buf_append(&got, "", 1);
    CHECK(strstr(got.data, "\"queue_id\":\"ALARM04\"}\n") != NULL);
    CHECK(strstr(got.data, "ALARM04") < strstr(got.data, "ALARM18"));
    const char *cut = "\"level\":\"error\",\"event\":\"spool.journal_failed\"}\n";
    CHECK(got.len > strlen(cut) && strcmp(got.data + got.len - 1 - strlen(cut), cut) == 0);
    buf_free(&got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice_test_log_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    /* The children first, while this process has no writer thread. */
    test_exit_delivers_queued_lines(0);
    test_exit_delivers_queued_lines(1);
    test_threads_never_interleave();
    test_reopen_switches_in_order();
    test_stuck_target_drops_and_counts();
    test_tap_gets_selected_records();
    test_recent_alarms();

    log_open(NULL);
    log_flush();
    const char *names[] = {"threads.log", "after.log", "dropped_after.log", "tap.log",
                           "alarms.log"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        path_in_tmp(path, sizeof path, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return check_report("test_log");
}
