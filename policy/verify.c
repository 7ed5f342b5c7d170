#include "policy/verify.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/lru.h"
#include "lib/smtp_addr.h"
#include "lib/smtp_reply.h"
#include "lib/stream.h"
#include "lib/strmap.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* One cached answer. */
struct verify_entry {
    struct lru_node node; /* in verifier.cache, under key */
    int valid;
    char *reply; /* the server's refusal (negative entries), else NULL */
    uint64_t expires;
    char key[];
};

struct verify_check {
    struct verify_probe *probe;
    verify_cb cb;
    void *arg;
    char *rcpt; /* as this check spelled it, for its reply */
    struct verify_check *prev, *next;
};

enum probe_step {
    STEP_CONNECT,
    STEP_GREETING,
    STEP_EHLO,
    STEP_HELO,
    STEP_STARTTLS,
    STEP_TLS, /* the handshake after 220 to STARTTLS */
    STEP_MAIL,
    STEP_RCPT,
    STEP_QUIT
};

static const char *const step_names[] = {"connect",   "greeting", "EHLO",
                                         "HELO",      "STARTTLS", "TLS handshake",
                                         "MAIL FROM", "RCPT TO",  "QUIT"};

/* One SMTP session asking about one address, shared by every check of that address. It tries
 * deliver_to's addresses in turn, each at most twice (the second time in clear after a broken
 * TLS handshake), one connection at a time through the one embedded stream. */
struct verify_probe {
    struct verifier *v; /* NULL once answered (or abandoned): then it only winds down */
    uv_loop_t *loop;
    char *key, *rcpt, *ehlo;
    char *sni; /* deliver_to's host name, NULL for an address literal (RFC 6066 §3) */
    SSL_CTX *tls_ctx;
    uint64_t positive_ttl_ms, negative_ttl_ms;
    struct verify_check *checks;
    enum probe_step step;
    struct stream stream;
    uv_timer_t timer;
    char timer_reason[160]; /* what the timer reports when it fires */
    struct smtp_reply_parser parser;
    struct sockaddr_storage addrs[VERIFY_ADDRS_MAX];
    size_t naddrs, addr; /* addresses to try, and the one being tried */
    uint16_t port;
    uint64_t timeout_ms;
    uint64_t deadline; /* uv_now() past which nothing more is tried */
    int handles;       /* timer, stream and DNS lookup not yet finished: freed at 0 */
    unsigned stream_used : 1;
    unsigned closing : 1;
    unsigned in_clear : 1; /* this address broke the TLS handshake: no STARTTLS this time */
};

struct verifier {
    uv_loop_t *loop;
    uint64_t timeout_ms, probe_timeout_ms;
    SSL_CTX *tls_ctx;     /* borrowed; NULL: no STARTTLS */
    struct lru cache;     /* lower-cased address -> struct verify_entry */
    struct strmap probes; /* key -> struct verify_probe in flight */
    struct buf text;      /* reply text of an answer given at once */
    uint64_t nprobes;
};

/* A cache entry leaves: replaced, expired, evicted to make room, or the verifier freed. */
static void cache_on_evict(struct lru_node *node, void *arg)
{
    struct verify_entry *e = container_of(node, struct verify_entry, node);
    free(e->reply);
    free(e);
}

struct verifier *verifier_new(uv_loop_t *loop, const struct verifier_params *params)
{
    struct verifier *v = xcalloc(1, sizeof *v);
    v->loop = loop;
    lru_init(&v->cache,
             params != NULL && params->cache_max > 0 ? params->cache_max : VERIFY_CACHE_MAX,
             cache_on_evict, NULL);
    v->timeout_ms =
        params != NULL && params->timeout_ms > 0 ? params->timeout_ms : VERIFY_TIMEOUT_MS;
    v->probe_timeout_ms = params != NULL && params->probe_timeout_ms > 0 ? params->probe_timeout_ms
                                                                         : VERIFY_PROBE_TIMEOUT_MS;
    v->tls_ctx = params != NULL ? params->tls_ctx : NULL;
    return v;
}

uint64_t verifier_probes(const struct verifier *v)
{
    return v->nprobes;
}

/* ---- the cache ---- */

/* The live entry for key, or NULL (an expired one is dropped). */
static struct verify_entry *cache_get(struct verifier *v, const char *key)
{
    struct lru_node *node = lru_find(&v->cache, key, strlen(key));
    if (node == NULL)
        return NULL;
    struct verify_entry *e = container_of(node, struct verify_entry, node);
    if (e->expires <= uv_now(v->loop)) {
        lru_evict(&v->cache, node);
        return NULL;
    }
    return e;
}

