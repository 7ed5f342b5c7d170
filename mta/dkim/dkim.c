/*
 * DKIM signing with libopendkim: signer sets, the synchronous job, the streaming wrapper that runs
 * the job on the thread pool (see dkim.h).
 *
 * Why hashing runs on the pool too: test_dkim prints the figures; on the development machine
 * relaxed canonicalization plus SHA-256 took 5.6 ms per MiB of body, the end of message with an
 * RSA-2048 signature 1.3 ms, with Ed25519 0.6 ms. Hashing is the larger cost, so a large message
 * would stall the loop more than signing would (architecture invariant 3). The loop only appends
 * bytes to a lib/pool_pipe, which hands them to the pool in batches.
 */
#include "mta/dkim/dkim.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#include "lib/header_section.h"
#include "lib/pool_pipe.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

#define DOMAIN_MAX 254

/* RFC 6376 §5.4.1's recommended fields, plus the identifiers and MIME structure fields whose
 * change alters what the recipient sees, List-Unsubscribe-Post (RFC 8058 §4 requires it),
 * Feedback-ID (Gmail counts it only when signed) and our trace, so that it reaches a complaint
 * report as we wrote it. */
/* clang-format off */
static const char *const sign_headers[] = {
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Sender", "Message-ID", "In-Reply-To",
    "References", "Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
    "Resent-Message-ID", "List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
    "List-Subscribe", "List-Post", "List-Owner", "List-Archive", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-ID", "Content-Description", "Feedback-ID",
    "X-Sluice-Trace", NULL};
/* clang-format on */

/* Named once more in h= than they occur (RFC 6376 §8.15), so that nobody can add another
 * instance, or add one that was absent, without breaking the signature. */
static const char *const oversign_headers[] = {"From", "Subject", "To", "Date", NULL};

/* ------------------------------------------------------------------------------------------ */
/* libopendkim's memory, and its Ed25519 leak
 *
 * libopendkim 2.11 builds the private-key state at dkim_eom (dkim_privkey_load: a struct
 * dkim_crypto, its output buffer, a BIO over the key and the EVP_PKEY), but dkim_free releases it
 * only for RSA: every Ed25519 signature lost about 0.5 KB. We fix it from outside rather than sign
 * Ed25519 ourselves, which would mean re-implementing canonicalization and the header hash beside
 * libopendkim's. The library allocates a handle's memory through the allocator given to dkim_init
 * with the closure given to dkim_sign, so each handle gets a tracker listing its live blocks. When
 * dkim_free releases the crypto state, it is recognised by its shape (crypto_out is a live block of
 * the handle, crypto_outlen bytes long; for RSA dkim_free has already freed and cleared it) and
 * its OpenSSL objects and buffer go with it; any block still listed afterwards goes too.
 */

/* struct dkim_crypto of libopendkim 2.11 built with OpenSSL (libopendkim/dkim-types.h). */
struct opendkim_crypto {
    u_char crypto_pad;
    int crypto_keysize;
    size_t crypto_inlen;
    size_t crypto_outlen;
    EVP_PKEY *crypto_pkey;
    void *crypto_key;
    BIO *crypto_keydata;
    u_char *crypto_in;
    u_char *crypto_out;
};

struct mem_block {
    struct mem_block *prev, *next; /* in the handle's tracker, oldest first */
    size_t size;
    max_align_t align[]; /* the caller's bytes */
};

/* The blocks one libopendkim handle holds; touched by the thread running its job only. */
struct mem_tracker {
    struct mem_block head; /* circular list sentinel */
};

static void tracker_init(struct mem_tracker *t)
{
    t->head.prev = t->head.next = &t->head;
}

static void *opendkim_malloc(void *closure, size_t size)
{
    struct mem_tracker *t = closure;
    struct mem_block *b = malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    b->size = size;
    b->prev = b->next = b;
    if (t != NULL) { /* NULL: the library handle itself, never leaked */
        b->prev = t->head.prev;
        b->next = &t->head;
        t->head.prev->next = b;
        t->head.prev = b;
    }
    return b->align;
}

