/*
 * DKIM: key files (load checks, keygen, DNS record) and signing through the streaming signer,
 * each signed message checked by an independent verifier (python3-dkim via dkim_verify.py, which
 * reads the public key from the record keygen printed). Tampered messages must fail there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "check.h"
#include "lib/buf.h"
#include "mta/dkim/dkim.h"
#include "mta/config_load.h"
#include "mta/dkim/dkim_key.h"

static char tmpdir[64];
static uv_loop_t loop;

static char *path_in_tmp(const char *name)
{
    static char paths[16][128];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
    chmod(path, mode);
}

/* Generates a key with dkim_key_generate and stores its DNS record in `<name>.txt`. */
static void keygen(const char *name, enum dkim_alg alg, int bits, const char *domain,
                   const char *selector)
{
    struct buf record = BUF_INIT, err = BUF_INIT;
    char key[128], txt[128];
    snprintf(key, sizeof(key), "%s/%s.pem", tmpdir, name);
    snprintf(txt, sizeof(txt), "%s/%s.txt", tmpdir, name);
    int rc =
        dkim_key_generate(key, alg, bits, domain, selector, DKIM_KEY_OWNER_ONLY, &record, &err);
    CHECK_INT_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "keygen: %.*s\n", (int)err.len, err.data);
    write_file(txt, record.data, record.len, 0644);
    buf_free(&record);
    buf_free(&err);
}

