#include "mta/http/inject_request.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lib/xalloc.h"

/* Where a problem is: "" for a single message, "messages[3]" in a batch; then ".key". */
struct place {
    char text[48];
};

static int fail(struct buf *err, const struct place *at, const char *key, const char *what)
{
    buf_printf(err, "%s%s%s: %s", at->text, at->text[0] != '\0' && key[0] != '\0' ? "." : "", key,
               what);
    return -1;
}

/* A string member: *out a copy, NULL when absent and optional. */
static int take_string(json_t *o, const char *key, int required, const struct place *at, char **out,
                       size_t *len, struct buf *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (v == NULL)
        return required ? fail(err, at, key, "missing") : 0;
    if (!json_is_string(v))
        return fail(err, at, key, "not a string");
    size_t n = json_string_length(v);
    if (len != NULL)
        *len = n;
    *out = xstrndup(json_string_value(v), n);
    return 0;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > INJECT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127 || s[i] == ':')
            return 0;
    return 1;
}

/* Text that goes into a header field as it is: no line break can slip in. */
static int value_ok(const char *s, size_t n)
{
    return memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL && strlen(s) == n;
}

static int take_recipients(json_t *o, const struct place *at, struct inject_message *m,
                           struct buf *err)
{
    json_t *list = json_object_get(o, "recipients");
    if (list == NULL)
        return fail(err, at, "recipients", "missing");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(err, at, "recipients", "not a non-empty array");
    m->rcpts = xcalloc(json_array_size(list), sizeof *m->rcpts);
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        char key[40];
        snprintf(key, sizeof key, "recipients[%zu]", i);
        if (!json_is_string(v))
            return fail(err, at, key, "not a string");
        m->rcpts[m->nrcpts++] = xstrndup(json_string_value(v), json_string_length(v));
    }
    return 0;
}

static int take_headers(json_t *o, const struct place *at, struct inject_message *m,
                        struct buf *err)
{
    json_t *h = json_object_get(o, "headers");
    if (h == NULL)
        return 0;
    if (!json_is_object(h))
        return fail(err, at, "headers", "not an object");
    m->fields = xcalloc(json_object_size(h) + 1, sizeof *m->fields);
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v)
    {
        char key[INJECT_NAME_MAX + 16];
        snprintf(key, sizeof key, "headers.%.*s", INJECT_NAME_MAX, name);
        if (!name_ok(name, strlen(name)))
            return fail(err, at, key,
                        "not a header field name (1-64 printable characters, no ':')");
        if (!json_is_string(v))
            return fail(err, at, key, "not a string");
        if (!value_ok(json_string_value(v), json_string_length(v)))
            return fail(err, at, key, "holds a line break or NUL");
        m->fields[m->nfields].name = xstrdup(name);
        m->fields[m->nfields++].value = xstrdup(json_string_value(v));
    }
    return 0;
}

static const char *const message_keys[] = {"sender", "recipients", "content",
                                           "tenant", "campaign",   "headers"};

static int take_message(json_t *o, const struct place *at, struct inject_message *m,
                        struct buf *err)
{
    if (!json_is_object(o))
        return fail(err, at, "", "not an object");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t k = 0;
        while (k < sizeof message_keys / sizeof message_keys[0] && strcmp(key, message_keys[k]))
            k++;
        if (k == sizeof message_keys / sizeof message_keys[0]) {
            char name[INJECT_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s", key);
            return fail(err, at, name, "unknown key");
        }
    }
    size_t len;
    if (take_string(o, "sender", 1, at, &m->sender, NULL, err) < 0 ||
        take_recipients(o, at, m, err) < 0 ||
        take_string(o, "content", 1, at, &m->content, &m->content_len, err) < 0 ||
        take_string(o, "tenant", 0, at, &m->tenant, NULL, err) < 0 ||
        take_string(o, "campaign", 0, at, &m->campaign, &len, err) < 0 ||
        take_headers(o, at, m, err) < 0)
        return -1;
    if (m->content_len == 0)
        return fail(err, at, "content", "empty");
    if (strlen(m->content) != m->content_len)
        return fail(err, at, "content", "holds a NUL");
    if (m->campaign != NULL && (!value_ok(m->campaign, len) || len == 0 || len > INJECT_NAME_MAX))
        return fail(err, at, "campaign", "not 1-64 characters without line breaks");
    return 0;
}

static int take_batch(json_t *list, struct inject_request *r, struct buf *err)
{
    struct place top = {"messages"};
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(err, &top, "", "not a non-empty array");
    if (json_array_size(list) > INJECT_BATCH_MAX) {
        buf_printf(err, "messages: more than %d messages", INJECT_BATCH_MAX);
        return -1;
    }
    r->batch = 1;
    r->msgs = xcalloc(json_array_size(list), sizeof *r->msgs);
    for (size_t i = 0; i < json_array_size(list); i++) {
        struct place at;
        snprintf(at.text, sizeof at.text, "messages[%zu]", i);
        r->nmsgs++;
        if (take_message(json_array_get(list, i), &at, &r->msgs[i], err) < 0)
            return -1;
    }
    return 0;
}

int inject_request_parse(const char *body, size_t len, struct inject_request *out, struct buf *err)
{
    *out = (struct inject_request){0};
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        buf_printf(err, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                   jerr.text);
        return -1;
    }
    int rc;
    json_t *batch = json_is_object(root) ? json_object_get(root, "messages") : NULL;
    if (batch != NULL && json_object_size(root) != 1) {
        buf_printf(err, "a batch has the one key \"messages\"");
        rc = -1;
    } else if (batch != NULL) {
        rc = take_batch(batch, out, err);
    } else {
        struct place top = {""};
        out->msgs = xcalloc(1, sizeof *out->msgs);
        out->nmsgs = 1;
        rc = take_message(root, &top, &out->msgs[0], err);
        if (rc < 0 && !json_is_object(root)) {
            buf_reset(err);
            buf_printf(err, "the body is not a JSON object");
        }
    }
    json_decref(root);
    if (rc < 0)
        inject_request_free(out);
    return rc;
}

static void message_free(struct inject_message *m)
{
    free(m->sender);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->content);
    free(m->tenant);
    free(m->campaign);
    for (size_t i = 0; i < m->nfields; i++) {
        free(m->fields[i].name);
        free(m->fields[i].value);
    }
    free(m->fields);
}

void inject_request_free(struct inject_request *r)
{
    for (size_t i = 0; i < r->nmsgs; i++)
        message_free(&r->msgs[i]);
    free(r->msgs);
    *r = (struct inject_request){0};
}
