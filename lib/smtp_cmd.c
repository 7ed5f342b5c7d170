#include "lib/smtp_cmd.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    {"HELO", SMTP_VERB_HELO},         {"EHLO", SMTP_VERB_EHLO}, {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT},         {"DATA", SMTP_VERB_DATA}, {"BDAT", SMTP_VERB_BDAT},
    {"RSET", SMTP_VERB_RSET},         {"NOOP", SMTP_VERB_NOOP}, {"QUIT", SMTP_VERB_QUIT},
    {"VRFY", SMTP_VERB_VRFY},         {"EXPN", SMTP_VERB_EXPN}, {"HELP", SMTP_VERB_HELP},
    {"STARTTLS", SMTP_VERB_STARTTLS}, {"AUTH", SMTP_VERB_AUTH},
};

/* Control octets (C0 and DEL) other than TAB never belong in a command line. */
static int is_bad_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* esmtp-value octets (RFC 5321 §4.1.2): %d33-60 / %d62-126, plus UTF-8 octets (RFC 6531). */
static int is_value_char(unsigned char c)
{
    return (c >= 33 && c <= 126 && c != '=') || c >= 0x80;
}

int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < len; i++)
        if (is_bad_control((unsigned char)line[i]))
            return -EINVAL;

    size_t vlen = 0;
    while (vlen < len && line[vlen] != ' ')
        vlen++;
    if (vlen == 0)
        return -EINVAL;
    out->verb_text = (struct smtp_slice){line, vlen};
    out->verb = SMTP_VERB_UNKNOWN;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strlen(verbs[i].name) == vlen && strncasecmp(verbs[i].name, line, vlen) == 0) {
            out->verb = verbs[i].verb;
            break;
        }
    }

    size_t start = vlen;
    while (start < len && line[start] == ' ')
        start++;
    size_t end = len;
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    out->arg = (struct smtp_slice){line + start, end - start};
    return 0;
}

int smtp_cmd_parse_bdat(struct smtp_slice arg, uint64_t *size, int *last)
{
    size_t i = 0;
    uint64_t n = 0;
    for (; i < arg.len && arg.ptr[i] >= '0' && arg.ptr[i] <= '9'; i++) {
        unsigned digit = (unsigned)(arg.ptr[i] - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return -EINVAL;
        n = n * 10 + digit;
    }
    if (i == 0 || (i < arg.len && arg.ptr[i] != ' '))
        return -EINVAL;
    while (i < arg.len && arg.ptr[i] == ' ')
        i++;
    int marker = arg.len - i == 4 && strncasecmp(arg.ptr + i, "LAST", 4) == 0;
    if (i < arg.len && !marker)
        return -EINVAL;
    *size = n;
    *last = marker;
    return 0;
}

/* Length of the path starting at s[0] == '<': up to and including the first '>' that is not inside
 * a quoted string, or 0 when there is none. smtp_addr_parse() validates the contents; it reads
 * quotes the same way, so both agree on where the path ends. */
static size_t path_length(const char *s, size_t len)
{
    int quoted = 0;
    for (size_t i = 1; i < len; i++) {
        if (quoted && s[i] == '\\')
            i++; /* quoted-pair: the next octet is literal */
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == '>')
            return i + 1;
    }
    return 0;
}

/* Parses one "keyword[=value]" of length len into p. */
static int parse_param(const char *s, size_t len, struct smtp_param *p)
{
    size_t klen = 0;
    while (klen < len && s[klen] != '=')
        klen++;
    if (klen == 0 || !is_alnum((unsigned char)s[0]))
        return -EINVAL;
    for (size_t i = 1; i < klen; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
            return -EINVAL;
    p->key = (struct smtp_slice){s, klen};
    p->value = (struct smtp_slice){NULL, 0};
    if (klen == len)
        return 0;
    const char *v = s + klen + 1;
    size_t vlen = len - klen - 1;
    if (vlen == 0) /* esmtp-value is 1* octets */
        return -EINVAL;
    for (size_t i = 0; i < vlen; i++)
        if (!is_value_char((unsigned char)v[i]))
            return -EINVAL;
    p->value = (struct smtp_slice){v, vlen};
    return 0;
}

int smtp_cmd_parse_path_args(struct smtp_slice arg, const char *prefix, struct smtp_path_args *out)
{
    memset(out, 0, sizeof *out);
    const char *s = arg.ptr;
    size_t len = arg.len;
    size_t plen = strlen(prefix);
    if (len < plen || strncasecmp(s, prefix, plen) != 0)
        return -EINVAL;
    size_t i = plen;
    while (i < len && s[i] == ' ')
        i++;
    if (i == len || s[i] != '<')
        return -EINVAL;
    size_t path_len = path_length(s + i, len - i);
    if (path_len == 0)
        return -EINVAL;
    out->path = (struct smtp_slice){s + i, path_len};
    i += path_len;
    if (i < len && s[i] != ' ')
        return -EINVAL; /* "<a@b>SIZE=1": parameters must be separated from the path */

    for (;;) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            return 0;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (out->nparams == SMTP_PARAMS_MAX)
            return -E2BIG;
        int rc = parse_param(s + start, i - start, &out->params[out->nparams]);
        if (rc < 0)
            return rc;
        out->nparams++;
    }
}

const struct smtp_param *smtp_param_find(const struct smtp_path_args *args, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < args->nparams; i++) {
        const struct smtp_param *p = &args->params[i];
        if (p->key.len == klen && strncasecmp(p->key.ptr, key, klen) == 0)
            return p;
    }
    return NULL;
}
