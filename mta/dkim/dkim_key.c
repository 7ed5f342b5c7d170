/*
 * DKIM key files: load and check, generate, and print the DNS record (see dkim_key.h).
 */
#include "mta/dkim/dkim_key.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/fdio.h"
#include "lib/xalloc.h"

/* A PEM key of 4096 bits is about 3.3 KB; anything far larger is not a key file. */
#define KEY_FILE_MAX (64 * 1024)
/* RFC 1035 §3.3: a <character-string> holds at most 255 octets. */
#define TXT_STRING_MAX 255

int dkim_alg_parse(const char *name, enum dkim_alg *out)
{
    if (strcmp(name, "rsa-sha256") == 0)
        *out = DKIM_ALG_RSA_SHA256;
    else if (strcmp(name, "ed25519-sha256") == 0)
        *out = DKIM_ALG_ED25519_SHA256;
    else
        return -EINVAL;
    return 0;
}

const char *dkim_alg_name(enum dkim_alg alg)
{
    return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

int dkim_dns_name_valid(const char *name)
{
    size_t total = strlen(name), label = 0;

    if (total == 0 || total > 253)
        return 0;
    for (const char *p = name;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63)
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
            continue;
        }
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '-' && *p != '_')
            return 0;
        label++;
    }
}

/* Appends OpenSSL's queued error text (if any) and clears the queue. */
static void append_ssl_error(struct buf *err)
{
    unsigned long e = ERR_get_error();
    char text[256];

    if (e != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        buf_printf(err, " (%s)", text);
    }
    ERR_clear_error();
}

/* Refuses passphrase-protected keys instead of letting OpenSSL prompt on the terminal. */
static int key_on_passphrase(char *buf, int size, int rwflag, void *arg)
{
    return 0;
}

static const char *pkey_kind(int id)
{
    switch (id) {
    case EVP_PKEY_RSA:
        return "an RSA";
    case EVP_PKEY_ED25519:
        return "an Ed25519";
    default:
        return "an unsupported";
    }
}

/* Reads the whole (small) file into *data; checks type, permissions and size first. */
static int key_file_read(const char *path, char **data, size_t *len, struct buf *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        int e = errno;
        buf_printf(err, "DKIM key file %s: %s", path, strerror(e));
        return -e;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        buf_printf(err, "DKIM key file %s is not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    /* The group may read it: that is how the daemon's user reads a key root owns. */
    if ((st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
        buf_printf(err, "DKIM key file %s is %s (chmod 600, or chmod 640 with the daemon's group)",
                   path, st.st_mode & S_IRWXO ? "readable by others" : "writable by its group");
        close(fd);
        return -EPERM;
    }
    if (st.st_size == 0 || st.st_size > KEY_FILE_MAX) {
        buf_printf(err, "DKIM key file %s: size %lld is not that of a private key", path,
                   (long long)st.st_size);
        close(fd);
        return -EINVAL;
    }
    *data = xmalloc((size_t)st.st_size);
    *len = 0;
    while (*len < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + *len, (size_t)st.st_size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            buf_printf(err, "DKIM key file %s: %s", path, strerror(e));
            OPENSSL_cleanse(*data, *len);
            free(*data);
            close(fd);
            return -e;
        }
        *len += (size_t)n;
    }
    close(fd);
    return 0;
}

/* PKCS#8 PEM text of `pkey` in a new NUL-terminated string; NULL on failure. */
static char *pkey_to_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *pem = NULL, *data;
    long len;

    if (bio != NULL && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        len = BIO_get_mem_data(bio, &data);
        pem = xmalloc((size_t)len + 1);
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    return pem;
}

static EVP_PKEY *pem_to_pkey(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = NULL;

    if (bio != NULL)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, key_on_passphrase, NULL);
    BIO_free(bio);
    return pkey;
}

