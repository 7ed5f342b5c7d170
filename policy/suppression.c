/*
 * The suppression list in LMDB. A key is "<tenant>\0<address>" ("" the global tenant), so one
 * tenant's entries are one range of keys; a value is a version byte, the source, the time added
 * and the expiry (64-bit little-endian each) and the note. Readers hold no lock while a write
 * syncs (LMDB's writer lock is not the readers' table), so a check on the loop never waits for a
 * write on the thread pool or in another process.
 */
#include "policy/suppression.h"

#include <ctype.h>
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/log.h"
#include "lib/xalloc.h"

#define VALUE_VERSION 1
#define VALUE_HEAD 18 /* version, source, added, expiry */
#define KEY_MAX (SUPPRESSION_TENANT_MAX + 1 + SMTP_PATH_MAX)

struct suppression {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *reader; /* kept reset between checks, so a check does not take a reader slot anew */
    uv_loop_t *loop;
    unsigned pending;               /* suppression_add writes on the thread pool */
    struct suppression_stats stats; /* the batches answered so far */
    unsigned closing : 1;
};

static const char *const source_names[] = {
    [SUPPRESSION_BAD_MAILBOX] = "bad-mailbox", [SUPPRESSION_BAD_DOMAIN] = "bad-domain",
    [SUPPRESSION_COMPLAINT] = "complaint",     [SUPPRESSION_MANUAL] = "manual",
    [SUPPRESSION_IMPORT] = "import",
};

const char *suppression_source_name(enum suppression_source source)
{
    return (unsigned)source < SUPPRESSION_NSOURCES ? source_names[source] : "unknown";
}

int suppression_source_parse(const char *name, enum suppression_source *out)
{
    for (unsigned i = 0; i < SUPPRESSION_NSOURCES; i++)
        if (strcmp(name, source_names[i]) == 0) {
            *out = (enum suppression_source)i;
            return 0;
        }
    return -1;
}

/* LMDB's own codes are negative and not errnos: the ones a caller can act on, else EIO. */
static int mdb_errno(int rc)
{
    if (rc > 0)
        return -rc;
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc == MDB_KEYEXIST)
        return -EEXIST;
    if (rc == MDB_MAP_FULL)
        return -ENOSPC;
    return rc == 0 ? 0 : -EIO;
}

static int text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int suppression_entry_make(const char *tenant, const char *address, enum suppression_source source,
                           int64_t added, int64_t expiry, const char *note,
                           struct suppression_entry *e, const char **why)
{
    memset(e, 0, sizeof *e);
    tenant = tenant != NULL ? tenant : "";
    note = note != NULL ? note : "";
    const char *at = strrchr(address, '@');
    if (strlen(tenant) > SUPPRESSION_TENANT_MAX || !text_ok(tenant) || strchr(tenant, ' '))
        *why = "the tenant is longer than 64 octets or has a space or control character";
    else if (at == NULL || at == address || at[1] == '\0')
        *why = "the address is not local@domain";
    else if (strlen(address) > SMTP_PATH_MAX || !text_ok(address) || strchr(address, ' '))
        *why = "the address is longer than 256 octets or has a space or control character";
    else if (strlen(note) > SUPPRESSION_NOTE_MAX || !text_ok(note))
        *why = "the note is longer than 200 octets or has a control character";
    else if ((unsigned)source >= SUPPRESSION_NSOURCES)
        *why = "unknown source";
    else if (expiry < 0 || added < 0)
        *why = "a time is negative";
    else {
        strcpy(e->tenant, tenant);
        for (size_t i = 0; address[i]; i++)
            e->address[i] = (char)tolower((unsigned char)address[i]);
        strcpy(e->note, note);
        e->source = source, e->added = added, e->expiry = expiry;
        return 0;
    }
    return -1;
}

/* The key of (tenant, address) in buf, the address lower-cased; -1 when either does not fit. */
static int key_make(const char *tenant, const char *address, char buf[KEY_MAX], MDB_val *key)
{
    size_t tlen = strlen(tenant), alen = strlen(address);
    if (tlen > SUPPRESSION_TENANT_MAX || alen > SMTP_PATH_MAX)
        return -1;
    memcpy(buf, tenant, tlen + 1);
    for (size_t i = 0; i < alen; i++)
        buf[tlen + 1 + i] = (char)tolower((unsigned char)address[i]);
    key->mv_data = buf;
    key->mv_size = tlen + 1 + alen;
    return 0;
}

