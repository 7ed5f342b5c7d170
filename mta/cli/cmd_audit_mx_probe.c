/*
 * `sluice audit-mx`, one MX address seen from outside, over the blocking client of live_smtp.h:
 * the banner and EHLO capabilities; the certificate it shows after STARTTLS (handshake with
 * lib/tls.c's client context; subject, DNS names against the MX name, expiry); the relay battery
 * (the same attempts as `sluice relay-test HOST:PORT`); and RCPT to a random local part of the
 * domain, which a server that knows its users refuses. Three short connections, never DATA.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/tls.h"
#include "mta/cli/cmd_audit_mx.h"
#include "mta/relay_battery.h"

/* The EHLO reply's keywords (its first line is the greeting name); STARTTLS among them? */
static void read_caps(struct audit_probe *p, const char *lines)
{
    const char *line = strchr(lines, '\n');
    size_t len = 0;
    p->caps[0] = '\0';
    while (line != NULL && len + 1 < sizeof p->caps) {
        line++;
        size_t word = strcspn(line, " \n");
        int n = snprintf(p->caps + len, sizeof p->caps - len, "%s%.*s", len > 0 ? " " : "",
                         (int)word, line);
        len += n > 0 ? (size_t)n : 0;
        if (word == 8 && strncasecmp(line, "STARTTLS", 8) == 0)
            p->starttls = 1;
        line = strchr(line, '\n');
    }
}

static void describe_cert(struct audit_probe *p, X509 *leaf, const char *mx_host)
{
    char subject[256] = "?", until[64] = "?";
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
    BIO *mem = BIO_new(BIO_s_mem());
    if (ASN1_TIME_print(mem, X509_get0_notAfter(leaf)) > 0) {
        int n = BIO_read(mem, until, sizeof until - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    struct buf names = BUF_INIT;
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            buf_printf(&names, "%s%.*s", names.len > 0 ? "," : "", ASN1_STRING_length(g->d.dNSName),
                       (const char *)ASN1_STRING_get0_data(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    int days = 0, secs = 0;
    int expired =
        !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)) || days < 0 || secs < 0;
    snprintf(p->cert, sizeof p->cert, "%s, names %s (%s %s), %s %s", subject,
             names.len > 0 ? names.data : "none",
             X509_check_host(leaf, mx_host, 0, 0, NULL) == 1 ? "covers" : "does not cover", mx_host,
             expired ? "EXPIRED on" : "expires", until);
    buf_free(&names);
}

/* STARTTLS on an open connection (the EHLO said it is offered), then the handshake. */
static void fetch_cert(struct audit_probe *p, struct live *lv, const char *mx_host)
{
    struct buf err = BUF_INIT;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    if (live_cmd(lv, "STARTTLS") < 0 || lv->code != 220) {
        snprintf(p->cert, sizeof p->cert, "STARTTLS refused (%d %s)", lv->code, lv->text);
    } else if ((ctx = tls_client_ctx_new(&err)) == NULL || (ssl = SSL_new(ctx)) == NULL) {
        snprintf(p->cert, sizeof p->cert, "no TLS client: %.*s", (int)err.len, err.data);
    } else {
        SSL_set_fd(ssl, lv->fd);
        SSL_set_tlsext_host_name(ssl, mx_host);
        X509 *leaf = NULL;
        if (SSL_connect(ssl) != 1) {
            unsigned long e = ERR_get_error();
            snprintf(p->cert, sizeof p->cert, "TLS handshake failed: %s",
                     e != 0 ? ERR_reason_error_string(e) : "connection lost");
        } else if ((leaf = SSL_get1_peer_certificate(ssl)) == NULL) {
            snprintf(p->cert, sizeof p->cert, "no certificate shown");
        } else {
            describe_cert(p, leaf, mx_host);
            X509_free(leaf);
        }
        ERR_clear_error();
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    buf_free(&err);
}

/* RCPT to a local part nobody has: the reply code (0 when it could not be asked). */
static int unknown_recipient(struct live *lv, const char *domain)
{
    unsigned char r[6] = {0};
    char rcpt[RELAY_BATTERY_ARG_MAX], mail[RELAY_BATTERY_ARG_MAX];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return 0;
    snprintf(rcpt, sizeof rcpt, "RCPT TO:<no-such-user-%02x%02x%02x%02x%02x%02x@%s>", r[0], r[1],
             r[2], r[3], r[4], r[5], domain);
    snprintf(mail, sizeof mail, "MAIL FROM:<audit-mx@%s>", RELAY_BATTERY_FOREIGN);
    int reconnects = 0;
    const char *why;
    enum live_outcome out = live_attempt(lv, mail, rcpt, &reconnects, &why);
    int code = out == LIVE_UNTESTED ? 0 : lv->code;
    if (lv->fd >= 0)
        live_cmd(lv, "QUIT");
    live_close(lv);
    return code;
}

void audit_probe(const char *addr, const char *port, const char *mx_host, const char *domain,
                 const char *helo, int timeout_s, struct audit_probe *p)
{
    char target[INET6_ADDRSTRLEN + 24];
    snprintf(target, sizeof target, strchr(addr, ':') ? "[%s]:%s" : "%s:%s", addr, port);
    struct live lv = {.target = target, .helo = helo, .timeout_s = timeout_s, .fd = -1};
    *p = (struct audit_probe){.reachable = 0};
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    snprintf(p->cert, sizeof p->cert, "STARTTLS not offered");
    snprintf(lv.host, sizeof lv.host, "%s", addr);
    snprintf(lv.port, sizeof lv.port, "%s", port);
    if (live_open(&lv) < 0)
        return;
    p->reachable = 1;
    snprintf(p->banner, sizeof p->banner, "%s", lv.greeting);
    read_caps(p, lv.lines);
    if (p->starttls)
        fetch_cert(p, &lv, mx_host);
    live_close(&lv);

    live_battery(&lv, domain, NULL, NULL, &p->battery);
    p->unknown_code = unknown_recipient(&lv, domain);
}
