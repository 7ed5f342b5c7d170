/*
 * DKIM verification of inbound messages (see dkim_check.h).
 *
 * Threads: the pool side (consume, end of message) touches the libopendkim handle, the header
 * section and the result; the loop side touches the key fetches. Each reads the other's fields only
 * across a hand-over libuv orders: the loop reads the signatures found at the end of the header
 * section once that work item has returned, and the pool reads the fetched keys in the end-of-
 * message work item, queued only after the last answer arrived.
 */
#include "mta/dkim/dkim_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "lib/dns.h"
#include "lib/header_section.h"
#include "lib/pool_pipe.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* A key record longer than this is not a key anyone publishes (RSA-4096: about 750 octets). */
#define KEY_RECORD_MAX 4096

struct dkim_checker {
    DKIM_LIB *lib;
};

/* The key of one signature, fetched on the loop. */
struct key_fetch {
    struct dkim_check *check;
    enum dns_status status; /* meaningful once the answer came */
    char *record;           /* DNS_OK: the first TXT record, NUL-terminated */
};

struct dkim_check {
    struct pool_pipe pipe; /* the message bytes, hashed on the pool */
    struct dkim_checker *checker;
    struct dns_resolver *const *dns; /* where the resolver is when the keys are wanted */
    char *id;
    dkim_check_done_cb done_cb;
    void *done_arg;

    /* Loop side. */
    int fetching;      /* the key fetches were started */
    int dns_pending;   /* answers still to come */
    int drained;       /* every byte is hashed: the end of message waits for the keys only */
    int aborted;       /* dkim_check_abort: free once nothing is in flight */
    int pipe_released; /* the pipe has nothing in flight any more (after abort) */
    struct key_fetch keys[DKIM_CHECK_MAX_SIGNATURES]; /* one per signature in result */

    /* Pool side. */
    struct header_section headers;
    DKIM *dkim;     /* created at the end of the header section */
    int sigs_known; /* the header section was read: result.nsigs and the names are set */
    int in_body;    /* body bytes go to the handle */
    struct dkim_check_result result;
};

static void check_on_key(void *arg, enum dns_status status, const struct dns_txt *txts,
                         size_t ntxts);
static void check_on_checked(struct pool_pipe *p);

/* ------------------------------------------------------------------------------------------ */
/* The checker */

/* Pool side, inside dkim_eom: hands libopendkim the record fetched for this signature. */
static DKIM_CBSTAT check_on_key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
    struct dkim_check *c = dkim_get_user_context(dkim);
    DKIM_SIGINFO **sigs;
    int nsigs;

    if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK)
        return DKIM_CBSTAT_ERROR;
    for (int i = 0; i < nsigs && (size_t)i < c->result.nsigs; i++) {
        if (sigs[i] != sig)
            continue;
        const struct key_fetch *k = &c->keys[i];
        switch (k->status) {
        case DNS_OK:
            if (k->record == NULL || strlen(k->record) >= buflen)
                return DKIM_CBSTAT_NOTFOUND;
            memcpy(buf, k->record, strlen(k->record) + 1);
            return DKIM_CBSTAT_CONTINUE;
        case DNS_NXDOMAIN:
        case DNS_NODATA:
        case DNS_NULL_MX:
        case DNS_BADNAME:
            return DKIM_CBSTAT_NOTFOUND;
        case DNS_TEMPFAIL:
        case DNS_CANCELLED:
            return DKIM_CBSTAT_TRYAGAIN;
        }
    }
    return DKIM_CBSTAT_ERROR; /* a signature beyond DKIM_CHECK_MAX_SIGNATURES: ignored */
}

struct dkim_checker *dkim_checker_new(void)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    if (lib == NULL)
        return NULL;
    /* Signatures with syntax errors stay in the list, so they are reported (neutral), not
     * silently dropped; keys are asked for at end of message, not of the header section (when
     * they are still being fetched). */
    unsigned flags = DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_DELAYSIGPROC;
    if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK ||
        dkim_set_key_lookup(lib, check_on_key_lookup) != DKIM_STAT_OK) {
        dkim_close(lib);
        return NULL;
    }
    struct dkim_checker *c = xcalloc(1, sizeof(*c));
    c->lib = lib;
    return c;
}

