/*
 * Fuzzes the bounce classifier (mta/delivery/bounce_class.c) with what a remote server can make it
 * read: the input is a stream of replies, parsed by the client's reply parser and classified as
 * delivery does (the enhanced code as "c.s.d", the lines joined with "; "). The class must be one
 * of the enum and only 2xx is NONE; phrases match in any case, so the text upper- or lower-cased
 * gets the same class; an absent enhanced code ("" or NULL) is the same; only RATE_LIMIT throttles.
 * The raw input is also classified as Sluice's own failure text (code 0) with a malformed enhanced
 * code.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/smtp_reply.h"
#include "mta/delivery/bounce_class.h"

static void recase(const char *in, char *out, int upper)
{
    for (; *in != '\0'; in++, out++)
        *out = (char)(upper ? toupper((unsigned char)*in) : tolower((unsigned char)*in));
    *out = '\0';
}

static void check(int code, const char *enhanced, const char *text)
{
    enum bounce_class c = bounce_classify(code, enhanced, text);
    if (c > BOUNCE_OTHER || bounce_class_name(c) == NULL ||
        bounce_class_is_throttle(c) != (c == BOUNCE_RATE_LIMIT))
        abort();
    if ((c == BOUNCE_NONE) != (code >= 200 && code < 300))
        abort();
    if ((enhanced == NULL || enhanced[0] == '\0') &&
        bounce_classify(code, enhanced == NULL ? "" : NULL, text) != c)
        abort();
    if (text == NULL)
        return;
    size_t len = strlen(text);
    char *other = malloc(len + 1);
    recase(text, other, 1);
    if (bounce_classify(code, enhanced, other) != c)
        abort();
    recase(text, other, 0);
    if (bounce_classify(code, enhanced, other) != c)
        abort();
    free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    size_t off = 0;
    while (off < size) {
        size_t used;
        enum smtp_reply_status st = smtp_reply_parser_feed(&p, data + off, size - off, &used);
        off += used;
        if (st != REPLY_DONE)
            break;
        const struct smtp_reply *r = &p.reply;
        char enhanced[16] = "";
        if (r->enhanced.cls != 0)
            snprintf(enhanced, sizeof enhanced, "%u.%u.%u", r->enhanced.cls, r->enhanced.subject,
                     r->enhanced.detail);
        struct buf text = BUF_INIT;
        smtp_reply_text_join(r, "; ", &text);
        check(r->code, enhanced, text.data);
        check(r->code, enhanced, NULL);
        buf_free(&text);
    }
    smtp_reply_parser_close(&p);

    /* Our own failure: no code, any text, and an enhanced code that may not parse. */
    char *raw = malloc(size + 1);
    memcpy(raw, data, size);
    raw[size] = '\0';
    char enhanced[16];
    snprintf(enhanced, sizeof enhanced, "%s", raw);
    check(0, raw, raw);
    check(0, enhanced, raw + strlen(enhanced));
    free(raw);
    return 0;
}
