/*
 * `sluice dkim keygen` writes a new signing key and prints the TXT record to publish;
 * `sluice dkim check` looks every configured selector up in DNS (lib/dns, so dns.servers applies)
 * and says whether the published public key is the one of the configured private key.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>
#include <uv.h>

#include "lib/dns.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_dkim.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "mta/dkim/dkim.h"
#include "mta/run_user.h"

/* ---- keygen ---- */

/* The algorithm called name, or a usage error naming the one probably meant. */
static int keygen_algorithm(const char *name, enum dkim_alg *alg)
{
    static const char *const names[] = {"rsa-sha256", "ed25519-sha256"};
    if (dkim_alg_parse(name, alg) == 0)
        return 0;
    const char *hint = command_suggest(name, names, ARRAY_LEN(names));
    if (hint != NULL)
        return command_usage_error("dkim keygen", "unknown algorithm '%s' (did you mean %s?)", name,
                                   hint);
    return command_usage_error("dkim keygen",
                               "unknown algorithm '%s' (rsa-sha256 or "
                               "ed25519-sha256)",
                               name);
}

/* Who may read a key root makes: the group of the user the daemon of config_path (NULL: the
 * embedded default) becomes, which reads the key again at every reload. Not root: the caller
 * alone. Returns 0, or -1 after printing why. */
static int keygen_group(const char *config_path, gid_t *group)
{
    *group = DKIM_KEY_OWNER_ONLY;
    if (geteuid() != 0)
        return 0;
    struct buf err = BUF_INIT;
    struct config *cfg = config_load_ungated(config_path, &err);
    struct run_user u;
    if (cfg == NULL) {
        fprintf(stderr, "%.*s", (int)err.len, err.data);
    } else if (run_user_resolve(cfg->server.user, &u) < 0) {
        fprintf(stderr,
                "sluice dkim keygen: no user '%s' to read the key: the key is root's alone "
                "(give it to the daemon's group: chgrp GROUP FILE; chmod 640 FILE)\n",
                cfg->server.user != NULL ? cfg->server.user : RUN_USER_DEFAULT);
    } else {
        if (u.change)
            *group = u.gid;
        run_user_free(&u);
    }
    int rc = cfg == NULL ? -1 : 0;
    config_unref(cfg);
    buf_free(&err);
    return rc;
}

