/*
 * Fuzzes the journal replay at start (spool/spool_replay.c) over the segments a crash or a bad
 * disk leaves behind: the input is written as journal segments into a fresh spool under a
 * temporary directory (/dev/shm when there is one), and the spool is opened and recovered as the
 * daemon starts (spool_open, then spool_recover, which replays first). Recovery must never crash,
 * must succeed (nothing here fails on disk) and must leave exactly what a model of the records
 * says: per queue id, in order, M sets the queue file (unless it starts with the same bytes), S
 * appends to it after its end record and after cutting its torn tail (only while the queue file
 * is a whole, valid message), X removes it. Then each queue file is reported with its envelope
 * and recipient states (a torn tail cut), or removed when every recipient is final, or, not a
 * whole valid message, moved to corrupt/ unchanged. No state file is made. The journal,
 * tmp/ and every state file without its message end empty or gone, nothing outside the spool is
 * touched, no descriptor is left open, and a second recovery finds the same.
 *
 * Input: journal bytes as the writer makes them. When the segment header record appears again
 * past the start, the input is split there into two segments (oldest first). An input of odd
 * length has every record whose length fits in its segment sealed again (its CRC computed) before
 * it is written, so mutations reach the replay rather than stopping at the checksum; an even one
 * is written as it is.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "spool/spool_fs.h"
#include "spool/spool_journal.h"
#include "spool/spool_layout.h"
#include "spool/spool_state.h"
#include "tests/fuzz/fuzz.h"
#include "tests/support/test_dirs.h"

static const char canary[] = "outside the spool: never touched";

static char base[64];  /* the temporary directory: spool/ and outside/ */
static char spool[96]; /* base/spool */

/* What the records leave for one queue id, and what recovery must then do with it. */
struct model {
    char id[SPOOL_ID_MAX + 1];
    int has_file;    /* there is a queue file */
    struct buf file; /* its bytes: the message's records, then its state records */
    size_t end;      /* the offset past its end record (spool_fs_end_of), 0: none */
    int valid;       /* file[0, end) is a whole, valid message */
    int removed;     /* ... whose recipients are all final */
    int reported;    /* seen by recovery's callback */
    struct envelope_decoder dec;
    struct spool_state st;
};

struct models {
    struct model *items;
    size_t n, cap;
};

static void cleanup(void)
{
    test_dir_clear(base);
    rmdir(base);
}

static void setup(void)
{
    if (fuzz_tmpdir(base, sizeof base, "journal") < 0)
        abort();
    snprintf(spool, sizeof spool, "%s/spool", base);
    char path[160];
    snprintf(path, sizeof path, "%s/outside", base);
    if (mkdir(path, 0700) < 0)
        abort();
    log_set_level(LOG_ERROR); /* replay and recovery log every file they repair */
    atexit(cleanup);
}

/* 1 when the file at path holds exactly data (len). */
static int file_is(const char *path, const void *data, size_t len)
{
    struct buf have = BUF_INIT;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    ssize_t n;
    do {
        char *p = buf_reserve(&have, 4096);
        n = read(fd, p, 4096);
        if (n > 0)
            have.len += (size_t)n;
    } while (n > 0);
    close(fd);
    int same = n == 0 && have.len == len && (len == 0 || memcmp(have.data, data, len) == 0);
    buf_free(&have);
    return same;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int entries(const char *dir, const char *sub)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    return test_dir_count(path);
}

static int open_fds(void)
{
    return test_dir_count("/proc/self/fd");
}

/* Where the file of id is under the spool's sub (hashed, as the spool keeps it). */
static void msg_path(char *out, size_t size, const char *sub, const char *id)
{
    char name[SPOOL_NAME_MAX + 1];
    spool_layout_name(id, name);
    snprintf(out, size, "%s/%s/%s", spool, sub, strcmp(sub, "corrupt") == 0 ? id : name);
}

/* The segment header record as the writer makes it. */
static void header_record(struct buf *out)
{
    spool_journal_encode(out, SPOOL_JOURNAL_REC_HEADER, NULL, SPOOL_JOURNAL_MAGIC,
                         strlen(SPOOL_JOURNAL_MAGIC));
}

/* Computes the CRC of every record of seg[0..len) whose length fits, up to the first that does
 * not. */
static void records_seal(char *seg, size_t len)
{
    size_t pos = 0;
    while (len - pos >= 4 + 2 + 4) {
        uint32_t payload = envelope_get_be32(seg + pos);
        if (payload < 2 || payload > SPOOL_JOURNAL_REC_MAX || len - pos - 8 < payload)
            return;
        envelope_put_be32(seg + pos + 4 + payload, envelope_crc32(0, seg + pos, 4 + payload));
        pos += 4 + (size_t)payload + 4;
    }
}