/* Replaces key's entry; a TTL of 0 only drops it. The least recently used go first when full. */
static void cache_put(struct verifier *v, const char *key, int valid, const char *reply,
                      uint64_t ttl_ms)
{
    size_t keylen = strlen(key);
    struct lru_node *old = lru_find(&v->cache, key, keylen);
    if (old != NULL)
        lru_evict(&v->cache, old);
    if (ttl_ms == 0)
        return;
    struct verify_entry *e = xcalloc(1, sizeof *e + keylen + 1);
    memcpy(e->key, key, keylen + 1);
    e->valid = valid;
    e->reply = valid ? NULL : xstrdup(reply);
    e->expires = uv_now(v->loop) + ttl_ms;
    lru_insert(&v->cache, &e->node, e->key, keylen);
}

/* ---- answers ---- */

static void result_fill(struct verify_result *res, enum verify_status status, int cached,
                        const char *rcpt, const char *reason, struct buf *text)
{
    static const struct {
        int code;
        const char *enhanced, *what;
    } replies[] = {
        [VERIFY_VALID] = {250, "2.1.5", "Ok"},
        [VERIFY_INVALID] = {550, "5.1.1", "undeliverable address"},
        [VERIFY_TEMPFAIL] = {450, "4.1.1", "unverified address"},
        [VERIFY_SKIPPED] = {250, "2.1.5", "Ok"},
    };
    buf_reset(text);
    if (status == VERIFY_INVALID || status == VERIFY_TEMPFAIL)
        buf_printf(text, "<%s>: Recipient address rejected: %s: %s", rcpt, replies[status].what,
                   reason);
    else
        buf_append_str(text, replies[status].what);
    buf_append(text, "", 1);
    *res = (struct verify_result){
        status, cached, replies[status].code, replies[status].enhanced, text->data, reason, rcpt};
}

static void probe_close(struct verify_probe *p);

/* Gives the probe's answer to every check waiting for it, and caches it. */
static void probe_answer(struct verify_probe *p, enum verify_status status, const char *reason)
{
    struct verifier *v = p->v;
    if (v == NULL)
        return;
    p->v = NULL;
    strmap_del(&v->probes, p->key);
    if (status == VERIFY_VALID)
        cache_put(v, p->key, 1, NULL, p->positive_ttl_ms);
    else if (status == VERIFY_INVALID)
        cache_put(v, p->key, 0, reason, p->negative_ttl_ms);
    struct buf text = BUF_INIT;
    while (p->checks != NULL) {
        struct verify_check *c = p->checks;
        p->checks = c->next;
        if (p->checks != NULL)
            p->checks->prev = NULL;
        struct verify_result res;
        result_fill(&res, status, 0, c->rcpt, reason, &text);
        c->cb(c->arg, &res);
        free(c->rcpt);
        free(c);
    }
    buf_free(&text);
}

static void probe_fail(struct verify_probe *p, const char *reason)
{
    probe_answer(p, VERIFY_TEMPFAIL, reason);
    probe_close(p);
}

/* ---- the probe's session ---- */

/* The chain, in firing order: probe_start (-> probe_on_addrs) -> probe_connect -> probe_on_event
 * -> probe_on_reply -> probe_send ... -> probe_answer; probe_retry closes the stream and
 * probe_on_stream_reused connects to the next address. */
static void probe_connect(struct verify_probe *p);
static void probe_on_event(struct stream *s, enum stream_event ev, int status, const char *data,
                           size_t len);
static void probe_on_timer(uv_timer_t *t);

static void probe_release(struct verify_probe *p)
{
    if (--p->handles > 0)
        return;
    smtp_reply_parser_close(&p->parser);
    free(p->key);
    free(p->rcpt);
    free(p->ehlo);
    free(p->sni);
    free(p);
}

static void probe_on_handle_closed(uv_handle_t *h)
{
    probe_release(h->data);
}

static void probe_on_stream_closed(struct stream *s)
{
    probe_release(s->owner);
}

static void probe_close(struct verify_probe *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    uv_close((uv_handle_t *)&p->timer, probe_on_handle_closed);
    if (p->stream_used) /* a no-op while the stream closes for reuse: that callback releases */
        stream_close(&p->stream, probe_on_stream_closed);
}

/* " reply" after the step's name when p waits for a reply rather than a connection or handshake. */
static const char *step_reply(enum probe_step step)
{
    return step <= STEP_GREETING || step == STEP_TLS ? "" : " reply";
}

