/*
 * A TCP connection with optional TLS behind one event callback. The SMTP server and client sessions
 * embed a struct stream and never see OpenSSL or libuv's read/write calls. TLS runs over memory
 * BIOs: ciphertext from the socket is fed to OpenSSL and plaintext comes out as STREAM_DATA events.
 *
 * Memory: reads land in one loop-wide scratch buffer, so data passed to STREAM_DATA is borrowed and
 * valid only during the callback; a session copies what it has not consumed. Nothing is allocated
 * per idle connection beyond the struct itself (and, once TLS is on, the SSL object and its BIO
 * pair, 2 x 4 KiB).
 */
#ifndef SLUICE_STREAM_H
#define SLUICE_STREAM_H

#include <stddef.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "lib/buf.h"

enum stream_event {
    STREAM_CONNECTED, /* stream_connect finished; status 0 or a negative libuv error */
    STREAM_DATA,      /* data/len hold plaintext; borrowed for the callback's duration */
    STREAM_TLS_READY, /* the TLS handshake finished (status 0) or failed (status < 0) */
    STREAM_DRAINED,   /* every queued write has reached the kernel */
    STREAM_EOF,       /* the peer closed its side */
    STREAM_ERROR,     /* status is a negative libuv error, or UV_EPROTO for a TLS failure */
};

struct stream;
typedef void (*stream_event_cb)(struct stream *s, enum stream_event ev, int status,
                                const char *data, size_t len);
typedef void (*stream_close_cb)(struct stream *s);

struct stream {
    uv_tcp_t tcp; /* embedded; tcp.data is reserved for stream.c */
    stream_event_cb on_event;
    stream_close_cb on_close;
    void *owner;          /* for the callbacks' use */
    SSL *ssl;             /* NULL in plaintext */
    BIO *net_bio;         /* the network side of the BIO pair; NULL in plaintext */
    size_t write_pending; /* bytes handed to libuv and not yet written */
    struct buf held;      /* plaintext decrypted while the owner was not reading; usually empty */
    unsigned reading : 1; /* the owner wants STREAM_DATA */
    unsigned tls_handshaking : 1;
    unsigned closing : 1;
    unsigned eof_seen : 1;     /* the peer closed its side (EOF may still wait behind held) */
    unsigned eof_reported : 1; /* STREAM_EOF was delivered */
    unsigned failed : 1;       /* STREAM_ERROR or a failed STREAM_TLS_READY was delivered */
    unsigned dispatching : 1;  /* inside stream.c's delivery loop (no nested delivery) */
};

/* Accepts a pending connection from `server` into s. Returns 0 or a negative libuv error (then the
 * stream must still be closed with stream_close). */
int stream_accept(uv_loop_t *loop, uv_stream_t *server, struct stream *s, stream_event_cb on_event,
                  void *owner);
/* Connects to dst, binding to src first when it is not NULL. STREAM_CONNECTED reports the result.
 * Returns 0 or a negative libuv error, in which case no event follows. Either way the stream is
 * closed with stream_close. */
int stream_connect(uv_loop_t *loop, struct stream *s, const struct sockaddr *dst,
                   const struct sockaddr *src, stream_event_cb on_event, void *owner);
/* stream_connect in two steps, for an owner that decides whether to connect later: the stream
 * without a connection (cannot fail; closed with stream_close either way), then the connection. */
void stream_prepare(uv_loop_t *loop, struct stream *s, stream_event_cb on_event, void *owner);
int stream_connect_prepared(struct stream *s, const struct sockaddr *dst,
                            const struct sockaddr *src);

/* Start/stop STREAM_DATA (and STREAM_EOF). Each STREAM_DATA carries a whole chunk; an owner that
 * stops reading inside the callback keeps what it has not consumed itself. Plaintext decrypted
 * after the stop is held by the stream, and stream_read_start delivers it before returning unless
 * it is called from inside one of this stream's callbacks (then it follows when that returns).
 * Both do nothing once the stream is closing or has failed. */
int stream_read_start(struct stream *s);
void stream_read_stop(struct stream *s);

/* Queues len bytes (copied; encrypted first when TLS is on). Returns 0 or a negative libuv error
 * (UV_EAGAIN while a TLS handshake runs, UV_EPIPE once closing or failed). */
int stream_write(struct stream *s, const char *data, size_t len);

/* Starts TLS as the server (STARTTLS after its 220 has been queued, or at once for implicit TLS) or
 * as the client (sni may be NULL). Writes queued before the call go out in clear; everything read
 * from now on goes through TLS. STREAM_TLS_READY reports the handshake; no STREAM_DATA comes
 * before it. Returns 0 or a negative libuv error (UV_ENOMEM, UV_EALREADY when TLS is already on,
 * UV_EPROTO when OpenSSL cannot start), in which case no event follows. */
int stream_tls_server(struct stream *s, SSL_CTX *ctx);
int stream_tls_client(struct stream *s, SSL_CTX *ctx, const char *sni);
/* stream_tls_client with prepare(ssl, arg) called on the new SSL before the ClientHello is made
 * (certificate checks such as DANE are set there); a negative return fails the start with
 * UV_EPROTO. */
typedef int (*stream_tls_prepare_cb)(SSL *ssl, void *arg);
int stream_tls_client_prepared(struct stream *s, SSL_CTX *ctx, const char *sni,
                               stream_tls_prepare_cb prepare, void *arg);

/* "TLSv1.3", cipher name, or NULL in plaintext. */
const char *stream_tls_version(const struct stream *s);
const char *stream_tls_cipher(const struct stream *s);

/* Closes the socket (sending a TLS close_notify first when possible); on_close runs once, from
 * libuv's close callback, after which the memory holding s may be freed. Safe to call twice. */
void stream_close(struct stream *s, stream_close_cb on_close);

#endif
