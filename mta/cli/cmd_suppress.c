/*
 * `sluice suppress`: the suppression list (policy/suppression.h) seen and edited from the command
 * line. It opens the store itself rather than asking the daemon: LMDB lets several processes use
 * one store at once (writers take turns, readers never wait), the daemon reads it afresh at each
 * RCPT, so an entry added here counts for the next RCPT, and the list stays reachable while the
 * daemon is stopped. Run it as the daemon's user (or as root, whose files the daemon takes over
 * when it starts as root).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/config.h"
#include "lib/line_file.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"
#include "mta/config_load.h"
#include "policy/suppression.h"
#include "policy/suppression_csv.h"

struct suppress_opts {
    const char *tenant; /* NULL: the global list (list and export: every list) */
    const char *expires;
    const char *note;
};

static int list_on_entry(const struct suppression_entry *e, void *arg)
{
    int64_t now = *(const int64_t *)arg;
    char added[SUPPRESSION_TIME_LEN + 1], expiry[SUPPRESSION_TIME_LEN + 1] = "never";
    suppression_time_format(e->added, added);
    if (e->expiry != 0)
        suppression_time_format(e->expiry, expiry);
    printf("%s %s %s added %s expires %s%s%s%s\n", e->address,
           e->tenant[0] ? e->tenant : "(global)", suppression_source_name(e->source), added, expiry,
           e->expiry != 0 && e->expiry <= now ? " (expired)" : "", e->note[0] ? " " : "", e->note);
    return 0;
}

static int export_on_entry(const struct suppression_entry *e, void *arg)
{
    struct buf *out = arg;
    suppression_csv_format(e, out);
    if (out->len >= 64 * 1024) { /* written as it goes: a big list is not held in memory */
        fwrite(out->data, 1, out->len, stdout);
        buf_reset(out);
    }
    return 0;
}

struct import {
    int64_t now;
    int header_seen;
    struct suppression_entry *entries;
    size_t n, cap;
    char why[SUPPRESSION_CSV_WHY_MAX];
};

static const char *import_on_line(void *arg, const char *line, size_t len)
{
    struct import *im = arg;
    if (!im->header_seen) {
        im->header_seen = 1;
        if (len == strlen(SUPPRESSION_CSV_HEADER) && memcmp(line, SUPPRESSION_CSV_HEADER, len) == 0)
            return NULL;
        return "the first row is not the header " SUPPRESSION_CSV_HEADER;
    }
    if (im->n == im->cap) {
        im->cap = im->cap ? 2 * im->cap : 256;
        im->entries = realloc(im->entries, im->cap * sizeof *im->entries);
        if (im->entries == NULL)
            abort(); /* a list too big for memory: nothing sensible to do */
    }
    if (suppression_csv_row(line, len, im->now, &im->entries[im->n], im->why) < 0)
        return im->why;
    im->n++;
    return NULL;
}

/* Every row is checked before any is written, and all are written in one transaction: a file
 * with a bad row changes nothing. */
static int suppress_import(struct suppression *st, const char *file, struct buf *err)
{
    struct import im = {.now = time(NULL)};
    int rc = line_file_read(file, "CSV file", import_on_line, &im, err);
    if (rc == 0 && !im.header_seen)
        buf_printf(err, "%s: empty: no header " SUPPRESSION_CSV_HEADER "\n", file);
    else if (rc == 0 && (rc = suppression_put(st, im.entries, im.n, 1)) < 0)
        buf_printf(err, "%s: %s\n", file, strerror(-rc));
    else if (rc == 0)
        printf("imported %zu entries\n", im.n);
    if (rc == -EINVAL)
        buf_printf(err, "%s: nothing imported\n", file);
    free(im.entries);
    return rc == 0 && im.header_seen ? 0 : 1;
}

static int suppress_add(struct suppression *st, const char *address, const struct suppress_opts *o,
                        struct buf *err)
{
    int64_t expiry = 0;
    if (o->expires != NULL && suppression_time_parse(o->expires, &expiry) < 0)
        return command_usage_error("suppress add",
                                   "--expires '%s' is not a UTC time (2027-01-31 or "
                                   "2027-01-31T12:00:00Z)",
                                   o->expires);
    struct suppression_entry e;
    const char *why;
    if (suppression_entry_make(o->tenant, address, SUPPRESSION_MANUAL, time(NULL), expiry, o->note,
                               &e, &why) < 0)
        return command_usage_error("suppress add", "%s", why);
    int rc = suppression_put(st, &e, 1, 1);
    if (rc < 0) {
        buf_printf(err, "suppress add: %s", strerror(-rc));
        return 1;
    }
    printf("suppressed %s for %s\n", e.address, e.tenant[0] ? e.tenant : "every tenant");
    return 0;
}

static int suppress_check(struct suppression *st, const char *address, const char *tenant,
                          struct buf *err)
{
    struct suppression_entry e;
    int found = suppression_check(st, tenant, address, time(NULL), &e);
    if (found < 0) {
        buf_printf(err, "suppress check: %s", strerror(-found));
        return 1;
    }
    if (found == 0) {
        printf("%s: not suppressed\n", address);
        return 3; /* distinct from a failure, like grep's "no match" */
    }
    int64_t now = time(NULL);
    printf("%s: suppressed: ", address);
    list_on_entry(&e, &now);
    return 0;
}

