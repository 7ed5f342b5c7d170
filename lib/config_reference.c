/*
 * The key table rendered as the reference (`sluice config-keys`, docs/configuration.md), and the
 * embedded configuration that runs when no file is given.
 */
#include "lib/config_int.h"

#include <stdio.h>

#include "lib/manpage.h"

static void describe_type(const struct config_key *k, struct buf *out)
{
    static const char *const types[] = {
        [CONFIG_SECTION] = "section",
        [CONFIG_STRING] = "string",
        [CONFIG_PATH] = "path",
        [CONFIG_SIZE] = "size",
        [CONFIG_DURATION] = "duration",
        [CONFIG_UINT] = "integer",
        [CONFIG_ENUM] = "one of",
        [CONFIG_STRINGS] = "list of strings",
        [CONFIG_CIDRS] = "list of networks",
        [CONFIG_ADDRESS] = "address",
        [CONFIG_LISTENERS] = "list of listeners",
        [CONFIG_DOMAINS] = "map of domains",
        [CONFIG_RATE] = "rate",
        [CONFIG_DURATIONS] = "list of durations",
        [CONFIG_COUNTS] = "list of numbers",
        [CONFIG_NAMES] = "name or list of names",
        [CONFIG_LIST] = "list",
        [CONFIG_EGRESS_POOLS] = "map of pools",
        [CONFIG_SHAPING_RULES] = "list of rules",
    };
    buf_append_str(out, types[k->type]);
    if (k->type == CONFIG_ENUM) {
        char words[128];
        config_join_words(k->names, words, sizeof words);
        buf_printf(out, ": %s", words);
    }
}

/* Appends text with '|' escaped, so that it stays in its table cell. */
static void append_cell(struct buf *out, const char *text)
{
    for (; *text; text++) {
        if (*text == '|')
            buf_append_str(out, "\\");
        buf_append(out, text, 1);
    }
}

/* The key's default as text; *literal says it is a value (shown as code), not words about it. */
static const char *key_default(const struct config_key *k, int *literal)
{
    *literal = 0;
    if (k->flags & CONFIG_KEY_REQUIRED)
        return "required";
    if (k->def_doc != NULL)
        return k->def_doc;
    if (k->def != NULL) {
        *literal = 1;
        return k->def;
    }
    return k->type != CONFIG_SECTION ? "none" : NULL;
}

/* "lo..hi" for the keys that have bounds, else "". */
static void key_bounds(const struct config_key *k, char *out, size_t size)
{
    out[0] = '\0';
    if (k->type == CONFIG_SIZE || k->type == CONFIG_DURATION || k->type == CONFIG_UINT ||
        k->type == CONFIG_DURATIONS || k->type == CONFIG_COUNTS) {
        enum config_key_type type = config_item_type(k->type);
        char lo[32], hi[32];
        config_format_value(type, k->min, lo, sizeof lo);
        config_format_value(type, k->max, hi, sizeof hi);
        snprintf(out, size, "%s..%s", lo, hi);
    }
}

static void describe_markdown(const struct config_key *k, struct buf *out)
{
    int literal;
    const char *def = key_default(k, &literal);
    char bounds[80];
    key_bounds(k, bounds, sizeof bounds);
    buf_printf(out, "| `%s` | ", k->name);
    describe_type(k, out);
    buf_append_str(out, " | ");
    if (def != NULL) {
        buf_append_str(out, literal ? "`" : "");
        append_cell(out, def);
        buf_append_str(out, literal ? "`" : "");
    }
    buf_printf(out, " | %s | ", bounds);
    append_cell(out, k->doc);
    buf_append_str(out, " |\n");
}

/* The line under a key's name in the other formats: "type; default D; bounds B". */
static void describe_summary(const struct config_key *k, struct buf *out)
{
    int literal;
    const char *def = key_default(k, &literal);
    char bounds[80];
    key_bounds(k, bounds, sizeof bounds);
    describe_type(k, out);
    if (def != NULL)
        buf_printf(out, "; %s%s", literal ? "default " : "", def);
    if (bounds[0] != '\0')
        buf_printf(out, "; %s", bounds);
}

static void describe_roff(const struct config_key *k, struct buf *out)
{
    struct buf summary = BUF_INIT;
    describe_summary(k, &summary);
    buf_append_str(out, ".TP\n.B ");
    manpage_roff_str(out, k->name);
    buf_append_str(out, "\n.I ");
    manpage_roff(out, summary.data, summary.len);
    buf_append_str(out, "\n.br\n");
    manpage_roff_str(out, k->doc);
    buf_append_str(out, "\n");
    buf_free(&summary);
}

/* Plain text, as `sluice help sluice.yaml` prints it. */
#define TEXT_WIDTH 78

static void describe_text(const struct config_key *k, struct buf *out)
{
    struct buf summary = BUF_INIT;
    describe_summary(k, &summary);
    buf_append(&summary, "", 1); /* a string for manpage_wrap */
    buf_printf(out, "       %s\n", k->name);
    manpage_wrap(out, summary.data, 11, TEXT_WIDTH);
    manpage_wrap(out, k->doc, 11, TEXT_WIDTH);
    buf_append_str(out, "\n");
    buf_free(&summary);
}

void config_describe_keys_as(enum config_reference_format format, struct buf *out)
{
    if (format == CONFIG_REFERENCE_MARKDOWN)
        buf_append_str(out, "| Key | Type | Default | Bounds | Description |\n"
                            "|---|---|---|---|---|\n");
    for (size_t i = 0; i < config_key_count; i++) {
        const struct config_key *k = &config_key_table[i];
        if (format == CONFIG_REFERENCE_MARKDOWN)
            describe_markdown(k, out);
        else if (format == CONFIG_REFERENCE_ROFF)
            describe_roff(k, out);
        else
            describe_text(k, out);
    }
}

void config_describe_keys(struct buf *out)
{
    config_describe_keys_as(CONFIG_REFERENCE_MARKDOWN, out);
}

static const char default_yaml[] =
    "# Sluice's embedded configuration, used when no -c FILE is given: it accepts mail on\n"
    "# 127.0.0.1:2525 and relays for this host only. docs/configuration.md describes every key.\n"
    "server:\n"
    "  spool: ./var/spool\n"
    "listeners:\n"
    "  - name: default\n"
    "    address: \"127.0.0.1:2525\"\n"
    "    role: submission      # relays for relay.trusted_networks\n"
    "relay:\n"
    "  trusted_networks: [\"127.0.0.0/8\", \"::1/128\"]\n";

const char *config_default_yaml(void)
{
    return default_yaml;
}