/* Runs dkim_verify.py on `msg`; returns its exit status (0: all `nsig` signatures valid). */
static int verify(const char *msg, size_t len, int nsig, const char *rec1, const char *rec2)
{
    const char *script = SLUICE_TEST_SUPPORT_DIR "/dkim_verify.py";
    char count[16];
    const char *msgpath = path_in_tmp("message.eml");
    snprintf(count, sizeof(count), "%d", nsig);
    write_file(msgpath, msg, len, 0644);

    pid_t pid = fork();
    if (pid == 0) {
        execl("/usr/bin/python3", "python3", script, msgpath, count, rec1, rec2, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ------------------------------------------------------------------------------------------ */
/* Driving a dkim_stream to completion on the loop */

struct outcome {
    int done;
    int status;
    int signatures;
    struct buf headers;
    char error[512];
    char from_domain[256];
    int writable;
};

static void on_writable(void *arg)
{
    ((struct outcome *)arg)->writable = 1;
}

static void on_done(struct dkim_stream *s, const struct dkim_result *res, void *arg)
{
    struct outcome *o = arg;
    o->done++;
    o->status = res->status;
    o->signatures = res->signatures;
    if (res->headers_len > 0)
        buf_append(&o->headers, res->headers, res->headers_len);
    snprintf(o->error, sizeof(o->error), "%s", res->error);
    snprintf(o->from_domain, sizeof(o->from_domain), "%s", res->from_domain);
}

/* Streams `msg` in chunks of `chunk` bytes, honouring back-pressure; the signed message (the
 * signature fields, then msg) goes to `signed_msg`. */
static void sign_stream(struct dkim_signer_set *set, const char *msg, size_t len, size_t chunk,
                        struct outcome *o, struct buf *signed_msg)
{
    struct dkim_stream *s = dkim_stream_new(&loop, set, "test-id");
    memset(o, 0, sizeof(*o));
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        o->writable = 0;
        if (dkim_stream_write(s, msg + off, n, on_writable, o) == 1)
            for (int i = 0; i < 10000 && !o->writable; i++)
                uv_run(&loop, UV_RUN_ONCE);
    }
    dkim_stream_finish(s, on_done, o);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(o->done, 1);
    if (o->status != 0)
        fprintf(stderr, "signing failed: %s\n", o->error);
    buf_reset(signed_msg);
    buf_append(signed_msg, o->headers.data, o->headers.len);
    buf_append(signed_msg, msg, len);
}

static struct dkim_signer_set *set_with(const struct dkim_entry_conf *confs, size_t n)
{
    struct dkim_signer_set *set = dkim_signer_set_new();
    for (size_t i = 0; i < n; i++) {
        struct buf err = BUF_INIT;
        int rc = dkim_signer_set_add(set, &confs[i], &err);
        CHECK_INT_EQ(rc, 0);
        if (rc != 0)
            fprintf(stderr, "add: %.*s\n", (int)err.len, err.data);
        buf_free(&err);
    }
    return set;
}

/* ------------------------------------------------------------------------------------------ */

static void test_keygen_and_record(void)
{
    struct buf record = BUF_INIT, err = BUF_INIT;
    struct stat st;

    keygen("rsa", DKIM_ALG_RSA_SHA256, 0, "example.com", "rsa2048");
    CHECK(stat(path_in_tmp("rsa.pem"), &st) == 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);
    keygen("ed", DKIM_ALG_ED25519_SHA256, 0, "example.com", "ed");
    CHECK(stat(path_in_tmp("ed.pem"), &st) == 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);

    /* Refuses to overwrite a key that may be published. */
    CHECK_INT_EQ(dkim_key_generate(path_in_tmp("rsa.pem"), DKIM_ALG_RSA_SHA256, 0, "example.com",
                                   "x", DKIM_KEY_OWNER_ONLY, &record, &err),
                 -EEXIST);
    CHECK(strstr(err.data, "rsa.pem") != NULL);
    buf_reset(&err);
    CHECK_INT_EQ(dkim_key_generate(path_in_tmp("small.pem"), DKIM_ALG_RSA_SHA256, 512,
                                   "example.com", "x", DKIM_KEY_OWNER_ONLY, &record, &err),
                 -EINVAL);
    /* 1024 bits still loads (below) but is not made any more: RFC 8301 asks signers for 2048. */
    buf_reset(&err);
    CHECK_INT_EQ(dkim_key_generate(path_in_tmp("small.pem"), DKIM_ALG_RSA_SHA256, 2047,
                                   "example.com", "x", DKIM_KEY_OWNER_ONLY, &record, &err),
                 -EINVAL);
    CHECK(strstr(err.data, "2048..4096") != NULL);
    CHECK(access(path_in_tmp("small.pem"), F_OK) != 0);
    CHECK_INT_EQ(dkim_key_generate(path_in_tmp("bad.pem"), DKIM_ALG_RSA_SHA256, 0, "exa mple.com",
                                   "x", DKIM_KEY_OWNER_ONLY, &record, &err),
                 -EINVAL);
    CHECK_INT_EQ(record.len, 0);

    /* The record: name, k=, and every quoted string within 255 characters. */
    struct dkim_key *key;
    buf_reset(&err);
    CHECK_INT_EQ(dkim_key_load(path_in_tmp("rsa.pem"), DKIM_ALG_RSA_SHA256, &key, &err), 0);
    CHECK_INT_EQ(key->bits, 2048);
    CHECK_INT_EQ(dkim_key_dns_record(key, "example.com", "rsa2048", &record, &err), 0);
    CHECK(strncmp(record.data,
                  "rsa2048._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p=", 60) == 0);
    int strings = 0;
    for (const char *q = strchr(record.data, '"'); q != NULL; q = strchr(q, '"')) {
        const char *close = strchr(q + 1, '"');
        CHECK(close != NULL && close - q - 1 <= 255);
        strings++;
        q = close + 1;
    }
    CHECK(strings >= 2); /* 2048-bit keys need more than one string */
    dkim_key_free(key);

    buf_reset(&record);
    CHECK_INT_EQ(dkim_key_load(path_in_tmp("ed.pem"), DKIM_ALG_ED25519_SHA256, &key, &err), 0);
    CHECK_INT_EQ(dkim_key_dns_record(key, "example.com", "ed", &record, &err), 0);
    /* RFC 8463: the raw 32-byte key, 44 characters of base64. */
    const char *p = strstr(record.data, "k=ed25519; p=");
    CHECK(p != NULL && strlen(p + 13) == 44 + strlen("\" )\n"));
    dkim_key_free(key);
    buf_free(&record);
    buf_free(&err);
}

/* Writes `pkey` as PEM to `name` with `mode`, optionally encrypted. */
static void write_pkey(const char *name, EVP_PKEY *pkey, mode_t mode, int encrypt)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    CHECK(PEM_write_bio_PrivateKey(bio, pkey, encrypt ? EVP_aes_128_cbc() : NULL,
                                   encrypt ? (unsigned char *)"secret" : NULL, encrypt ? 6 : 0,
                                   NULL, NULL) == 1);
    long len = BIO_get_mem_data(bio, &data);
    write_file(path_in_tmp(name), data, (size_t)len, mode);
    BIO_free(bio);
}

/* Root makes a key for the daemon's user: mode 0640 with its group, and the daemon loads it. */
static void test_keygen_for_a_group(void)
{
    struct buf record = BUF_INIT, err = BUF_INIT;
    gid_t group = geteuid() == 0 ? 4242 : getegid(); /* only root may give a file away */
    const char *path = path_in_tmp("grouped.pem");
    CHECK_INT_EQ(dkim_key_generate(path, DKIM_ALG_ED25519_SHA256, 0, "example.com", "g", group,
                                   &record, &err),
                 0);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0640);
    CHECK_INT_EQ(st.st_gid, group);
    CHECK_INT_EQ(st.st_uid, geteuid());
    struct dkim_key *key = NULL;
    CHECK_INT_EQ(dkim_key_load(path, DKIM_ALG_ED25519_SHA256, &key, &err), 0);
    dkim_key_free(key);
    buf_free(&record);
    buf_free(&err);
}

