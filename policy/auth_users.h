/*
 * SMTP AUTH credentials and brute-force accounting. The users file (relay.users) holds
 * "name:crypt-hash" lines; it is loaded whole at start and on reload into an immutable table the
 * SMTP server holds. Checking a password runs crypt(3) and is slow on purpose: callers run
 * auth_users_verify on the thread pool. The failure table counts failed attempts per client
 * address (IPv6 per /64) so the session can slow an attacker down; it is pure, the clock is passed
 * in.
 */
#ifndef SLUICE_AUTH_USERS_H
#define SLUICE_AUTH_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"

/* Longest user name accepted in the file (and so in an AUTH exchange). */
#define AUTH_USER_NAME_MAX 255

struct auth_users;

/* Reads the users file at `path` (blocking: at start or reload only). Lines are "name:hash";
 * blank lines and lines starting with '#' are skipped. A name is printable ASCII without spaces,
 * ':', '(', ')' or '\' (it is written into logs and trace headers); a hash must be one libxcrypt
 * considers current (yescrypt "$y$", SHA-512-crypt "$6$", bcrypt "$2b$", ...; no DES or MD5).
 * Returns 0 and *out, or a negative errno with "file:line: message" lines appended to err. */
int auth_users_load(const char *path, struct auth_users **out, struct buf *err);
void auth_users_free(struct auth_users *users);
/* Number of users in the table. */
size_t auth_users_count(const struct auth_users *users);
/* The hash stored for `name` (len octets, exact match), or NULL. Valid while `users` lives. */
const char *auth_users_hash(const struct auth_users *users, const char *name, size_t len);
/* A hash to spend the same work on when the name is unknown, so the reply time does not tell
 * which names exist; NULL when the table is empty. */
const char *auth_users_decoy_hash(const struct auth_users *users);
/* 1 when `password` (len octets) hashes to `hash` under crypt(3), else 0; the final comparison
 * runs in constant time. A password holding a NUL never matches. Blocking (milliseconds of CPU):
 * call it on the thread pool. Thread-safe. */
int auth_users_verify(const char *hash, const char *password, size_t len);

/* ---- failed attempts per client ---- */

/* Failures from one client before its answers are delayed. */
#define AUTH_FAILURES_FREE 3
/* First delay, doubled per further failure up to the cap. */
#define AUTH_DELAY_FIRST_MS 1000
#define AUTH_DELAY_MAX_MS 30000
/* A client's count is forgotten this long after its last failure. */
#define AUTH_FAILURES_FORGET_MS (15 * 60 * 1000)

struct auth_failures;

/* A table of at most `capacity` clients; the least recently failing one makes room. */
struct auth_failures *auth_failures_new(size_t capacity);
void auth_failures_free(struct auth_failures *f);
/* Recent failures (within AUTH_FAILURES_FORGET_MS of now_ms) from addr's client. */
unsigned auth_failures_count(const struct auth_failures *f, const struct sockaddr *addr,
                             uint64_t now_ms);
/* Records one failure from addr at now_ms; returns the client's recent failures, this one
 * included. The count saturates instead of wrapping. */
unsigned auth_failures_add(struct auth_failures *f, const struct sockaddr *addr, uint64_t now_ms);
/* How long to hold the answer to an attempt by a client with `failures` recent failures:
 * 0 below AUTH_FAILURES_FREE, then AUTH_DELAY_FIRST_MS doubling up to AUTH_DELAY_MAX_MS. */
uint64_t auth_failures_delay_ms(unsigned failures);

#endif