void dkim_checker_free(struct dkim_checker *c)
{
    if (c == NULL)
        return;
    dkim_close(c->lib);
    free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Pool side */

/* The header fields are h[0..end): a verifying handle reads them and lists the signatures. Returns
 * 1 when there is nothing to verify. */
static int check_headers_end(struct dkim_check *c, const char *h, size_t end)
{
    DKIM_STAT st;
    DKIM_SIGINFO **sigs;
    int nsigs;

    c->sigs_known = 1;
    c->dkim = dkim_verify(c->checker->lib, (const u_char *)c->id, NULL, &st);
    if (c->dkim == NULL)
        return 1;
    dkim_set_user_context(c->dkim, c);
    for (size_t at = 0, next; at < end; at = next) {
        next = header_field_end(h, at, end);
        size_t len = next - at;
        if (len >= 2 && h[next - 2] == '\r' && h[next - 1] == '\n')
            len -= 2;
        /* A field libopendkim cannot parse (no colon) is left out, as a signer would have. */
        if (len > 0)
            (void)dkim_header(c->dkim, (u_char *)h + at, len);
    }
    st = dkim_eoh(c->dkim);
    if ((st != DKIM_STAT_OK && st != DKIM_STAT_NOSIG) ||
        dkim_getsiglist(c->dkim, &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0)
        return 1;
    for (int i = 0; i < nsigs; i++) {
        if (i >= DKIM_CHECK_MAX_SIGNATURES) {
            dkim_sig_ignore(sigs[i]);
            continue;
        }
        struct dkim_check_signature *out = &c->result.sigs[i];
        const u_char *d = dkim_sig_getdomain(sigs[i]), *s = dkim_sig_getselector(sigs[i]);
        snprintf(out->domain, sizeof(out->domain), "%s", d != NULL ? (const char *)d : "");
        snprintf(out->selector, sizeof(out->selector), "%s", s != NULL ? (const char *)s : "");
        c->result.nsigs++;
    }
    c->in_body = 1;
    return 0;
}

static int check_consume(struct pool_pipe *p, const char *data, size_t len)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);
    struct header_section *hs = &c->headers;

    if (c->in_body)
        return dkim_body(c->dkim, (u_char *)data, len) != DKIM_STAT_OK;
    switch (header_section_feed(hs, data, len)) {
    case HEADER_SECTION_MORE:
        return 0;
    case HEADER_SECTION_TOO_BIG:
        c->sigs_known = 1; /* not verified: reported as none */
        return 1;
    case HEADER_SECTION_COMPLETE:
        break;
    }
    int enough = check_headers_end(c, hs->data.data, hs->fields);
    if (!enough && hs->body < hs->data.len)
        enough = dkim_body(c->dkim, (u_char *)hs->data.data + hs->body, hs->data.len - hs->body) !=
                 DKIM_STAT_OK;
    header_section_free(hs);
    return enough;
}

/* After the last bytes: a message without an empty line is all header section (RFC 5322 §3.5). */
static void check_on_last_bytes(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);

    if (!c->sigs_known) {
        header_section_end(&c->headers);
        check_headers_end(c, c->headers.data.data, c->headers.fields);
        header_section_free(&c->headers);
    }
}

/* RFC 8601 §2.7.1 result of one signature libopendkim has processed. */
static enum dkim_check_verdict sig_verdict(DKIM_SIGINFO *sig, const char **reason)
{
    int error = dkim_sig_geterror(sig);

