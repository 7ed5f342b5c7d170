/*
 * Fuzzes the DSN builder with what outsiders control: the remote server's reply text and host name
 * (the input's first two lines) and the original message (the rest). Whatever they hold, the DSN
 * must keep its shape: CRLF line ends only, no line over 998 octets, exactly our eight top-level
 * header fields, and the MIME boundary only on its four delimiter lines; also when the whole
 * original is returned (RET=FULL).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/delivery/dsn.h"

/* Splits off the text up to the next LF (or the end) as a NUL-terminated string. */
static char *next_line(const uint8_t **data, size_t *size)
{
    const uint8_t *lf = memchr(*data, '\n', *size);
    size_t n = lf != NULL ? (size_t)(lf - *data) : *size;
    char *s = malloc(n + 1);
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += lf != NULL ? n + 1 : n;
    *size -= lf != NULL ? n + 1 : n;
    return s;
}

static void check_shape(const char *m, size_t len)
{
    size_t fields = 0, delimiters = 0, line = 0, in_top = 1;
    const char *ct = strstr(m, "boundary=\"");
    if (ct == NULL)
        abort();
    ct += strlen("boundary=\"");
    size_t blen = (size_t)(strchr(ct, '"') - ct);
    for (size_t i = 0; i < len; i = line) {
        const char *crlf = memmem(m + i, len - i, "\r\n", 2);
        if (crlf == NULL)
            abort(); /* the last line lacks its CRLF */
        size_t n = (size_t)(crlf - (m + i));
        if (n > 998 || memchr(m + i, '\n', n) != NULL || memchr(m + i, '\r', n) != NULL)
            abort();
        if (in_top && n == 0)
            in_top = 0;
        else if (in_top && m[i] != ' ' && m[i] != '\t')
            fields++;
        if (n >= blen + 2 && m[i] == '-' && m[i + 1] == '-' && memcmp(m + i + 2, ct, blen) == 0)
            delimiters++;
        line = i + n + 2;
    }
    if (fields != 8 || delimiters != 4)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *diagnostic = next_line(&data, &size);
    char *remote_mta = next_line(&data, &size);
    const struct dsn_rcpt rcpts[] = {
        {.rcpt = "bob@example.net",
         .action = DSN_ACTION_FAILED,
         .status = diagnostic,
         .remote_code = 550,
         .remote_mta = remote_mta,
         .diagnostic = diagnostic,
         .last_attempt = 1700000000},
        {.rcpt = "carol@example.com", .action = DSN_ACTION_DELAYED, .diagnostic = remote_mta},
    };
    struct dsn_params p = {
        .reporting_mta = "mx.sluice.test",
        .queue_id = "Q1",
        .sender = "alice@example.org",
        .arrival = 1700000000,
        .now = 1700000000,
        .rcpts = rcpts,
        .nrcpts = 2,
        .original = (const char *)data,
        .original_len = size,
        .boundary_seed = "Q2",
    };
    for (int full = 0; full < 2; full++) {
        /* The failed recipient alone: a report with a delayed one is a warning, never full. */
        p.return_full = full, p.full_max = 1 << 20, p.nrcpts = full ? 1 : 2;
        struct buf out = BUF_INIT;
        if (dsn_build(&p, &out) != 0)
            abort();
        buf_append(&out, "", 1); /* a NUL for strstr; not part of the message */
        check_shape(out.data, out.len - 1);
        buf_free(&out);
    }
    free(diagnostic);
    free(remote_mta);
    return 0;
}
