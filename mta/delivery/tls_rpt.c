/*
 * TLS reporting (see tls_rpt.h): the counts of the day, their file, the daily timer and the
 * sending of one report per policy domain. A report is a chain: TXT of _smtp._tls.<domain> →
 * JSON → the copy in reports/ (thread pool) and one spooled mail per mailto: address.
 */
#include "mta/delivery/tls_rpt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509_vfy.h>

#include "lib/log.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/delivery/mta_sts_policy.h"
#include "mta/delivery/tls_rpt_report.h"
#include "mta/dkim/dkim.h"
#include "spool/spool.h"

#define RPT_DIR "tls-rpt"
#define RPT_FILE "counts.json"
#define RPT_SAVE_MS 5000 /* counts changed this long ago are written out */
#define DAY_S 86400
#define RPT_COPY_DAYS 30 /* reports/ copies are kept this long */
#define RPT_RETRY_DAYS 7 /* a report whose record lookup keeps failing is tried this long */

struct tls_rpt {
    uv_loop_t *loop;
    struct dns_resolver *dns;
    struct spool *spool;
    tls_rpt_queued_cb queued;
    void *queued_arg;
    char *dir, *reports_dir;
    /* Settings (tls_rpt.*), owned copies. */
    int enabled;
    char *organization, *contact, *sender, *submitter;
    uint64_t send_after_s;
    struct tls_rpt_table table;
    struct dkim_signer_set *signers; /* the daemon's; NULL: reports go unsigned */
    uv_timer_t day_timer, save_timer;
    unsigned seq;     /* report ids of this run */
    unsigned pending; /* DNS lookups, commits and file jobs in flight */
    int loaded, dirty, saving, stopping;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    int closed_handles;
};

static void rpt_save(struct tls_rpt *r);
static void rpt_check_stopped(struct tls_rpt *r);

static void day_of(int64_t when, char day[TLS_RPT_DAY_LEN + 1])
{
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, TLS_RPT_DAY_LEN + 1, "%Y-%m-%d", &tm);
}

/* ---- settings ---- */

static void set_string(char **dst, const char *value)
{
    free(*dst);
    *dst = xstrdup(value);
}

void tls_rpt_configure(struct tls_rpt *r, const struct config *cfg)
{
    const char *host = cfg->server.hostname;
    struct buf sender = BUF_INIT;
    if (cfg->tls_rpt.sender != NULL)
        buf_printf(&sender, "%s", cfg->tls_rpt.sender);
    else
        buf_printf(&sender, "postmaster@%s", host);
    r->enabled = cfg->tls_rpt.enabled;
    set_string(&r->sender, sender.data);
    set_string(&r->submitter, strchr(sender.data, '@') + 1);
    set_string(&r->organization,
               cfg->tls_rpt.organization != NULL ? cfg->tls_rpt.organization : host);
    set_string(&r->contact, cfg->tls_rpt.contact != NULL ? cfg->tls_rpt.contact : sender.data);
    r->send_after_s = cfg->tls_rpt.send_after_ms / 1000;
    r->table.max_domains = cfg->tls_rpt.max_domains;
    buf_free(&sender);
}

/* ---- the files: <spool>/tls-rpt/counts.json and reports/<id>.json, written whole then renamed */

enum rpt_file_kind {
    FILE_LOAD,   /* the counts read back */
    FILE_COUNTS, /* the counts written */
    FILE_REPORT, /* a report's copy written */
    FILE_PRUNE,  /* the copies older than RPT_COPY_DAYS removed */
};

struct rpt_file {
    uv_work_t req;
    struct tls_rpt *r;
    enum rpt_file_kind kind;
    char *dir, *path;
    struct buf text;
    int err;
};

