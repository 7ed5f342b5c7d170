/*
 * `sluice doctor`, the TLS certificate: whether the chain and key load as the daemon loads them,
 * whether the chain verifies to a trusted root (the system's store; SSL_CERT_FILE and SSL_CERT_DIR
 * apply), whether its names cover server.hostname, and how long it stays valid. The files are read
 * and the chain verified on the thread pool; the rows are added on the loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/tls.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"

/* Less than this many days left is a warning. */
#define TLS_EXPIRY_WARN_DAYS 14

enum { ITEM_CHAIN, ITEM_NAMES, ITEM_EXPIRY, ITEM_COUNT };

static const char *const item_checks[ITEM_COUNT] = {"tls-chain", "tls-names", "tls-expiry"};

struct tls_work {
    uv_work_t req;
    struct doctor *d;
    const char *cert, *key, *hostname; /* the configuration's */
    size_t nrows;                      /* filled by the work */
    enum doctor_status status[ITEM_COUNT];
    char found[ITEM_COUNT][600];
    char fix[ITEM_COUNT][400];
};

static void tls_set(struct tls_work *w, int item, enum doctor_status status, const char *fix,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void tls_set(struct tls_work *w, int item, enum doctor_status status, const char *fix,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->found[item], sizeof w->found[item], fmt, ap);
    va_end(ap);
    snprintf(w->fix[item], sizeof w->fix[item], "%s", fix != NULL ? fix : "");
    w->status[item] = status;
    if ((size_t)item + 1 > w->nrows)
        w->nrows = (size_t)item + 1;
}

/* The chain as the file holds it, leaf first; NULL when it holds none. */
static STACK_OF(X509) * chain_read(const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    if (in == NULL)
        return NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x;
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
        sk_X509_push(chain, x);
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(in);
    if (sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        return NULL;
    }
    return chain;
}

/* Does the chain lead to a root the system trusts? Time is judged apart (tls-expiry). */
static void judge_trust(struct tls_work *w, STACK_OF(X509) * chain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_set_default_paths(store);
    X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) == 1)
        tls_set(w, ITEM_CHAIN, DOCTOR_PASS, NULL,
                "%d certificate(s) and the key load; the chain verifies to a trusted root",
                sk_X509_num(chain));
    else
        tls_set(w, ITEM_CHAIN, DOCTOR_WARN,
                "use a certificate from a public CA (Let's Encrypt, ...) with its intermediates "
                "in the file after it; MTA-STS and DANE senders refuse others",
                "the chain does not verify: %s",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

static void judge_names(struct tls_work *w, X509 *leaf)
{
    if (X509_check_host(leaf, w->hostname, 0, 0, NULL) == 1) {
        tls_set(w, ITEM_NAMES, DOCTOR_PASS, NULL, "covers %s", w->hostname);
        return;
    }
    struct buf names = BUF_INIT;
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            buf_printf(&names, "%s%.*s", names.len > 0 ? ", " : "",
                       ASN1_STRING_length(g->d.dNSName),
                       (const char *)ASN1_STRING_get0_data(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    char fix[300];
    snprintf(fix, sizeof fix, "get a certificate for %s (server.hostname, the name in EHLO)",
             w->hostname);
    tls_set(w, ITEM_NAMES, DOCTOR_FAIL, fix, "does not cover %s (DNS names: %s)", w->hostname,
            names.len > 0 ? names.data : "none");
    buf_free(&names);
}

static void judge_expiry(struct tls_work *w, X509 *leaf)
{
    int days = 0, secs = 0;
    const char *renew = "renew the certificate (and automate renewal)";
    char until[64] = "?";
    BIO *mem = BIO_new(BIO_s_mem());
    if (ASN1_TIME_print(mem, X509_get0_notAfter(leaf)) > 0) {
        int n = BIO_read(mem, until, sizeof until - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        tls_set(w, ITEM_EXPIRY, DOCTOR_FAIL, "check the system clock, or the certificate's dates",
                "not valid yet");
    } else if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf))) {
        tls_set(w, ITEM_EXPIRY, DOCTOR_FAIL, renew, "unreadable expiry date");
    } else if (days < 0 || secs < 0 || (days == 0 && secs == 0)) {
        tls_set(w, ITEM_EXPIRY, DOCTOR_FAIL, renew, "expired on %s", until);
    } else if (days < TLS_EXPIRY_WARN_DAYS) {
        tls_set(w, ITEM_EXPIRY, DOCTOR_WARN, renew, "expires in %d day(s), on %s", days, until);
    } else {
        tls_set(w, ITEM_EXPIRY, DOCTOR_PASS, NULL, "valid until %s (%d days)", until, days);
    }
}

static void tls_on_work(uv_work_t *req)
{
    struct tls_work *w = container_of(req, struct tls_work, req);
    struct buf err = BUF_INIT;
    SSL_CTX *ctx = tls_server_ctx_new(w->cert, w->key, &err);
    STACK_OF(X509) *chain = ctx != NULL ? chain_read(w->cert) : NULL;
    if (ctx == NULL || chain == NULL) {
        tls_set(w, ITEM_CHAIN, DOCTOR_FAIL,
                "give tls.certificate a PEM chain (leaf first) and tls.key its private key",
                "does not load: %.*s", (int)err.len, err.len > 0 ? err.data : "no certificate");
    } else {
        judge_trust(w, chain);
        judge_names(w, sk_X509_value(chain, 0));
        judge_expiry(w, sk_X509_value(chain, 0));
    }
    sk_X509_pop_free(chain, X509_free);
    SSL_CTX_free(ctx);
    buf_free(&err);
}

static void tls_on_done(uv_work_t *req, int status)
{
    struct tls_work *w = container_of(req, struct tls_work, req);
    (void)status; /* never cancelled */
    for (size_t i = 0; i < w->nrows; i++)
        doctor_add(w->d, DOCTOR_ORDER(DOCTOR_AREA_TLS, 0, i), w->status[i], item_checks[i], w->cert,
                   w->found[i], w->fix[i][0] != '\0' ? w->fix[i] : NULL);
    doctor_end(w->d);
    free(w);
}

void doctor_tls_start(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    if (cfg->tls.certificate == NULL) {
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_TLS, 0, 0), DOCTOR_WARN, "tls-chain", "(none)",
                   "no tls.certificate: STARTTLS is not offered, mail to us travels in clear",
                   "set tls.certificate and tls.key");
        return;
    }
    struct tls_work *w = xcalloc(1, sizeof *w);
    w->d = d;
    w->cert = cfg->tls.certificate;
    w->key = cfg->tls.key;
    w->hostname = cfg->server.hostname;
    doctor_begin(d);
    int rc = uv_queue_work(d->loop, &w->req, tls_on_work, tls_on_done);
    if (rc < 0) {
        tls_set(w, ITEM_CHAIN, DOCTOR_WARN, NULL, "not checked: %s", uv_strerror(rc));
        tls_on_done(&w->req, rc);
    }
}