static int tracker_holds(const struct mem_tracker *t, const void *p, size_t size)
{
    for (const struct mem_block *b = t->head.next; b != &t->head; b = b->next)
        if (b->align == p)
            return b->size == size;
    return 0;
}

static void opendkim_free(void *closure, void *p)
{
    if (p == NULL)
        return;
    struct mem_block *b = container_of(p, struct mem_block, align);
    struct mem_tracker *t = closure;
    /* dkim_free frees an Ed25519 crypto state without its contents: its output buffer is still
     * ours (the RSA path has freed it by now), and nothing else has that shape. */
    if (t != NULL && b->size == sizeof(struct opendkim_crypto)) {
        struct opendkim_crypto *c = p;
        if (c->crypto_key == NULL && c->crypto_out != NULL &&
            tracker_holds(t, c->crypto_out, c->crypto_outlen)) {
            EVP_PKEY_free(c->crypto_pkey);
            BIO_free(c->crypto_keydata);
            opendkim_free(t, c->crypto_out);
        }
    }
    b->prev->next = b->next;
    b->next->prev = b->prev;
    free(b);
}

/* After dkim_free: releases any block libopendkim still left behind. */
static void tracker_release(struct mem_tracker *t)
{
    while (t->head.next != &t->head)
        opendkim_free(t, t->head.next->align);
}

/* ------------------------------------------------------------------------------------------ */
/* Signer sets */

struct dkim_signer_set {
    int refs;
    size_t count;
    struct dkim_entry *entries; /* owned, in configuration order */
};

struct dkim_signer_set *dkim_signer_set_new(void)
{
    struct dkim_signer_set *set = xcalloc(1, sizeof(*set));
    set->refs = 1;
    return set;
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* "relaxed/simple" -> header and body canonicalization; one word: body simple (RFC 6376 §3.5). */
static int canon_parse(const char *text, int *header, int *body)
{
    const char *slash = strchr(text, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    const char *btext = slash != NULL ? slash + 1 : "simple";
    int *out[2] = {header, body};
    const char *word[2] = {text, btext};
    size_t wlen[2] = {hlen, strlen(btext)};

    for (int i = 0; i < 2; i++) {
        if (wlen[i] == 6 && strncmp(word[i], "simple", 6) == 0)
            *out[i] = DKIM_CANON_SIMPLE;
        else if (wlen[i] == 7 && strncmp(word[i], "relaxed", 7) == 0)
            *out[i] = DKIM_CANON_RELAXED;
        else
            return -EINVAL;
    }
    return 0;
}

/* 1 when `domain` is `parent` or one of its subdomains (both lower case). */
static int domain_within(const char *domain, const char *parent)
{
    size_t dl = strlen(domain), pl = strlen(parent);

    if (dl == pl)
        return strcmp(domain, parent) == 0;
    return dl > pl && domain[dl - pl - 1] == '.' && strcmp(domain + dl - pl, parent) == 0;
}

/* RFC 6376 §3.5: the domain of i= must be d= or a subdomain of it. */
static int identity_valid(const char *identity, const char *signing_domain)
{
    const char *at = strrchr(identity, '@');
    if (at == NULL || strchr(identity, ';') != NULL || strpbrk(identity, " \t\r\n") != NULL)
        return 0;
    char *domain = lower_dup(at + 1);
    int ok = dkim_dns_name_valid(domain) && domain_within(domain, signing_domain);
    free(domain);
    return ok;
}

/* A libopendkim library handle carrying this entry's header lists and signature lifetime. */
static DKIM_LIB *entry_lib_new(uint64_t expire)
{
    DKIM_LIB *lib = dkim_init(opendkim_malloc, opendkim_free);
    if (lib == NULL)
        return NULL;
    /* List options take the array itself, and its size must be that of a pointer. */
    if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)sign_headers,
                     sizeof(char **)) != DKIM_STAT_OK ||
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, (void *)oversign_headers,
                     sizeof(char **)) != DKIM_STAT_OK ||
        (expire > 0 && dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL, &expire,
                                    sizeof(expire)) != DKIM_STAT_OK)) {
        dkim_close(lib);
        return NULL;
    }
    return lib;
}

