/*
 * A TCP connection with optional TLS behind one event callback (see stream.h). With TLS, OpenSSL
 * talks to one end of a BIO pair; ciphertext read from the socket is written into the other end
 * (net_bio) and SSL_read yields plaintext, and whatever OpenSSL writes is drained from net_bio into
 * uv_write. OpenSSL never touches the socket.
 */
#include "lib/stream.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* Each direction of the BIO pair buffers this much. OpenSSL is pumped in a loop, so the size only
 * bounds how much moves per step; it is most of what TLS costs per connection beyond the SSL. */
#define STREAM_BIO_SIZE (4 * 1024)

/* Reads land here: the loop is single-threaded and each read is consumed in its callback. */
static char stream_read_scratch[64 * 1024];
/* SSL_read hands out at most one record's plaintext per call. */
static char stream_plain_scratch[SSL3_RT_MAX_PLAIN_LENGTH];

/* One uv_write: the request and the bytes it writes, in one allocation. */
struct stream_wreq {
    uv_write_t req;
    size_t len;
    size_t cap;
    char data[];
};

static void stream_on_connected(uv_connect_t *req, int status);
static void stream_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void stream_on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *b);
static void stream_on_written(uv_write_t *req, int status);
static void stream_on_closed(uv_handle_t *h);

static struct stream *stream_of(uv_handle_t *h)
{
    return container_of((uv_tcp_t *)h, struct stream, tcp);
}

/* Whether the owner may still get events. */
static int stream_live(const struct stream *s)
{
    return !s->closing && !s->failed;
}

/* Reports an error once: as a failed STREAM_TLS_READY during the handshake, else STREAM_ERROR.
 * Nothing but stream_close is useful afterwards, so no further event follows. */
static void stream_fail(struct stream *s, int status)
{
    ERR_clear_error();
    if (!stream_live(s))
        return;
    enum stream_event ev = s->tls_handshaking ? STREAM_TLS_READY : STREAM_ERROR;
    s->tls_handshaking = 0;
    s->failed = 1;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->on_event(s, ev, status, NULL, 0);
}

/* Reads from the socket while a handshake runs or the owner wants data. */
static int stream_sync_reading(struct stream *s)
{
    if (s->closing)
        return 0;
    if (s->failed || s->eof_seen || !(s->tls_handshaking || s->reading)) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        return 0;
    }
    int rc = uv_read_start((uv_stream_t *)&s->tcp, stream_on_alloc, stream_on_read);
    return rc == UV_EALREADY ? 0 : rc;
}

static void stream_init(uv_loop_t *loop, struct stream *s, stream_event_cb on_event, void *owner)
{
    memset(s, 0, sizeof *s);
    s->on_event = on_event;
    s->owner = owner;
    /* With AF_UNSPEC no socket is created yet, so this cannot fail. */
    uv_tcp_init(loop, &s->tcp);
}

/* Every write is a complete reply or TLS flight, so Nagle's algorithm would only hold a second
 * small write back until the peer's delayed ACK (up to 40 ms per round trip). */
static void stream_nodelay(struct stream *s)
{
    uv_tcp_nodelay(&s->tcp, 1); /* a failure only costs latency */
}

int stream_accept(uv_loop_t *loop, uv_stream_t *server, struct stream *s, stream_event_cb on_event,
                  void *owner)
{
    stream_init(loop, s, on_event, owner);
    int rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc == 0)
        stream_nodelay(s);
    return rc;
}

void stream_prepare(uv_loop_t *loop, struct stream *s, stream_event_cb on_event, void *owner)
{
    stream_init(loop, s, on_event, owner);
}

int stream_connect(uv_loop_t *loop, struct stream *s, const struct sockaddr *dst,
                   const struct sockaddr *src, stream_event_cb on_event, void *owner)
{
    stream_init(loop, s, on_event, owner);
    return stream_connect_prepared(s, dst, src);
}

