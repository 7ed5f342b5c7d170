/*
 * sluice(8) and sluice.yaml(5), as roff or plain text (see manual.h). Each page is a header, the
 * generated part (the commands, or the keys; sluice(8) also the log events) and sections of prose
 * written once for both formats.
 */
#include "mta/cli/manual.h"

#include <errno.h>
#include <string.h>

#include "lib/config.h"
#include "lib/log_events.h"
#include "lib/manpage.h"
#include "lib/uvutil.h"
#include "mta/cli/commands.h"

#define TEXT_WIDTH 78
#define TEXT_INDENT 7 /* as man indents a section's text */

/* A section of prose: paragraphs separated by "\n\n"; a paragraph starting with "  " is a list
 * entry "  TAG  TEXT" (tag and text apart by two spaces or more). */
struct manual_section {
    const char *title;
    const char *text;
};

struct manual_page {
    const char *name;
    int section;
    const char *summary;                         /* after "name - " in NAME */
    const char *manual;                          /* the manual's title in the page header */
    const struct manual_section *before, *after; /* around the generated part; title NULL ends */
    const char *generated_title;
    void (*generate)(enum manual_format format, struct buf *out);
    const char *events_title; /* the log event reference after the generated part; NULL: none */
};

static const struct manual_section sluice_before[] = {
    {"DESCRIPTION",
     "Sluice is an SMTP mail transfer agent: a single event-driven process that accepts mail on "
     "its listeners, keeps it in a durable spool, signs it with DKIM and delivers it to the "
     "recipients' mail exchangers, with per-destination shaping, retries and bounces. It never "
     "relays for strangers: the relay decision is one stage that no rule can bypass.\n\n"
     "Started as root, sluice run reads its keys, binds its ports, hands its spool to "
     "server.user (unset: the system user sluice) and becomes that user before it accepts a "
     "connection. Every command that reads a configuration takes -c FILE; without it the "
     "embedded default applies (a submission listener on 127.0.0.1:2525)."},
    {NULL, NULL},
};

static const struct manual_section sluice_after[] = {
    {"SIGNALS",
     "  SIGHUP  Reload: the configuration, keys, certificates, users and recipients files are "
     "read again; a file with an error changes nothing. The log file is reopened, so a rotated "
     "log is let go.\n\n"
     "  SIGTERM, SIGINT  Stop: no new connections; transactions in progress may finish within "
     "server.shutdown_grace; deliveries in flight are deferred, never lost."},
    {"EXIT STATUS", "  0  success\n\n  1  failure (a configuration that does not load, a daemon "
                    "that cannot start)\n\n  2  usage error"},
    {"FILES", "  /etc/sluice/sluice.yaml  the configuration (see sluice.yaml(5))\n\n"
              "  /var/spool/sluice  the queue and the control socket\n\n"
              "  /var/log/sluice/sluice.log  the event log, one JSON object per line"},
    {"SEE ALSO", "sluice.yaml(5), systemctl(1), /usr/share/doc/sluice/"},
    {NULL, NULL},
};

static const struct manual_section yaml_before[] = {
    {"SYNOPSIS", "/etc/sluice/sluice.yaml"},
    {"DESCRIPTION",
     "sluice(8) reads one YAML file, given with -c FILE. Keys are written here with dots between "
     "the mappings they sit in (server.log.level is level: under log: under server:); [] marks a "
     "list of mappings and * a name of your choice (a domain, a pool). Every key has a default "
     "or is marked required, so an empty file is valid.\n\n"
     "Unknown keys, a key written twice, tabs in the indentation and anchors or tags are errors. "
     "Every error names the file, line and column, then the key. sluice check-config -c FILE "
     "validates a file without starting anything; a reload (SIGHUP) with an error in the file "
     "changes nothing.\n\n"
     "Sizes are octets, or with a suffix k, M or G (powers of 1024). Durations are 500ms, 30s, "
     "5m, 1h or 2d; a plain number is seconds. Rates are COUNT/PERIOD (6/s, 100/m, 500/10m) or "
     "none."},
    {NULL, NULL},
};