static int suppress_run(struct suppression *st, char **words, const struct suppress_opts *o,
                        struct buf *err)
{
    const char *verb = words[0], *arg = words[1];
    int64_t now = time(NULL);
    if (strcmp(verb, "add") == 0)
        return suppress_add(st, arg, o, err);
    if (strcmp(verb, "check") == 0)
        return suppress_check(st, arg, o->tenant, err);
    if (strcmp(verb, "import") == 0)
        return suppress_import(st, arg, err);
    int rc;
    if (strcmp(verb, "remove") == 0) {
        rc = suppression_remove(st, o->tenant, arg);
        if (rc == 0)
            printf("removed %s from %s\n", arg, o->tenant ? o->tenant : "the global list");
    } else if (strcmp(verb, "list") == 0) {
        rc = suppression_each(st, o->tenant, list_on_entry, &now);
    } else { /* export */
        struct buf out = BUF_INIT;
        buf_printf(&out, SUPPRESSION_CSV_HEADER "\n");
        rc = suppression_each(st, o->tenant, export_on_entry, &out);
        fwrite(out.data, 1, out.len, stdout);
        buf_free(&out);
    }
    if (rc < 0)
        buf_printf(err, "suppress %s: %s%s%s", verb, arg ? arg : "", arg ? ": " : "",
                   rc == -ENOENT ? "not on the list" : strerror(-rc));
    return rc < 0 ? 1 : 0;
}

/* The verbs and the argument each takes. */
static const struct {
    const char *name;
    const char *arg; /* what the one argument is, or NULL for none */
} verbs[] = {
    {"add", "address"}, {"remove", "address"}, {"check", "address"},
    {"list", NULL},     {"import", "file"},    {"export", NULL},
};

/* Checks the verb and its argument: 0, or 2 after a usage error. */
static int suppress_usage(char **words, int nwords, const struct suppress_opts *o)
{
    const char *names[ARRAY_LEN(verbs)];
    int found = -1;
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++) {
        names[i] = verbs[i].name;
        if (nwords > 0 && strcmp(words[0], verbs[i].name) == 0)
            found = (int)i;
    }
    if (nwords == 0)
        return command_usage_error("suppress", "missing verb (add, remove, check, list, import "
                                               "or export)");
    if (found < 0) {
        const char *hint = command_suggest(words[0], names, ARRAY_LEN(names));
        return hint ? command_usage_error("suppress", "unknown verb '%s' (did you mean %s?)",
                                          words[0], hint)
                    : command_usage_error("suppress", "unknown verb '%s'", words[0]);
    }
    char name[32];
    snprintf(name, sizeof name, "suppress %s", verbs[found].name);
    if (verbs[found].arg != NULL && nwords < 2)
        return command_usage_error(name, "missing %s", verbs[found].arg);
    if (nwords > (verbs[found].arg != NULL ? 2 : 1))
        return command_usage_error(name, "unexpected argument '%s'", words[nwords - 1]);
    if ((o->expires != NULL || o->note != NULL) && strcmp(words[0], "add") != 0)
        return command_usage_error(name, "--expires and --note go with suppress add only");
    if (o->tenant != NULL && (strcmp(words[0], "import") == 0))
        return command_usage_error(name, "--tenant does not go with import (the CSV names it)");
    return 0;
}

int cmd_suppress(int argc, char **argv)
{
    const char *path = NULL;
    struct suppress_opts o = {0};
    char *words[3] = {NULL, NULL, NULL};
    int nwords = 0;
    const struct command_option opts[] = {
        {"--config", "-c", &path, NULL},
        {"--tenant", NULL, &o.tenant, NULL},
        {"--expires", NULL, &o.expires, NULL},
        {"--note", NULL, &o.note, NULL},
    };
    if (command_parse("suppress", argc, argv, opts, ARRAY_LEN(opts), words, 2, &nwords) != 0 ||
        suppress_usage(words, nwords, &o) != 0)
        return 2;
    struct buf err = BUF_INIT;
    /* Only server.spool and suppression.path are needed: a broken key must not hide the list. */
    struct config *cfg = config_load_ungated(path, &err);
    if (cfg == NULL)
        return command_failed(&err);
    if (!cfg->suppression.enabled && strcmp(words[0], "export") != 0)
        fprintf(stderr, "sluice: warning: suppression.enabled is false: the daemon does not "
                        "check this list\n");
    struct buf dir = BUF_INIT;
    suppression_dir(cfg, &dir);
    struct suppression *st;
    int status = 1;
    if (suppression_open(dir.data, NULL, &st, &err) == 0) {
        status = suppress_run(st, words, &o, &err);
        suppression_close(st);
    }
    if (err.len > 0)
        fprintf(stderr, "sluice: %.*s%s", (int)err.len, err.data,
                err.data[err.len - 1] == '\n' ? "" : "\n");
    buf_free(&dir);
    buf_free(&err);
    config_unref(cfg);
    return status;
}
