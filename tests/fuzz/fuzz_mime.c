/*
 * Fuzzes the streaming MIME parser: no crash, leak or unbounded growth whatever the bytes, and the
 * result (status, blocked name or problem, counts) is the same fed whole or in pieces of the size
 * given by the first byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mime.h"
#include "tests/fuzz/fuzz.h"

static const char *const blocked[] = {"exe", "scr", "js", "bat"};

static void on_filename(void *arg, const char *raw, const char *decoded)
{
    size_t *total = arg;
    /* Both strings are NUL-terminated and within the cap. */
    if (strlen(raw) > MIME_NAME_MAX || strlen(decoded) > MIME_NAME_MAX)
        abort();
    (*total)++;
}

static struct mime_parser *parse(const char *in, size_t len, size_t step, size_t *names)
{
    struct mime_parser *p = mime_parser_new(blocked, 4, on_filename, names);
    for (size_t off = 0; off < len; off += step)
        mime_parser_feed(p, in + off, fuzz_piece(len, off, step));
    mime_parser_finish(p);
    return p;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_split s;
    if (!fuzz_split(data, size, 31, &s))
        return 0;
    size_t names_whole = 0, names_pieces = 0;
    struct mime_parser *whole = parse(s.in, s.len, s.whole, &names_whole);
    struct mime_parser *pieces = parse(s.in, s.len, s.step, &names_pieces);
    const struct mime_result *a = mime_parser_finish(whole);
    const struct mime_result *b = mime_parser_finish(pieces);
    if (a->status != b->status || !same_text(a->name, b->name) ||
        !same_text(a->problem, b->problem) || a->parts != b->parts ||
        a->filenames != b->filenames || a->unterminated != b->unterminated ||
        names_whole != names_pieces || a->parts > MIME_PARTS_MAX + 1)
        abort();
    struct policy_decision d = mime_parser_verdict(whole);
    if ((d.verdict == POLICY_ACCEPT) != (a->status == MIME_CLEAN))
        abort();
    for (const char *t = d.text; *t; t++)
        if (*t < 0x20 || *t > 0x7e)
            abort();
    mime_parser_free(whole);
    mime_parser_free(pieces);
    return 0;
}
