/*
 * Bounce categories (see bounce_category.h): pattern files parsed into a list of compiled POSIX
 * extended regular expressions, matched case-insensitively in order.
 *
 * A pattern file has one rule a line, "CATEGORY REGEX": the category's name, blanks, and the
 * expression up to the end of the line (trailing blanks dropped). Blank lines and lines starting
 * with '#' are skipped.
 */
#include "mta/delivery/bounce_category.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

/* packaging/bounce_categories.conf, made a C string by mta/CMakeLists.txt. */
extern const char bounce_categories_shipped[];
#define SHIPPED_NAME "bounce_categories.conf (shipped)"

/* A pattern file larger than this is refused: it is a list of rules, not data. */
#define PATTERN_FILE_MAX (1024 * 1024)

struct rule {
    regex_t re;
    enum bounce_category category;
};

struct bounce_categories {
    struct rule *rules;
    size_t nrules, cap;
};

static const char *const category_names[BOUNCE_CAT_COUNT] = {
    [BOUNCE_CAT_OTHER] = "other",
    [BOUNCE_CAT_BAD_MAILBOX] = "bad-mailbox",
    [BOUNCE_CAT_BAD_DOMAIN] = "bad-domain",
    [BOUNCE_CAT_INACTIVE_MAILBOX] = "inactive-mailbox",
    [BOUNCE_CAT_QUOTA_ISSUES] = "quota-issues",
    [BOUNCE_CAT_SPAM_RELATED] = "spam-related",
    [BOUNCE_CAT_POLICY_RELATED] = "policy-related",
    [BOUNCE_CAT_ROUTING_ERRORS] = "routing-errors",
    [BOUNCE_CAT_MESSAGE_EXPIRED] = "message-expired",
    [BOUNCE_CAT_PROTOCOL_ERRORS] = "protocol-errors",
    [BOUNCE_CAT_CONTENT_RELATED] = "content-related",
    [BOUNCE_CAT_RELAYING_ISSUES] = "relaying-issues",
    [BOUNCE_CAT_BAD_CONNECTION] = "bad-connection",
    [BOUNCE_CAT_NO_ANSWER_FROM_HOST] = "no-answer-from-host",
    [BOUNCE_CAT_INVALID_SENDER] = "invalid-sender",
    [BOUNCE_CAT_VIRUS_RELATED] = "virus-related",
    [BOUNCE_CAT_BAD_CONFIGURATION] = "bad-configuration",
    [BOUNCE_CAT_ADMIN_BOUNCE] = "admin-bounce",
};

const char *bounce_category_name(enum bounce_category c)
{
    return (unsigned)c < BOUNCE_CAT_COUNT ? category_names[c] : "other";
}

