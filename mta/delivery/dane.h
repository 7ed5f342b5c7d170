/*
 * DANE for outbound SMTP (RFC 7672). Before the client connects to an MX host whose addresses
 * were DNSSEC-validated, it asks for the host's TLSA records (_25._tcp.<host>) through the daemon's
 * resolver, believing the resolver's AD bit only when every server of dns.servers is on loopback.
 * Usable records (DANE-TA(2), DANE-EE(3)) make TLS mandatory and the peer's certificate must match
 * one of them (OpenSSL's DANE verification); a failed lookup defers. The SMTP client owns one
 * dane_peer per connection; the scheduler owns the daemon-wide struct dane.
 */
#ifndef SLUICE_DANE_H
#define SLUICE_DANE_H

#include <openssl/ssl.h>

#include <stddef.h>

#include "lib/buf.h"
#include "lib/dns.h"

/* What the TLSA lookup says about a connection to one MX host. */
enum dane_mode {
    DANE_NONE,    /* no authenticated TLSA records: the destination's other TLS policy applies */
    DANE_VERIFY,  /* usable records: STARTTLS mandatory, the certificate must match one */
    DANE_ENCRYPT, /* authenticated records, none usable (RFC 7672 §2.2): STARTTLS mandatory */
    DANE_DEFER,   /* the lookup failed (SERVFAIL, which is also DNSSEC-bogus): do not deliver */
};

struct dane;
struct dane_peer;

/* The daemon-wide DANE state: the resolver and the client context, on which DANE is enabled here
 * (SSL_CTX_dane_enable; harmless for connections without TLSA records). Neither is owned; both
 * must outlive the struct. Returns NULL (and logs) when OpenSSL cannot enable DANE. */
struct dane *dane_new(struct dns_resolver *dns, SSL_CTX *client_ctx);
void dane_free(struct dane *d);

/* (mode, why): why says what the lookup found, for logs and defer reasons; valid during the call.
 */
typedef void (*dane_peer_cb)(void *arg, enum dane_mode mode, const char *why);

/* Starts the TLSA lookup for a connection to `host` (an MX host name). `expanded` (or NULL) is
 * the end of host's validated CNAME chain (dns_mx_host.canonical): its records are asked first,
 * then host's when it has none (RFC 7672 §2.2.2). Returns NULL when DANE does not apply, without
 * calling back: d is NULL, host is an address literal, or the resolvers are not all on loopback
 * (dane.off is logged the first time). Otherwise cb follows once, from the loop, unless the peer
 * is freed first. */
struct dane_peer *dane_peer_new(struct dane *d, const char *host, const char *expanded,
                                dane_peer_cb cb, void *arg);
/* Frees the peer; a lookup still in flight finishes without calling back. NULL is allowed. */
void dane_peer_free(struct dane_peer *p);

/* The TLSA base domain once cb ran: the name whose TLSA records decided (the host or the end of
 * its CNAME chain); the server name to send (SNI, RFC 7672 §8.1). Valid while p lives. */
const char *dane_peer_base(const struct dane_peer *p);

/* On a new client SSL, before its handshake (mode DANE_VERIFY; `peer` is the struct dane_peer, so
 * this is a stream_tls_prepare_cb): the reference names for DANE-TA(2) (the TLSA base domain, the
 * MX host name, the target of a TLSA CNAME) and each usable record. Returns 0, or -1 when OpenSSL
 * takes none of the records (then the peer cannot be authenticated). */
int dane_peer_ssl_prepare(SSL *ssl, void *peer);
/* After the handshake: 0 when a TLSA record authenticated the peer's chain, else -1 with the
 * reason in why[size]. */
int dane_peer_ssl_check(const struct dane_peer *p, SSL *ssl, char *why, size_t size);

/* The usable records, one "usage selector mtype hex-data" line each ('\n'-separated; the TLS
 * report's policy strings), appended to out. p may be NULL (nothing). */
void dane_peer_tlsa_text(const struct dane_peer *p, struct buf *out);

/* 1 for the modes in which the connection must not go on without TLS (RFC 7672 §2.2). */
int dane_mode_requires_tls(enum dane_mode m);

/* "none", "verify", "encrypt", "defer". */
const char *dane_mode_name(enum dane_mode m);

#endif
