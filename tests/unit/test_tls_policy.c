/* Outbound TLS policy: the shaping `tls:` modes as configured and the levels they give, what is
 * enforced, and the certificate name and trust set up on the client's SSL. The handshakes
 * themselves (good, expired, wrong-name and self-signed certificates) are tested against real
 * peers in tests/integration/test_tls_policy.py. */
#include <string.h>

#include <openssl/x509v3.h>

#include "lib/config.h"
#include "lib/tls.h"
#include "mta/delivery/mta_sts_policy.h"
#include "mta/delivery/tls_policy.h"
#include "tests/unit/check.h"

/* shaping.default.tls: mode → the enum and the level without a published policy. */
static void test_modes(void)
{
    static const struct {
        const char *mode;
        enum shaping_tls tls;
        enum tls_policy_level level;
    } cases[] = {
        {"opportunistic", SHAPING_TLS_OPPORTUNISTIC, TLS_POLICY_MAY},
        {"required", SHAPING_TLS_REQUIRED, TLS_POLICY_VERIFY},
        {"none", SHAPING_TLS_NONE, TLS_POLICY_NONE},
        {"dane", SHAPING_TLS_DANE, TLS_POLICY_MAY},
        {"mta-sts", SHAPING_TLS_MTA_STS, TLS_POLICY_MAY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "shaping:\n  default:\n    tls: %s\n", cases[i].mode);
        struct buf err = BUF_INIT;
        struct config *cfg = NULL;
        CHECK_INT_EQ(config_load_string(text, strlen(text), "t.yaml", &cfg, &err), 0);
        if (cfg == NULL) {
            fprintf(stderr, "%s: %.*s\n", cases[i].mode, (int)err.len, err.data);
            buf_free(&err);
            continue;
        }
        CHECK_INT_EQ(cfg->shaping.defaults.tls, cases[i].tls);
        struct tls_policy p = tls_policy_for_mode(cfg->shaping.defaults.tls);
        CHECK_INT_EQ(p.level, cases[i].level);
        CHECK_INT_EQ(p.testing, 0);
        CHECK_STR_EQ(p.source, "shaping");
        config_unref(cfg);
        buf_free(&err);
    }
}

static void test_bad_mode_and_ca_file(void)
{
    const char *bad = "shaping:\n  default:\n    tls: strict\n";
    struct buf err = BUF_INIT;
    struct config *cfg = NULL;
    CHECK(config_load_string(bad, strlen(bad), "t.yaml", &cfg, &err) < 0);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, "t.yaml:3:10: shaping.default.tls: 'strict' is not one of: "
                           "opportunistic, required, none, dane, mta-sts") != NULL);
    buf_reset(&err);

    const char *ca = "tls:\n  ca_file: /etc/sluice/ca.pem\n";
    CHECK_INT_EQ(config_load_string(ca, strlen(ca), "t.yaml", &cfg, &err), 0);
    if (cfg != NULL) {
        CHECK_STR_EQ(cfg->tls.ca_file, "/etc/sluice/ca.pem");
        config_unref(cfg);
    }
    buf_free(&err);
}

static void test_enforced(void)
{
    struct tls_policy p = {.level = TLS_POLICY_VERIFY};
    CHECK_INT_EQ(tls_policy_enforced(&p), 1);
    p.testing = 1;
    CHECK_INT_EQ(tls_policy_enforced(&p), 0);
    p = tls_policy_for_mode(SHAPING_TLS_OPPORTUNISTIC);
    CHECK_INT_EQ(tls_policy_enforced(&p), 0);
    p = tls_policy_for_mode(SHAPING_TLS_NONE);
    CHECK_INT_EQ(tls_policy_enforced(&p), 0);
}