static int category_parse(const char *name, size_t len, enum bounce_category *out)
{
    for (unsigned i = 0; i < BOUNCE_CAT_COUNT; i++)
        if (strlen(category_names[i]) == len && strncmp(category_names[i], name, len) == 0) {
            *out = (enum bounce_category)i;
            return 0;
        }
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line (line[0..len), no line end): a rule appended to set, or 0 with nothing to do, or -1
 * after one "file:line:column: message" line in err. */
static int rule_parse(struct bounce_categories *set, const char *file, unsigned lineno,
                      const char *line, size_t len, struct buf *err)
{
    size_t i = 0;
    while (i < len && is_blank(line[i]))
        i++;
    while (len > i && is_blank(line[len - 1]))
        len--;
    if (i == len || line[i] == '#')
        return 0;
    size_t name_at = i;
    while (i < len && !is_blank(line[i]))
        i++;
    enum bounce_category cat;
    if (category_parse(line + name_at, i - name_at, &cat) < 0) {
        buf_printf(err, "%s:%u:%zu: unknown bounce category '%.*s' (one of", file, lineno,
                   name_at + 1, (int)(i - name_at), line + name_at);
        for (unsigned c = 0; c < BOUNCE_CAT_COUNT; c++)
            buf_printf(err, "%s %s", c ? "," : "", category_names[c]);
        buf_printf(err, ")\n");
        return -1;
    }
    while (i < len && is_blank(line[i]))
        i++;
    if (i == len) {
        buf_printf(err, "%s:%u:%zu: category %s has no pattern after it\n", file, lineno, i + 1,
                   category_names[cat]);
        return -1;
    }
    char *pattern = xstrndup(line + i, len - i);
    struct rule r = {.category = cat};
    int rc = regcomp(&r.re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    free(pattern);
    if (rc != 0) {
        char why[160];
        regerror(rc, &r.re, why, sizeof why);
        buf_printf(err, "%s:%u:%zu: bad pattern for %s: %s\n", file, lineno, i + 1,
                   category_names[cat], why);
        return -1;
    }
    if (set->nrules == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 64;
        set->rules = xrealloc(set->rules, set->cap * sizeof *set->rules);
    }
    set->rules[set->nrules++] = r;
    return 0;
}

/* Every line of text; returns the number of refused lines. */
static int rules_parse(struct bounce_categories *set, const char *file, const char *text,
                       size_t len, struct buf *err)
{
    int problems = 0;
    unsigned lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (rule_parse(set, file, ++lineno, p, n, err) < 0)
            problems++;
        p += n + 1;
    }
    return problems;
}

/* The whole of a pattern file into out: 0, or -1 after a line in err. */
static int file_read(const char *path, struct buf *out, struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        buf_printf(err, "delivery.bounce_category_files: cannot open %s: %s\n", path,
                   strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && out->len <= PATTERN_FILE_MAX)
        buf_append(out, chunk, n);
    int failed = ferror(f);
    fclose(f);
    if (failed)
        buf_printf(err, "delivery.bounce_category_files: cannot read %s\n", path);
    else if (out->len > PATTERN_FILE_MAX)
        buf_printf(err, "delivery.bounce_category_files: %s is larger than %d bytes\n", path,
                   PATTERN_FILE_MAX);
    else
        return 0;
    return -1;
}

int bounce_categories_load(char *const *files, size_t nfiles, struct bounce_categories **out,
                           struct buf *err)
{
    struct bounce_categories *set = xcalloc(1, sizeof *set);
    int problems = 0;
    struct buf text = BUF_INIT;
    for (size_t i = 0; i < nfiles; i++) {
        buf_reset(&text);
        if (file_read(files[i], &text, err) < 0)
            problems++;
        else
            problems +=
                rules_parse(set, files[i], text.data != NULL ? text.data : "", text.len, err);
    }
    buf_free(&text);
    problems += rules_parse(set, SHIPPED_NAME, bounce_categories_shipped,
                            strlen(bounce_categories_shipped), err);
    if (problems > 0) {
        bounce_categories_free(set);
        *out = NULL;
        return -1;
    }
    *out = set;
    return 0;
}

int bounce_categories_load_config(const struct config *cfg, struct bounce_categories **out,
                                  struct buf *err)
{
    return bounce_categories_load(cfg->delivery.bounce_category_files,
                                  cfg->delivery.nbounce_category_files, out, err);
}

void bounce_categories_free(struct bounce_categories *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->nrules; i++)
        regfree(&set->rules[i].re);
    free(set->rules);
    free(set);
}

enum bounce_category bounce_categories_match(const struct bounce_categories *set, const char *reply)
{
    for (size_t i = 0; i < set->nrules; i++)
        if (regexec(&set->rules[i].re, reply, 0, NULL, 0) == 0)
            return set->rules[i].category;
    return BOUNCE_CAT_OTHER;
}

/* The rules bounce_category_of uses: set by bounce_categories_use, else the shipped ones. */
static struct bounce_categories *rules_in_use;

void bounce_categories_use(struct bounce_categories *set)
{
    bounce_categories_free(rules_in_use);
    rules_in_use = set;
}

static const struct bounce_categories *rules_current(void)
{
    if (rules_in_use == NULL) {
        struct buf err = BUF_INIT;
        /* The shipped rules always compile: a unit test loads them. */
        if (bounce_categories_load(NULL, 0, &rules_in_use, &err) < 0)
            abort();
        buf_free(&err);
    }
    return rules_in_use;
}

enum bounce_category bounce_category_of_reply(const char *reply)
{
    return bounce_categories_match(rules_current(), reply != NULL ? reply : "");
}

void bounce_category_outcomes(struct smtp_client_outcome *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].code >= 500)
            o[i].category = (int)bounce_category_of(o[i].code, o[i].enhanced, o[i].text);
}

enum bounce_category bounce_category_of(int code, const char *enhanced, const char *text)
{
    struct buf reply = BUF_INIT;
    if (code != 0)
        buf_printf(&reply, "%d ", code);
    text = text != NULL ? text : "";
    if (enhanced != NULL && enhanced[0] != '\0') {
        buf_printf(&reply, "%s ", enhanced);
        /* A reply's text often repeats its enhanced code: say it once. */
        size_t n = strlen(enhanced);
        if (strncmp(text, enhanced, n) == 0 && text[n] == ' ')
            text += n + 1;
    }
    buf_printf(&reply, "%s", text);
    enum bounce_category c = bounce_category_of_reply(reply.data);
    buf_free(&reply);
    return c;
}