static int dkim_keygen(int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *algorithm = "rsa-sha256", *out = NULL;
    const char *bits_text = NULL, *config_path = NULL;
    const struct command_option opts[] = {
        {"--domain", NULL, &domain, NULL},
        {"--selector", NULL, &selector, NULL},
        {"--algorithm", NULL, &algorithm, NULL},
        {"--bits", NULL, &bits_text, NULL},
        {"--out", NULL, &out, NULL},
        {"--config", "-c", &config_path, NULL},
    };
    if (command_parse("dkim keygen", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;
    if (domain == NULL || selector == NULL)
        return command_usage_error("dkim keygen", "missing %s",
                                   domain == NULL ? "--domain" : "--selector");
    enum dkim_alg alg;
    if (keygen_algorithm(algorithm, &alg) != 0)
        return 2;
    long bits = 0; /* the default size */
    if (bits_text != NULL) {
        char *end;
        bits = strtol(bits_text, &end, 10);
        if (!isdigit((unsigned char)bits_text[0]) || *end != '\0')
            return command_usage_error("dkim keygen", "--bits: '%s' is not a whole number",
                                       bits_text);
        if (bits > DKIM_RSA_MAX_BITS)
            return command_usage_error("dkim keygen", "--bits: %s is more than %d", bits_text,
                                       DKIM_RSA_MAX_BITS);
        if (alg == DKIM_ALG_RSA_SHA256 && bits < DKIM_RSA_NEW_MIN_BITS)
            return command_usage_error("dkim keygen",
                                       "--bits: %s is less than %d, the least for a new RSA key "
                                       "(RFC 8301)",
                                       bits_text, DKIM_RSA_NEW_MIN_BITS);
    }

    gid_t group;
    if (keygen_group(config_path, &group) < 0)
        return 1;
    struct buf path = BUF_INIT, record = BUF_INIT, err = BUF_INIT;
    if (out != NULL)
        buf_printf(&path, "%s", out);
    else
        buf_printf(&path, "%s.%s.key", selector, domain);
    int rc = dkim_key_generate(path.data, alg, (int)bits, domain, selector, group, &record, &err);
    if (rc == 0) {
        fprintf(stderr, "private key written to %s; publish this record:\n", path.data);
        printf("%.*s", (int)record.len, record.data);
    } else {
        fprintf(stderr, "sluice dkim keygen: %.*s\n", (int)err.len, err.data);
    }
    buf_free(&path);
    buf_free(&record);
    buf_free(&err);
    return rc == 0 ? 0 : 1;
}

/* ---- check ---- */

/* Judges the TXT records of one selector against our public key. */
static void check_records(struct dkim_selector_check *c, const struct dns_txt *txts, size_t ntxts)
{
    const char *want_k = c->entry->key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
    struct buf p = BUF_INIT, k = BUF_INIT;

    c->verdict = DKIM_SELECTOR_MISSING;
    buf_printf(&c->detail, "no DKIM key record");
    for (size_t i = 0; i < ntxts && c->verdict != DKIM_SELECTOR_MATCH; i++) {
        buf_reset(&p);
        buf_reset(&k);
        if (!dkim_record_tag(txts[i].data, txts[i].len, "p", &p))
            continue;
        if (!dkim_record_tag(txts[i].data, txts[i].len, "k", &k))
            buf_printf(&k, "rsa"); /* RFC 6376 §3.6.1: the default */
        buf_reset(&c->detail);
        c->verdict = DKIM_SELECTOR_MISMATCH;
        if (p.len == 0)
            buf_printf(&c->detail, "the published key is revoked (empty p=)");
        else if (strncmp(k.data, want_k, k.len) != 0 || strlen(want_k) != k.len)
            buf_printf(&c->detail, "published k=%.*s, the key is %s", (int)k.len, k.data, want_k);
        else if (p.len != strlen(c->public_key) || memcmp(p.data, c->public_key, p.len) != 0)
            buf_printf(&c->detail, "the published public key is not that of %s",
                       c->entry->key->path);
        else
            c->verdict = DKIM_SELECTOR_MATCH;
    }
    buf_free(&p);
    buf_free(&k);
}

static void check_on_txt(void *arg, enum dns_status status, const struct dns_txt *txts,
                         size_t ntxts)
{
    struct dkim_selector_check *c = arg;

    if (status == DNS_OK) {
        check_records(c, txts, ntxts);
    } else if (status == DNS_NXDOMAIN || status == DNS_NODATA) {
        c->verdict = DKIM_SELECTOR_MISSING;
        buf_printf(&c->detail, "%s", dns_status_name(status));
    } else {
        c->verdict = DKIM_SELECTOR_DNS_ERROR;
        buf_printf(&c->detail, "%s", dns_status_name(status));
    }
    c->cb(c, c->arg);
}

int dkim_selector_check_init(struct dkim_selector_check *c, const struct dkim_entry *e,
                             struct buf *err)
{
    *c = (struct dkim_selector_check){.entry = e, .detail = BUF_INIT};
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s._domainkey.%s", e->selector, e->signing_domain);
    c->name = name.data;
    c->public_key = dkim_key_public(e->key, err);
    return c->public_key != NULL ? 0 : -1;
}

int dkim_selector_check_start(struct dkim_selector_check *c, struct dns_resolver *r,
                              dkim_selector_cb cb, void *arg)
{
    c->cb = cb;
    c->arg = arg;
    int rc = dns_resolve_txt(r, c->name, check_on_txt, c);
    if (rc < 0) {
        c->verdict = DKIM_SELECTOR_DNS_ERROR;
        buf_printf(&c->detail, "lookup not started");
    }
    return rc;
}

void dkim_selector_check_close(struct dkim_selector_check *c)
{
    free(c->public_key);
    free(c->name);
    buf_free(&c->detail);
}

const char *dkim_selector_verdict_word(enum dkim_selector_verdict v)
{
    switch (v) {
    case DKIM_SELECTOR_MATCH:
        return "match";
    case DKIM_SELECTOR_MISMATCH:
        return "mismatch";
    case DKIM_SELECTOR_MISSING:
        return "not published";
    default:
        return "DNS error";
    }
}

static void check_on_done(struct dkim_selector_check *c, void *arg)
{
    (void)c;
    (*(size_t *)arg)--;
}

/* Resolves every selector on a private loop; returns how many did not match, or -1. */
static int check_all(const struct config *cfg, struct dkim_selector_check *checks, size_t n)
{
    uv_loop_t loop;
    int err = 0, mismatches = 0;
    size_t pending = 0;

    uv_loop_init(&loop);
    struct dns_resolver *r =
        dns_resolver_new(&loop, (const char *const *)cfg->dns.servers, cfg->dns.nservers,
                         (unsigned)cfg->dns.timeout_ms, &err);
    if (r == NULL) {
        fprintf(stderr, "sluice dkim check: cannot start the resolver: %s\n", strerror(-err));
        uv_loop_close(&loop);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (dkim_selector_check_start(&checks[i], r, check_on_done, &pending) == 0)
            pending++;
    /* Each question is bounded by dns.timeout_ms, so the loop ends. */
    while (pending > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    dns_resolver_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    for (size_t i = 0; i < n; i++) {
        const struct dkim_entry *e = checks[i].entry;
        printf("%s s=%s d=%s (%s): %s", e->domain, e->selector, e->signing_domain,
               dkim_alg_name(e->key->alg), dkim_selector_verdict_word(checks[i].verdict));
        if (checks[i].verdict != DKIM_SELECTOR_MATCH)
            printf(": %.*s", (int)checks[i].detail.len, checks[i].detail.data);
        printf("\n");
        mismatches += checks[i].verdict != DKIM_SELECTOR_MATCH;
    }
    return mismatches;
}

static int dkim_check(int argc, char **argv)
{
    const char *path = NULL;
    const struct command_option opts[] = {{"--config", "-c", &path, NULL}};
    if (command_parse("dkim check", argc, argv, opts, ARRAY_LEN(opts), NULL, 0, NULL) != 0)
        return 2;

    struct buf err = BUF_INIT;
    struct dkim_signer_set *set = NULL;
    struct config *cfg = config_load_with_signers(path, &set, NULL, &err);
    if (cfg == NULL)
        return command_failed(&err);
    size_t n = dkim_signer_set_count(set);
    struct dkim_selector_check *checks = xcalloc(n > 0 ? n : 1, sizeof(*checks));
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (dkim_selector_check_init(&checks[i], dkim_signer_set_entry(set, i), &err) < 0)
            rc = -1;
    if (rc < 0)
        fprintf(stderr, "sluice dkim check: %.*s\n", (int)err.len, err.data);
    else if (n == 0)
        printf("no dkim entries configured\n");
    else
        rc = check_all(cfg, checks, n);

    for (size_t i = 0; i < n; i++)
        dkim_selector_check_close(&checks[i]);
    free(checks);
    dkim_signer_set_unref(set);
    config_unref(cfg);
    buf_free(&err);
    return rc == 0 ? 0 : 1;
}

int cmd_dkim(int argc, char **argv)
{
    static const char *const verbs[] = {"keygen", "check"};
    if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
        return dkim_keygen(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "check") == 0)
        return dkim_check(argc - 1, argv + 1);
    if (argc == 0 || argv[0][0] == '-')
        return command_usage_error("dkim", "missing dkim verb (keygen or check)");
    const char *hint = command_suggest(argv[0], verbs, ARRAY_LEN(verbs));
    if (hint != NULL)
        return command_usage_error("dkim", "unknown dkim verb '%s' (did you mean %s?)", argv[0],
                                   hint);
    return command_usage_error("dkim", "unknown dkim verb '%s' (keygen or check)", argv[0]);
}
