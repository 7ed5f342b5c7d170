#include "policy/auth_users.h"

#include <crypt.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/client_table.h"
#include "lib/line_file.h"
#include "lib/xalloc.h"

struct auth_user {
    char *name;
    char *hash;
};

struct auth_users {
    struct auth_user *users; /* sorted by name for bsearch */
    size_t nusers;
    size_t cap; /* of users, while loading */
};

/* ---- the users file ---- */

static int name_char_ok(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != ':' && c != '(' && c != ')' && c != '\\';
}

static int user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct auth_user *)a)->name, ((const struct auth_user *)b)->name);
}

void auth_users_free(struct auth_users *users)
{
    if (users == NULL)
        return;
    for (size_t i = 0; i < users->nusers; i++) {
        free(users->users[i].name);
        /* Hashes are not secrets in the strict sense, but there is no reason to leave them. */
        explicit_bzero(users->users[i].hash, strlen(users->users[i].hash));
        free(users->users[i].hash);
    }
    free(users->users);
    free(users);
}

/* Checks one "name:hash" line (newline removed, NUL-terminated at len); returns NULL or what is
 * wrong with it. */
static const char *line_check(const char *line, size_t len, size_t *name_len)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return "expected name:hash";
    *name_len = (size_t)(colon - line);
    if (*name_len == 0)
        return "empty user name";
    if (*name_len > AUTH_USER_NAME_MAX)
        return "user name longer than 255 octets";
    for (size_t i = 0; i < *name_len; i++)
        if (!name_char_ok((unsigned char)line[i]))
            return "user name holds a space, control byte, non-ASCII byte or one of ( ) \\";
    const char *hash = colon + 1;
    size_t hash_len = len - *name_len - 1;
    if (hash_len == 0)
        return "empty hash";
    if (memchr(hash, '\0', hash_len) != NULL || memchr(hash, ':', hash_len) != NULL)
        return "hash holds ':' or a NUL byte";
    if (hash[0] != '$')
        return "not a crypt(3) hash of a current method (yescrypt $y$, SHA-512 $6$, ...)";
    int rc = crypt_checksalt(hash);
    if (rc == CRYPT_SALT_METHOD_LEGACY)
        return "hash method is too weak (use yescrypt $y$ or SHA-512-crypt $6$)";
    if (rc != CRYPT_SALT_OK)
        return "not a crypt(3) hash of a current method (yescrypt $y$, SHA-512 $6$, ...)";
    return NULL;
}

/* One "name:hash" line into the table, or what is wrong with it. */
static const char *users_on_line(void *arg, const char *line, size_t len)
{
    struct auth_users *users = arg;
    size_t name_len = 0;
    const char *why = line_check(line, len, &name_len);
    if (why != NULL)
        return why;
    if (users->nusers == users->cap) {
        users->cap = users->cap ? users->cap * 2 : 16;
        users->users = xrealloc(users->users, users->cap * sizeof *users->users);
    }
    struct auth_user *u = &users->users[users->nusers++];
    u->name = xstrndup(line, name_len);
    u->hash = xstrndup(line + name_len + 1, len - name_len - 1);
    return NULL;
}

int auth_users_load(const char *path, struct auth_users **out, struct buf *err)
{
    struct auth_users *users = xcalloc(1, sizeof *users);
    int rc = line_file_read(path, "users file", users_on_line, users, err);
    if (rc < 0 && rc != -EINVAL) {
        auth_users_free(users);
        return rc;
    }
    int problems = rc < 0;
    if (users->nusers > 0)
        qsort(users->users, users->nusers, sizeof *users->users, user_cmp);
    for (size_t i = 1; i < users->nusers; i++) {
        if (strcmp(users->users[i - 1].name, users->users[i].name) == 0) {
            buf_printf(err, "%s: user '%s' is listed more than once\n", path, users->users[i].name);
            problems++;
        }
    }
    if (problems > 0) {
        auth_users_free(users);
        return -EINVAL;
    }
    *out = users;
    return 0;
}