int dkim_key_load(const char *path, enum dkim_alg alg, struct dkim_key **out, struct buf *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = key_file_read(path, &data, &len, err);
    if (rc < 0)
        return rc;

    EVP_PKEY *pkey = pem_to_pkey(data, len);
    OPENSSL_cleanse(data, len);
    free(data);
    if (pkey == NULL) {
        buf_printf(err, "DKIM key file %s: not an unencrypted PEM private key", path);
        append_ssl_error(err);
        return -EINVAL;
    }

    int id = EVP_PKEY_get_base_id(pkey), bits = EVP_PKEY_get_bits(pkey);
    int want = alg == DKIM_ALG_RSA_SHA256 ? EVP_PKEY_RSA : EVP_PKEY_ED25519;
    if (id != want) {
        buf_printf(err, "DKIM key file %s holds %s key, but the algorithm is %s", path,
                   pkey_kind(id), dkim_alg_name(alg));
        rc = -EINVAL;
    } else if (alg == DKIM_ALG_RSA_SHA256 &&
               (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        buf_printf(err, "DKIM key file %s: RSA key of %d bits, outside %d..%d", path, bits,
                   DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
        rc = -EINVAL;
    } else {
        struct dkim_key *key = xcalloc(1, sizeof(*key));
        key->alg = alg;
        key->bits = bits;
        key->path = xstrdup(path);
        key->pem = pkey_to_pem(pkey);
        if (key->pem == NULL) {
            buf_printf(err, "DKIM key file %s: cannot re-encode the key", path);
            append_ssl_error(err);
            dkim_key_free(key);
            rc = -EINVAL;
        } else {
            *out = key;
        }
    }
    EVP_PKEY_free(pkey);
    return rc;
}

void dkim_key_free(struct dkim_key *key)
{
    if (key == NULL)
        return;
    if (key->pem != NULL) {
        OPENSSL_cleanse(key->pem, strlen(key->pem));
        free(key->pem);
    }
    free(key->path);
    free(key);
}

/* Base64 (no line breaks) of the public half as the p= tag wants it: the DER SubjectPublicKeyInfo
 * for RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4). */
static char *public_key_base64(EVP_PKEY *pkey, enum dkim_alg alg)
{
    unsigned char raw[32], *der = NULL;
    const unsigned char *bytes = raw;
    size_t len = sizeof(raw);
    char *b64 = NULL;

    if (alg == DKIM_ALG_ED25519_SHA256) {
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1)
            return NULL;
    } else {
        int n = i2d_PUBKEY(pkey, &der);
        if (n <= 0)
            return NULL;
        bytes = der;
        len = (size_t)n;
    }
    b64 = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, bytes, (int)len);
    OPENSSL_free(der);
    return b64;
}

char *dkim_key_public(const struct dkim_key *key, struct buf *err)
{
    EVP_PKEY *pkey = pem_to_pkey(key->pem, strlen(key->pem));
    char *p = pkey != NULL ? public_key_base64(pkey, key->alg) : NULL;
    EVP_PKEY_free(pkey);
    if (p == NULL) {
        buf_printf(err, "DKIM key file %s: cannot encode the public key", key->path);
        append_ssl_error(err);
    }
    return p;
}

int dkim_key_dns_record(const struct dkim_key *key, const char *domain, const char *selector,
                        struct buf *out, struct buf *err)
{
    if (!dkim_dns_name_valid(domain) || !dkim_dns_name_valid(selector)) {
        buf_printf(err, "invalid DKIM domain '%s' or selector '%s'", domain, selector);
        return -EINVAL;
    }
    char *p = dkim_key_public(key, err);
    if (p == NULL)
        return -EINVAL;

