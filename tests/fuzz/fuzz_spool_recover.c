/*
 * Fuzzes spool recovery (spool/spool_recover.c) over what a crash, a bad disk or a careless admin
 * leaves behind: fuzzed bytes written as queue files, state files, half-written tmp/ files, files
 * with names that are not queue ids and symbolic links, in a spool under a temporary directory
 * (/dev/shm when there is one). Recovery must never crash and must agree with the decoders run on
 * the same bytes in memory: a queue file that is not a whole, valid message is moved to corrupt/
 * unchanged and never reported; a whole one is reported with its envelope and recipient states
 * (from its state file when it has one, else from what follows its end record), or removed with
 * its state file when every recipient is final; tmp/ ends empty, state files without a message are
 * removed and torn state records cut off (the queue file's or the state file's); nothing behind a
 * link is touched.
 * A second recovery and a read-only scan then find the same messages and change nothing.
 *
 * Input: records of one kind byte, a two-byte big-endian length and that many bytes; the kind
 * (modulo 6) makes a queue file (named by the next of a fixed list of ids), a state file for the
 * last queue file, an orphan state file, a tmp/ file, a queue/ file whose name is no id, or a link
 * in queue/ named by the next id and pointing to a file outside the spool holding the bytes. An
 * input of odd length writes queue and state files in the flat layout of earlier versions
 * (queue/<id>), which opening the spool moves into the hashed directories; an even one writes
 * them where this version keeps them (queue/<leaf>/<id>).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "spool/spool_layout.h"
#include "spool/spool_fs.h"
#include "spool/spool_state.h"
#include "tests/fuzz/fuzz.h"
#include "tests/support/test_dirs.h"

#define FILES_MAX 8

enum kind { K_QUEUE, K_STATE, K_ORPHAN, K_TMP, K_BADNAME, K_LINK, K_COUNT };

static const char *const ids[FILES_MAX] = {
    "0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004",
    "0000000000000005", "0000000000000006", "0000000000000007", "0000000000000008",
};

struct file {
    enum kind kind;
    const char *name; /* in its directory */
    const uint8_t *data;
    size_t len;
    int queue; /* K_STATE: index of its queue file in files[], -1: none yet (an orphan) */
};

/* What recovery must report for one queue file. */
struct want {
    int valid;                   /* whole and valid */
    int removed;                 /* valid, every recipient final */
    struct envelope_decoder dec; /* when valid */
    struct spool_state state;    /* when valid */
    size_t end;                  /* past the end record (spool_fs_end_of), 0: none */
    int has_state;
    const struct file *state_file;
};

struct seen {
    char id[SPOOL_ID_MAX + 1];
    char sender[ENVELOPE_STR_MAX + 1];
    size_t nrcpts;
    uint64_t body_size;
    enum spool_rcpt_status status[4];
};

struct seen_list {
    struct seen items[FILES_MAX];
    size_t n;
};

static char base[64];  /* the temporary directory: spool/ and outside/ */
static char spool[96]; /* base/spool */

static int writing_flat; /* files are being written in the flat layout of earlier versions */

/* Where name is in sub: queue and state files (all named by 16-character ids, unlike the bad
 * names) in their hashed directory (made when missing), unless writing_flat. */
static void path_of(char *out, size_t size, const char *sub, const char *name)
{
    char hashed[SPOOL_NAME_MAX + 1];
    snprintf(hashed, sizeof hashed, "%s", name);
    if (!writing_flat && (strcmp(sub, "queue") == 0 || strcmp(sub, "state") == 0) &&
        strlen(name) == 16) {
        spool_layout_name(name, hashed);
        snprintf(out, size, "%s/%s/%.*s", spool, sub, SPOOL_LEAF_LEN, hashed);
        mkdir(out, 0700);
    }
    snprintf(out, size, "%s/%s/%s", spool, sub, hashed);
}

static void clear_all(void)
{
    static const char *const subs[] = {"tmp", "queue", "state", "corrupt"};
    char path[160];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", spool, subs[i]);
        test_dir_clear(path);
    }
    snprintf(path, sizeof path, "%s/outside", base);
    test_dir_clear(path);
}

static void cleanup(void)
{
    test_dir_clear(base); /* the spool's journal/ and leaves included */
    rmdir(base);
}

static void setup(void)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/sluice-fuzz-recover-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(base) == NULL)
        abort();
    snprintf(spool, sizeof spool, "%s/spool", base);
    char path[160];
    snprintf(path, sizeof path, "%s/outside", base);
    mkdir(path, 0700);
    log_set_level(LOG_ERROR); /* recovery logs every file it moves */
    atexit(cleanup);
}