int stream_connect_prepared(struct stream *s, const struct sockaddr *dst,
                            const struct sockaddr *src)
{
    if (src != NULL) {
        int rc = uv_tcp_bind(&s->tcp, src, 0);
        if (rc < 0)
            return rc;
    }
    uv_connect_t *req = xmalloc(sizeof *req);
    int rc = uv_tcp_connect(req, &s->tcp, dst, stream_on_connected);
    if (rc < 0) {
        free(req);
        return rc;
    }
    stream_nodelay(s);
    return 0;
}

static void stream_on_connected(uv_connect_t *req, int status)
{
    struct stream *s = stream_of((uv_handle_t *)req->handle);
    free(req);
    if (stream_live(s))
        s->on_event(s, STREAM_CONNECTED, status, NULL, 0);
}

/* ---- writes ---- */

/* Makes room for `extra` more bytes in w (NULL starts a new request). */
static struct stream_wreq *wreq_reserve(struct stream_wreq *w, size_t extra)
{
    size_t len = w != NULL ? w->len : 0, cap = w != NULL ? w->cap : 0;
    if (cap - len >= extra)
        return w;
    size_t ncap = cap * 2 > len + extra ? cap * 2 : len + extra;
    w = xrealloc(w, sizeof *w + ncap);
    w->len = len;
    w->cap = ncap;
    return w;
}

/* Hands w to libuv (which then owns it until stream_on_written). */
static int stream_submit(struct stream *s, struct stream_wreq *w)
{
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, stream_on_written);
    if (rc < 0) {
        free(w);
        return rc;
    }
    s->write_pending += w->len;
    return 0;
}

static void stream_on_written(uv_write_t *req, int status)
{
    struct stream_wreq *w = container_of(req, struct stream_wreq, req);
    struct stream *s = stream_of((uv_handle_t *)req->handle);
    s->write_pending -= w->len;
    free(w);
    if (status < 0) {
        stream_fail(s, status);
        return;
    }
    if (s->write_pending == 0 && stream_live(s))
        s->on_event(s, STREAM_DRAINED, 0, NULL, 0);
}

/* Moves what OpenSSL has written to the network side of the pair into *w. */
static void tls_collect(struct stream *s, struct stream_wreq **w)
{
    size_t n;
    while ((n = BIO_ctrl_pending(s->net_bio)) > 0) {
        *w = wreq_reserve(*w, n);
        int got = BIO_read(s->net_bio, (*w)->data + (*w)->len, (int)n); /* n <= STREAM_BIO_SIZE */
        if (got <= 0)
            break;
        (*w)->len += (size_t)got;
    }
}

/* Sends handshake flights, alerts and other output OpenSSL made on its own. */
static int tls_flush(struct stream *s)
{
    struct stream_wreq *w = NULL;
    tls_collect(s, &w);
    return w != NULL ? stream_submit(s, w) : 0;
}

int stream_write(struct stream *s, const char *data, size_t len)
{
    if (!stream_live(s))
        return UV_EPIPE;
    if (len > INT_MAX)
        return UV_EINVAL;
    if (len == 0)
        return 0;
    if (s->ssl == NULL) {
        struct stream_wreq *w = wreq_reserve(NULL, len);
        memcpy(w->data, data, len);
        w->len = len;
        return stream_submit(s, w);
    }
    if (s->tls_handshaking)
        return UV_EAGAIN;
    /* Room for the records' overhead too (at most ~100 bytes per 16 KiB record), so that the
     * ciphertext usually fits without growing. */
    struct stream_wreq *w = wreq_reserve(NULL, len + len / 128 + 256);
    size_t off = 0;
    while (off < len) {
        /* On SSL_ERROR_WANT_WRITE the pair is full: it is drained below and SSL_write is retried
         * with the same bytes, as OpenSSL requires. */
        int r = SSL_write(s->ssl, data + off, (int)(len - off));
        if (r > 0) {
            off += (size_t)r;
        } else if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_WRITE) {
            free(w);
            ERR_clear_error();
            return UV_EPROTO;
        }
        tls_collect(s, &w);
    }
    return stream_submit(s, w);
}