static void test_key_load_refusals(void)
{
    struct {
        const char *file;
        enum dkim_alg alg;
        int rc;
        const char *text;
    } cases[] = {
        {"missing.pem", DKIM_ALG_RSA_SHA256, -ENOENT, "No such file"},
        {"open.pem", DKIM_ALG_RSA_SHA256, -EPERM, "readable by others (chmod 600"},
        {"group.pem", DKIM_ALG_RSA_SHA256, -EPERM, "writable by its group"},
        {"garbage.pem", DKIM_ALG_RSA_SHA256, -EINVAL, "not an unencrypted PEM private key"},
        {"empty.pem", DKIM_ALG_RSA_SHA256, -EINVAL, "size 0"},
        {"rsa512.pem", DKIM_ALG_RSA_SHA256, -EINVAL, "512 bits"},
        {"encrypted.pem", DKIM_ALG_RSA_SHA256, -EINVAL, "not an unencrypted PEM private key"},
        {"ed.pem", DKIM_ALG_RSA_SHA256, -EINVAL, "holds an Ed25519 key, but the algorithm is"},
        {"rsa.pem", DKIM_ALG_ED25519_SHA256, -EINVAL, "holds an RSA key"},
        {"", DKIM_ALG_RSA_SHA256, -EINVAL, "not a regular file"}, /* the directory */
    };
    EVP_PKEY *rsa512 = EVP_RSA_gen(512), *rsa1024 = EVP_RSA_gen(1024);
    write_pkey("rsa512.pem", rsa512, 0600, 0);
    write_pkey("encrypted.pem", rsa1024, 0600, 1);
    write_pkey("open.pem", rsa1024, 0644, 0);
    write_pkey("group.pem", rsa1024, 0660, 0);
    write_pkey("rsa1024.pem", rsa1024, 0600, 0);
    EVP_PKEY_free(rsa512);
    EVP_PKEY_free(rsa1024);
    write_file(path_in_tmp("garbage.pem"), "-----BEGIN PRIVATE KEY-----\nnope\n", 33, 0600);
    write_file(path_in_tmp("empty.pem"), "", 0, 0600);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf err = BUF_INIT;
        struct dkim_key *key = NULL;
        const char *path = path_in_tmp(cases[i].file);
        CHECK_INT_EQ(dkim_key_load(path, cases[i].alg, &key, &err), cases[i].rc);
        CHECK(key == NULL);
        buf_printf(&err, "%s", "");
        if (strstr(err.data, cases[i].text) == NULL || strstr(err.data, path) == NULL) {
            check_failures++;
            fprintf(stderr, "%s: error \"%s\" lacks \"%s\" or the path\n", cases[i].file, err.data,
                    cases[i].text);
        }
        buf_free(&err);
    }

    /* The smallest accepted size loads. */
    struct buf err = BUF_INIT;
    struct dkim_key *key = NULL;
    CHECK_INT_EQ(dkim_key_load(path_in_tmp("rsa1024.pem"), DKIM_ALG_RSA_SHA256, &key, &err), 0);
    CHECK(key != NULL && key->bits == 1024);
    dkim_key_free(key);
    buf_free(&err);
}