/* With mode mta-sts (or dane), the receiver's MTA-STS policy decides; other modes ignore it. */
static void test_for_mx(void)
{
    struct mta_sts_policy sts;
    struct buf err = BUF_INIT;
    const char *t = "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 60\n";
    CHECK_INT_EQ(mta_sts_policy_parse(t, strlen(t), &sts, &err), 0);

    struct tls_policy p = tls_policy_for_mx(SHAPING_TLS_MTA_STS, &sts, "mx1.example.net.");
    CHECK_INT_EQ(p.level, TLS_POLICY_VERIFY);
    CHECK_INT_EQ(p.testing, 0);
    CHECK_INT_EQ(p.mx_mismatch, 0);
    CHECK_STR_EQ(p.source, "mta-sts");
    CHECK_INT_EQ(tls_policy_enforced(&p), 1);
    p = tls_policy_for_mx(SHAPING_TLS_DANE, &sts, "mx.elsewhere.test");
    CHECK_INT_EQ(p.level, TLS_POLICY_VERIFY);
    CHECK_INT_EQ(p.mx_mismatch, 1);

    sts.mode = MTA_STS_MODE_TESTING;
    p = tls_policy_for_mx(SHAPING_TLS_MTA_STS, &sts, "mx.elsewhere.test");
    CHECK_INT_EQ(p.level, TLS_POLICY_VERIFY);
    CHECK_INT_EQ(p.testing, 1);
    CHECK_INT_EQ(p.mx_mismatch, 1);
    CHECK_INT_EQ(tls_policy_enforced(&p), 0);

    sts.mode = MTA_STS_MODE_NONE;
    p = tls_policy_for_mx(SHAPING_TLS_MTA_STS, &sts, "mx.elsewhere.test");
    CHECK_INT_EQ(p.level, TLS_POLICY_MAY);
    CHECK_INT_EQ(p.mx_mismatch, 0);

    /* Other modes: the shaping rule alone. */
    sts.mode = MTA_STS_MODE_ENFORCE;
    p = tls_policy_for_mx(SHAPING_TLS_OPPORTUNISTIC, &sts, "mx.elsewhere.test");
    CHECK_INT_EQ(p.level, TLS_POLICY_MAY);
    CHECK_STR_EQ(p.source, "shaping");
    p = tls_policy_for_mx(SHAPING_TLS_NONE, &sts, "mx1.example.net");
    CHECK_INT_EQ(p.level, TLS_POLICY_NONE);
    p = tls_policy_for_mx(SHAPING_TLS_MTA_STS, NULL, "mx1.example.net");
    CHECK_INT_EQ(p.level, TLS_POLICY_MAY);

    /* Which sessions mail under another policy may ride on. */
    struct tls_policy enforce = tls_policy_for_mx(SHAPING_TLS_MTA_STS, &sts, "mx1.example.net");
    struct tls_policy unlisted = tls_policy_for_mx(SHAPING_TLS_MTA_STS, &sts, "mx.other.test");
    struct tls_policy may = tls_policy_for_mode(SHAPING_TLS_OPPORTUNISTIC);
    struct tls_policy required = tls_policy_for_mode(SHAPING_TLS_REQUIRED);
    struct tls_policy testing = enforce;
    testing.testing = 1;
    CHECK_INT_EQ(tls_policy_covers(&may, &may), 1);
    CHECK_INT_EQ(tls_policy_covers(&may, &testing), 1);
    CHECK_INT_EQ(tls_policy_covers(&enforce, &may), 1);
    CHECK_INT_EQ(tls_policy_covers(&may, &enforce), 0);
    CHECK_INT_EQ(tls_policy_covers(&testing, &enforce), 0);
    CHECK_INT_EQ(tls_policy_covers(&required, &enforce), 1);
    CHECK_INT_EQ(tls_policy_covers(&enforce, &unlisted), 0);
    mta_sts_policy_free(&sts);
    buf_free(&err);
}

/* The name checked is the MX host's without its trailing dot; nothing is checked at MAY. */
static void test_ssl_prepare_and_check(SSL_CTX *ctx)
{
    struct tls_policy verify = tls_policy_for_mode(SHAPING_TLS_REQUIRED);
    struct tls_policy may = tls_policy_for_mode(SHAPING_TLS_OPPORTUNISTIC);
    struct buf err = BUF_INIT;

    SSL *ssl = SSL_new(ctx);
    CHECK_INT_EQ(tls_policy_ssl_prepare(&verify, ssl, "MX1.Example.NET.", &err), 0);
    const char *host = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
    CHECK(host != NULL);
    if (host != NULL)
        CHECK_STR_EQ(host, "MX1.Example.NET");
    /* No handshake, so no certificate: not met. */
    CHECK_INT_EQ(tls_policy_ssl_check(&verify, ssl, &err), -1);
    buf_append(&err, "", 1);
    CHECK_STR_EQ(err.data, "the server sent no certificate");
    buf_reset(&err);
    CHECK_INT_EQ(tls_policy_ssl_check(&may, ssl, &err), 0);
    SSL_free(ssl);

    ssl = SSL_new(ctx);
    CHECK_INT_EQ(tls_policy_ssl_prepare(&may, ssl, "mx1.example.net", &err), 0);
    CHECK(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0) == NULL);
    CHECK_INT_EQ(tls_policy_ssl_prepare(&verify, ssl, ".", &err), -1);
    CHECK_INT_EQ(err.len > 0, 1);
    SSL_free(ssl);
    buf_free(&err);
}

static void test_ctx_trust(SSL_CTX *ctx)
{
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(tls_policy_ctx_trust(ctx, "/nonexistent/sluice-ca.pem", &err), -1);
    buf_append(&err, "", 1);
    CHECK(strncmp(err.data, "/nonexistent/sluice-ca.pem: cannot load CA certificates", 55) == 0);
    buf_reset(&err);
    CHECK_INT_EQ(tls_policy_ctx_trust(ctx, NULL, &err), 0);
    buf_free(&err);
}

int main(void)
{
    test_modes();
    test_bad_mode_and_ca_file();
    test_enforced();
    test_for_mx();
    struct buf err = BUF_INIT;
    SSL_CTX *ctx = tls_client_ctx_new(&err);
    CHECK(ctx != NULL);
    if (ctx != NULL) {
        test_ssl_prepare_and_check(ctx);
        test_ctx_trust(ctx);
        SSL_CTX_free(ctx);
    }
    buf_free(&err);
    return check_report("test_tls_policy");
}
