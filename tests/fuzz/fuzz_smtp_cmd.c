/*
 * Fuzzes the command parser and, for every line it accepts, the MAIL/RCPT argument parser and the
 * address parser behind it, as the session chains them. Results must be slices of the input with
 * the documented shape, and rebuilding "verb SP arg" must parse to the same command.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/smtp_addr.h"
#include "lib/smtp_cmd.h"

static void check_inside(struct smtp_slice s, const char *start, size_t len)
{
    if (s.len > 0 && (s.ptr < start || s.ptr + s.len > start + len))
        abort();
}

static void check_path_args(struct smtp_slice arg, const char *prefix)
{
    struct smtp_path_args args;
    int rc = smtp_cmd_parse_path_args(arg, prefix, &args);
    if (rc != 0) {
        if (rc != -EINVAL && rc != -E2BIG)
            abort();
        return;
    }
    check_inside(args.path, arg.ptr, arg.len);
    if (args.path.len < 2 || args.path.ptr[0] != '<' || args.path.ptr[args.path.len - 1] != '>')
        abort();
    if (args.nparams > SMTP_PARAMS_MAX)
        abort();
    for (size_t i = 0; i < args.nparams; i++) {
        const struct smtp_param *p = &args.params[i];
        check_inside(p->key, arg.ptr, arg.len);
        check_inside(p->value, arg.ptr, arg.len);
        if (p->key.len == 0 || memchr(p->key.ptr, '=', p->key.len) ||
            memchr(p->key.ptr, ' ', p->key.len) || (p->value.ptr == NULL) != (p->value.len == 0) ||
            (p->value.len && memchr(p->value.ptr, ' ', p->value.len)))
            abort();
        /* Lookup by a key finds the first parameter with that key, in any case. */
        char key[SMTP_CMD_LINE_MAX];
        if (p->key.len < sizeof key) {
            memcpy(key, p->key.ptr, p->key.len);
            key[p->key.len] = '\0';
            const struct smtp_param *found = smtp_param_find(&args, key);
            if (found == NULL || found > p || found->key.len != p->key.len ||
                strncasecmp(found->key.ptr, key, p->key.len) != 0)
                abort();
        }
    }
    struct smtp_addr addr;
    smtp_addr_parse(args.path.ptr, args.path.len,
                    SMTP_ADDR_ALLOW_NULL | SMTP_ADDR_ALLOW_POSTMASTER | SMTP_ADDR_ALLOW_UTF8, &addr,
                    NULL);
}

/* A BDAT argument that parses is digits, then nothing or spaces and LAST; printing what was read
 * back in that form must read the same. */
static void check_bdat(struct smtp_slice arg)
{
    uint64_t size;
    int last;
    int rc = smtp_cmd_parse_bdat(arg, &size, &last);
    if (rc != 0) {
        if (rc != -EINVAL)
            abort();
        return;
    }
    if (arg.len == 0 || arg.ptr[0] < '0' || arg.ptr[0] > '9' || (last != 0 && last != 1))
        abort();
    char text[40];
    int n = snprintf(text, sizeof text, "%llu%s", (unsigned long long)size, last ? " LAST" : "");
    uint64_t size2;
    int last2;
    struct smtp_slice again = {text, (size_t)n};
    if (smtp_cmd_parse_bdat(again, &size2, &last2) != 0 || size2 != size || last2 != last)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct smtp_cmd cmd;
    if (smtp_cmd_parse(line, size, &cmd) != 0)
        return 0;
    check_inside(cmd.verb_text, line, size);
    check_inside(cmd.arg, line, size);
    if (cmd.verb_text.len == 0 || memchr(cmd.verb_text.ptr, ' ', cmd.verb_text.len))
        abort();
    if (cmd.arg.len > 0) {
        char first = cmd.arg.ptr[0], last = cmd.arg.ptr[cmd.arg.len - 1];
        if (first == ' ' || last == ' ' || last == '\t')
            abort();
    }

    /* Rebuild the line in its tidiest form: same verb, same argument. */
    size_t len = cmd.verb_text.len + (cmd.arg.len ? 1 + cmd.arg.len : 0);
    char *tidy = malloc(len ? len : 1);
    if (tidy == NULL)
        return 0;
    memcpy(tidy, cmd.verb_text.ptr, cmd.verb_text.len);
    if (cmd.arg.len) {
        tidy[cmd.verb_text.len] = ' ';
        memcpy(tidy + cmd.verb_text.len + 1, cmd.arg.ptr, cmd.arg.len);
    }
    struct smtp_cmd again;
    if (smtp_cmd_parse(tidy, len, &again) != 0 || again.verb != cmd.verb ||
        again.arg.len != cmd.arg.len || memcmp(again.arg.ptr, cmd.arg.ptr, cmd.arg.len) != 0)
        abort();
    free(tidy);

    check_path_args(cmd.arg, "FROM:");
    check_path_args(cmd.arg, "TO:");
    check_bdat(cmd.arg);
    return 0;
}
