#include "lib/smtp_dsn.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *word;
    unsigned bit;
} notify_words[] = {
    {"NEVER", SMTP_DSN_NOTIFY_NEVER},
    {"SUCCESS", SMTP_DSN_NOTIFY_SUCCESS},
    {"FAILURE", SMTP_DSN_NOTIFY_FAILURE},
    {"DELAY", SMTP_DSN_NOTIFY_DELAY},
};

int smtp_dsn_notify_parse(struct smtp_slice value)
{
    unsigned bits = 0;
    size_t pos = 0;
    for (;;) {
        const char *comma = memchr(value.ptr + pos, ',', value.len - pos);
        size_t end = comma != NULL ? (size_t)(comma - value.ptr) : value.len;
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof notify_words / sizeof notify_words[0]; i++)
            if (strlen(notify_words[i].word) == end - pos &&
                strncasecmp(value.ptr + pos, notify_words[i].word, end - pos) == 0)
                bit = notify_words[i].bit;
        if (bit == 0 || (bits & bit))
            return -EINVAL;
        bits |= bit;
        if (comma == NULL)
            break;
        pos = end + 1;
    }
    /* §4.1: NEVER stands alone. */
    if ((bits & SMTP_DSN_NOTIFY_NEVER) && bits != SMTP_DSN_NOTIFY_NEVER)
        return -EINVAL;
    return (int)bits;
}

void smtp_dsn_notify_format(unsigned notify, struct buf *out)
{
    const char *sep = "";
    for (size_t i = 0; i < sizeof notify_words / sizeof notify_words[0]; i++)
        if (notify & notify_words[i].bit) {
            buf_printf(out, "%s%s", sep, notify_words[i].word);
            sep = ",";
        }
}

int smtp_dsn_is_rcpt_param(const struct smtp_param *p)
{
    return p->value.ptr != NULL &&
           ((p->key.len == 6 && strncasecmp(p->key.ptr, "NOTIFY", 6) == 0) ||
            (p->key.len == 5 && strncasecmp(p->key.ptr, "ORCPT", 5) == 0));
}

int smtp_dsn_ret_parse(struct smtp_slice value)
{
    if (value.len == 4 && strncasecmp(value.ptr, "FULL", 4) == 0)
        return SMTP_DSN_RET_FULL;
    if (value.len == 4 && strncasecmp(value.ptr, "HDRS", 4) == 0)
        return SMTP_DSN_RET_HDRS;
    return -EINVAL;
}

static int hex_upper(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* xtext-char (§4): "!".."~" except "+" and "=". */
static int is_xchar(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '+' && c != '=';
}

int smtp_xtext_decode(struct smtp_slice value, struct buf *out)
{
    size_t start = out->len;
    for (size_t i = 0; i < value.len; i++) {
        unsigned char c = (unsigned char)value.ptr[i];
        if (c == '+') {
            int hi = i + 2 < value.len ? hex_upper(value.ptr[i + 1]) : -1;
            int lo = hi >= 0 ? hex_upper(value.ptr[i + 2]) : -1;
            c = (unsigned char)(hi * 16 + lo);
            /* hexchar (§4): an encoded octet of printable ASCII; we refuse controls and 8-bit
             * octets, which no address type we pass on may carry. */
            if (lo < 0 || c < ' ' || c > '~') {
                out->len = start;
                return -EINVAL;
            }
            i += 2;
        } else if (!is_xchar(c)) {
            out->len = start;
            return -EINVAL;
        }
        buf_append(out, (const char *)&c, 1);
    }
    *buf_reserve(out, 1) = '\0';
    return 0;
}

void smtp_xtext_encode(const char *text, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_xchar(c))
            buf_append(out, (const char *)&c, 1);
        else
            buf_printf(out, "+%02X", c);
    }
    *buf_reserve(out, 1) = '\0';
}

int smtp_dsn_envid_parse(struct smtp_slice value, struct buf *out)
{
    if (value.len == 0 || value.len > SMTP_DSN_ENVID_MAX)
        return -EINVAL;
    return smtp_xtext_decode(value, out);
}

/* atom (RFC 5322 §3.2.3): atext octets. */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int smtp_dsn_orcpt_parse(struct smtp_slice value, struct buf *out)
{
    const char *semi = memchr(value.ptr, ';', value.len);
    if (value.len > SMTP_DSN_ORCPT_MAX || semi == NULL || semi == value.ptr ||
        semi == value.ptr + value.len - 1)
        return -EINVAL;
    size_t type_len = (size_t)(semi - value.ptr);
    for (size_t i = 0; i < type_len; i++)
        if (!is_atext((unsigned char)value.ptr[i]))
            return -EINVAL;
    size_t start = out->len;
    buf_append(out, value.ptr, type_len + 1);
    struct smtp_slice addr = {semi + 1, value.len - type_len - 1};
    if (smtp_xtext_decode(addr, out) < 0) {
        out->len = start;
        return -EINVAL;
    }
    return 0;
}
