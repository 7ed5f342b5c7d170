/*
 * The MTA-STS cache (see mta_sts.h). One entry per domain asked about, the least recently asked
 * dropped beyond mta_sts.max_domains (lib/lru.h): its policy, when it expires, when its TXT record
 * was last checked, and the callers waiting while it is looked up.
 * A lookup is a chain: TXT of _mta-sts.<domain> → (id changed or no policy) the address of
 * mta-sts.<domain> → HTTPS GET of the policy → parse → save. Every step that fails keeps what
 * was cached (RFC 8461 §5.1: an unexpired policy is used while a new one cannot be had).
 */
#include "mta/delivery/mta_sts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/lru.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/tls_rpt.h"

#define STS_DIR "mta-sts"
#define STS_DOMAIN_MAX 253

struct sts_waiter {
    mta_sts_cb cb;
    void *arg;
    struct sts_waiter *next;
};

struct sts_entry {
    struct lru_node node; /* in owner->entries, under domain */
    struct mta_sts *owner;
    char *domain;
    char id[MTA_STS_ID_MAX + 1];  /* of the cached policy; "" none */
    struct mta_sts_policy policy; /* valid while has_policy */
    int has_policy;
    int64_t expires;                 /* unix seconds: fetched + max_age */
    uint64_t checked_ms;             /* uv_now of the last TXT answer; 0: never */
    int busy;                        /* a lookup chain runs */
    char new_id[MTA_STS_ID_MAX + 1]; /* the id the running fetch is for */
    struct http_request *req;
    struct sts_waiter *waiters;
    int finishing;                 /* its waiters are being answered */
    int evicted;                   /* out of the cache while in use: in owner->orphans */
    struct sts_entry *next_orphan; /* in owner->orphans */
};

struct mta_sts {
    uv_loop_t *loop;
    struct dns_resolver *dns;
    struct http_client *http;
    char *dir;
    char *ca_file;
    uint64_t recheck_ms, timeout_ms;
    struct tls_rpt *rpt;       /* counts policies that cannot be had; NULL: none */
    struct lru entries;        /* domain → struct sts_entry, at most mta_sts.max_domains */
    struct sts_entry *orphans; /* evicted while in use; freed once they are not */
    int walking;               /* entries_each runs: nothing is freed meanwhile */
    int loaded;                /* the files were read back */
    int stopping, freeing;
    unsigned pending; /* DNS lookups and thread-pool jobs in flight */
};

static void entry_lookup(struct sts_entry *e);
static void entry_on_txt(void *arg, enum dns_status st, const struct dns_txt *txts, size_t n);
static void entry_on_addr(void *arg, enum dns_status st, const struct dns_addr *a, size_t n);
static void entry_on_fetch(void *arg, const struct http_result *res);
static void entry_finish(struct sts_entry *e);

static int64_t unix_now(void)
{
    return (int64_t)time(NULL);
}

static int entry_valid(const struct sts_entry *e)
{
    return e->has_policy && unix_now() < e->expires;
}

static void sts_maybe_free(struct mta_sts *s);

static void entry_log(const struct sts_entry *e, enum log_level level, const char *event,
                      const char *reason)
{
    struct logrec r;
    log_begin(&r, level, event);
    log_str(&r, "domain", e->domain);
    if (e->has_policy) {
        log_str(&r, "id", e->id);
        log_str(&r, "mode", mta_sts_mode_name(e->policy.mode));
        log_int(&r, "max_age", e->policy.max_age);
    }
    if (reason != NULL)
        log_str(&r, "reason", reason);
    log_end(&r);
}

/* The domain publishes a policy that cannot be had (RFC 8460 §4.3.2.1): logged and reported. */
static void entry_fetch_failed(const struct sts_entry *e, enum tls_rpt_result result,
                               const char *reason)
{
    entry_log(e, LOG_WARN, "mta_sts.fetch_failed", reason);
    struct tls_rpt_event ev = {
        .domain = e->domain, .type = TLS_RPT_POLICY_STS, .result = result, .reason = reason};
    tls_rpt_record(e->owner->rpt, &ev);
}