static void file_write_work(uv_work_t *req)
{
    struct rpt_file *f = container_of(req, struct rpt_file, req);
    struct buf tmp = BUF_INIT;
    buf_printf(&tmp, "%s.tmp", f->path);
    char *slash = strrchr(f->dir, '/');
    if (mkdir(f->dir, 0700) < 0 && errno == ENOENT && slash != NULL) {
        *slash = '\0'; /* reports/ before tls-rpt/ itself */
        mkdir(f->dir, 0700);
        *slash = '/';
        mkdir(f->dir, 0700);
    }
    struct stat st;
    if (stat(f->dir, &st) < 0)
        f->err = errno;
    int fd = f->err ? -1 : open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, f->text.data, f->text.len) != (ssize_t)f->text.len || fsync(fd) < 0)
            f->err = errno ? errno : EIO;
        if (close(fd) < 0 && !f->err)
            f->err = errno;
        if (!f->err && rename(tmp.data, f->path) < 0)
            f->err = errno;
        if (f->err)
            unlink(tmp.data);
    } else if (!f->err) {
        f->err = errno;
    }
    buf_free(&tmp);
}

static void file_read_work(uv_work_t *req)
{
    struct rpt_file *f = container_of(req, struct rpt_file, req);
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        f->err = errno;
        return;
    }
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&f->text, chunk, (size_t)n);
    close(fd);
}

/* Best effort: a copy that cannot be removed now is tried again the next day. */
static void file_prune_work(uv_work_t *req)
{
    struct rpt_file *f = container_of(req, struct rpt_file, req);
    DIR *dir = opendir(f->dir);
    if (dir == NULL)
        return;
    time_t oldest = time(NULL) - (time_t)RPT_COPY_DAYS * DAY_S;
    struct buf path = BUF_INIT;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        struct stat st;
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        buf_reset(&path);
        buf_printf(&path, "%s/%s", f->dir, e->d_name);
        if (lstat(path.data, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < oldest)
            unlink(path.data);
    }
    closedir(dir);
    buf_free(&path);
}

static void file_done(uv_work_t *req, int status)
{
    struct rpt_file *f = container_of(req, struct rpt_file, req);
    struct tls_rpt *r = f->r;
    int err = f->err ? f->err : (status < 0 ? -status : 0);
    r->pending--;
    if (f->kind != FILE_LOAD && err != 0) {
        log_msg(LOG_ERROR, "tls_rpt.save_failed", "cannot write %s: %s", f->path, strerror(err));
    } else if (f->kind == FILE_LOAD && err == 0 &&
               tls_rpt_table_load(&r->table, f->text.data, f->text.len) < 0) {
        log_msg(LOG_ERROR, "tls_rpt.save_failed", "%s is not a TLS-RPT counts file: ignored",
                f->path);
    }
    if (f->kind == FILE_LOAD)
        r->loaded = 1;
    else if (f->kind == FILE_COUNTS)
        r->saving = 0;
    free(f->dir);
    free(f->path);
    buf_free(&f->text);
    free(f);
    if (r->dirty && !r->saving && (r->stopping || !uv_is_active((uv_handle_t *)&r->save_timer)))
        rpt_save(r);
    rpt_check_stopped(r);
}

static void rpt_file_job(struct tls_rpt *r, const char *dir, const char *name, struct buf *text,
                         enum rpt_file_kind kind)
{
    struct rpt_file *f = xcalloc(1, sizeof *f);
    f->r = r;
    f->dir = xstrdup(dir);
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", dir, name);
    f->path = xstrdup(p.data);
    buf_free(&p);
    if (text != NULL) {
        f->text = *text;
        *text = (struct buf)BUF_INIT;
    }
    f->kind = kind;
    r->pending++;
    uv_work_cb work = kind == FILE_LOAD    ? file_read_work
                      : kind == FILE_PRUNE ? file_prune_work
                                           : file_write_work;
    if (uv_queue_work(r->loop, &f->req, work, file_done) < 0)
        file_done(&f->req, UV_EINVAL);
}

/* Writes the counts now (one write at a time; a change meanwhile writes again after it). */
static void rpt_save(struct tls_rpt *r)
{
    if (!r->loaded || r->saving) /* the file read back first: it is not overwritten unread */
        return;
    struct buf text = BUF_INIT;
    tls_rpt_table_save(&r->table, &text);
    r->dirty = 0;
    r->saving = 1;
    rpt_file_job(r, r->dir, RPT_FILE, &text, FILE_COUNTS);
}

static void rpt_on_save_timer(uv_timer_t *t)
{
    rpt_save(t->data);
}