static void put_i64(unsigned char *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)v >> (8 * i));
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* Decodes a stored pair into e: 0, or -1 for a record this version cannot read. */
static int entry_decode(const MDB_val *key, const MDB_val *val, struct suppression_entry *e)
{
    const char *k = key->mv_data;
    const unsigned char *v = val->mv_data;
    size_t tlen = strnlen(k, key->mv_size);
    size_t alen = key->mv_size - tlen - (tlen < key->mv_size);
    size_t nlen = val->mv_size >= VALUE_HEAD ? val->mv_size - VALUE_HEAD : 0;
    if (tlen == key->mv_size || tlen > SUPPRESSION_TENANT_MAX || alen > SMTP_PATH_MAX ||
        val->mv_size < VALUE_HEAD || v[0] != VALUE_VERSION || v[1] >= SUPPRESSION_NSOURCES ||
        nlen > SUPPRESSION_NOTE_MAX)
        return -1;
    memcpy(e->tenant, k, tlen);
    e->tenant[tlen] = '\0';
    memcpy(e->address, k + tlen + 1, alen);
    e->address[alen] = '\0';
    e->source = (enum suppression_source)v[1];
    e->added = get_i64(v + 2);
    e->expiry = get_i64(v + 10);
    memcpy(e->note, v + VALUE_HEAD, nlen);
    e->note[nlen] = '\0';
    return 0;
}

static int entry_counts(const struct suppression_entry *e, int64_t now)
{
    return e->expiry == 0 || e->expiry > now;
}

void suppression_dir(const struct config *cfg, struct buf *out)
{
    if (cfg->suppression.path != NULL)
        buf_printf(out, "%s", cfg->suppression.path);
    else
        buf_printf(out, "%s/suppression", cfg->server.spool);
}

/* mkdir -p: the directories above dir (0755), then dir itself (0700); -1 with errno set. */
static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int suppression_open(const char *dir, uv_loop_t *loop, struct suppression **out, struct buf *err)
{
    *out = NULL;
    if (make_dirs(dir) < 0) {
        buf_printf(err, "suppression %s: %s", dir, strerror(errno));
        return -1;
    }
    struct suppression *st = xcalloc(1, sizeof *st);
    st->loop = loop;
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&st->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(st->env, SUPPRESSION_MAP_SIZE);
    /* NOTLS: the kept reader is not tied to a thread's slot. */
    if (rc == 0)
        rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_reader_check(st->env, NULL); /* slots of processes that died */
    if (rc == 0)
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &st->dbi);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != 0) {
        buf_printf(err, "suppression %s: %s", dir, mdb_strerror(rc));
        if (txn != NULL)
            mdb_txn_abort(txn);
        if (st->env != NULL)
            mdb_env_close(st->env);
        free(st);
        return -1;
    }
    *out = st;
    return 0;
}

static void store_free(struct suppression *st)
{
    if (st->reader != NULL)
        mdb_txn_abort(st->reader);
    mdb_env_close(st->env);
    free(st);
}

void suppression_close(struct suppression *store)
{
    if (store == NULL)
        return;
    store->closing = 1;
    if (store->pending == 0)
        store_free(store);
}

/* The entry stored under (tenant, address) that counts at now, read in txn: 1, 0 or -errno. */
static int lookup(struct suppression *st, MDB_txn *txn, const char *tenant, const char *address,
                  int64_t now, struct suppression_entry *out)
{
    char buf[KEY_MAX];
    MDB_val key, val;
    if (key_make(tenant, address, buf, &key) < 0)
        return 0; /* nothing that long is ever stored */
    int rc = mdb_get(txn, st->dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return mdb_errno(rc);
    if (entry_decode(&key, &val, out) < 0)
        return -EINVAL;
    return entry_counts(out, now);
}

/* The tenant's entry for address, else the global one, read in txn: 1, 0 or -errno. */
static int check_in(struct suppression *st, MDB_txn *txn, const char *tenant, const char *address,
                    int64_t now, struct suppression_entry *out)
{
    int found = 0;
    if (tenant != NULL && tenant[0] != '\0')
        found = lookup(st, txn, tenant, address, now, out);
    if (found == 0)
        found = lookup(st, txn, "", address, now, out);
    return found;
}

int suppression_check(struct suppression *store, const char *tenant, const char *address,
                      int64_t now, struct suppression_entry *out)
{
    int rc = store->reader != NULL ? mdb_txn_renew(store->reader)
                                   : mdb_txn_begin(store->env, NULL, MDB_RDONLY, &store->reader);
    if (rc != 0) {
        if (store->reader != NULL) /* a failed renew leaves the handle; a failed begin none */
            mdb_txn_abort(store->reader);
        store->reader = NULL;
        return mdb_errno(rc);
    }
    int found = check_in(store, store->reader, tenant, address, now, out);
    mdb_txn_reset(store->reader);
    return found;
}

/* Writes e in txn; see suppression_put. */
static int put_one(struct suppression *store, MDB_txn *txn, const struct suppression_entry *e,
                   int replace, int64_t now)
{
    char kbuf[KEY_MAX];
    unsigned char vbuf[VALUE_HEAD + SUPPRESSION_NOTE_MAX];
    MDB_val key, val;
    size_t nlen = strlen(e->note);
    if (key_make(e->tenant, e->address, kbuf, &key) < 0 || nlen > SUPPRESSION_NOTE_MAX)
        return -EINVAL;
    vbuf[0] = VALUE_VERSION;
    vbuf[1] = (unsigned char)e->source;
    put_i64(vbuf + 2, e->added);
    put_i64(vbuf + 10, e->expiry);
    memcpy(vbuf + VALUE_HEAD, e->note, nlen);
    val.mv_data = vbuf;
    val.mv_size = VALUE_HEAD + nlen;
    struct suppression_entry old;
    int there = replace ? 0 : lookup(store, txn, e->tenant, e->address, now, &old);
    if (there != 0)
        return there > 0 ? -EEXIST : there;
    return mdb_errno(mdb_put(txn, store->dbi, &key, &val, 0));
}

int suppression_put(struct suppression *store, const struct suppression_entry *entries, size_t n,
                    int replace)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0)
        return mdb_errno(rc);
    int64_t now = time(NULL);
    for (size_t i = 0; i < n; i++) {
        int err = put_one(store, txn, &entries[i], replace, now);
        if (err < 0) {
            mdb_txn_abort(txn);
            return err;
        }
    }
    return mdb_errno(mdb_txn_commit(txn));
}