static void test_entry_refusals(void)
{
    struct {
        struct dkim_entry_conf conf;
        const char *text;
    } cases[] = {
        {{.domain = "example.com",
          .selector = "s",
          .key_file = path_in_tmp("rsa.pem"),
          .canonicalization = "loose/simple"},
         "unknown canonicalization"},
        {{.domain = "example.com",
          .selector = "s",
          .key_file = path_in_tmp("rsa.pem"),
          .algorithm = "rsa-sha1"},
         "unknown algorithm"},
        {{.domain = "example.com",
          .selector = "s",
          .key_file = path_in_tmp("rsa.pem"),
          .identity = "@other.org"},
         "not within the signing domain"},
        {{.domain = "example.com", .selector = "bad selector", .key_file = path_in_tmp("rsa.pem")},
         "invalid selector"},
        {{.domain = "example.com", .selector = "s", .key_file = path_in_tmp("open.pem")},
         "open.pem is readable by others"},
        {{.domain = "example.com", .selector = "s", .key_file = path_in_tmp("ed.pem")},
         "holds an Ed25519 key"},
    };
    struct dkim_signer_set *set = dkim_signer_set_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf err = BUF_INIT;
        CHECK(dkim_signer_set_add(set, &cases[i].conf, &err) < 0);
        buf_printf(&err, "%s", "");
        if (strstr(err.data, cases[i].text) == NULL) {
            check_failures++;
            fprintf(stderr, "entry %zu: error \"%s\" lacks \"%s\"\n", i, err.data, cases[i].text);
        }
        buf_free(&err);
    }
    CHECK_INT_EQ(dkim_signer_set_count(set), 0);
    dkim_signer_set_unref(set);
}

