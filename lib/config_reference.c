/*
 * The key table rendered as the reference (`sluice config-keys`, docs/configuration.md), and the
 * embedded configuration that runs when no file is given.
 */
#include "lib/config_int.h"

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

void config_describe_keys(struct buf *out)
{
    buf_append_str(out, "| Key | Type | Default | Bounds | Description |\n"
                        "|---|---|---|---|---|\n");
    for (size_t i = 0; i < config_key_count; i++) {
        const struct config_key *k = &config_key_table[i];
        buf_printf(out, "| `%s` | ", k->name);
        describe_type(k, out);
        buf_append_str(out, " | ");
        if (k->flags & CONFIG_KEY_REQUIRED) {
            buf_append_str(out, "required");
        } else if (k->def_doc != NULL) {
            append_cell(out, k->def_doc);
        } else if (k->def != NULL) {
            buf_append_str(out, "`");
            append_cell(out, k->def);
            buf_append_str(out, "`");
        } else if (k->type != CONFIG_SECTION) {
            buf_append_str(out, "none");
        }
        buf_append_str(out, " | ");
        if (k->type == CONFIG_SIZE || k->type == CONFIG_DURATION || k->type == CONFIG_UINT ||
            k->type == CONFIG_DURATIONS) {
            enum config_key_type type = k->type == CONFIG_DURATIONS ? CONFIG_DURATION : k->type;
            char lo[32], hi[32];
            config_format_value(type, k->min, lo, sizeof lo);
            config_format_value(type, k->max, hi, sizeof hi);
            buf_printf(out, "%s..%s", lo, hi);
        }
        buf_append_str(out, " | ");
        append_cell(out, k->doc);
        buf_append_str(out, " |\n");
    }
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