size_t auth_users_count(const struct auth_users *users)
{
    return users->nusers;
}

const char *auth_users_hash(const struct auth_users *users, const char *name, size_t len)
{
    if (len == 0 || len > AUTH_USER_NAME_MAX || memchr(name, '\0', len) != NULL)
        return NULL;
    char key_name[AUTH_USER_NAME_MAX + 1];
    memcpy(key_name, name, len);
    key_name[len] = '\0';
    struct auth_user key = {key_name, NULL};
    const struct auth_user *u =
        users->nusers ? bsearch(&key, users->users, users->nusers, sizeof key, user_cmp) : NULL;
    return u != NULL ? u->hash : NULL;
}

const char *auth_users_decoy_hash(const struct auth_users *users)
{
    return users->nusers > 0 ? users->users[0].hash : NULL;
}

int auth_users_verify(const char *hash, const char *password, size_t len)
{
    if (memchr(password, '\0', len) != NULL)
        return 0; /* crypt would stop at the NUL and check a shorter password */
    char *phrase = xstrndup(password, len);
    struct crypt_data *data = xcalloc(1, sizeof *data);
    const char *got = crypt_r(phrase, hash, data);
    int ok = 0;
    /* crypt_r answers a string starting with '*' (or NULL) when the hash is unusable. */
    if (got != NULL && got[0] != '*') {
        size_t got_len = strlen(got), want_len = strlen(hash);
        /* Lengths say nothing secret (they follow from the method); the contents are compared
         * without an early exit. */
        unsigned char diff = got_len != want_len;
        for (size_t i = 0; i < got_len && i < want_len; i++)
            diff |= (unsigned char)(got[i] ^ hash[i]);
        ok = diff == 0;
    }
    explicit_bzero(phrase, len);
    explicit_bzero(data, sizeof *data);
    free(phrase);
    free(data);
    return ok;
}

/* ---- failed attempts per client ---- */

/* What lib/client_table keeps per client (IPv4 by address, IPv6 by /64). */
struct failures {
    unsigned count;
    uint64_t last_ms;
};

struct auth_failures {
    struct client_table *clients;
};

struct auth_failures *auth_failures_new(size_t capacity)
{
    struct auth_failures *f = xmalloc(sizeof *f);
    f->clients = client_table_new(capacity, sizeof(struct failures));
    return f;
}

void auth_failures_free(struct auth_failures *f)
{
    if (f == NULL)
        return;
    client_table_free(f->clients);
    free(f);
}

unsigned auth_failures_count(const struct auth_failures *f, const struct sockaddr *addr,
                             uint64_t now_ms)
{
    const struct failures *c = client_table_find(f->clients, addr);
    if (c == NULL || now_ms - c->last_ms >= AUTH_FAILURES_FORGET_MS)
        return 0;
    return c->count;
}

unsigned auth_failures_add(struct auth_failures *f, const struct sockaddr *addr, uint64_t now_ms)
{
    int created;
    struct failures *c = client_table_get(f->clients, addr, &created);
    if (c == NULL)
        return 0;
    if (!created && now_ms - c->last_ms >= AUTH_FAILURES_FORGET_MS)
        c->count = 0;
    if (c->count < UINT_MAX) /* the cap comes before the increment */
        c->count++;
    c->last_ms = now_ms;
    return c->count;
}

uint64_t auth_failures_delay_ms(unsigned failures)
{
    if (failures < AUTH_FAILURES_FREE)
        return 0;
    uint64_t delay = AUTH_DELAY_FIRST_MS;
    for (unsigned n = AUTH_FAILURES_FREE; n < failures && delay < AUTH_DELAY_MAX_MS; n++)
        delay *= 2;
    return delay < AUTH_DELAY_MAX_MS ? delay : AUTH_DELAY_MAX_MS;
}