static void test_match_and_from_domain(void)
{
    struct dkim_entry_conf confs[] = {
        {.domain = "Example.COM", .selector = "a", .key_file = path_in_tmp("rsa.pem")},
        {.domain = "sub.example.com", .selector = "b", .key_file = path_in_tmp("rsa.pem")},
        {.domain = "other.org", .selector = "c", .key_file = path_in_tmp("rsa.pem")},
    };
    struct dkim_signer_set *set = set_with(confs, 3);
    const struct dkim_entry *out[4];

    CHECK_INT_EQ(dkim_match(set, "example.com", out, 4), 1);
    CHECK_STR_EQ(out[0]->selector, "a");
    CHECK_INT_EQ(dkim_match(set, "X.Sub.Example.Com", out, 4), 2);
    CHECK_STR_EQ(out[1]->selector, "b");
    CHECK_INT_EQ(dkim_match(set, "x.sub.example.com", out, 1), 1);
    CHECK_INT_EQ(dkim_match(set, "notexample.com", out, 4), 0);
    CHECK_INT_EQ(dkim_match(set, "example.com.evil", out, 4), 0);
    CHECK_INT_EQ(dkim_match(set, "com", out, 4), 0);
    dkim_signer_set_unref(set);

    struct {
        const char *field, *domain;
    } cases[] = {
        {"From: joe@Example.COM", "example.com"},
        {"From: Joe Q. <joe@mail.example.com>", "mail.example.com"},
        {"From: \"Joe @ home\" <joe@example.com>", "example.com"},
        {"From: \"a@evil.org\"@example.com (comment @x.org)", "example.com"},
        {"From: (Joe <joe@evil.org>) joe@example.com", "example.com"},
        {"FROM:\r\n\tJoe\r\n <joe@example.com.>", "example.com"},
        {"From: a@one.example, b@two.example", "one.example"},
        {"From: undisclosed:;", NULL},
        {"From: joe@[192.0.2.1]", NULL},
        {"From: joe", NULL},
        {"From: <>", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char d[256];
        int rc = dkim_from_domain(cases[i].field, strlen(cases[i].field), d, sizeof(d));
        CHECK_STR_EQ(rc >= 0 ? d : NULL, cases[i].domain);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Signing, verified by python3-dkim */

static const char basic_msg[] = "Received: from client (client [192.0.2.7])\r\n"
                                "\tby mx.example.com\r\n"
                                "From: Joe <joe@example.com>\r\n"
                                "To: Ann <ann@example.org>\r\n"
                                "Subject: test   message\r\n"
                                "Date: Mon, 23 Nov 2026 04:00:00 +0000\r\n"
                                "Message-ID: <1@example.com>\r\n"
                                "\r\n"
                                "Hello  there \r\n"
                                "\r\n\r\n";

static void test_sign_each_algorithm(void)
{
    const char *canons[] = {"relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"};
    struct buf msg = BUF_INIT;
    struct outcome o;

    for (int alg = 0; alg < 2; alg++) {
        for (size_t c = 0; c < 4; c++) {
            struct dkim_entry_conf conf = {
                .domain = "example.com",
                .selector = alg == 0 ? "rsa2048" : "ed",
                .key_file = path_in_tmp(alg == 0 ? "rsa.pem" : "ed.pem"),
                .algorithm = alg == 0 ? "rsa-sha256" : "ed25519-sha256",
                .canonicalization = canons[c],
            };
            struct dkim_signer_set *set = set_with(&conf, 1);
            sign_stream(set, basic_msg, sizeof(basic_msg) - 1, 7, &o, &msg);
            CHECK_INT_EQ(o.status, 0);
            CHECK_INT_EQ(o.signatures, 1);
            CHECK_STR_EQ(o.from_domain, "example.com");
            int rc =
                verify(msg.data, msg.len, 1, path_in_tmp(alg == 0 ? "rsa.txt" : "ed.txt"), NULL);
            if (rc != 0)
                fprintf(stderr, "%s %s: verifier says %d\n", conf.algorithm, canons[c], rc);
            CHECK_INT_EQ(rc, 0);
            dkim_signer_set_unref(set);
            buf_free(&o.headers);
        }
    }
    buf_free(&msg);
}

/* Signs `text` with RSA (relaxed) and checks the verifier accepts it, then returns it. */
static void sign_and_verify(struct dkim_signer_set *set, const char *text, size_t len, size_t chunk,
                            const char *what, struct buf *msg)
{
    struct outcome o;
    sign_stream(set, text, len, chunk, &o, msg);
    CHECK_INT_EQ(o.status, 0);
    CHECK_INT_EQ(o.signatures, 1);
    int rc = verify(msg->data, msg->len, 1, path_in_tmp("rsa.txt"), NULL);
    if (rc != 0)
        fprintf(stderr, "%s: verifier says %d\n", what, rc);
    CHECK_INT_EQ(rc, 0);
    buf_free(&o.headers);
}

static void test_sign_message_shapes(void)
{
    struct dkim_entry_conf conf = {.domain = "example.com",
                                   .selector = "rsa2048",
                                   .key_file = path_in_tmp("rsa.pem"),
                                   .canonicalization = "simple/simple",
                                   .expire = 86400,
                                   .identity = "joe@mail.example.com"};
    struct dkim_signer_set *set = set_with(&conf, 1);
    struct buf text = BUF_INIT, msg = BUF_INIT;

    /* Long folded headers: a References field of ~6 KB over many lines, a folded Subject. */
    buf_printf(&text, "From: joe@example.com\r\nSubject: a subject\r\n that goes on\r\n\tand on\r\n"
                      "References:");
    for (int i = 0; i < 120; i++)
        buf_printf(&text, " <%d.message.id.here@host.example.com>\r\n", i);
    buf_printf(&text, "To: ann@example.org\r\n\r\nbody\r\n");
    sign_and_verify(set, text.data, text.len, 100, "long headers", &msg);
    CHECK(strstr(msg.data, "x=") != NULL && strstr(msg.data, "i=joe@mail.example.com") != NULL);

    /* 8-bit body, lines starting with dots, no final CRLF. */
    buf_reset(&text);
    buf_printf(&text, "From: joe@example.com\r\n\r\n.\r\n..leading dots\r\n"
                      "caf\xc3\xa9 \xff\xfe raw bytes\r\n.\r\nno final line end");
    sign_and_verify(set, text.data, text.len, 3, "8-bit, dots, no CRLF", &msg);

    /* Empty body; then no body separator at all. */
    static const char empty_body[] = "From: joe@example.com\r\nSubject: empty\r\n\r\n";
    sign_and_verify(set, empty_body, sizeof(empty_body) - 1, 1, "empty body", &msg);
    static const char no_body[] = "From: joe@example.com\r\nSubject: no body\r\n";
    sign_and_verify(set, no_body, sizeof(no_body) - 1, 5, "headers only", &msg);

    /* Several MiB in many odd-sized chunks: batching and back-pressure. */
    buf_reset(&text);
    buf_printf(&text, "From: joe@example.com\r\nSubject: big\r\n\r\n");
    for (int i = 0; text.len < 6 * 1024 * 1024; i++)
        buf_printf(&text, "line %d of a large body, with some text to fill it up a little\r\n", i);
    sign_and_verify(set, text.data, text.len, 997, "6 MiB body", &msg);

    dkim_signer_set_unref(set);
    buf_free(&text);
    buf_free(&msg);
}

/* Two signatures at once: the customer's RSA and the ESP's own Ed25519. */
static void test_two_signatures_and_tampering(void)
{
    keygen("esp", DKIM_ALG_ED25519_SHA256, 0, "esp.example.net", "esp1");
    struct dkim_entry_conf confs[] = {
        {.domain = "example.com", .selector = "rsa2048", .key_file = path_in_tmp("rsa.pem")},
        {.domain = "example.com",
         .signing_domain = "esp.example.net",
         .selector = "esp1",
         .key_file = path_in_tmp("esp.pem"),
         .algorithm = "ed25519-sha256",
         .identity = "@esp.example.net"},
    };
    struct dkim_signer_set *set = set_with(confs, 2);
    static const char text[] = "From: Joe <joe@mail.example.com>\r\n"
                               "Subject: two\r\n"
                               "\r\n"
                               "Body line one\r\n"
                               "Body line two\r\n";
    struct buf msg = BUF_INIT, bad = BUF_INIT;
    struct outcome o;

    sign_stream(set, text, sizeof(text) - 1, 4096, &o, &msg);
    CHECK_INT_EQ(o.status, 0);
    CHECK_INT_EQ(o.signatures, 2);
    CHECK_STR_EQ(o.from_domain, "mail.example.com");
    CHECK(strstr(msg.data, "d=example.com") != NULL && strstr(msg.data, "d=esp.example.net"));
    CHECK_INT_EQ(verify(msg.data, msg.len, 2, path_in_tmp("rsa.txt"), path_in_tmp("esp.txt")), 0);
    /* A verifier that lacks one key fails: the script really looks the keys up. */
    CHECK(verify(msg.data, msg.len, 2, path_in_tmp("rsa.txt"), path_in_tmp("ed.txt")) != 0);

    /* An unsigned header added on the way still verifies (the control for the cases below). */
    buf_printf(&bad, "X-Added: by a relay\r\n%.*s", (int)msg.len, msg.data);
    CHECK_INT_EQ(verify(bad.data, bad.len, 2, path_in_tmp("rsa.txt"), path_in_tmp("esp.txt")), 0);

    /* A body byte changed. */
    buf_reset(&bad);
    buf_append(&bad, msg.data, msg.len);
    char *b = strstr(bad.data, "line two");
    b[0] = 'L';
    CHECK(verify(bad.data, bad.len, 2, path_in_tmp("rsa.txt"), path_in_tmp("esp.txt")) != 0);

    /* A second From: (over-signed), and a To: that was absent (over-signed too). */
    const char *additions[] = {"From: evil@attacker.example\r\n", "To: victim@example.org\r\n"};
    for (int i = 0; i < 2; i++) {
        buf_reset(&bad);
        buf_printf(&bad, "%s%.*s", additions[i], (int)msg.len, msg.data);
        CHECK(verify(bad.data, bad.len, 2, path_in_tmp("rsa.txt"), path_in_tmp("esp.txt")) != 0);
    }

    dkim_signer_set_unref(set);
    buf_free(&msg);
    buf_free(&bad);
    buf_free(&o.headers);
}

static void test_unsigned_and_failures(void)
{
    struct dkim_entry_conf conf = {
        .domain = "example.com", .selector = "rsa2048", .key_file = path_in_tmp("rsa.pem")};
    struct dkim_signer_set *set = set_with(&conf, 1);
    struct buf msg = BUF_INIT, big = BUF_INIT;
    struct outcome o;

    static const char foreign[] = "From: someone@other.org\r\n\r\nhi\r\n";
    sign_stream(set, foreign, sizeof(foreign) - 1, 2, &o, &msg);
    CHECK_INT_EQ(o.status, 0);
    CHECK_INT_EQ(o.signatures, 0);
    CHECK_INT_EQ(o.headers.len, 0);
    CHECK_STR_EQ(o.from_domain, "other.org");

    static const char no_from[] = "Subject: x\r\n\r\nhi\r\n";
    sign_stream(set, no_from, sizeof(no_from) - 1, 100, &o, &msg);
    CHECK_INT_EQ(o.status, 0);
    CHECK_INT_EQ(o.signatures, 0);

    static const char two_froms[] = "From: a@example.com\r\nFrom: b@example.com\r\n\r\nhi\r\n";
    sign_stream(set, two_froms, sizeof(two_froms) - 1, 100, &o, &msg);
    CHECK_INT_EQ(o.status, -EINVAL);
    CHECK(strstr(o.error, "more than one From:") != NULL);
    CHECK_INT_EQ(o.headers.len, 0);

    /* A header line without a colon: libopendkim refuses it, and the error says so. */
    static const char broken[] = "From: a@example.com\r\nno colon here\r\n\r\nhi\r\n";
    sign_stream(set, broken, sizeof(broken) - 1, 100, &o, &msg);
    CHECK(o.status < 0);
    CHECK(strstr(o.error, "d=example.com") != NULL);

    /* Abort with work in flight: no callback, and nothing leaks (ASan). */
    buf_printf(&big, "From: a@example.com\r\n\r\n");
    while (big.len < 300 * 1024)
        buf_printf(&big, "filler filler filler filler filler filler filler\r\n");
    struct dkim_stream *s = dkim_stream_new(&loop, set, "aborted");
    memset(&o, 0, sizeof(o));
    dkim_stream_write(s, big.data, big.len, on_writable, &o);
    dkim_stream_abort(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(o.done, 0);
    CHECK_INT_EQ(o.writable, 0);
    /* Abort while idle. */
    s = dkim_stream_new(&loop, set, "idle");
    dkim_stream_write(s, "From: a", 7, on_writable, &o);
    dkim_stream_abort(s);

    dkim_signer_set_unref(set);
    buf_free(&msg);
    buf_free(&big);
    buf_free(&o.headers);
}

static void test_job_api_misuse(void)
{
    struct dkim_entry_conf conf = {
        .domain = "example.com", .selector = "rsa2048", .key_file = path_in_tmp("rsa.pem")};
    struct dkim_signer_set *set = set_with(&conf, 1);
    const struct dkim_entry *e[1];
    struct buf err = BUF_INIT;

    CHECK_INT_EQ(dkim_match(set, "example.com", e, 1), 1);
    CHECK(dkim_job_new(e, 0, "none", &err) == NULL);
    struct dkim_job *job = dkim_job_new(e, 1, "misuse", &err);
    CHECK(job != NULL);
    CHECK_STR_EQ(dkim_job_error(job), "");
    CHECK_INT_EQ(dkim_job_header(job, "\r\n", 2), -EINVAL);
    CHECK_STR_EQ(dkim_job_error(job), "DKIM: empty header field");
    dkim_job_free(job);
    dkim_signer_set_unref(set);
    buf_free(&err);
}

/* The numbers behind the threading choice in dkim.c: hashing 1 MiB vs one signature. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void measure(void)
{
    struct dkim_entry_conf confs[] = {
        {.domain = "example.com", .selector = "rsa2048", .key_file = path_in_tmp("rsa.pem")},
        {.domain = "example.com",
         .selector = "ed",
         .key_file = path_in_tmp("ed.pem"),
         .algorithm = "ed25519-sha256"},
    };
    struct dkim_signer_set *set = set_with(confs, 2);
    const struct dkim_entry *e[2];
    struct buf body = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
    static const char from[] = "From: joe@example.com";

    CHECK_INT_EQ(dkim_match(set, "example.com", e, 2), 2);
    while (body.len < 1024 * 1024)
        buf_printf(&body, "a line  of body text with   some spaces to canonicalize \r\n");
    for (int k = 0; k < 2; k++) {
        const int rounds = 8;
        double hash = 0, sign = 0;
        for (int r = 0; r < rounds; r++) {
            struct dkim_job *job = dkim_job_new(&e[k], 1, "measure", &err);
            CHECK(job != NULL);
            double t0 = now_ms();
            CHECK_INT_EQ(dkim_job_header(job, from, sizeof(from) - 1), 0);
            CHECK_INT_EQ(dkim_job_eoh(job), 0);
            CHECK_INT_EQ(dkim_job_body(job, body.data, body.len), 0);
            double t1 = now_ms();
            buf_reset(&out);
            CHECK_INT_EQ(dkim_job_eom(job, &out), 0);
            double t2 = now_ms();
            hash += t1 - t0;
            sign += t2 - t1;
            dkim_job_free(job);
        }
        printf("dkim %s: hashing 1 MiB (relaxed) %.2f ms, end of message with signing %.2f ms\n",
               dkim_alg_name(e[k]->key->alg), hash / rounds, sign / rounds);
    }
    dkim_signer_set_unref(set);
    buf_free(&body);
    buf_free(&out);
    buf_free(&err);
}

/* The config layer's signer set: keys loaded in order, and a bad key reported at the entry's
 * file:line:column with the key file named. */
static void test_config_signers(void)
{
    struct buf text = BUF_INIT, err = BUF_INIT;
    struct config *cfg = NULL;

    buf_printf(&text,
               "server:\n  spool: %s\nlisteners:\n  - name: mx\n    address: 127.0.0.1:2525\n"
               "    role: inbound\ndkim:\n  - domain: example.com\n    selector: a\n"
               "    key: %s\n  - domain: example.com\n    selector: b\n    key: %s\n"
               "    algorithm: ed25519-sha256\n",
               tmpdir, path_in_tmp("rsa.pem"), path_in_tmp("ed.pem"));
    CHECK_INT_EQ(config_load_string(text.data, text.len, "d.yaml", &cfg, &err), 0);
    struct dkim_signer_set *set = cfg != NULL ? config_dkim_signers(cfg, &err) : NULL;
    CHECK(set != NULL);
    if (set != NULL) {
        CHECK_INT_EQ(dkim_signer_set_count(set), 2);
        CHECK_STR_EQ(dkim_signer_set_entry(set, 1)->selector, "b");
        char *pub = dkim_key_public(dkim_signer_set_entry(set, 1)->key, &err);
        CHECK(pub != NULL && strlen(pub) == 44); /* 32 bytes in base64 */
        free(pub);
        dkim_signer_set_unref(set);
    }
    config_unref(cfg);

    /* The second entry's key is missing. */
    buf_reset(&text);
    buf_printf(&text,
               "server:\n  spool: %s\nlisteners:\n  - name: mx\n    address: 127.0.0.1:2525\n"
               "    role: inbound\ndkim:\n  - domain: example.com\n    selector: a\n"
               "    key: %s\n  - domain: example.com\n    selector: b\n    key: %s\n",
               tmpdir, path_in_tmp("rsa.pem"), path_in_tmp("nowhere.pem"));
    buf_reset(&err);
    cfg = NULL;
    CHECK_INT_EQ(config_load_string(text.data, text.len, "d.yaml", &cfg, &err), 0);
    CHECK(cfg != NULL && config_dkim_signers(cfg, &err) == NULL);
    buf_printf(&err, "%s", "");
    if (strncmp(err.data, "d.yaml:11:5: dkim[1]: DKIM key file ", 36) != 0) {
        check_failures++;
        fprintf(stderr, "config_dkim_signers error: %s\n", err.data);
    }
    CHECK(strstr(err.data, "nowhere.pem: No such file or directory") != NULL);
    config_unref(cfg);
    buf_free(&text);
    buf_free(&err);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dkim.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    uv_loop_init(&loop);

    test_keygen_and_record();
    test_keygen_for_a_group();
    test_key_load_refusals();
    test_entry_refusals();
    test_match_and_from_domain();
    test_sign_each_algorithm();
    test_sign_message_shapes();
    test_two_signatures_and_tampering();
    test_unsigned_and_failures();
    test_job_api_misuse();
    test_config_signers();
    measure();

    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    DIR *dir = opendir(tmpdir);
    for (struct dirent *de; dir != NULL && (de = readdir(dir)) != NULL;)
        if (de->d_name[0] != '.')
            CHECK_INT_EQ(unlink(path_in_tmp(de->d_name)), 0);
    if (dir != NULL)
        closedir(dir);
    CHECK_INT_EQ(rmdir(tmpdir), 0);
    return check_report("test_dkim");
}