/* ---- the files: <spool>/mta-sts/<domain>: "id ID\nexpires UNIX\n\n" and the policy text ---- */

struct sts_file {
    uv_work_t req;
    struct mta_sts *s;
    char *path, *tmp;
    struct buf text;
    int err;
};

static void save_work(uv_work_t *req)
{
    struct sts_file *f = container_of(req, struct sts_file, req);
    char *slash = strrchr(f->path, '/');
    *slash = '\0';
    if (mkdir(f->path, 0700) < 0 && errno != EEXIST)
        f->err = errno;
    *slash = '/';
    int fd = f->err ? -1 : open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        f->err = f->err ? f->err : errno;
        return;
    }
    if (write(fd, f->text.data, f->text.len) != (ssize_t)f->text.len || fsync(fd) < 0)
        f->err = errno ? errno : EIO;
    if (close(fd) < 0 && !f->err)
        f->err = errno;
    if (!f->err && rename(f->tmp, f->path) < 0)
        f->err = errno;
    if (f->err)
        unlink(f->tmp);
}

static void save_done(uv_work_t *req, int status)
{
    struct sts_file *f = container_of(req, struct sts_file, req);
    if (f->err != 0 || status < 0)
        log_msg(LOG_ERROR, "mta_sts.save_failed", "cannot write %s: %s", f->path,
                strerror(f->err ? f->err : -status));
    f->s->pending--;
    sts_maybe_free(f->s);
    free(f->path);
    free(f->tmp);
    buf_free(&f->text);
    free(f);
}

static void entry_save(struct sts_entry *e, const char *text, size_t len)
{
    struct mta_sts *s = e->owner;
    struct sts_file *f = xcalloc(1, sizeof *f);
    f->s = s;
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", s->dir, e->domain);
    f->path = xstrdup(p.data);
    buf_printf(&p, ".tmp");
    f->tmp = xstrdup(p.data);
    buf_free(&p);
    buf_printf(&f->text, "id %s\nexpires %lld\n\n", e->id, (long long)e->expires);
    buf_append(&f->text, text, len);
    s->pending++;
    if (uv_queue_work(s->loop, &f->req, save_work, save_done) < 0)
        save_done(&f->req, UV_EINVAL);
}

/* A domain as a file name: lower-case letters, digits, '-', '_' and '.', not starting with '.'. */
static int domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > STS_DOMAIN_MAX || d[0] == '.')
        return 0;
    return strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

struct sts_load {
    uv_work_t req;
    struct mta_sts *s;
    struct buf files; /* each: domain NUL, then the file's bytes, 4-byte lengths first */
};

/* A file's header "id ID\nexpires UNIX\n\n": the offset of the policy after it, or 0 when it has
 * none. */
static int file_header(const char *data, size_t len, char id[MTA_STS_ID_MAX + 1],
                       long long *expires)
{
    char head[128];
    int off = 0;
    size_t hl = len < sizeof head - 1 ? len : sizeof head - 1;
    memcpy(head, data, hl);
    head[hl] = '\0';
    if (sscanf(head, "id %32[A-Za-z0-9]\nexpires %lld\n\n%n", id, expires, &off) != 2)
        return 0;
    return off;
}