/* Waits for the step p is at: at most the timeout, and never past the probe's deadline. */
static void probe_arm(struct verify_probe *p)
{
    uint64_t now = uv_now(p->loop);
    uint64_t left = p->deadline > now ? p->deadline - now : 0;
    snprintf(p->timer_reason, sizeof p->timer_reason, "timeout waiting for the %s%s",
             step_names[p->step], step_reply(p->step));
    uv_timer_start(&p->timer, probe_on_timer, left < p->timeout_ms ? left : p->timeout_ms, 0);
}

static void probe_on_stream_reused(struct stream *s)
{
    struct verify_probe *p = s->owner;
    if (p->closing)
        probe_release(p);
    else
        probe_connect(p);
}

/* The attempt ended without an answer about the address: after a broken TLS handshake the same
 * address once more in clear (RFC 7435), else the next address, while any is left and the
 * deadline allows; otherwise the probe fails with this last reason. */
static void probe_retry(struct verify_probe *p, const char *reason)
{
    if (p->v == NULL) { /* the answer is out: nothing to retry */
        probe_close(p);
        return;
    }
    if (p->step == STEP_TLS) { /* in_clear is never set there */
        p->in_clear = 1;
    } else {
        p->in_clear = 0;
        p->addr++;
    }
    if (p->addr < p->naddrs && uv_now(p->loop) < p->deadline) {
        uv_timer_stop(&p->timer);
        stream_close(&p->stream, probe_on_stream_reused);
        return;
    }
    if (p->naddrs <= 1) {
        probe_fail(p, reason);
        return;
    }
    char all[sizeof p->timer_reason + 64];
    size_t tried = p->addr + p->in_clear;
    snprintf(all, sizeof all, "%s (%zu of %zu addresses tried)", reason,
             tried < p->naddrs ? tried : p->naddrs, p->naddrs);
    probe_fail(p, all);
}

static void probe_on_timer(uv_timer_t *t)
{
    struct verify_probe *p = t->data;
    if (p->step == STEP_QUIT)
        probe_close(p); /* the answer is out; the QUIT reply is a courtesy */
    else
        probe_retry(p, p->timer_reason);
}