static struct model *model_of(struct models *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].id, id) == 0)
            return &m->items[i];
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->items = xrealloc(m->items, m->cap * sizeof *m->items);
    }
    struct model *it = &m->items[m->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->id, sizeof it->id, "%s", id);
    return it;
}

/* Bytes of whole records at the start of state records, as the replay counts them. */
static size_t state_valid(const char *data, size_t len)
{
    struct spool_state st;
    spool_state_init(&st, 0);
    spool_state_feed(&st, data, len);
    size_t valid = (size_t)st.valid_len;
    spool_state_free(&st);
    return valid;
}

/* 1 when the file's records up to its end record are a whole, valid message (it->end set). */
static int model_whole(struct model *it)
{
    it->end = (size_t)spool_fs_end_of(it->file.data, it->file.len);
    struct envelope_decoder dec;
    struct buf err = BUF_INIT;
    envelope_decoder_init(&dec);
    int whole = it->end > 0 && envelope_decoder_feed(&dec, it->file.data, it->end, NULL, &err) == 1;
    envelope_decoder_free(&dec);
    buf_free(&err);
    return whole;
}

/* Applies one segment's records to the model, from its header to its first bad record. */
static void model_segment(struct models *m, const char *seg, size_t len)
{
    struct spool_journal_rec_view rec;
    size_t pos = 0;
    if (!spool_journal_decode(seg, len, &pos, &rec) || rec.type != SPOOL_JOURNAL_REC_HEADER ||
        rec.len != strlen(SPOOL_JOURNAL_MAGIC) || memcmp(rec.data, SPOOL_JOURNAL_MAGIC, rec.len))
        return;
    while (spool_journal_decode(seg, len, &pos, &rec)) {
        if (!spool_fs_id_valid(rec.id))
            continue;
        struct model *it = model_of(m, rec.id);
        if (rec.type == SPOOL_JOURNAL_REC_MSG) {
            if (!it->has_file || it->file.len < rec.len ||
                memcmp(it->file.data, rec.data, rec.len)) {
                buf_reset(&it->file);
                buf_append(&it->file, rec.data, rec.len);
            }
            it->has_file = 1;
        } else if (rec.type == SPOOL_JOURNAL_REC_STATE && it->has_file && model_whole(it)) {
            it->file.len = it->end + state_valid(it->file.data + it->end, it->file.len - it->end);
            buf_append(&it->file, rec.data, rec.len);
        } else if (rec.type == SPOOL_JOURNAL_REC_REMOVE) {
            it->has_file = 0;
            buf_reset(&it->file);
        }
    }
}

/* What recovery then does with each queue file: the decoders' verdict on the same bytes. */
static void model_judge(struct model *it)
{
    if (!it->has_file)
        return;
    it->end = (size_t)spool_fs_end_of(it->file.data, it->file.len);
    size_t upto = it->end > 0 ? it->end : it->file.len;
    struct buf err = BUF_INIT;
    envelope_decoder_init(&it->dec);
    it->valid = envelope_decoder_feed(&it->dec, it->file.data, upto, NULL, &err) == 1;
    buf_free(&err);
    if (!it->valid) {
        envelope_decoder_free(&it->dec);
        return;
    }
    spool_state_init(&it->st, it->dec.env.nrcpts);
    spool_state_feed(&it->st, it->file.data + it->end, it->file.len - it->end);
    it->removed = it->dec.env.nrcpts > 0 && spool_state_all_final(&it->st);
}

static void models_free(struct models *m)
{
    for (size_t i = 0; i < m->n; i++) {
        struct model *it = &m->items[i];
        if (it->valid) {
            envelope_decoder_free(&it->dec);
            spool_state_free(&it->st);
        }
        buf_free(&it->file);
    }
    free(m->items);
}

/* Recovery's callback: the entry must be one the model keeps, with its envelope and states. */
static void on_entry(const struct spool_entry *e, void *arg)
{
    struct models *m = arg;
    struct model *it = NULL;
    for (size_t i = 0; i < m->n && it == NULL; i++)
        if (strcmp(m->items[i].id, e->id) == 0)
            it = &m->items[i];
    if (it == NULL || !it->valid || it->removed || it->reported ||
        strcmp(e->env->sender, it->dec.env.sender) != 0 || e->env->nrcpts != it->dec.env.nrcpts ||
        e->body_size != it->dec.body_size + it->dec.prefix.len)
        abort();
    for (size_t i = 0; i < e->env->nrcpts; i++)
        if (e->rcpt_state[i].status != it->st.rcpts[i].status)
            abort();
    it->reported = 1;
}