static void rpt_changed(struct tls_rpt *r)
{
    r->dirty = 1;
    if (!uv_is_active((uv_handle_t *)&r->save_timer))
        uv_timer_start(&r->save_timer, rpt_on_save_timer, RPT_SAVE_MS, 0);
}

/* ---- recording ---- */

void tls_rpt_record(struct tls_rpt *r, const struct tls_rpt_event *ev)
{
    if (r == NULL || !r->enabled || r->stopping || ev->domain == NULL || ev->domain[0] == '\0')
        return;
    char day[TLS_RPT_DAY_LEN + 1];
    day_of((int64_t)time(NULL), day);
    uint64_t dropped = r->table.dropped;
    if (tls_rpt_table_count(&r->table, day, ev) < 0 && dropped == 0)
        log_msg(LOG_WARN, "tls_rpt.overflow",
                "more than tls_rpt.max_domains (%zu) domains to report on: sessions to more are "
                "not counted",
                r->table.max_domains);
    rpt_changed(r);
}

void tls_rpt_sts_text(const struct mta_sts_policy *p, struct buf *out)
{
    buf_printf(out, "version: STSv1\nmode: %s\n", mta_sts_mode_name(p->mode));
    for (size_t i = 0; i < p->nmx; i++)
        buf_printf(out, "mx: %s\n", p->mx[i]);
    buf_printf(out, "max_age: %u", p->max_age);
}

void tls_rpt_record_unlisted_mx(struct tls_rpt *r, const char *domain,
                                const struct mta_sts_policy *sts, const char *mx)
{
    struct buf text = BUF_INIT;
    if (r == NULL || sts == NULL)
        return;
    tls_rpt_sts_text(sts, &text);
    struct tls_rpt_event ev = {.domain = domain,
                               .type = TLS_RPT_POLICY_STS,
                               .policy_text = text.data,
                               .result = TLS_RPT_VALIDATION_FAILURE,
                               .mx_host = mx,
                               .reason = "mx-not-in-policy"};
    tls_rpt_record(r, &ev);
    buf_free(&text);
}

enum tls_rpt_result tls_rpt_result_for_verify(long verify_result)
{
    switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return TLS_RPT_CERT_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return TLS_RPT_CERT_HOST_MISMATCH;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return TLS_RPT_CERT_NOT_TRUSTED;
    default:
        return TLS_RPT_VALIDATION_FAILURE;
    }
}

/* ---- one session ---- */

struct tls_rpt_session {
    struct tls_rpt *rpt;
    char *domain, *mx, *sts_text;
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN]; /* "": not known */
    int done;
};

static void addr_text(const struct sockaddr *sa, char *out, size_t size)
{
    out[0] = '\0';
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

struct tls_rpt_session *tls_rpt_session_new(const struct tls_rpt_target *t, const char *mx,
                                            const struct sockaddr *src, const struct sockaddr *dst)
{
    if (t->rpt == NULL || !t->rpt->enabled || t->domain == NULL)
        return NULL;
    struct tls_rpt_session *s = xcalloc(1, sizeof *s);
    s->rpt = t->rpt;
    s->domain = xstrdup(t->domain);
    s->mx = xstrdup(mx);
    if (t->sts != NULL) {
        struct buf text = BUF_INIT;
        tls_rpt_sts_text(t->sts, &text);
        s->sts_text = xstrdup(text.data);
        buf_free(&text);
    }
    addr_text(src, s->src, sizeof s->src);
    addr_text(dst, s->dst, sizeof s->dst);
    return s;
}

void tls_rpt_session_free(struct tls_rpt_session *s)
{
    if (s == NULL)
        return;
    free(s->domain);
    free(s->mx);
    free(s->sts_text);
    free(s);
}

/* name as a policy domain: lower case, without the root's dot; "" when it does not fit. */
static void policy_domain_copy(const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n >= size)
        n = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[n] = '\0';
}