static void probe_send(struct verify_probe *p, enum probe_step step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void probe_send(struct verify_probe *p, enum probe_step step, const char *fmt, ...)
{
    char line[SMTP_REPLY_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->step = step;
    if (n < 0 || (size_t)n >= sizeof line || stream_write(&p->stream, line, (size_t)n) < 0) {
        probe_retry(p, "cannot send the probe");
        return;
    }
    probe_arm(p);
}

/* STARTTLS when the server offers it, we can, and this address has not broken a handshake. */
static int probe_wants_tls(const struct verify_probe *p, const struct smtp_reply *ehlo)
{
    struct smtp_ehlo caps;
    return p->tls_ctx != NULL && !p->in_clear && p->stream.ssl == NULL &&
           smtp_reply_ehlo_parse(ehlo, &caps) == 0 && (caps.ext & SMTP_EXT_STARTTLS);
}

/* After 220 to STARTTLS. Certificates are not verified: opportunistic, like delivery. */
static void probe_start_tls(struct verify_probe *p)
{
    p->step = STEP_TLS;
    int rc = stream_tls_client(&p->stream, p->tls_ctx, p->sni);
    if (rc < 0) {
        char reason[160];
        snprintf(reason, sizeof reason, "cannot start TLS: %s", uv_strerror(rc));
        probe_retry(p, reason);
        return;
    }
    probe_arm(p);
}

static void probe_on_reply(struct verify_probe *p, const struct smtp_reply *r)
{
    struct buf text = BUF_INIT;
    buf_printf(&text, "%d ", r->code);
    smtp_reply_text_join(r, "; ", &text);
    if (text.len > VERIFY_REASON_MAX) /* it goes into our one-line reply, and into the cache */
        memcpy(text.data + VERIFY_REASON_MAX - 3, "...", 4);
    int cls = r->code / 100;
    enum probe_step at = p->step;
    if (cls != 2 && at < STEP_RCPT && at != STEP_STARTTLS)
        at = STEP_CONNECT; /* a refusal before RCPT */
    switch (at) {
    case STEP_GREETING:
        probe_send(p, STEP_EHLO, "EHLO %s\r\n", p->ehlo);
        break;
    case STEP_EHLO:
        if (probe_wants_tls(p, r))
            probe_send(p, STEP_STARTTLS, "STARTTLS\r\n");
        else
            probe_send(p, STEP_MAIL, "MAIL FROM:<>\r\n");
        break;
    case STEP_HELO:
        probe_send(p, STEP_MAIL, "MAIL FROM:<>\r\n");
        break;
    case STEP_STARTTLS:
        if (r->code == 220)
            probe_start_tls(p);
        else /* RFC 3207 §4.1: carry on in clear */
            probe_send(p, STEP_MAIL, "MAIL FROM:<>\r\n");
        break;
    case STEP_TLS: /* not reached: input stops at the 220 to STARTTLS */
        break;
    case STEP_MAIL:
        probe_send(p, STEP_RCPT, "RCPT TO:<%s>\r\n", p->rcpt);
        break;
    case STEP_RCPT: /* from any address, this is the answer */
        probe_answer(p,
                     cls == 2   ? VERIFY_VALID
                     : cls == 5 ? VERIFY_INVALID
                                : VERIFY_TEMPFAIL,
                     text.data);
        probe_send(p, STEP_QUIT, "QUIT\r\n");
        break;
    case STEP_QUIT:
        probe_close(p);
        break;
    case STEP_CONNECT:
        if (p->step == STEP_EHLO && cls == 5) {
            probe_send(p, STEP_HELO, "HELO %s\r\n", p->ehlo);
        } else {
            /* It says nothing about the address: another server may answer. */
            char reason[SMTP_REPLY_LINE_MAX + 32];
            snprintf(reason, sizeof reason, "%s: %s", step_names[p->step], text.data);
            probe_retry(p, reason);
        }
        break;
    }
    buf_free(&text);
}

/* Whether input from the stream still means anything: not once the probe or this connection is
 * closing, and not after the 220 to STARTTLS (what follows it in clear could have been put there
 * by anyone on the path: the CVE-2011-0411 class). */
static int probe_reading(const struct verify_probe *p)
{
    return !p->closing && !p->stream.closing && p->step != STEP_TLS;
}

static void probe_on_event(struct stream *s, enum stream_event ev, int status, const char *data,
                           size_t len)
{
    struct verify_probe *p = s->owner;
    if (p->closing)
        return;
    char reason[160];
    switch (ev) {
    case STREAM_CONNECTED:
        if (status < 0) {
            snprintf(reason, sizeof reason, "connect: %s", uv_strerror(status));
            probe_retry(p, reason);
            return;
        }
        p->step = STEP_GREETING;
        probe_arm(p);
        stream_read_start(s);
        return;
    case STREAM_DATA:
        while (len > 0 && probe_reading(p)) {
            size_t used;
            enum smtp_reply_status st = smtp_reply_parser_feed(&p->parser, data, len, &used);
            if (st == REPLY_ERROR) {
                snprintf(reason, sizeof reason, "bad reply to %s: %s", step_names[p->step],
                         p->parser.error);
                probe_retry(p, reason);
                return;
            }
            if (st == REPLY_NEED_MORE)
                return;
            data += used, len -= used;
            probe_on_reply(p, &p->parser.reply);
        }
        return;
    case STREAM_TLS_READY:
        if (status < 0) {
            probe_retry(p, "TLS handshake failed");
            return;
        }
        /* RFC 3207 §4.2: forget what was learnt in clear, partial replies included */
        smtp_reply_parser_close(&p->parser);
        smtp_reply_parser_init(&p->parser);
        probe_send(p, STEP_EHLO, "EHLO %s\r\n", p->ehlo);
        return;
    case STREAM_EOF:
    case STREAM_ERROR:
        if (p->step == STEP_QUIT) {
            probe_close(p);
            return;
        }
        snprintf(reason, sizeof reason, "connection lost waiting for the %s%s", step_names[p->step],
                 step_reply(p->step));
        probe_retry(p, reason);
        return;
    case STREAM_DRAINED:
        return;
    }
}

/* Connects to the address p is at, with a fresh reply parser. */
static void probe_connect(struct verify_probe *p)
{
    if (!p->stream_used) {
        p->stream_used = 1;
        p->handles++;
    }
    p->step = STEP_CONNECT;
    smtp_reply_parser_close(&p->parser);
    smtp_reply_parser_init(&p->parser);
    int rc = stream_connect(p->loop, &p->stream, (struct sockaddr *)&p->addrs[p->addr], NULL,
                            probe_on_event, p);
    if (rc < 0) { /* answered from the loop, like every other failure */
        snprintf(p->timer_reason, sizeof p->timer_reason, "connect: %s", uv_strerror(rc));
        uv_timer_start(&p->timer, probe_on_timer, 0, 0);
        return;
    }
    probe_arm(p);
}

static void probe_on_addrs(void *arg, enum dns_status status, const struct dns_addr *addrs,
                           size_t naddrs)
{
    struct verify_probe *p = arg;
    if (!p->closing) {
        if (status == DNS_OK && naddrs > 0) {
            p->naddrs = naddrs < VERIFY_ADDRS_MAX ? naddrs : VERIFY_ADDRS_MAX;
            for (size_t i = 0; i < p->naddrs; i++)
                dns_addr_to_sockaddr(&addrs[i], p->port, &p->addrs[i]);
            probe_connect(p);
        } else {
            char reason[160];
            snprintf(reason, sizeof reason, "no address for the server (DNS %s)",
                     dns_status_name(status));
            probe_fail(p, reason);
        }
    }
    probe_release(p);
}

/* Starts the session to deliver_to: "[address]:port", "[address]", "host:port" or "host". */
static void probe_start(struct verify_probe *p, const char *deliver_to, uint16_t port,
                        struct dns_resolver *dns)
{
    int literal = deliver_to[0] == '[';
    const char *host = deliver_to + literal;
    size_t hlen = strcspn(host, literal ? "]" : ":");
    const char *rest = host + hlen + (literal && host[hlen] == ']');
    p->port = rest[0] == ':' ? (uint16_t)atoi(rest + 1) : port;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)hlen, host);

    if (ip_text_sockaddr(name, p->port, &p->addrs[0]) == 0) {
        p->naddrs = 1;
        probe_connect(p);
        return;
    }
    p->sni = xstrdup(name);
    p->handles++;
    if (dns != NULL && dns_resolve_addrs(dns, name, probe_on_addrs, p) == 0) {
        probe_arm(p);
        return;
    }
    p->handles--;
    snprintf(p->timer_reason, sizeof p->timer_reason, "%s", "DNS unavailable");
    uv_timer_start(&p->timer, probe_on_timer, 0, 0);
}