int suppression_remove(struct suppression *store, const char *tenant, const char *address)
{
    char kbuf[KEY_MAX];
    MDB_val key;
    if (key_make(tenant != NULL ? tenant : "", address, kbuf, &key) < 0)
        return -ENOENT;
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc != 0)
        return mdb_errno(rc);
    rc = mdb_del(txn, store->dbi, &key, NULL);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_errno(rc);
    }
    return mdb_errno(mdb_txn_commit(txn));
}

int suppression_each(struct suppression *store, const char *tenant,
                     int (*cb)(const struct suppression_entry *e, void *arg), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return mdb_errno(rc);
    rc = mdb_cursor_open(txn, store->dbi, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_errno(rc);
    }
    char start[SUPPRESSION_TENANT_MAX + 1] = "";
    MDB_val key = {0, start}, val;
    MDB_cursor_op op = MDB_FIRST;
    if (tenant != NULL && strlen(tenant) <= SUPPRESSION_TENANT_MAX) {
        strcpy(start, tenant);
        key.mv_size = strlen(tenant) + 1; /* the tenant's range starts at "<tenant>\0" */
        op = MDB_SET_RANGE;
    }
    struct suppression_entry e;
    int status = 0;
    while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
        op = MDB_NEXT;
        if (entry_decode(&key, &val, &e) < 0) {
            status = -EINVAL;
            break;
        }
        if (tenant != NULL && strcmp(e.tenant, tenant) != 0)
            break; /* past the tenant's range */
        if (cb(&e, arg) != 0)
            break;
    }
    if (status == 0 && rc != 0 && rc != MDB_NOTFOUND)
        status = mdb_errno(rc);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return status;
}

/* ---- the daemon's writes, on the thread pool ---- */

struct add_work {
    uv_work_t req;
    struct suppression *store;
    struct suppression_entry e;
    int rc;
};

static void add_on_work(uv_work_t *req)
{
    struct add_work *w = req->data;
    w->rc = suppression_put(w->store, &w->e, 1, 0);
}

static void add_log(const struct suppression_entry *e, int rc, const char *why)
{
    struct logrec r;
    int added = rc == 0 || rc == -EEXIST;
    log_begin(&r, added ? LOG_INFO : LOG_ERROR,
              added ? "suppression.added" : "suppression.add_failed");
    log_str(&r, "tenant", e->tenant);
    log_str(&r, "address", e->address);
    log_str(&r, "source", suppression_source_name(e->source));
    if (added) {
        log_bool(&r, "already", rc == -EEXIST);
        log_int(&r, "expiry", (long long)e->expiry);
    } else {
        log_str(&r, "msg", why != NULL ? why : strerror(-rc));
    }
    log_end(&r);
}

static void add_on_done(uv_work_t *req, int status)
{
    struct add_work *w = req->data;
    (void)status; /* never cancelled */
    add_log(&w->e, w->rc, NULL);
    struct suppression *st = w->store;
    free(w);
    if (--st->pending == 0 && st->closing)
        store_free(st);
}