void tls_rpt_session_result(struct tls_rpt_session *s, enum tls_rpt_policy_type type,
                            const char *tlsa_base, const char *policy_text,
                            enum tls_rpt_result result, const char *reason)
{
    if (s == NULL || s->done)
        return;
    s->done = 1;
    char base[256];
    if (type == TLS_RPT_POLICY_TLSA && tlsa_base != NULL)
        policy_domain_copy(tlsa_base, base, sizeof base);
    struct tls_rpt_event ev = {
        .domain = type == TLS_RPT_POLICY_TLSA && tlsa_base != NULL ? base : s->domain,
        .type = type,
        .policy_text = type == TLS_RPT_POLICY_STS ? s->sts_text : policy_text,
        .result = result,
        .mx_host = s->mx,
        .sending_ip = s->src[0] ? s->src : NULL,
        .receiving_ip = s->dst[0] ? s->dst : NULL,
        .reason = result == TLS_RPT_SUCCESS ? NULL : reason,
    };
    tls_rpt_record(s->rpt, &ev);
}

/* ---- sending ---- */

struct rpt_send {
    struct tls_rpt *r;
    struct tls_rpt_domain *d; /* owned: out of the table */
    int64_t start, end;
    unsigned mails; /* its mails being signed or spooled */
    int failed;     /* one of them could not be spooled */
};

struct rpt_mail {
    struct tls_rpt *r;
    struct rpt_send *snd; /* the report it is one of */
    char *domain, *to, *report_id;
    struct buf text; /* the mail, while it is being signed */
};

static void send_on_txt(void *arg, enum dns_status st, const struct dns_txt *txts, size_t n);

static void send_free(struct rpt_send *snd)
{
    tls_rpt_domain_free(snd->d);
    free(snd);
}

/* The report cannot be sent now (why): its counts go back to the held ones, to be sent at the
 * next send time, for up to RPT_RETRY_DAYS after its day; then it is dropped. Returns 1 when
 * kept. */
static int send_keep(struct rpt_send *snd, const char *why)
{
    struct tls_rpt *r = snd->r;
    if (snd->start <= (int64_t)time(NULL) - RPT_RETRY_DAYS * DAY_S)
        return 0;
    log_msg(LOG_WARN, "tls_rpt.send_deferred",
            "%s: the report of %s for %s is kept for the next send time", why, snd->d->name,
            snd->d->day);
    tls_rpt_table_put_back(&r->table, snd->d);
    snd->d = NULL;
    if (r->stopping) { /* saved before the stop completes */
        r->dirty = 1;
        rpt_save(r);
    } else {
        rpt_changed(r);
    }
    return 1;
}

/* One mail of snd is in the spool (ok), or could not be written. Once none is left in flight,
 * a report with a mail that failed is kept (all its addresses get it again next time). */
static void send_mail_done(struct rpt_send *snd, int ok)
{
    struct tls_rpt *r = snd->r;
    if (!ok)
        snd->failed = 1;
    if (--snd->mails > 0)
        return;
    if (snd->failed)
        send_keep(snd, "a report mail could not be written to the spool");
    send_free(snd);
    rpt_check_stopped(r);
}