/* ---- reads ---- */

/* Passes plaintext to the owner, or holds it behind what is already held or while the owner is
 * not reading. */
static void stream_give(struct stream *s, const char *data, size_t len)
{
    if (s->reading && s->held.len == 0)
        s->on_event(s, STREAM_DATA, 0, data, len);
    else
        buf_append(&s->held, data, len);
}

/* Delivers held plaintext as one chunk, then an EOF that waited behind it. */
static void stream_deliver_held(struct stream *s)
{
    if (s->reading && stream_live(s) && s->held.len > 0) {
        struct buf chunk = s->held;
        s->held = (struct buf)BUF_INIT;
        s->on_event(s, STREAM_DATA, 0, chunk.data, chunk.len);
        buf_free(&chunk);
    }
    if (s->reading && stream_live(s) && s->held.len == 0 && s->eof_seen && !s->eof_reported) {
        s->eof_reported = 1;
        s->on_event(s, STREAM_EOF, 0, NULL, 0);
    }
}

/* Runs the handshake, then SSL_read, until OpenSSL needs more ciphertext. Plaintext that the owner
 * does not take now is held, so the current read is always consumed completely. */
static void tls_pump(struct stream *s)
{
    while (stream_live(s) && !s->eof_seen) {
        int r = s->tls_handshaking
                    ? SSL_do_handshake(s->ssl)
                    : SSL_read(s->ssl, stream_plain_scratch, sizeof stream_plain_scratch);
        int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(s->ssl, r);
        int rc = tls_flush(s);
        if (rc < 0) {
            stream_fail(s, rc);
            return;
        }
        switch (err) {
        case SSL_ERROR_NONE:
            if (s->tls_handshaking) {
                s->tls_handshaking = 0;
                s->on_event(s, STREAM_TLS_READY, 0, NULL, 0);
            } else {
                stream_give(s, stream_plain_scratch, (size_t)r);
            }
            break;
        case SSL_ERROR_WANT_WRITE: /* flushed above; try again */
            break;
        case SSL_ERROR_WANT_READ:
            return;
        case SSL_ERROR_ZERO_RETURN: /* close_notify */
            s->eof_seen = 1;
            return;
        default:
            stream_fail(s, UV_EPROTO);
            return;
        }
    }
}

/* Feeds one read's ciphertext through the BIO pair, a pair-full at a time. */
static void tls_input(struct stream *s, const char *data, size_t len)
{
    int stalled = 0;
    while (len > 0 && stream_live(s) && !s->eof_seen) {
        int n = BIO_write(s->net_bio, data, (int)len); /* len <= sizeof stream_read_scratch */
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            stalled = 0;
        } else if (stalled) {
            /* OpenSSL took nothing from a full pair last time either: it would never progress. */
            stream_fail(s, UV_EPROTO);
            return;
        } else {
            stalled = 1;
        }
        tls_pump(s);
    }
}

static void stream_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(stream_read_scratch, sizeof stream_read_scratch);
}

static void stream_on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *b)
{
    struct stream *s = stream_of((uv_handle_t *)h);
    if (nread == 0 || !stream_live(s))
        return;
    s->dispatching = 1;
    if (nread < 0 && (nread != UV_EOF || s->tls_handshaking))
        stream_fail(s, (int)nread);
    else if (nread == UV_EOF)
        s->eof_seen = 1;
    else if (s->ssl != NULL)
        tls_input(s, b->base, (size_t)nread);
    else
        stream_give(s, b->base, (size_t)nread);
    /* The owner may have restarted reading from a callback after plaintext was held. */
    stream_deliver_held(s);
    s->dispatching = 0;
    int rc = stream_sync_reading(s);
    if (rc < 0)
        stream_fail(s, rc);
}