static void load_work(uv_work_t *req)
{
    struct sts_load *l = container_of(req, struct sts_load, req);
    DIR *dir = opendir(l->s->dir);
    if (dir == NULL)
        return;
    struct dirent *de;
    char path[4096], data[MTA_STS_POLICY_MAX + 128];
    while ((de = readdir(dir)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (!domain_ok(de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", l->s->dir, de->d_name);
        if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
            unlink(path); /* a write a crash cut short: none is in flight before the load */
            continue;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, data, sizeof data);
        close(fd);
        char id[MTA_STS_ID_MAX + 1];
        long long expires;
        if (n > 0 && file_header(data, (size_t)n, id, &expires) > 0 && expires <= unix_now()) {
            unlink(path); /* past its max_age (RFC 8461 §3.2): of no use any more */
            continue;
        }
        if (n <= 0)
            continue;
        uint32_t nl32 = (uint32_t)nl, dl = (uint32_t)n;
        buf_append(&l->files, &nl32, sizeof nl32);
        buf_append(&l->files, de->d_name, nl);
        buf_append(&l->files, &dl, sizeof dl);
        buf_append(&l->files, data, dl);
    }
    closedir(dir);
}

static struct sts_entry *entry_get(struct mta_sts *s, const char *domain);

/* One file read back: its header and policy, or nothing when it does not parse. */
static void load_one(struct mta_sts *s, const char *domain, const char *data, size_t len)
{
    char id[MTA_STS_ID_MAX + 1];
    long long expires;
    int off = file_header(data, len, id, &expires);
    if (off == 0 || expires <= unix_now())
        return;
    struct mta_sts_policy p;
    struct buf err = BUF_INIT;
    if (mta_sts_policy_parse(data + off, len - (size_t)off, &p, &err) < 0) {
        buf_free(&err);
        return;
    }
    struct sts_entry *e = entry_get(s, domain);
    if (e->has_policy) { /* fetched already since the start */
        mta_sts_policy_free(&p);
        return;
    }
    e->policy = p;
    e->has_policy = 1;
    e->expires = expires;
    snprintf(e->id, sizeof e->id, "%s", id);
    entry_log(e, LOG_INFO, "mta_sts.policy", "read back from the spool");
}

static void answer_waiting(struct sts_entry *e);
static void entries_each(struct mta_sts *s, void (*fn)(struct sts_entry *e));

static void load_done(uv_work_t *req, int status)
{
    struct sts_load *l = container_of(req, struct sts_load, req);
    struct mta_sts *s = l->s;
    (void)status;
    s->pending--;
    for (size_t i = 0; !s->freeing && i + 4 <= l->files.len;) {
        uint32_t nl, dl;
        memcpy(&nl, l->files.data + i, 4);
        char domain[STS_DOMAIN_MAX + 1];
        memcpy(domain, l->files.data + i + 4, nl);
        domain[nl] = '\0';
        memcpy(&dl, l->files.data + i + 4 + nl, 4);
        load_one(s, domain, l->files.data + i + 8 + nl, dl);
        i += 8 + nl + dl;
    }
    buf_free(&l->files);
    free(l);
    s->loaded = 1;
    if (!s->freeing)
        entries_each(s, answer_waiting);
    sts_maybe_free(s);
}

/* ---- the cache ---- */

static int entry_in_use(const struct sts_entry *e)
{
    return e->busy || e->waiters != NULL || e->finishing || e->req != NULL;
}

static void entry_free(struct sts_entry *e)
{
    if (e->has_policy)
        mta_sts_policy_free(&e->policy);
    free(e->domain);
    free(e);
}

/* The least recently asked domain leaves the cache for a new one; one whose lookup still runs
 * (or that entries_each holds) waits in the orphans until it is done. */
static void entry_on_evict(struct lru_node *node, void *arg)
{
    struct mta_sts *s = arg;
    struct sts_entry *e = container_of(node, struct sts_entry, node);
    if (s->freeing || (!entry_in_use(e) && !s->walking)) {
        entry_free(e);
        return;
    }
    e->evicted = 1;
    e->next_orphan = s->orphans;
    s->orphans = e;
}

/* Frees the orphans no longer in use (all of them once the cache is freed). */
static void orphans_sweep(struct mta_sts *s)
{
    struct sts_entry **pp = &s->orphans;
    while (*pp != NULL && !s->walking) {
        struct sts_entry *e = *pp;
        if (entry_in_use(e) && !s->freeing) {
            pp = &e->next_orphan;
            continue;
        }
        *pp = e->next_orphan;
        entry_free(e);
    }
}

/* Calls fn for every entry, cached or orphan, on a list taken first: fn may ask for other
 * domains (evicting some), and no entry is freed until it is done. */
static void entries_each(struct mta_sts *s, void (*fn)(struct sts_entry *e))
{
    size_t n = lru_count(&s->entries), k = 0;
    for (struct sts_entry *o = s->orphans; o != NULL; o = o->next_orphan)
        n++;
    struct sts_entry **all = xcalloc(n + 1, sizeof *all);
    for (struct lru_node *node = lru_oldest(&s->entries); node != NULL; node = node->newer)
        all[k++] = container_of(node, struct sts_entry, node);
    for (struct sts_entry *o = s->orphans; o != NULL; o = o->next_orphan)
        all[k++] = o;
    s->walking++;
    for (size_t i = 0; i < k; i++)
        fn(all[i]);
    s->walking--;
    free(all);
    orphans_sweep(s);
}

struct mta_sts *mta_sts_new(uv_loop_t *loop, struct dns_resolver *dns, const char *spool_dir,
                            const struct config *cfg)
{
    struct mta_sts *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->dns = dns;
    s->http = http_client_new(loop);
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", spool_dir, STS_DIR);
    s->dir = xstrdup(p.data);
    buf_free(&p);
    lru_init(&s->entries, cfg->mta_sts.max_domains, entry_on_evict, s);
    mta_sts_configure(s, cfg);
    struct sts_load *l = xcalloc(1, sizeof *l);
    l->s = s;
    s->pending++;
    if (uv_queue_work(loop, &l->req, load_work, load_done) < 0)
        load_done(&l->req, UV_EINVAL);
    return s;
}

void mta_sts_set_report(struct mta_sts *s, struct tls_rpt *rpt)
{
    s->rpt = rpt;
}

void mta_sts_configure(struct mta_sts *s, const struct config *cfg)
{
    free(s->ca_file);
    s->ca_file = cfg->tls.ca_file != NULL ? xstrdup(cfg->tls.ca_file) : NULL;
    s->recheck_ms = cfg->mta_sts.recheck_ms;
    s->timeout_ms = cfg->mta_sts.fetch_timeout_ms;
}

static struct sts_entry *entry_get(struct mta_sts *s, const char *domain)
{
    size_t len = strlen(domain);
    struct lru_node *node = lru_find(&s->entries, domain, len);
    if (node != NULL) {
        lru_touch(&s->entries, node);
        return container_of(node, struct sts_entry, node);
    }
    struct sts_entry *e = xcalloc(1, sizeof *e);
    e->owner = s;
    e->domain = xstrdup(domain);
    lru_insert(&s->entries, &e->node, e->domain, len);
    return e;
}

static void entry_wait(struct sts_entry *e, mta_sts_cb cb, void *arg)
{
    struct sts_waiter *w = xmalloc(sizeof *w);
    *w = (struct sts_waiter){cb, arg, e->waiters};
    e->waiters = w;
}

int mta_sts_get(struct mta_sts *s, const char *domain, const struct mta_sts_policy **policy,
                mta_sts_cb cb, void *arg)
{
    char key[STS_DOMAIN_MAX + 1];
    size_t n = strlen(domain);
    *policy = NULL;
    if (n > STS_DOMAIN_MAX || s->stopping)
        return 1;
    for (size_t i = 0; i <= n; i++)
        key[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
    if (n > 0 && key[n - 1] == '.')
        key[n - 1] = '\0';
    if (!domain_ok(key))
        return 1; /* an address literal, or a name no policy can be fetched for */
    struct sts_entry *e = entry_get(s, key);
    uint64_t now = uv_now(s->loop);
    int fresh = e->checked_ms != 0 && now - e->checked_ms < s->recheck_ms;
    if (s->loaded && entry_valid(e)) {
        if (!fresh && !e->busy)
            entry_lookup(e); /* in the background: the cached policy holds meanwhile */
        *policy = &e->policy;
        return 1;
    }
    if (s->loaded && fresh && !e->busy)
        return 1; /* none, recently checked */
    entry_wait(e, cb, arg);
    if (s->loaded && !e->busy)
        entry_lookup(e);
    return 0;
}

/* After the files were read back: answers or looks up each domain asked about meanwhile. */
static void answer_waiting(struct sts_entry *e)
{
    if (e->waiters == NULL || e->busy)
        return;
    if (entry_valid(e))
        entry_finish(e);
    else
        entry_lookup(e);
}

/* ---- one lookup: TXT, address, fetch ---- */

/* A DNS answer for e came: 1 to go on, 0 when the cache stops (e may be freed then). */
static int entry_answered(struct sts_entry *e)
{
    struct mta_sts *s = e->owner;
    s->pending--;
    if (!s->freeing && !s->stopping)
        return 1;
    e->busy = 0;
    sts_maybe_free(s);
    return 0;
}

static void entry_lookup(struct sts_entry *e)
{
    struct mta_sts *s = e->owner;
    char name[STS_DOMAIN_MAX + 16];
    snprintf(name, sizeof name, "_mta-sts.%s", e->domain);
    e->busy = 1;
    s->pending++;
    if (dns_resolve_txt(s->dns, name, entry_on_txt, e) < 0) {
        s->pending--;
        entry_finish(e);
    }
}

static void entry_on_txt(void *arg, enum dns_status st, const struct dns_txt *txts, size_t n)
{
    struct sts_entry *e = arg;
    struct mta_sts *s = e->owner;
    if (!entry_answered(e))
        return;
    if (st != DNS_TEMPFAIL)
        e->checked_ms = uv_now(s->loop);
    /* §3.1: exactly one STSv1 record, or the domain has none. */
    int records = 0, bad = 0;
    struct buf err = BUF_INIT;
    for (size_t i = 0; st == DNS_OK && i < n; i++) {
        int rc = mta_sts_record_parse(txts[i].data, txts[i].len, e->new_id, &err);
        records += rc != 0;
        bad |= rc < 0;
    }
    if (records != 1 || bad) {
        if (records > 0)
            entry_fetch_failed(e, TLS_RPT_STS_POLICY_INVALID,
                               bad ? err.data : "more than one STSv1 TXT record");
        buf_free(&err);
        entry_finish(e);
        return;
    }
    buf_free(&err);
    if (entry_valid(e) && strcmp(e->new_id, e->id) == 0) {
        entry_finish(e); /* the policy we have is the current one */
        return;
    }
    char host[STS_DOMAIN_MAX + 16];
    snprintf(host, sizeof host, "mta-sts.%s", e->domain);
    s->pending++;
    if (dns_resolve_addrs(s->dns, host, entry_on_addr, e) < 0) {
        s->pending--;
        entry_finish(e);
    }
}

static void entry_on_addr(void *arg, enum dns_status st, const struct dns_addr *a, size_t n)
{
    struct sts_entry *e = arg;
    struct mta_sts *s = e->owner;
    if (!entry_answered(e))
        return;
    if (st != DNS_OK || n == 0 || s->http == NULL) {
        entry_fetch_failed(e, TLS_RPT_STS_POLICY_FETCH_ERROR, "mta-sts host has no address");
        entry_finish(e);
        return;
    }
    char addr[64], url[STS_DOMAIN_MAX + 64], resolve[STS_DOMAIN_MAX + 96];
    if (a[0].family == AF_INET6) {
        addr[0] = '[';
        inet_ntop(AF_INET6, &a[0].u.v6, addr + 1, sizeof addr - 2);
        strcat(addr, "]");
    } else {
        inet_ntop(AF_INET, &a[0].u.v4, addr, sizeof addr);
    }
    snprintf(url, sizeof url, "https://mta-sts.%s/.well-known/mta-sts.txt", e->domain);
    snprintf(resolve, sizeof resolve, "mta-sts.%s:443:%s", e->domain, addr);
    struct http_get g = {.url = url,
                         .ca_file = s->ca_file,
                         .timeout_ms = s->timeout_ms,
                         .max_body = MTA_STS_POLICY_MAX,
                         .resolve = resolve};
    e->req = http_client_get(s->http, &g, entry_on_fetch, e);
    if (e->req == NULL) {
        entry_fetch_failed(e, TLS_RPT_STS_POLICY_FETCH_ERROR, "the request could not start");
        entry_finish(e);
    }
}

static void entry_on_fetch(void *arg, const struct http_result *res)
{
    struct sts_entry *e = arg;
    e->req = NULL;
    char why[300];
    if (res->status != 200) {
        if (res->status == 0)
            snprintf(why, sizeof why, "%s", res->error);
        else
            snprintf(why, sizeof why, "HTTP status %d", res->status);
        /* The policy host's certificate (RFC 8461 §3.3) is what curl names on a TLS failure. */
        int webpki = res->status == 0 && (strstr(why, "certificate") || strstr(why, "SSL"));
        entry_fetch_failed(e, webpki ? TLS_RPT_STS_WEBPKI_INVALID : TLS_RPT_STS_POLICY_FETCH_ERROR,
                           why);
        entry_finish(e);
        return;
    }
    struct mta_sts_policy p;
    struct buf err = BUF_INIT;
    if (mta_sts_policy_parse(res->body, res->body_len, &p, &err) < 0) {
        entry_fetch_failed(e, TLS_RPT_STS_POLICY_INVALID, err.data);
        buf_free(&err);
        entry_finish(e);
        return;
    }
    buf_free(&err);
    if (e->has_policy)
        mta_sts_policy_free(&e->policy);
    e->policy = p;
    e->has_policy = 1;
    e->expires = unix_now() + (int64_t)p.max_age;
    memcpy(e->id, e->new_id, sizeof e->id);
    entry_log(e, LOG_INFO, "mta_sts.policy", "fetched");
    entry_save(e, res->body, res->body_len);
    entry_finish(e);
}

/* The lookup is over: every waiting caller gets the policy (or NULL). */
static void entry_finish(struct sts_entry *e)
{
    e->busy = 0;
    struct sts_waiter *w = e->waiters;
    e->waiters = NULL;
    const struct mta_sts_policy *p = entry_valid(e) && !e->owner->stopping ? &e->policy : NULL;
    e->finishing = 1; /* a waiter may ask for other domains, which may evict this one */
    while (w != NULL) {
        struct sts_waiter *next = w->next;
        w->cb(w->arg, p);
        free(w);
        w = next;
    }
    e->finishing = 0;
    if (e->evicted)
        orphans_sweep(e->owner);
}

/* ---- the end ---- */

static void stop_entry(struct sts_entry *e)
{
    if (e->req != NULL) {
        http_request_cancel(e->req);
        e->req = NULL;
    }
    entry_finish(e);
}

void mta_sts_stop(struct mta_sts *s)
{
    s->stopping = 1;
    entries_each(s, stop_entry);
}

static void sts_maybe_free(struct mta_sts *s)
{
    if (!s->freeing || s->pending > 0)
        return;
    lru_close(&s->entries); /* with freeing set, every entry is freed */
    orphans_sweep(s);
    free(s->dir);
    free(s->ca_file);
    free(s);
}

void mta_sts_free(struct mta_sts *s)
{
    if (s == NULL)
        return;
    mta_sts_stop(s);
    http_client_free(s->http);
    s->http = NULL;
    s->freeing = 1;
    sts_maybe_free(s);
}