/* Opens and recovers the spool as the daemon starts; returns the count reported. */
static int recover(struct models *m)
{
    uv_loop_t loop;
    struct spool *sp;
    struct buf err = BUF_INIT;
    if (uv_loop_init(&loop) < 0 || spool_open(&loop, spool, &sp, &err) < 0)
        abort();
    int count = spool_recover(sp, on_entry, m, &err);
    if (count < 0 || err.len != 0)
        abort();
    spool_close(sp);
    if (uv_loop_close(&loop) != 0)
        abort();
    buf_free(&err);
    return count;
}

/* The temporary directory holds spool/ and outside/ only, and outside/ its canary unchanged. */
static void check_outside(void)
{
    int n = 0;
    DIR *d = opendir(base);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, "spool") == 0 || strcmp(de->d_name, "outside") == 0 ? 1
             : strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0        ? 0
                                                                                    : 100;
    if (d != NULL)
        closedir(d);
    char path[160];
    snprintf(path, sizeof path, "%s/outside/canary", base);
    if (n != 2 || entries(base, "outside") != 1 || !file_is(path, canary, sizeof canary))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base[0] == '\0')
        setup();
    test_dir_clear(spool);
    rmdir(spool);
    char path[192];
    snprintf(path, sizeof path, "%s/outside/canary", base);
    fuzz_write_file(path, canary, sizeof canary);

    /* The segments, as a crash left them. */
    char *in = xmalloc(size + 1);
    memcpy(in, data, size);
    struct buf header = BUF_INIT;
    header_record(&header);
    size_t split = size;
    for (size_t at = 1; at + header.len <= size && split == size; at++)
        if (memcmp(in + at, header.data, header.len) == 0)
            split = at;
    if (size % 2) {
        records_seal(in, split);
        records_seal(in + split, size - split);
    }
    uv_loop_t loop;
    struct spool *sp;
    struct buf err = BUF_INIT;
    if (uv_loop_init(&loop) < 0 || spool_open(&loop, spool, &sp, &err) < 0)
        abort();
    spool_close(sp);
    if (uv_loop_close(&loop) != 0)
        abort();
    int fds = open_fds(); /* after the first open of a process opened what it keeps */
    snprintf(path, sizeof path, "%s/%s/0000000000000001", spool, SPOOL_JOURNAL);
    fuzz_write_file(path, in, split);
    if (split < size) {
        snprintf(path, sizeof path, "%s/%s/0000000000000002", spool, SPOOL_JOURNAL);
        fuzz_write_file(path, in + split, size - split);
    }

    struct models m = {0};
    model_segment(&m, in, split);
    model_segment(&m, in + split, size - split);
    int expected = 0, corrupt = 0;
    for (size_t i = 0; i < m.n; i++) {
        model_judge(&m.items[i]);
        expected += m.items[i].valid && !m.items[i].removed;
        corrupt += m.items[i].has_file && !m.items[i].valid;
    }

    if (recover(&m) != expected)
        abort();
    for (size_t i = 0; i < m.n; i++) {
        const struct model *it = &m.items[i];
        char queue[192], state[192], aside[192];
        msg_path(queue, sizeof queue, "queue", it->id);
        msg_path(state, sizeof state, "state", it->id);
        msg_path(aside, sizeof aside, "corrupt", it->id);
        int kept = it->valid && !it->removed;
        /* Recovery cuts a torn tail off the states of a message it keeps. */
        size_t kept_len = it->valid ? it->end + (size_t)it->st.valid_len : 0;
        if (kept != it->reported || (kept && !file_is(queue, it->file.data, kept_len)) ||
            (!kept && exists(queue)) || (it->has_file && !it->valid) != exists(aside) ||
            (exists(aside) && !file_is(aside, it->file.data, it->file.len)) || exists(state))
            abort();
    }
    if (entries(spool, SPOOL_JOURNAL) != 0 || entries(spool, "tmp") != 0 ||
        entries(spool, "queue") != expected || entries(spool, "corrupt") != corrupt ||
        entries(spool, "state") != 0)
        abort();
    check_outside();

    /* Nothing is left to repair: a second recovery reports the same messages again. */
    for (size_t i = 0; i < m.n; i++)
        m.items[i].reported = 0;
    if (recover(&m) != expected || entries(spool, "corrupt") != corrupt)
        abort();
    check_outside();
    if (open_fds() != fds)
        abort();

    models_free(&m);
    buf_free(&header);
    buf_free(&err);
    free(in);
    return 0;
}