int stream_read_start(struct stream *s)
{
    if (!stream_live(s))
        return 0;
    s->reading = 1;
    if (!s->dispatching) {
        s->dispatching = 1;
        stream_deliver_held(s);
        s->dispatching = 0;
    }
    return stream_sync_reading(s);
}

void stream_read_stop(struct stream *s)
{
    s->reading = 0;
    stream_sync_reading(s);
}

/* ---- TLS ---- */

static int stream_tls_start(struct stream *s, SSL_CTX *ctx, int server, const char *sni,
                            stream_tls_prepare_cb prepare, void *arg)
{
    if (s->ssl != NULL)
        return UV_EALREADY;
    if (!stream_live(s))
        return UV_EPIPE;
    SSL *ssl = SSL_new(ctx);
    BIO *int_bio = NULL, *net_bio = NULL;
    if (ssl == NULL || !BIO_new_bio_pair(&int_bio, STREAM_BIO_SIZE, &net_bio, STREAM_BIO_SIZE)) {
        SSL_free(ssl);
        ERR_clear_error();
        return UV_ENOMEM;
    }
    SSL_set_bio(ssl, int_bio, int_bio);
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    s->ssl = ssl;
    s->net_bio = net_bio;
    s->tls_handshaking = 1;

    int rc = 0;
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if ((sni != NULL && !SSL_set_tlsext_host_name(ssl, sni)) ||
            (prepare != NULL && prepare(ssl, arg) < 0))
            rc = UV_EPROTO;
        /* The client speaks first: queue the ClientHello now. */
        else if (SSL_get_error(ssl, SSL_do_handshake(ssl)) != SSL_ERROR_WANT_READ)
            rc = UV_EPROTO;
        else
            rc = tls_flush(s);
    }
    if (rc == 0)
        rc = stream_sync_reading(s);
    if (rc < 0) {
        SSL_free(ssl);
        BIO_free(net_bio);
        s->ssl = NULL;
        s->net_bio = NULL;
        s->tls_handshaking = 0;
        ERR_clear_error();
    }
    return rc;
}

int stream_tls_server(struct stream *s, SSL_CTX *ctx)
{
    return stream_tls_start(s, ctx, 1, NULL, NULL, NULL);
}

int stream_tls_client(struct stream *s, SSL_CTX *ctx, const char *sni)
{
    return stream_tls_start(s, ctx, 0, sni, NULL, NULL);
}

int stream_tls_client_prepared(struct stream *s, SSL_CTX *ctx, const char *sni,
                               stream_tls_prepare_cb prepare, void *arg)
{
    return stream_tls_start(s, ctx, 0, sni, prepare, arg);
}

const char *stream_tls_version(const struct stream *s)
{
    return s->ssl != NULL ? SSL_get_version(s->ssl) : NULL;
}

const char *stream_tls_cipher(const struct stream *s)
{
    return s->ssl != NULL ? SSL_CIPHER_get_name(SSL_get_current_cipher(s->ssl)) : NULL;
}

/* ---- close ---- */

void stream_close(struct stream *s, stream_close_cb on_close)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->reading = 0;
    s->on_close = on_close;
    if (s->ssl != NULL && !s->tls_handshaking && !s->failed) {
        /* Best effort: queue close_notify without waiting for the peer's. uv_close cancels it if
         * earlier writes are still queued. */
        SSL_shutdown(s->ssl);
        tls_flush(s);
        ERR_clear_error();
    }
    uv_close((uv_handle_t *)&s->tcp, stream_on_closed);
}

/* libuv has cancelled every request by now; this is the stream's last callback. */
static void stream_on_closed(uv_handle_t *h)
{
    struct stream *s = stream_of(h);
    SSL_free(s->ssl); /* frees its end of the pair */
    BIO_free(s->net_bio);
    s->ssl = NULL;
    s->net_bio = NULL;
    buf_free(&s->held);
    if (s->on_close != NULL)
        s->on_close(s);
}