/* Starts the report of d (taken out of the table), covering start..end. */
static void rpt_send_domain(struct tls_rpt *r, struct tls_rpt_domain *d, int64_t end)
{
    struct rpt_send *snd = xcalloc(1, sizeof *snd);
    struct tm tm = {0};
    snd->r = r;
    snd->d = d;
    sscanf(d->day, "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    snd->start = (int64_t)timegm(&tm);
    snd->end = end < snd->start + DAY_S - 1 ? end : snd->start + DAY_S - 1;
    tls_rpt_table_remove(&r->table, d);
    rpt_changed(r);
    struct buf name = BUF_INIT;
    buf_printf(&name, "_smtp._tls.%s", d->name);
    r->pending++;
    if (dns_resolve_txt(r->dns, name.data, send_on_txt, snd) < 0) {
        r->pending--;
        send_free(snd);
    }
    buf_free(&name);
}

/* A report's envelope: from tls_rpt.sender to *rcpt (borrowed). */
static struct spool_envelope report_envelope(const struct tls_rpt *r, const char **rcpt)
{
    return (struct spool_envelope){.sender = r->sender,
                                   .rcpts = rcpt,
                                   .nrcpts = 1,
                                   .client_addr = "127.0.0.1",
                                   .helo = r->submitter,
                                   .listener = "tls-rpt",
                                   .received_at = (int64_t)time(NULL),
                                   .flags = SPOOL_ENV_TLS_REPORT};
}

/* Logs tls_rpt.report (m is in the spool as msg), or tls_rpt.send_failed with reason. */
static void mail_log(const struct rpt_mail *m, const char *reason, struct spool_msg *msg)
{
    struct logrec rec;
    log_begin(&rec, reason != NULL ? LOG_ERROR : LOG_INFO,
              reason != NULL ? "tls_rpt.send_failed" : "tls_rpt.report");
    log_str(&rec, "domain", m->domain);
    log_str(&rec, "report_id", m->report_id);
    log_str(&rec, "rua", m->to);
    if (reason != NULL)
        log_str(&rec, "reason", reason);
    else
        log_str(&rec, "queue_id", spool_msg_id(msg));
    log_end(&rec);
}

/* Frees m and tells its report whether it is in the spool. */
static void mail_done(struct rpt_mail *m, int ok)
{
    struct rpt_send *snd = m->snd;
    free(m->domain);
    free(m->to);
    free(m->report_id);
    buf_free(&m->text);
    free(m);
    send_mail_done(snd, ok);
}

static void mail_on_committed(struct spool_msg *msg, int status, void *arg)
{
    struct rpt_mail *m = arg;
    struct tls_rpt *r = m->r;
    r->pending--;
    mail_log(m, status < 0 ? strerror(-status) : NULL, msg);
    if (status == 0 && !r->stopping) {
        const char *rcpt = m->to;
        struct spool_envelope env = report_envelope(r, &rcpt);
        struct spool_entry entry = {.id = spool_msg_id(msg), .env = &env};
        r->queued(r->queued_arg, &entry);
    }
    mail_done(m, status == 0);
}

/* Spools m's mail, prefixed by `signatures` (DKIM-Signature fields, may be empty). */
static void mail_spool(struct rpt_mail *m, const char *signatures, size_t len)
{
    struct tls_rpt *r = m->r;
    const char *rcpt = m->to;
    struct spool_envelope env = report_envelope(r, &rcpt);
    struct spool_msg *msg = r->stopping ? NULL : spool_msg_new(r->spool, &env);
    if (msg == NULL) {
        if (!r->stopping)
            mail_log(m, "cannot create a spool file", NULL);
        mail_done(m, 0);
        return;
    }
    spool_msg_append(msg, signatures, len, NULL, NULL);
    spool_msg_append(msg, m->text.data, m->text.len, NULL, NULL);
    buf_free(&m->text);
    r->pending++;
    spool_msg_commit(msg, mail_on_committed, m);
}

/* RFC 8460 §5.3: the report is DKIM-signed for the domain of tls_rpt.sender when a dkim: entry
 * covers it (hashing and signing on the thread pool). */
static void mail_on_signed(struct dkim_stream *ds, const struct dkim_result *res, void *arg)
{
    (void)ds;
    struct rpt_mail *m = arg;
    m->r->pending--;
    if (res->status < 0)
        log_msg(LOG_ERROR, "tls_rpt.sign_failed", "report %s to %s goes unsigned: %s", m->report_id,
                m->to, res->error);
    mail_spool(m, res->status == 0 ? res->headers : "", res->status == 0 ? res->headers_len : 0);
}

/* Signs (when a key covers the sender's domain) and spools the report mail for one mailto:
 * address. */
static void send_mail(struct rpt_send *snd, const struct tls_rpt_meta *meta, const char *to,
                      const struct buf *json)
{
    struct tls_rpt *r = snd->r;
    struct tls_rpt_mail mail = {.from = r->sender,
                                .to = to,
                                .submitter = r->submitter,
                                .domain = snd->d,
                                .meta = meta,
                                .json = json->data,
                                .json_len = json->len,
                                .now = (int64_t)time(NULL)};
    struct rpt_mail *m = xcalloc(1, sizeof *m);
    *m = (struct rpt_mail){r, snd, xstrdup(snd->d->name), xstrdup(to),
                           xstrdup(meta->report_id), BUF_INIT};
    snd->mails++;
    tls_rpt_mail_build(&mail, &m->text);
    const struct dkim_entry *entry;
    if (r->signers == NULL || dkim_match(r->signers, r->submitter, &entry, 1) == 0) {
        mail_spool(m, "", 0);
        return;
    }
    struct dkim_stream *ds = dkim_stream_new(r->loop, r->signers, meta->report_id);
    dkim_stream_write(ds, m->text.data, m->text.len, NULL, NULL); /* copies: one small mail */
    r->pending++;
    dkim_stream_finish(ds, mail_on_signed, m);
}

/* RFC 8460 §3: exactly one TLSRPTv1 record, or the domain wants no reports. */
static int pick_record(const struct dns_txt *txts, size_t n, struct tls_rpt_rua *rua)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        struct tls_rpt_rua one;
        int rc = tls_rpt_record_parse(txts[i].data, txts[i].len, &one);
        if (rc == 0)
            continue;
        if (found++ == 0 && rc == 1)
            *rua = one;
        else if (rc == 1)
            tls_rpt_rua_free(&one);
        if (rc < 0 || found > 1) {
            tls_rpt_rua_free(rua);
            found = 2;
        }
    }
    return found == 1 && rua->nmailto + rua->nother > 0;
}