static const struct manual_section yaml_after[] = {
    {"EXAMPLE",
     "The configuration the package installs accepts mail for relay on 127.0.0.1:587 from this "
     "host only; /usr/share/doc/sluice/ has guides to an outbound set-up, an inbound MX and the "
     "keys that Postfix users know under other names."},
    {"SEE ALSO", "sluice(8), /usr/share/doc/sluice/docs/configuration.md"},
    {NULL, NULL},
};

/* Before the event reference in sluice(8). */
static const char events_intro[] =
    "The log has one JSON object per line, each with ts (UTC), level and event; the fields below "
    "follow, those that apply. Every event, its levels, fields and meaning:";

static void generate_commands(enum manual_format format, struct buf *out);
static void generate_keys(enum manual_format format, struct buf *out)
{
    config_describe_keys_as(format == MANUAL_ROFF ? CONFIG_REFERENCE_ROFF : CONFIG_REFERENCE_TEXT,
                            out);
}

static const struct manual_page pages[] = {
    {"sluice", 8, "the Sluice SMTP mail transfer agent", "System Administration", sluice_before,
     sluice_after, "COMMANDS", generate_commands, "EVENTS"},
    {"sluice.yaml", 5, "configuration of the Sluice mail transfer agent", "File Formats",
     yaml_before, yaml_after, "KEYS", generate_keys, NULL},
};

const char *const manual_pages[] = {"sluice", "sluice.yaml", NULL};

static void section_title(enum manual_format format, const char *title, struct buf *out)
{
    if (format == MANUAL_ROFF)
        buf_printf(out, ".SH %s\n", title);
    else
        buf_printf(out, "%s\n", title);
}

/* One paragraph (len octets of text, lines joined by spaces): a list entry or prose. */
static void paragraph(enum manual_format format, const char *text, size_t len, int indent,
                      struct buf *out)
{
    struct buf flat = BUF_INIT, tag = BUF_INIT;
    for (size_t i = 0; i < len; i++)
        buf_append(&flat, text[i] == '\n' ? " " : &text[i], 1);
    buf_append(&flat, "", 1);
    const char *body = flat.data;
    if (strncmp(body, "  ", 2) == 0) {
        body += 2;
        const char *gap = strstr(body, "  ");
        size_t tag_len = gap != NULL ? (size_t)(gap - body) : strlen(body);
        buf_append(&tag, body, tag_len);
        buf_append(&tag, "", 1);
        body += tag_len;
        while (*body == ' ')
            body++;
    }
    if (format == MANUAL_ROFF) {
        if (tag.len > 0) {
            buf_append_str(out, ".TP\n.B ");
            manpage_roff_str(out, tag.data);
            buf_append_str(out, "\n");
        } else {
            buf_append_str(out, ".PP\n");
        }
        manpage_roff_str(out, body);
        buf_append_str(out, "\n");
    } else {
        if (tag.len > 0)
            manpage_wrap(out, tag.data, indent, TEXT_WIDTH);
        manpage_wrap(out, body, tag.len > 0 ? indent + 4 : indent, TEXT_WIDTH);
        buf_append_str(out, "\n");
    }
    buf_free(&flat);
    buf_free(&tag);
}

static void prose(enum manual_format format, const char *text, int indent, struct buf *out)
{
    for (const char *p = text; *p != '\0';) {
        const char *end = strstr(p, "\n\n");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        paragraph(format, p, len, indent, out);
        p += len;
        while (*p == '\n')
            p++;
    }
}

static void sections(enum manual_format format, const struct manual_section *s, struct buf *out)
{
    for (; s->title != NULL; s++) {
        section_title(format, s->title, out);
        prose(format, s->text, TEXT_INDENT, out);
    }
}

/* The synopsis lines of a command, "sluice " before each; a continuation line (one that starts
 * with a space) lines up under the first. */