/* The file's bytes must be exactly data (len), or the file must be absent when data is NULL. */
static void expect_file(const char *path, const uint8_t *data, size_t len)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (data != NULL || errno != ENOENT)
            abort();
        return;
    }
    if (data == NULL || !S_ISREG(st.st_mode) || (size_t)st.st_size != len)
        abort();
    uint8_t *got = malloc(len ? len : 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, got, len) != (ssize_t)len || memcmp(got, data, len) != 0)
        abort();
    close(fd);
    free(got);
}

static int count_entries(const char *sub)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", spool, sub);
    int n = test_dir_count(path);
    if (n < 0)
        abort();
    return n;
}

static void on_entry(const struct spool_entry *e, void *arg)
{
    struct seen_list *l = arg;
    if (l->n == FILES_MAX)
        abort();
    struct seen *s = &l->items[l->n++];
    snprintf(s->id, sizeof s->id, "%s", e->id);
    snprintf(s->sender, sizeof s->sender, "%s", e->env->sender);
    s->nrcpts = e->env->nrcpts;
    s->body_size = e->body_size;
    for (size_t i = 0; i < 4; i++)
        s->status[i] = i < e->env->nrcpts ? e->rcpt_state[i].status : SPOOL_RCPT_PENDING;
}

static const struct seen *seen_find(const struct seen_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].id, id) == 0)
            return &l->items[i];
    return NULL;
}

/* Parses the input into files; returns their count. */
static size_t files_parse(const uint8_t *data, size_t size, struct file *files)
{
    static const char *const bad_names[] = {"not-an-id", ".hidden", "0000000000000000000000000"};
    size_t n = 0, nqueue = 0, nbad = 0, norphan = 0;
    int last_queue = -1;
    for (size_t off = 0; off + 3 <= size && n < FILES_MAX;) {
        enum kind k = (enum kind)(data[off] % K_COUNT);
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (len > size - off)
            len = size - off;
        struct file *f = &files[n];
        *f = (struct file){k, NULL, data + off, len, -1};
        off += len;
        switch (k) {
        case K_QUEUE:
        case K_LINK:
            f->name = ids[nqueue++];
            if (k == K_QUEUE)
                last_queue = (int)n;
            break;
        case K_STATE:
            f->queue = last_queue;
            f->name = last_queue >= 0 ? files[last_queue].name : ids[FILES_MAX - 1];
            break;
        case K_ORPHAN:
            f->name = norphan++ % 2 ? "ZZZZZZZZZZZZZZZ1" : "ZZZZZZZZZZZZZZZ2";
            break;
        case K_TMP:
            f->name = ids[n];
            break;
        case K_BADNAME:
            f->name = bad_names[nbad++ % 3];
            break;
        case K_COUNT:
            abort();
        }
        n++;
    }
    return n;
}

static const char *dir_of(enum kind k)
{
    switch (k) {
    case K_STATE:
    case K_ORPHAN:
        return "state";
    case K_TMP:
        return "tmp";
    default:
        return "queue";
    }
}

/* The last file written under this directory and name (later ones replace earlier ones). */
static const struct file *file_final(const struct file *files, size_t n, const struct file *f)
{
    const struct file *last = f;
    for (size_t i = 0; i < n; i++)
        if (strcmp(dir_of(files[i].kind), dir_of(f->kind)) == 0 &&
            strcmp(files[i].name, f->name) == 0)
            last = &files[i];
    return last;
}

static void want_compute(const struct file *files, size_t n, const struct file *q, struct want *w)
{
    memset(w, 0, sizeof *w);
    struct buf err = BUF_INIT;
    envelope_decoder_init(&w->dec);
    /* What follows the end record are the message's recipient states (when it has no state
     * file); the decoder gets the records before. */
    w->end = (size_t)spool_fs_end_of(q->data, q->len);
    w->valid =
        envelope_decoder_feed(&w->dec, q->data, w->end > 0 ? w->end : q->len, NULL, &err) == 1;
    buf_free(&err);
    if (!w->valid) {
        envelope_decoder_free(&w->dec);
        return;
    }
    spool_state_init(&w->state, w->dec.env.nrcpts);
    for (size_t i = 0; i < n; i++)
        if (files[i].kind == K_STATE && strcmp(files[i].name, q->name) == 0)
            w->state_file = &files[i]; /* the last one written */
    if (w->state_file != NULL)
        spool_state_feed(&w->state, w->state_file->data, w->state_file->len);
    else
        spool_state_feed(&w->state, q->data + w->end, q->len - w->end);
    w->removed = w->dec.env.nrcpts > 0 && spool_state_all_final(&w->state);
}

static void want_free(struct want *w)
{
    if (!w->valid)
        return;
    envelope_decoder_free(&w->dec);
    spool_state_free(&w->state);
}

static void check_seen(const struct want *w, const struct seen *s)
{
    if (s == NULL || strcmp(s->sender, w->dec.env.sender) != 0 || s->nrcpts != w->dec.env.nrcpts ||
        s->body_size != w->dec.body_size + w->dec.prefix.len)
        abort();
    for (size_t i = 0; i < 4 && i < s->nrcpts; i++)
        if (s->status[i] != w->state.rcpts[i].status)
            abort();
}