static void send_on_txt(void *arg, enum dns_status st, const struct dns_txt *txts, size_t n)
{
    struct rpt_send *snd = arg;
    struct tls_rpt *r = snd->r;
    r->pending--;
    struct tls_rpt_rua rua = {0};
    if ((st == DNS_TEMPFAIL || r->stopping) &&
        send_keep(snd, r->stopping ? "stopping"
                                   : "the _smtp._tls TXT record cannot be looked up now")) {
        send_free(snd);
        rpt_check_stopped(r);
        return;
    }
    if (r->stopping || st != DNS_OK || !pick_record(txts, n, &rua)) {
        if (!r->stopping)
            log_msg(LOG_INFO, "tls_rpt.no_record",
                    "%s publishes no usable _smtp._tls TXT record (%s): its report for %s is "
                    "dropped",
                    snd->d->name, dns_status_name(st), snd->d->day);
        send_free(snd);
        rpt_check_stopped(r);
        return;
    }
    struct buf id = BUF_INIT, json = BUF_INIT;
    snd->mails++; /* held while the mails start */
    buf_printf(&id, "%s.%lld.%u.%s@%s", snd->d->day, (long long)time(NULL), ++r->seq, snd->d->name,
               r->submitter);
    struct tls_rpt_meta meta = {.organization = r->organization,
                                .contact = r->contact,
                                .report_id = id.data,
                                .start = snd->start,
                                .end = snd->end};
    tls_rpt_report_json(snd->d, &meta, &json);
    for (size_t i = 0; i < rua.nmailto; i++)
        send_mail(snd, &meta, rua.mailto[i], &json);
    if (rua.nother > 0)
        log_msg(LOG_INFO, "tls_rpt.rua_unsupported",
                "%s asks for %zu report(s) by a URI other than mailto: (https is not supported)",
                snd->d->name, rua.nother);
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s.json", id.data);
    for (size_t i = 0; i < name.len; i++) /* the domain is data, never a path */
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@_-",
                   name.data[i]) == NULL)
            name.data[i] = '_';
    rpt_file_job(r, r->reports_dir, name.data, &json, FILE_REPORT);
    buf_free(&name);
    buf_free(&id);
    buf_free(&json);
    tls_rpt_rua_free(&rua);
    send_mail_done(snd, 1);
}

/* Sends the reports of the days before today's (all when all is set). Returns how many. */
static size_t rpt_send_due(struct tls_rpt *r, int all, struct buf *out)
{
    char today[TLS_RPT_DAY_LEN + 1];
    int64_t now = (int64_t)time(NULL);
    day_of(now, today);
    size_t n;
    struct tls_rpt_domain **due = tls_rpt_table_due(&r->table, all ? NULL : today, &n);
    for (size_t i = 0; i < n; i++) {
        if (out != NULL)
            buf_printf(out, "%s %s\n", due[i]->day, due[i]->name);
        rpt_send_domain(r, due[i], now);
    }
    free(due);
    return n;
}