    *reason = "";
    if ((dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED) != 0) {
        if (dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH)
            return DKIM_CHECK_PASS;
        *reason = "body hash did not verify";
        return DKIM_CHECK_FAIL;
    }
    if ((dkim_sig_getflags(sig) & DKIM_SIGFLAG_PROCESSED) == 0 && error == DKIM_SIGERROR_OK) {
        *reason = "signature not processed";
        return DKIM_CHECK_NEUTRAL;
    }
    *reason = dkim_sig_geterrorstr(error);
    if (*reason == NULL)
        *reason = "unknown error";
    switch (error) {
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_KEYREVOKED:
        return DKIM_CHECK_FAIL;
    case DKIM_SIGERROR_KEYFAIL:
        return DKIM_CHECK_TEMPERROR;
    case DKIM_SIGERROR_NOKEY:
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_MULTIREPLY:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYDECODE:
    case DKIM_SIGERROR_KEYTOOSMALL:
        return DKIM_CHECK_PERMERROR;
    default:
        return DKIM_CHECK_NEUTRAL;
    }
}

/* The end of the message, once the keys are in: verify every signature. */
static void check_eom(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);
    DKIM_SIGINFO **sigs;
    int nsigs;

    if (!c->in_body)
        return;
    (void)dkim_eom(c->dkim, NULL); /* the verdicts are read per signature */
    if (dkim_getsiglist(c->dkim, &sigs, &nsigs) != DKIM_STAT_OK)
        nsigs = 0;
    for (size_t i = 0; i < c->result.nsigs; i++) {
        struct dkim_check_signature *out = &c->result.sigs[i];
        const char *reason = "signature not processed";
        out->verdict = (int)i < nsigs ? sig_verdict(sigs[i], &reason) : DKIM_CHECK_NEUTRAL;
        /* libopendkim leaves the error unset when the key lookup said "try again". */
        if (out->verdict != DKIM_CHECK_PASS &&
            (c->keys[i].status == DNS_TEMPFAIL || c->keys[i].status == DNS_CANCELLED)) {
            out->verdict = DKIM_CHECK_TEMPERROR;
            reason = "key query failed temporarily";
        }
        snprintf(out->reason, sizeof(out->reason), "%s", reason);
        size_t blen = sizeof(out->b);
        if ((int)i >= nsigs ||
            dkim_get_sigsubstring(c->dkim, sigs[i], out->b, &blen) != DKIM_STAT_OK)
            blen = 0;
        out->b[blen < sizeof(out->b) ? blen : sizeof(out->b) - 1] = '\0';
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Loop side */

static void check_free(struct dkim_check *c)
{
    for (size_t i = 0; i < DKIM_CHECK_MAX_SIGNATURES; i++)
        free(c->keys[i].record);
    if (c->dkim != NULL)
        dkim_free(c->dkim);
    header_section_free(&c->headers);
    pool_pipe_close(&c->pipe);
    free(c->id);
    free(c);
}

static void check_free_if_idle(struct dkim_check *c)
{
    if (c->aborted && c->pipe_released && c->dns_pending == 0)
        check_free(c);
}

/* The signatures are known: fetch their keys while the body is hashed. */
static void check_fetch_keys(struct dkim_check *c)
{
    c->fetching = 1;
    for (size_t i = 0; i < c->result.nsigs; i++) {
        const struct dkim_check_signature *sig = &c->result.sigs[i];
        struct key_fetch *k = &c->keys[i];
        char name[600];
        k->check = c;
        k->status = DNS_BADNAME;
        if (sig->domain[0] == '\0' || sig->selector[0] == '\0')
            continue; /* libopendkim reports the missing tag */
        snprintf(name, sizeof(name), "%s._domainkey.%s", sig->selector, sig->domain);
        if (*c->dns == NULL) {
            k->status = DNS_TEMPFAIL;
        } else if (dns_resolve_txt(*c->dns, name, check_on_key, k) == 0) {
            c->dns_pending++;
        } else {
            k->status = DNS_TEMPFAIL;
        }
    }
}

static void check_on_key(void *arg, enum dns_status status, const struct dns_txt *txts,
                         size_t ntxts)
{
    struct key_fetch *k = arg;
    struct dkim_check *c = k->check;

    c->dns_pending--;
    k->status = status;
    /* RFC 6376 §3.6.2.2: a selector has one record; with several, the first is as good as any. */
    if (status == DNS_OK && ntxts > 0 && txts[0].len <= KEY_RECORD_MAX &&
        memchr(txts[0].data, '\0', txts[0].len) == NULL)
        k->record = xstrdup(txts[0].data);
    if (c->aborted) {
        check_free_if_idle(c);
        return;
    }
    if (c->drained && c->dns_pending == 0)
        pool_pipe_run(&c->pipe, check_eom, check_on_checked);
}

static void check_on_consumed(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);

    if (c->sigs_known && !c->fetching)
        check_fetch_keys(c);
}