static void entry_clear(struct dkim_entry *e)
{
    free(e->domain);
    free(e->signing_domain);
    free(e->selector);
    free(e->identity);
    dkim_key_free(e->key);
    if (e->lib != NULL)
        dkim_close(e->lib);
}

int dkim_signer_set_add(struct dkim_signer_set *set, const struct dkim_entry_conf *conf,
                        struct buf *err)
{
    const char *d = conf->signing_domain != NULL ? conf->signing_domain : conf->domain;
    enum dkim_alg alg = DKIM_ALG_RSA_SHA256;
    struct dkim_entry e = {0};
    int rc;

    if (conf->domain == NULL || !dkim_dns_name_valid(conf->domain) || d == NULL ||
        !dkim_dns_name_valid(d)) {
        buf_printf(err, "dkim: invalid domain '%s'", d != NULL ? d : "");
        return -EINVAL;
    }
    if (conf->selector == NULL || !dkim_dns_name_valid(conf->selector)) {
        buf_printf(err, "dkim %s: invalid selector '%s'", conf->domain,
                   conf->selector != NULL ? conf->selector : "");
        return -EINVAL;
    }
    if (conf->algorithm != NULL && dkim_alg_parse(conf->algorithm, &alg) != 0) {
        buf_printf(err, "dkim %s: unknown algorithm '%s' (rsa-sha256 or ed25519-sha256)",
                   conf->domain, conf->algorithm);
        return -EINVAL;
    }
    if (canon_parse(conf->canonicalization != NULL ? conf->canonicalization : "relaxed/relaxed",
                    &e.header_canon, &e.body_canon) != 0) {
        buf_printf(err, "dkim %s: unknown canonicalization '%s' (e.g. relaxed/relaxed)",
                   conf->domain, conf->canonicalization);
        return -EINVAL;
    }
    e.domain = lower_dup(conf->domain);
    e.signing_domain = lower_dup(d);
    if (conf->identity != NULL && !identity_valid(conf->identity, e.signing_domain)) {
        buf_printf(err, "dkim %s: identity '%s' is not within the signing domain %s", conf->domain,
                   conf->identity, e.signing_domain);
        entry_clear(&e);
        return -EINVAL;
    }
    if (conf->key_file == NULL) {
        buf_printf(err, "dkim %s: no key file", conf->domain);
        entry_clear(&e);
        return -EINVAL;
    }
    rc = dkim_key_load(conf->key_file, alg, &e.key, err);
    if (rc < 0) {
        entry_clear(&e);
        return rc;
    }
    e.selector = xstrdup(conf->selector);
    e.identity = conf->identity != NULL ? xstrdup(conf->identity) : NULL;
    e.expire = conf->expire;
    e.lib = entry_lib_new(conf->expire);
    if (e.lib == NULL) {
        buf_printf(err, "dkim %s: libopendkim initialization failed", conf->domain);
        entry_clear(&e);
        return -ENOMEM;
    }
    set->entries = xrealloc(set->entries, (set->count + 1) * sizeof(*set->entries));
    set->entries[set->count++] = e;
    return 0;
}

size_t dkim_signer_set_count(const struct dkim_signer_set *set)
{
    return set->count;
}

const struct dkim_entry *dkim_signer_set_entry(const struct dkim_signer_set *set, size_t i)
{
    return &set->entries[i];
}

void dkim_signer_set_ref(struct dkim_signer_set *set)
{
    set->refs++;
}

void dkim_signer_set_unref(struct dkim_signer_set *set)
{
    if (set == NULL || --set->refs > 0)
        return;
    for (size_t i = 0; i < set->count; i++)
        entry_clear(&set->entries[i]);
    free(set->entries);
    free(set);
}