int tls_rpt_send_now(struct tls_rpt *r, struct buf *out)
{
    if (r == NULL || r->stopping)
        return -ESHUTDOWN;
    if (!r->enabled) {
        buf_printf(out, "TLS reporting is off (tls_rpt.enabled)");
        return -ENOTSUP;
    }
    return (int)rpt_send_due(r, 1, out);
}

/* Arms the daily timer: the next midnight UTC plus send_after. */
static void rpt_arm_day(struct tls_rpt *r);

static void rpt_on_day(uv_timer_t *t)
{
    struct tls_rpt *r = t->data;
    if (r->enabled && r->loaded)
        rpt_send_due(r, 0, NULL);
    rpt_file_job(r, r->reports_dir, "", NULL, FILE_PRUNE);
    rpt_arm_day(r);
}

static void rpt_arm_day(struct tls_rpt *r)
{
    int64_t now = (int64_t)time(NULL);
    int64_t next = now - now % DAY_S + (int64_t)r->send_after_s;
    if (next <= now)
        next += DAY_S;
    uv_timer_start(&r->day_timer, rpt_on_day, (uint64_t)(next - now) * 1000, 0);
}

/* ---- life cycle ---- */

struct tls_rpt *tls_rpt_new(uv_loop_t *loop, struct dns_resolver *dns, struct spool *spool,
                            const struct config *cfg, tls_rpt_queued_cb queued, void *arg)
{
    struct tls_rpt *r = xcalloc(1, sizeof *r);
    r->loop = loop;
    r->dns = dns;
    r->spool = spool;
    r->queued = queued;
    r->queued_arg = arg;
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", cfg->server.spool, RPT_DIR);
    r->dir = xstrdup(p.data);
    buf_printf(&p, "/reports");
    r->reports_dir = xstrdup(p.data);
    buf_free(&p);
    tls_rpt_table_init(&r->table, 0);
    tls_rpt_configure(r, cfg);
    uv_timer_init(loop, &r->day_timer);
    uv_timer_init(loop, &r->save_timer);
    r->day_timer.data = r->save_timer.data = r;
    rpt_arm_day(r);
    rpt_file_job(r, r->dir, RPT_FILE, NULL, FILE_LOAD);
    rpt_file_job(r, r->reports_dir, "", NULL, FILE_PRUNE);
    return r;
}

void tls_rpt_set_signers(struct tls_rpt *r, struct dkim_signer_set *set)
{
    if (set != NULL)
        dkim_signer_set_ref(set);
    if (r->signers != NULL)
        dkim_signer_set_unref(r->signers);
    r->signers = set;
}

static void rpt_check_stopped(struct tls_rpt *r)
{
    if (!r->stopping || r->stop_cb == NULL || r->pending > 0)
        return;
    void (*cb)(void *) = r->stop_cb;
    r->stop_cb = NULL;
    cb(r->stop_arg);
}

static void rpt_on_stop_tick(uv_timer_t *t)
{
    rpt_check_stopped(t->data);
}

void tls_rpt_stop(struct tls_rpt *r, void (*cb)(void *arg), void *arg)
{
    r->stopping = 1;
    r->stop_cb = cb;
    r->stop_arg = arg;
    uv_timer_stop(&r->day_timer);
    uv_timer_stop(&r->save_timer);
    if (r->dirty)
        rpt_save(r);
    /* cb never runs inside this call: from a zero timer when nothing is in flight. */
    uv_timer_start(&r->save_timer, rpt_on_stop_tick, 0, 0);
}

static void rpt_on_closed(uv_handle_t *h)
{
    struct tls_rpt *r = h->data;
    if (++r->closed_handles < 2)
        return;
    tls_rpt_table_free(&r->table);
    tls_rpt_set_signers(r, NULL);
    free(r->dir);
    free(r->reports_dir);
    free(r->organization);
    free(r->contact);
    free(r->sender);
    free(r->submitter);
    free(r);
}

void tls_rpt_free(struct tls_rpt *r)
{
    if (r == NULL)
        return;
    uv_close((uv_handle_t *)&r->day_timer, rpt_on_closed);
    uv_close((uv_handle_t *)&r->save_timer, rpt_on_closed);
}