    struct buf value = BUF_INIT;
    buf_printf(&value, "v=DKIM1; k=%s; p=%s",
               key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa", p);
    free(p);

    buf_printf(out, "%s._domainkey.%s. IN TXT (", selector, domain);
    for (size_t off = 0; off < value.len; off += TXT_STRING_MAX) {
        size_t n = value.len - off < TXT_STRING_MAX ? value.len - off : TXT_STRING_MAX;
        buf_printf(out, "%s\"%.*s\"", off == 0 ? " " : "\n\t", (int)n, value.data + off);
    }
    buf_printf(out, " )\n");
    buf_free(&value);
    return 0;
}

static EVP_PKEY *pkey_generate(enum dkim_alg alg, int bits)
{
    if (alg == DKIM_ALG_ED25519_SHA256)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_RSA_gen((unsigned)bits);
}

/* Writes all of `data` to fd, then syncs it. Returns 0 or -errno. */
static int write_all_sync(int fd, const char *data, size_t len)
{
    int rc = fd_write_all(fd, data, len);
    if (rc < 0)
        return rc;
    return fsync(fd) == 0 ? 0 : -errno;
}

/* Writes pem to a new file at path: mode 0600, or 0640 with `group` (set before a byte of the
 * key is in it). Returns 0 or -errno with a message in err; on failure nothing is left behind. */
static int key_file_write(const char *path, const char *pem, gid_t group, struct buf *err)
{
    /* O_EXCL: never replace a key that may already be published. */
    int rc = 0, fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        buf_printf(err, "DKIM key file %s: %s", path, strerror(-rc));
        return rc;
    }
    if (group != DKIM_KEY_OWNER_ONLY && (fchown(fd, (uid_t)-1, group) < 0 || fchmod(fd, 0640) < 0))
        rc = -errno;
    if (rc == 0)
        rc = write_all_sync(fd, pem, strlen(pem));
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        buf_printf(err, "DKIM key file %s: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

int dkim_key_generate(const char *path, enum dkim_alg alg, int bits, const char *domain,
                      const char *selector, gid_t group, struct buf *record, struct buf *err)
{
    if (!dkim_dns_name_valid(domain) || !dkim_dns_name_valid(selector)) {
        buf_printf(err, "invalid DKIM domain '%s' or selector '%s'", domain, selector);
        return -EINVAL;
    }
    if (alg == DKIM_ALG_RSA_SHA256 && bits == 0)
        bits = DKIM_RSA_DEFAULT_BITS;
    if (alg == DKIM_ALG_RSA_SHA256 && (bits < DKIM_RSA_NEW_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        buf_printf(err, "RSA key size %d outside %d..%d", bits, DKIM_RSA_NEW_MIN_BITS,
                   DKIM_RSA_MAX_BITS);
        return -EINVAL;
    }
    if (alg == DKIM_ALG_ED25519_SHA256 && bits != 0 && bits != 256) {
        buf_printf(err, "Ed25519 keys have no size to choose (256 bits)");
        return -EINVAL;
    }

    EVP_PKEY *pkey = pkey_generate(alg, bits);
    char *pem = pkey != NULL ? pkey_to_pem(pkey) : NULL;
    EVP_PKEY_free(pkey);
    if (pem == NULL) {
        buf_printf(err, "cannot generate a %s key", dkim_alg_name(alg));
        append_ssl_error(err);
        return -EINVAL;
    }

    int rc = key_file_write(path, pem, group, err);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (rc < 0)
        return rc;

    /* Read it back through the same checks the daemon applies, then publish that. */
    struct dkim_key *key;
    rc = dkim_key_load(path, alg, &key, err);
    if (rc == 0) {
        rc = dkim_key_dns_record(key, domain, selector, record, err);
        dkim_key_free(key);
    }
    return rc;
}

int dkim_record_tag(const char *rec, size_t len, const char *tag, struct buf *out)
{
    size_t tlen = strlen(tag);
    const char *p = rec, *end = rec + len;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi != NULL ? semi : end;
        while (p < stop && isspace((unsigned char)*p))
            p++;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL) {
            const char *name_end = eq;
            while (name_end > p && isspace((unsigned char)name_end[-1]))
                name_end--;
            if ((size_t)(name_end - p) == tlen && strncmp(p, tag, tlen) == 0) {
                for (const char *v = eq + 1; v < stop; v++)
                    if (!isspace((unsigned char)*v))
                        buf_append(out, v, 1);
                return 1;
            }
        }
        p = stop + 1;
    }
    return 0;
}