/* ---- checks ---- */

int verify_check(struct verifier *v, const struct verify_query *q, verify_cb cb, void *arg,
                 struct verify_check **handle, struct verify_result *now)
{
    *handle = NULL;
    if (q->deliver_to == NULL) {
        result_fill(now, VERIFY_SKIPPED, 0, q->rcpt, "no deliver_to", &v->text);
        return 0;
    }
    char *key = xstrdup(q->rcpt);
    for (char *c = key; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);

    struct verify_entry *e = cache_get(v, key);
    if (e != NULL) {
        free(key);
        lru_touch(&v->cache, &e->node);
        result_fill(now, e->valid ? VERIFY_VALID : VERIFY_INVALID, 1, q->rcpt,
                    e->valid ? "cached" : e->reply, &v->text);
        return 0;
    }

    struct verify_probe *p = strmap_get(&v->probes, key);
    if (p == NULL) {
        p = xcalloc(1, sizeof *p);
        p->v = v;
        p->key = key;
        p->rcpt = xstrdup(q->rcpt);
        p->ehlo = xstrdup(q->ehlo);
        p->positive_ttl_ms = q->positive_ttl_ms;
        p->negative_ttl_ms = q->negative_ttl_ms;
        p->loop = v->loop;
        p->tls_ctx = v->tls_ctx;
        p->timeout_ms = v->timeout_ms;
        p->deadline = uv_now(v->loop) + v->probe_timeout_ms;
        smtp_reply_parser_init(&p->parser);
        uv_timer_init(v->loop, &p->timer);
        p->timer.data = p;
        p->handles = 1; /* the timer */
        strmap_put(&v->probes, key, p);
        v->nprobes++;
        probe_start(p, q->deliver_to, q->default_port, q->dns);
    } else {
        free(key);
    }
    struct verify_check *c = xcalloc(1, sizeof *c);
    c->probe = p;
    c->cb = cb;
    c->arg = arg;
    c->rcpt = xstrdup(q->rcpt);
    c->next = p->checks;
    if (p->checks != NULL)
        p->checks->prev = c;
    p->checks = c;
    *handle = c;
    return 1;
}

void verify_cancel(struct verify_check *c)
{
    if (c == NULL)
        return;
    struct verify_probe *p = c->probe;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->checks = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->rcpt);
    free(c);
}

static void probe_collect(const char *key, void *value, void *arg)
{
    (void)key;
    struct verify_probe ***next = arg;
    *(*next)++ = value;
}

void verifier_free(struct verifier *v)
{
    if (v == NULL)
        return;
    /* Collected first: answering a probe takes it out of the map. */
    struct verify_probe **all = xcalloc(v->probes.count + 1, sizeof *all), **next = all;
    strmap_each(&v->probes, probe_collect, &next);
    for (struct verify_probe **p = all; p < next; p++)
        probe_fail(*p, "shutting down");
    free(all);
    strmap_free(&v->probes);
    lru_close(&v->cache);
    buf_free(&v->text);
    free(v);
}