int suppression_add(struct suppression *store, const char *tenant, const char *address,
                    enum suppression_source source, const char *reason, int64_t expiry)
{
    struct add_work *w = xcalloc(1, sizeof *w);
    const char *why;
    char note[SUPPRESSION_NOTE_MAX + 1];
    /* a remote reply may be long or carry odd bytes: the note keeps what fits, printable */
    size_t n = 0;
    for (; reason != NULL && reason[n] && n < SUPPRESSION_NOTE_MAX; n++)
        note[n] = (unsigned char)reason[n] < 0x20 || reason[n] == 0x7f ? ' ' : reason[n];
    note[n] = '\0';
    if (suppression_entry_make(tenant, address, source, time(NULL), expiry, note, &w->e, &why) <
        0) {
        strncpy(w->e.address, address, SMTP_PATH_MAX);
        w->e.source = source;
        add_log(&w->e, -EINVAL, why);
        free(w);
        return -1;
    }
    w->store = store;
    w->req.data = w;
    store->pending++;
    uv_queue_work(store->loop, &w->req, add_on_work, add_on_done);
    return 0;
}

/* ---- the daemon's checks, on the thread pool, in batches ---- */

struct suppression_batch {
    uv_work_t req;
    struct suppression *store;
    char *tenant; /* NULL: none */
    int64_t now;
    struct buf addresses; /* the n addresses, each ending in NUL */
    size_t n;
    struct suppression_answer *answers;
    struct suppression_entry *entries; /* the hits', allocated by the read, in answer order */
    suppression_batch_cb cb;           /* NULL once cancelled */
    void *arg;
};

/* A transaction of its own: the kept reader is the loop's, and batches run side by side. Each
 * hit is copied out, so the loop reads nothing of the map. */
static void batch_on_work(uv_work_t *req)
{
    struct suppression_batch *b = req->data;
    MDB_txn *txn;
    int rc = mdb_txn_begin(b->store->env, NULL, MDB_RDONLY, &txn);
    struct suppression_entry e;
    size_t hits = 0, cap = 0;
    const char *address = b->addresses.data;
    for (size_t i = 0; i < b->n; i++, address += strlen(address) + 1) {
        struct suppression_answer *a = &b->answers[i];
        a->found =
            rc != 0 ? mdb_errno(rc) : check_in(b->store, txn, b->tenant, address, b->now, &e);
        if (a->found != 1)
            continue;
        if (hits == cap) {
            cap = cap != 0 ? 2 * cap : 8;
            b->entries = xrealloc(b->entries, cap * sizeof *b->entries);
        }
        b->entries[hits++] = e;
    }
    if (rc == 0)
        mdb_txn_abort(txn);
}

static void batch_free(struct suppression_batch *b)
{
    free(b->tenant);
    buf_free(&b->addresses);
    free(b->answers);
    free(b->entries);
    free(b);
}

static void batch_on_done(uv_work_t *req, int status)
{
    struct suppression_batch *b = req->data;
    (void)status; /* never cancelled: suppression_batch_cancel only silences it */
    size_t hit = 0;
    for (size_t i = 0; i < b->n; i++)
        b->answers[i].entry = b->answers[i].found == 1 ? &b->entries[hit++] : NULL;
    b->store->stats.reads++;
    b->store->stats.lookups += b->n;
    if (b->cb != NULL)
        b->cb(b->arg, b->answers, b->n);
    struct suppression *st = b->store;
    batch_free(b);
    if (--st->pending == 0 && st->closing)
        store_free(st);
}

struct suppression_batch *suppression_batch_start(struct suppression *store, const char *tenant,
                                                  const char *const *addresses, size_t n,
                                                  int64_t now, suppression_batch_cb cb, void *arg)
{
    struct suppression_batch *b = xcalloc(1, sizeof *b);
    b->store = store;
    b->tenant = tenant != NULL ? xstrdup(tenant) : NULL;
    b->now = now;
    for (size_t i = 0; i < n; i++)
        buf_append(&b->addresses, addresses[i], strlen(addresses[i]) + 1);
    b->n = n;
    b->answers = xcalloc(n > 0 ? n : 1, sizeof *b->answers);
    b->cb = cb;
    b->arg = arg;
    b->req.data = b;
    if (uv_queue_work(store->loop, &b->req, batch_on_work, batch_on_done) != 0) {
        batch_free(b);
        return NULL;
    }
    store->pending++;
    return b;
}

void suppression_batch_cancel(struct suppression_batch *batch)
{
    if (batch != NULL)
        batch->cb = NULL;
}

void suppression_stats_get(const struct suppression *store, struct suppression_stats *out)
{
    *out = store->stats;
}