/* Opens the spool (making its directories) on a loop of its own, and closes both. */
static struct spool *spool_up(uv_loop_t *loop)
{
    struct spool *sp;
    struct buf err = BUF_INIT;
    if (uv_loop_init(loop) < 0 || spool_open(loop, spool, &sp, &err) < 0)
        abort();
    return sp;
}

static void spool_down(struct spool *sp, uv_loop_t *loop)
{
    spool_close(sp);
    if (uv_loop_close(loop) != 0)
        abort();
}

static int recover(struct seen_list *seen)
{
    uv_loop_t loop;
    struct spool *sp = spool_up(&loop);
    struct buf err = BUF_INIT;
    memset(seen, 0, sizeof *seen); /* compared whole */
    int count = spool_recover(sp, on_entry, seen, &err);
    if (count < 0 || (size_t)count != seen->n || err.len != 0)
        abort();
    spool_down(sp, &loop);
    buf_free(&err);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base[0] == '\0')
        setup();
    clear_all();
    struct file files[FILES_MAX];
    size_t n = files_parse(data, size, files);

    /* The spool's directories first, then the files as they were left. */
    uv_loop_t loop;
    spool_down(spool_up(&loop), &loop);
    char path[192], target[192];
    writing_flat = size % 2;
    for (size_t i = 0; i < n; i++) {
        const struct file *f = &files[i];
        path_of(path, sizeof path, dir_of(f->kind), f->name);
        if (f->kind == K_LINK) {
            snprintf(target, sizeof target, "%s/outside/%s", base, f->name);
            fuzz_write_file(target, f->data, f->len);
            if (symlink(target, path) < 0)
                abort();
        } else {
            fuzz_write_file(path, f->data, f->len);
        }
    }
    writing_flat = 0;

    struct want wants[FILES_MAX];
    for (size_t i = 0; i < n; i++)
        if (files[i].kind == K_QUEUE)
            want_compute(files, n, &files[i], &wants[i]);

    struct seen_list seen;
    int count = recover(&seen);

    int expected = 0;
    for (size_t i = 0; i < n; i++) {
        const struct file *f = &files[i];
        path_of(path, sizeof path, dir_of(f->kind), f->name);
        switch (f->kind) {
        case K_QUEUE: {
            const struct want *w = &wants[i];
            char corrupt[192], state[192];
            path_of(corrupt, sizeof corrupt, "corrupt", f->name);
            path_of(state, sizeof state, "state", f->name);
            if (!w->valid || w->removed) {
                if (seen_find(&seen, f->name) != NULL)
                    abort();
                expect_file(path, NULL, 0);
                expect_file(state, NULL, 0);
                if (!w->valid)
                    expect_file(corrupt, f->data, f->len);
                break;
            }
            expected++;
            check_seen(w, seen_find(&seen, f->name));
            if (w->state_file != NULL) {
                expect_file(path, f->data, f->len);
                expect_file(state, w->state_file->data, (size_t)w->state.valid_len);
            } else { /* a torn tail of states is cut */
                expect_file(path, f->data, w->end + (size_t)w->state.valid_len);
            }
            break;
        }
        case K_LINK:
            snprintf(target, sizeof target, "%s/outside/%s", base, f->name);
            expect_file(target, f->data, f->len);
            if (seen_find(&seen, f->name) != NULL)
                abort();
            break;
        case K_BADNAME:
            if (file_final(files, n, f) == f) {
                char corrupt[192];
                path_of(corrupt, sizeof corrupt, "corrupt", f->name);
                expect_file(corrupt, f->data, f->len);
            }
            expect_file(path, NULL, 0);
            break;
        case K_ORPHAN:
        case K_TMP:
            expect_file(path, NULL, 0);
            break;
        case K_STATE:
            if (f->queue < 0)
                expect_file(path, NULL, 0);
            break;
        case K_COUNT:
            abort();
        }
    }
    if (count != expected || count_entries("tmp") != 0 || count_entries("queue") != expected)
        abort();

    /* Nothing is left to repair: a second recovery and a scan see the same. */
    struct seen_list again;
    if (recover(&again) != count || memcmp(&again, &seen, sizeof seen) != 0)
        abort();
    struct seen_list scanned;
    struct buf err = BUF_INIT;
    memset(&scanned, 0, sizeof scanned);
    if (spool_scan(spool, on_entry, &scanned, &err) != count ||
        memcmp(&scanned, &seen, sizeof seen) != 0)
        abort();

    for (size_t i = 0; i < n; i++)
        if (files[i].kind == K_QUEUE)
            want_free(&wants[i]);
    buf_free(&err);
    return 0;
}