static void check_on_drained(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);

    c->drained = 1;
    if (c->dns_pending == 0)
        pool_pipe_run(&c->pipe, check_eom, check_on_checked);
}

static void check_on_checked(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);

    c->done_cb(c->done_arg, &c->result);
    check_free(c);
}

static void check_release(struct pool_pipe *p)
{
    struct dkim_check *c = container_of(p, struct dkim_check, pipe);

    c->pipe_released = 1;
    check_free_if_idle(c);
}

static const struct pool_pipe_ops check_ops = {
    .consume = check_consume,
    .consumed = check_on_consumed,
    .release = check_release,
};

struct dkim_check *dkim_check_new(uv_loop_t *loop, struct dkim_checker *checker,
                                  struct dns_resolver *const *dns, const char *id)
{
    struct dkim_check *c = xcalloc(1, sizeof(*c));

    pool_pipe_init(&c->pipe, loop, &check_ops);
    c->checker = checker;
    c->dns = dns;
    c->id = xstrdup(id);
    return c;
}

int dkim_check_write(struct dkim_check *c, const char *data, size_t len,
                     dkim_check_writable_cb writable_cb, void *arg)
{
    return pool_pipe_write(&c->pipe, data, len, writable_cb, arg);
}

void dkim_check_finish(struct dkim_check *c, dkim_check_done_cb cb, void *arg)
{
    c->done_cb = cb;
    c->done_arg = arg;
    pool_pipe_finish(&c->pipe, check_on_last_bytes, check_on_drained);
}

void dkim_check_abort(struct dkim_check *c)
{
    c->aborted = 1;
    pool_pipe_abort(&c->pipe);
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication-Results */

const char *dkim_check_verdict_name(enum dkim_check_verdict v)
{
    static const char *const names[] = {"pass", "fail", "neutral", "temperror", "permerror"};
    return (size_t)v < ARRAY_LEN(names) ? names[v] : "neutral";
}

/* A property value (RFC 8601 §2.2): a MIME token as it is, anything else as a quoted-string.
 * Peer-chosen bytes outside printable ASCII are dropped, so no value can end the field. */
static void ar_value(struct buf *out, const char *v)
{
    int token = *v != '\0';
    for (const char *p = v; *p != '\0' && token; p++)
        token = *p > ' ' && *p < 0x7f && strchr("()<>@,;:\\\"/[]?=", *p) == NULL;
    if (token) {
        buf_append_str(out, v);
        return;
    }
    buf_append(out, "\"", 1);
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < ' ' || *p >= 0x7f)
            continue;
        if (*p == '"' || *p == '\\')
            buf_append(out, "\\", 1);
        buf_append(out, p, 1);
    }
    buf_append(out, "\"", 1);
}

void dkim_check_result_format(const struct dkim_check_result *res, struct buf *out)
{
    if (res->nsigs == 0) {
        buf_append_str(out, "dkim=none");
        return;
    }
    for (size_t i = 0; i < res->nsigs; i++) {
        const struct dkim_check_signature *sig = &res->sigs[i];
        if (i > 0)
            buf_append_str(out, ";\r\n\t");
        buf_printf(out, "dkim=%s", dkim_check_verdict_name(sig->verdict));
        if (sig->reason[0] != '\0') {
            buf_append_str(out, " reason=");
            ar_value(out, sig->reason);
        }
        buf_append_str(out, " header.d=");
        ar_value(out, sig->domain);
        buf_append_str(out, " header.s=");
        ar_value(out, sig->selector);
        if (sig->b[0] != '\0') {
            buf_append_str(out, " header.b=");
            ar_value(out, sig->b);
        }
    }
}