static void synopsis(const struct command *c, enum manual_format format, struct buf *out)
{
    for (const char *p = c->synopsis; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        if (format == MANUAL_TEXT)
            buf_printf(out, "%*s", TEXT_INDENT, "");
        buf_append_str(out, p[0] == ' ' ? "       " : "sluice ");
        if (format == MANUAL_ROFF)
            manpage_roff(out, p, len);
        else
            buf_append(out, p, len);
        buf_append_str(out, "\n");
        p += len + (p[len] == '\n');
    }
}

/* A command's help text as the page shows it: a blank line between entries and paragraphs, and a
 * line indented deeper than an entry's tag continuing that entry. */
static void command_body(const struct command *c, enum manual_format format, struct buf *out)
{
    struct buf help = BUF_INIT, text = BUF_INIT;
    command_help_body(c, &help);
    buf_append(&help, "", 1);
    for (const char *p = help.data; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        int entry = strncmp(p, "  ", 2) == 0 && p[2] != ' ';
        int continues = strncmp(p, "   ", 3) == 0;
        if (len == 0 || (entry && text.len > 0))
            buf_append_str(&text, "\n\n");
        else if (text.len > 0 && (continues || p[0] != ' '))
            buf_append_str(&text, "\n");
        if (continues) {
            const char *q = p;
            while (*q == ' ')
                q++;
            buf_append(&text, q, len - (size_t)(q - p));
        } else {
            buf_append(&text, p, len);
        }
        p += len + (p[len] == '\n');
    }
    buf_append(&text, "", 1);
    prose(format, text.data, TEXT_INDENT + 4, out);
    buf_free(&help);
    buf_free(&text);
}

static void generate_commands(enum manual_format format, struct buf *out)
{
    for (size_t i = 0; i < ncommands; i++) {
        const struct command *c = &commands[i];
        if (format == MANUAL_ROFF) {
            buf_printf(out, ".SS %s\n.nf\n", c->name);
            synopsis(c, format, out);
            buf_append_str(out, ".fi\n");
        } else {
            buf_printf(out, "   %s\n", c->name);
            synopsis(c, format, out);
            buf_append_str(out, "\n");
        }
        command_body(c, format, out);
    }
}

static void page_synopsis(enum manual_format format, struct buf *out)
{
    section_title(format, "SYNOPSIS", out);
    if (format == MANUAL_ROFF)
        buf_append_str(out, ".nf\n");
    for (size_t i = 0; i < ncommands; i++)
        synopsis(&commands[i], format, out);
    buf_append_str(out, format == MANUAL_ROFF ? ".fi\n" : "\n");
}

int manual_render(const char *name, enum manual_format format, struct buf *out)
{
    const struct manual_page *page = NULL;
    for (size_t i = 0; i < ARRAY_LEN(pages); i++)
        if (strcmp(pages[i].name, name) == 0)
            page = &pages[i];
    if (page == NULL)
        return -ENOENT;
    if (format == MANUAL_ROFF) {
        buf_append_str(out, ".\\\" Generated by `sluice help --roff ");
        buf_printf(out, "%s`: do not edit.\n.TH ", page->name);
        for (const char *p = page->name; *p != '\0'; p++)
            buf_printf(out, "%c", *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        buf_printf(out, " %d \"\" \"sluice %s\" \"%s\"\n", page->section, SLUICE_VERSION,
                   page->manual);
        buf_append_str(out, ".SH NAME\n");
        manpage_roff_str(out, page->name);
        buf_append_str(out, " \\- ");
        manpage_roff_str(out, page->summary);
        buf_append_str(out, "\n");
    } else {
        buf_printf(out, "%s(%d)\n\nNAME\n       %s - %s\n\n", page->name, page->section, page->name,
                   page->summary);
    }
    if (page->section == 8)
        page_synopsis(format, out);
    sections(format, page->before, out);
    section_title(format, page->generated_title, out);
    page->generate(format, out);
    if (page->events_title != NULL) {
        section_title(format, page->events_title, out);
        prose(format, events_intro, TEXT_INDENT, out);
        log_events_describe_as(format == MANUAL_ROFF ? LOG_EVENTS_ROFF : LOG_EVENTS_TEXT, out);
    }
    sections(format, page->after, out);
    return 0;
}