size_t dkim_match(const struct dkim_signer_set *set, const char *from_domain,
                  const struct dkim_entry **out, size_t max)
{
    char domain[DOMAIN_MAX + 1];
    size_t len = strlen(from_domain), n = 0;

    if (len > DOMAIN_MAX)
        return 0;
    for (size_t i = 0; i <= len; i++)
        domain[i] = (char)tolower((unsigned char)from_domain[i]);
    for (size_t i = 0; i < set->count && n < max; i++)
        if (domain_within(domain, set->entries[i].domain))
            out[n++] = &set->entries[i];
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* From: domain */

int dkim_from_domain(const char *field, size_t len, char *out, size_t size)
{
    const char *colon = memchr(field, ':', len);
    struct buf addr = BUF_INIT;
    int depth = 0, quoted = 0, angle = 0;

    if (colon == NULL)
        return -EINVAL;
    /* Collect the first mailbox's address, leaving out comments and display names: inside <...>
     * when there is one, else the bare addr-spec. */
    for (const char *p = colon + 1; p < field + len; p++) {
        char c = *p;
        if (c == '\\' && (quoted || depth > 0) && p + 1 < field + len) {
            if (quoted)
                buf_append(&addr, p, 2);
            p++;
        } else if (quoted) {
            buf_append(&addr, &c, 1);
            quoted = c != '"';
        } else if (c == '(') {
            depth++;
        } else if (depth > 0) {
            depth -= c == ')';
        } else if (c == '"') {
            buf_append(&addr, &c, 1);
            quoted = 1;
        } else if (c == '<' && !angle) {
            buf_reset(&addr);
            angle = 1;
        } else if ((c == '>' && angle) || (c == ',' && !angle)) {
            break;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            buf_append(&addr, &c, 1);
        }
    }

    int rc = -EINVAL;
    const char *at = addr.len > 0 ? memrchr(addr.data, '@', addr.len) : NULL;
    if (at != NULL) {
        size_t dlen = addr.len - (size_t)(at + 1 - addr.data);
        if (dlen > 0 && at[dlen] == '.')
            dlen--; /* a fully qualified "example.com." */
        if (dlen > 0 && dlen < size) {
            for (size_t i = 0; i < dlen; i++)
                out[i] = (char)tolower((unsigned char)at[1 + i]);
            out[dlen] = '\0';
            rc = dkim_dns_name_valid(out) ? (int)dlen : -EINVAL;
        }
    }
    buf_free(&addr);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The synchronous job */

struct dkim_job {
    size_t n;
    DKIM *dkim[DKIM_MAX_SIGNATURES];
    struct mem_tracker memory[DKIM_MAX_SIGNATURES]; /* of each handle */
    const struct dkim_entry *entries[DKIM_MAX_SIGNATURES];
    struct buf error; /* NUL-terminated text of the last failure */
};

/* Records libopendkim's complaint about handle `i` and returns -EINVAL. */
static int job_fail(struct dkim_job *job, size_t i, const char *step, DKIM_STAT st)
{
    const char *detail = dkim_geterror(job->dkim[i]);

    buf_reset(&job->error);
    buf_printf(&job->error, "DKIM %s for d=%s s=%s failed: %s%s%s", step,
               job->entries[i]->signing_domain, job->entries[i]->selector, dkim_getresultstr(st),
               detail != NULL && *detail != '\0' ? ": " : "", detail != NULL ? detail : "");
    return -EINVAL;
}

struct dkim_job *dkim_job_new(const struct dkim_entry *const *entries, size_t n, const char *id,
                              struct buf *err)
{
    struct dkim_job *job = xcalloc(1, sizeof(*job));

    if (n == 0 || n > DKIM_MAX_SIGNATURES) {
        buf_printf(err, "DKIM: %zu signatures requested (1..%d)", n, DKIM_MAX_SIGNATURES);
        free(job);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dkim_entry *e = entries[i];
        DKIM_STAT st;
        tracker_init(&job->memory[i]);
        DKIM *dkim = dkim_sign(
            e->lib, (const unsigned char *)id, &job->memory[i], (dkim_sigkey_t)e->key->pem,
            (const unsigned char *)e->selector, (const unsigned char *)e->signing_domain,
            e->header_canon, e->body_canon,
            e->key->alg == DKIM_ALG_ED25519_SHA256 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256,
            -1, &st);
        /* libopendkim 2.11 folds an Ed25519 signature differently when it hashes the field than
         * when it prints it, which only simple header canonicalization notices: keep that one
         * field on one line (checked against RFC 5322's line limit at eom). */
        if (dkim != NULL && e->key->alg == DKIM_ALG_ED25519_SHA256 &&
            e->header_canon == DKIM_CANON_SIMPLE)
            st = dkim_set_margin(dkim, 0);
        if (dkim != NULL && st == DKIM_STAT_OK && e->identity != NULL)
            st = dkim_set_signer(dkim, (const unsigned char *)e->identity);
        if (dkim != NULL && st != DKIM_STAT_OK) {
            dkim_free(dkim);
            dkim = NULL;
        }
        if (dkim == NULL) {
            tracker_release(&job->memory[i]);
            buf_printf(err, "DKIM signing setup for d=%s s=%s failed: %s", e->signing_domain,
                       e->selector, dkim_getresultstr(st));
            dkim_job_free(job);
            return NULL;
        }
        job->dkim[job->n] = dkim;
        job->entries[job->n++] = e;
    }
    buf_printf(&job->error, "%s", "");
    return job;
}

int dkim_job_header(struct dkim_job *job, const char *field, size_t len)
{
    if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
        len -= 2;
    if (len == 0) { /* libopendkim asserts on an empty field */
        buf_reset(&job->error);
        buf_printf(&job->error, "DKIM: empty header field");
        return -EINVAL;
    }
    for (size_t i = 0; i < job->n; i++) {
        /* libopendkim copies the field; it takes a non-const pointer only by its old API. */
        DKIM_STAT st = dkim_header(job->dkim[i], (u_char *)field, len);
        if (st != DKIM_STAT_OK)
            return job_fail(job, i, "header", st);
    }
    return 0;
}

int dkim_job_eoh(struct dkim_job *job)
{
    for (size_t i = 0; i < job->n; i++) {
        DKIM_STAT st = dkim_eoh(job->dkim[i]);
        if (st != DKIM_STAT_OK)
            return job_fail(job, i, "end of headers", st);
    }
    return 0;
}

int dkim_job_body(struct dkim_job *job, const char *data, size_t len)
{
    for (size_t i = 0; i < job->n && len > 0; i++) {
        DKIM_STAT st = dkim_body(job->dkim[i], (u_char *)data, len);
        if (st != DKIM_STAT_OK)
            return job_fail(job, i, "body", st);
    }
    return 0;
}

/* RFC 5322 §2.1.1: a line holds at most 998 characters before its CRLF. */
static int lines_fit(const char *text, size_t len)
{
    size_t line = 0;

    for (size_t i = 0; i < len; i++) {
        line = text[i] == '\n' ? 0 : line + 1;
        if (line > 998 + 1) /* the +1 is the CR of the CRLF */
            return 0;
    }
    return 1;
}

int dkim_job_eom(struct dkim_job *job, struct buf *out)
{
    static const char name[] = DKIM_SIGNHEADER ": ";
    size_t start = out->len;

    for (size_t i = 0; i < job->n; i++) {
        size_t field = out->len;
        u_char *value;
        size_t len;
        DKIM_STAT st = dkim_eom(job->dkim[i], NULL);
        if (st == DKIM_STAT_OK)
            st = dkim_getsighdr_d(job->dkim[i], sizeof(name) - 1, &value, &len);
        if (st != DKIM_STAT_OK) {
            out->len = start;
            return job_fail(job, i, "signing", st);
        }
        buf_append_str(out, name);
        /* libopendkim folds with bare LF; the stored message has CRLF line ends. */
        for (size_t k = 0; k < len; k++) {
            if (value[k] == '\n' && (k == 0 || value[k - 1] != '\r'))
                buf_append(out, "\r", 1);
            buf_append(out, &value[k], 1);
        }
        buf_printf(out, "\r\n");
        if (!lines_fit(out->data + field, out->len - field)) {
            out->len = start;
            buf_reset(&job->error);
            buf_printf(&job->error, "DKIM signature for d=%s s=%s has a line over 998 characters",
                       job->entries[i]->signing_domain, job->entries[i]->selector);
            return -EINVAL;
        }
    }
    return 0;
}

const char *dkim_job_error(const struct dkim_job *job)
{
    return job->error.data != NULL ? job->error.data : "";
}

void dkim_job_free(struct dkim_job *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->n; i++) {
        dkim_free(job->dkim[i]);
        tracker_release(&job->memory[i]);
    }
    buf_free(&job->error);
    free(job);
}

/* ------------------------------------------------------------------------------------------ */
/* The streaming signer */

struct dkim_stream {
    struct pool_pipe pipe;       /* the message bytes, hashed on the pool */
    struct dkim_signer_set *set; /* referenced */
    char *id;
    dkim_stream_done_cb done_cb;
    void *done_arg;

    /* Pool side: touched by one work item at a time, read by the loop only once it returned. */
    struct header_section headers; /* until its end, when the From: domain picks the entries */
    int in_body;                   /* the job is hashing the body */
    struct dkim_job *job;
    struct buf sigs;  /* the DKIM-Signature fields */
    struct buf error; /* why signing failed */
    int status;       /* 0, or a negative errno */
    char from_domain[DOMAIN_MAX + 1];
};

/* Records why signing failed; returns 1: no more bytes wanted. */
static int stream_fail(struct dkim_stream *s, int status, const char *text)
{
    s->status = status;
    s->in_body = 0;
    buf_reset(&s->error);
    buf_printf(&s->error, "%s", text);
    return 1;
}

/* Pool side. The header fields are h[0..end): pick the entries from the From: domain, then hand
 * the fields to a new job. Returns 1 when nothing is to be signed (or signing failed). */
static int stream_headers_end(struct dkim_stream *s, const char *h, size_t end)
{
    const char *from = NULL;
    size_t from_len = 0, froms = 0;
    const struct dkim_entry *entries[DKIM_MAX_SIGNATURES];

    for (size_t at = 0, next; at < end; at = next) {
        next = header_field_end(h, at, end);
        if (next - at > 5 && strncasecmp(h + at, "From:", 5) == 0) {
            from = h + at;
            from_len = next - at;
            froms++;
        }
    }
    if (froms > 1)
        return stream_fail(s, -EINVAL, "DKIM: the message has more than one From: field");
    if (from == NULL ||
        dkim_from_domain(from, from_len, s->from_domain, sizeof(s->from_domain)) < 0) {
        s->from_domain[0] = '\0';
        return 1;
    }
    size_t n = dkim_match(s->set, s->from_domain, entries, DKIM_MAX_SIGNATURES);
    if (n == 0)
        return 1;

    struct buf err = BUF_INIT;
    s->job = dkim_job_new(entries, n, s->id, &err);
    if (s->job == NULL) {
        stream_fail(s, -EINVAL, err.data);
        buf_free(&err);
        return 1;
    }
    for (size_t at = 0, next; at < end; at = next) {
        next = header_field_end(h, at, end);
        if (dkim_job_header(s->job, h + at, next - at) < 0)
            return stream_fail(s, -EINVAL, dkim_job_error(s->job));
    }
    if (dkim_job_eoh(s->job) < 0)
        return stream_fail(s, -EINVAL, dkim_job_error(s->job));
    s->in_body = 1;
    return 0;
}

static int stream_body(struct dkim_stream *s, const char *data, size_t len)
{
    if (len > 0 && dkim_job_body(s->job, data, len) < 0)
        return stream_fail(s, -EINVAL, dkim_job_error(s->job));
    return 0;
}

/* Pool side: consumes one batch of message bytes. */
static int stream_consume(struct pool_pipe *p, const char *data, size_t len)
{
    struct dkim_stream *s = container_of(p, struct dkim_stream, pipe);
    struct header_section *hs = &s->headers;

    if (s->in_body)
        return stream_body(s, data, len);
    switch (header_section_feed(hs, data, len)) {
    case HEADER_SECTION_MORE:
        return 0;
    case HEADER_SECTION_TOO_BIG:
        return stream_fail(s, -EMSGSIZE, "DKIM: header section over 1 MiB, not signed");
    case HEADER_SECTION_COMPLETE:
        break;
    }
    int enough = stream_headers_end(s, hs->data.data, hs->fields) ||
                 stream_body(s, hs->data.data + hs->body, hs->data.len - hs->body);
    header_section_free(hs);
    return enough;
}

/* Pool side, after the last bytes: sign. */
static void stream_sign(struct pool_pipe *p)
{
    struct dkim_stream *s = container_of(p, struct dkim_stream, pipe);

    if (s->status == 0 && s->job == NULL && s->headers.data.data != NULL) {
        /* No empty line: the whole message is its header section. */
        header_section_end(&s->headers);
        stream_headers_end(s, s->headers.data.data, s->headers.fields);
        header_section_free(&s->headers);
    }
    if (s->in_body && dkim_job_eom(s->job, &s->sigs) < 0)
        stream_fail(s, -EINVAL, dkim_job_error(s->job));
}

static void stream_release(struct pool_pipe *p)
{
    struct dkim_stream *s = container_of(p, struct dkim_stream, pipe);

    pool_pipe_close(&s->pipe);
    header_section_free(&s->headers);
    buf_free(&s->sigs);
    buf_free(&s->error);
    dkim_job_free(s->job);
    dkim_signer_set_unref(s->set);
    free(s->id);
    free(s);
}

static void stream_on_signed(struct pool_pipe *p)
{
    struct dkim_stream *s = container_of(p, struct dkim_stream, pipe);
    int signed_ = s->status == 0 && s->in_body;
    struct dkim_result res = {
        .status = s->status,
        .signatures = signed_ ? (int)s->job->n : 0,
        .headers = signed_ ? s->sigs.data : NULL,
        .headers_len = signed_ ? s->sigs.len : 0,
        .error = s->error.data != NULL ? s->error.data : "",
        .from_domain = s->from_domain,
    };
    s->done_cb(s, &res, s->done_arg);
    stream_release(p);
}

static const struct pool_pipe_ops stream_ops = {
    .consume = stream_consume,
    .release = stream_release,
};

struct dkim_stream *dkim_stream_new(uv_loop_t *loop, struct dkim_signer_set *set, const char *id)
{
    struct dkim_stream *s = xcalloc(1, sizeof(*s));

    pool_pipe_init(&s->pipe, loop, &stream_ops);
    s->set = set;
    dkim_signer_set_ref(set);
    s->id = xstrdup(id);
    return s;
}

int dkim_stream_write(struct dkim_stream *s, const char *data, size_t len,
                      dkim_stream_writable_cb writable_cb, void *arg)
{
    return pool_pipe_write(&s->pipe, data, len, writable_cb, arg);
}

void dkim_stream_finish(struct dkim_stream *s, dkim_stream_done_cb cb, void *arg)
{
    s->done_cb = cb;
    s->done_arg = arg;
    pool_pipe_finish(&s->pipe, stream_sign, stream_on_signed);
}

void dkim_stream_abort(struct dkim_stream *s)
{
    pool_pipe_abort(&s->pipe);
}
