/*
 * DKIM private keys: loading and checking a key file at start and reload (a bad key is a config
 * error naming the file), generating a key for `sluice dkim keygen`, and the DNS TXT record that
 * publishes the public half. A loaded key is immutable and owned by the signing entry that loaded
 * it; the signer (mta/dkim/dkim.c) hands its PEM text to libopendkim.
 */
#ifndef SLUICE_DKIM_KEY_H
#define SLUICE_DKIM_KEY_H

#include <sys/types.h>

#include "lib/buf.h"

enum dkim_alg {
    DKIM_ALG_RSA_SHA256,     /* RFC 6376; keys of 1024 to 4096 bits (new ones 2048 or more) */
    DKIM_ALG_ED25519_SHA256, /* RFC 8463 */
};

/* RFC 8301 §3.2: verifiers must take 1024-bit keys, signers should use 2048 or more. A 1024-bit key
 * still loads (with a warning: config_dkim_signers) so that a published selector keeps working;
 * no new one is made. */
#define DKIM_RSA_MIN_BITS 1024
#define DKIM_RSA_NEW_MIN_BITS 2048
#define DKIM_RSA_MAX_BITS 4096
#define DKIM_RSA_DEFAULT_BITS 2048

struct dkim_key {
    enum dkim_alg alg;
    int bits;   /* RSA modulus size; 256 for Ed25519 */
    char *path; /* the file it came from, for messages */
    char *pem;  /* PKCS#8 PEM, NUL-terminated: the form libopendkim's dkim_sign() takes; wiped on
                   free */
};

/* "rsa-sha256" / "ed25519-sha256" (the a= tag values); returns 0 or -EINVAL. */
int dkim_alg_parse(const char *name, enum dkim_alg *out);
const char *dkim_alg_name(enum dkim_alg alg);

/* 1 when `name` is a usable DNS name for d= or s=: dot-separated labels of letters, digits, '-'
 * and '_', each 1..63 characters, 253 in all, no trailing dot. */
int dkim_dns_name_valid(const char *name);

/* Reads and checks the private key at `path`: a regular file, writable by its owner only and
 * readable by nobody but its owner and group (0600, or 0640 for the daemon's group), a PEM
 * private key of algorithm `alg` (RSA within 1024..4096 bits). Returns 0 and a new key in
 * *out, or a negative errno with a message naming the file appended to `err`. Blocking: call at
 * start or reload, or on the thread pool. */
int dkim_key_load(const char *path, enum dkim_alg alg, struct dkim_key **out, struct buf *err);
void dkim_key_free(struct dkim_key *key);

/* Appends the zone-file line publishing `key` as selector._domainkey.domain, its value split into
 * quoted strings of at most 255 characters (RFC 6376 §3.6.2.2; k=ed25519 with the raw 32-byte
 * public key for RFC 8463). Returns 0 or -EINVAL with a message in `err`. */
int dkim_key_dns_record(const struct dkim_key *key, const char *domain, const char *selector,
                        struct buf *out, struct buf *err);

/* The p= value publishing `key` (base64 of the DER public key for RSA, of the raw 32 bytes for
 * Ed25519) in a new string; NULL with a message in `err` on failure. */
char *dkim_key_public(const struct dkim_key *key, struct buf *err);

/* dkim_key_generate's `group` for a key only its owner reads. */
#define DKIM_KEY_OWNER_ONLY ((gid_t)-1)

/* Generates a key (RSA: `bits` 0 means 2048, else 2048..4096; Ed25519: 0 or 256), writes it to
 * `path`, refusing to overwrite an existing file, and appends its DNS record to `record`. The file
 * is the caller's with mode 0600 when `group` is DKIM_KEY_OWNER_ONLY, else mode 0640 with that
 * group (root making a key for the daemon's user, who reads it again at every reload). Returns 0
 * or a negative errno with a message naming the file in `err`. Blocking: for the command line. */
int dkim_key_generate(const char *path, enum dkim_alg alg, int bits, const char *domain,
                      const char *selector, gid_t group, struct buf *record, struct buf *err);

/* Reads a published key record ("v=DKIM1; k=rsa; p=..."; untrusted DNS text): copies the value of
 * tag `tag` into out without white space (RFC 6376 §3.2 allows FWS inside base64). Returns 1 when
 * the tag is present, 0 when not. */
int dkim_record_tag(const char *rec, size_t len, const char *tag, struct buf *out);

#endif
