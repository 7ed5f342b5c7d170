#include "mta/cli/commands.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/edit_distance.h"
#include "lib/uvutil.h"

static const char config_option_help[] =
    "  -c, --config FILE   the configuration (default: the embedded one)\n";

const struct command commands[] = {
    {"run", cmd_run, "run the daemon", "run [-c FILE]",
     "Runs the daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads the\n"
     "configuration.\n\noptions:\n"},
    {"check-config", cmd_check_config, "validate a configuration", "check-config [-c FILE]",
     "Loads the configuration with every check the daemon makes (the relay gate,\n"
     "recipients files, DKIM keys, the users file) and prints \"FILE: ok\", or each\n"
     "problem as file:line:column: message.\n\noptions:\n"},
    {"config-keys", cmd_config_keys, "print the configuration reference", "config-keys",
     "Prints every configuration key with its type, default, bounds and meaning.\n"},
    {"log-events", cmd_log_events, "print the log event reference", "log-events",
     "Prints every event the log may carry with its levels, fields and meaning.\n"},
    {"queue", cmd_queue, "see and steer the queue",
     "queue [-c FILE] list [--json]\n"
     "queue [-c FILE] show ID [--body]\n"
     "queue [-c FILE] retry ID|all\n"
     "queue [-c FILE] delete ID\n"
     "queue [-c FILE] suspend DESTINATION [DURATION]\n"
     "queue [-c FILE] resume DESTINATION\n"
     "queue [-c FILE] suspend|resume --tenant T [--campaign C]\n"
     "queue [-c FILE] bounce ID\n"
     "queue [-c FILE] bounce --tenant T [--campaign C]\n"
     "queue [-c FILE] bounce --destination D [--tenant T [--campaign C]]\n"
     "queue [-c FILE] destinations [DESTINATION]",
     "list and show read the spool (daemon running or not); the others ask the\n"
     "running daemon through its control socket (delete removes the files itself\n"
     "when no daemon runs).\n\n"
     "  list                 one line per message: ID SIZE <sender> rcpt,...\n"
     "  show ID              the envelope, each recipient's state, then the message\n"
     "  retry ID|all         try deferred recipients now\n"
     "  delete ID            drop a message without a bounce\n"
     "  suspend DEST [DUR]   stop delivering to it (for DUR: 90s, 15m, 2h, 1d)\n"
     "  resume DEST          deliver to it again\n"
     "  suspend --tenant T   hold the tenant's mail (with --campaign C: that campaign's)\n"
     "                       wherever it goes, until resumed the same way\n"
     "  bounce ID            fail the message's waiting recipients; a DSN goes to\n"
     "                       the sender\n"
     "  bounce --tenant T    fail the waiting recipients of the tenant's mail (with\n"
     "                       --campaign C: that campaign's); DSNs go to the senders;\n"
     "                       messages on disk too, in the background (logged when done)\n"
     "  bounce --destination D  the same for the waiting recipients at domain D (of\n"
     "                       the tenant's mail with --tenant)\n"
     "  destinations [DEST]  what holds each destination back: suspensions, bounce\n"
     "                       and backoff rules with their reasons and time left,\n"
     "                       recovery, warm-up, and each reply rule's hits\n\noptions:\n"
     "  --json              list: the daemon's view as JSON, destinations included\n"
     "  --body              show: only the message as stored\n"
     "  --tenant T          suspend, resume, bounce: the tenant's mail\n"
     "  --campaign C        with --tenant: only that campaign's mail\n"
     "  --destination D     bounce: the recipients at domain D\n"},
    {"suppress", cmd_suppress, "see and edit the suppression list",
     "suppress [-c FILE] add ADDRESS [--tenant T] [--expires WHEN]\n"
     "         [--note TEXT]\n"
     "suppress [-c FILE] remove ADDRESS [--tenant T]\n"
     "suppress [-c FILE] check ADDRESS [--tenant T]\n"
     "suppress [-c FILE] list [--tenant T]\n"
     "suppress [-c FILE] import FILE\n"
     "suppress [-c FILE] export [--tenant T]",
     "Reads and writes the suppression list (suppression.path) directly, whether the\n"
     "daemon runs or not; the daemon sees a change at the next RCPT. Without --tenant\n"
     "an entry is global (it holds for every tenant); list and export show every\n"
     "list unless --tenant names one (\"\" the global one).\n\n"
     "  add ADDRESS          suppress it (source manual), replacing an entry there\n"
     "  remove ADDRESS       take it off the list\n"
     "  check ADDRESS        say whether RCPT would find it (the tenant's entry, else\n"
     "                       the global one); exit status 3 when not suppressed\n"
     "  list                 one line per entry, expired ones marked\n"
     "  import FILE          add the rows of a CSV file (address,tenant,source,time,\n"
     "                       expiry,note); a bad row names its line, and then nothing\n"
     "                       is imported\n"
     "  export               the list as CSV on standard output\n\noptions:\n"
     "  --tenant T           the tenant's list (today: an authenticated user name)\n"
     "  --expires WHEN       add: when it stops counting, UTC: 2027-01-31 or\n"
     "                       2027-01-31T12:00:00Z (default: never)\n"
     "  --note TEXT          add: why, kept with the entry\n"},
    {"status", cmd_status, "show the running daemon at a glance", "status [-c FILE] [--json]",
     "Prints the running daemon's queue by recipient state and its oldest message,\n"
     "what it received and delivered (since start and per minute lately), connections,\n"
     "the busiest destinations and those suspended, throttled or backing off (and\n"
     "why), its version, user and uptime. Asks the daemon over its control socket, so\n"
     "it works without http.listen; GET /api/v1/status answers the same JSON.\n\noptions:\n"
     "  --json              the daemon's answer as JSON\n"},
    {"tls-rpt", cmd_tls_rpt, "send the TLS reports now", "tls-rpt [-c FILE] send",
     "Asks the running daemon to send the TLS reports (RFC 8460, tls_rpt.enabled) it\n"
     "holds now, today's so far included, instead of after midnight UTC; prints one\n"
     "line per recipient domain and day. Each goes to the mailto: addresses of the\n"
     "domain's _smtp._tls TXT record, and to <spool>/tls-rpt/reports/.\n\noptions:\n"},
    {"relay-test", cmd_relay_test, "try relaying from outside",
     "relay-test [-c FILE]\n"
     "relay-test HOST:PORT --local-domain DOMAIN\n"
     "           [--helo NAME] [--from ADDRESS]",
     "Runs the relay battery (percent hack, bang paths, source routes, quoting,\n"
     "literals, ...) through every listener's policy from a spread of outside\n"
     "clients, or over SMTP against any server (never sending DATA). Exit status: 0\n"
     "no relay, 1 a relay, 2 usage error, 3 some attempts could not be made.\n\noptions:\n"
     "  --local-domain D    HOST:PORT: a domain the server accepts mail for\n"
     "  --helo NAME         HOST:PORT: the EHLO name (default: this host's name)\n"
     "  --from ADDRESS      HOST:PORT: the sender (relay-test@foreign.example)\n"},
    {"explain", cmd_explain, "show the decision for one MAIL and RCPT, and its rule",
     "explain [-c FILE] --client IP [--listener NAME] [--helo NAME]\n"
     "        [--auth USER] --from ADDRESS --rcpt ADDRESS\n"
     "        [--assume LIST]",
     "Shows what the daemon would answer to MAIL and RCPT from IP, and which rule\n"
     "decided, with its file:line:column.\n\noptions:\n"
     "  --client IP         the client's address (required)\n"
     "  --listener NAME     the listener (default: the first)\n"
     "  --helo NAME         the HELO name\n"
     "  --auth USER         as if authenticated as USER\n"
     "  --from ADDRESS      the sender; '<>' is the null sender (required)\n"
     "  --rcpt ADDRESS      the recipient (required)\n"
     "  --assume LIST       answers not to look up, comma-separated: dns=none,\n"
     "                      dnsbl=listed|clean|pending,\n"
     "                      reverse-dns=ok|no-ptr|not-confirmed|tempfail|pending\n"},
    {"dkim", cmd_dkim, "make DKIM keys and check their DNS records",
     "dkim keygen --domain D --selector S [--bits N] [--out FILE]\n"
     "            [--algorithm rsa-sha256|ed25519-sha256] [-c FILE]\n"
     "dkim check [-c FILE]",
     "keygen writes a new signing key (default file SELECTOR.DOMAIN.key, never over\n"
     "an existing one) and prints the DNS record to publish; check compares each\n"
     "configured selector's published record with its key.\n\noptions:\n"
     "  --domain D          keygen: the signing domain (required)\n"
     "  --selector S        keygen: the selector (required)\n"
     "  --algorithm A       keygen: rsa-sha256 (default) or ed25519-sha256\n"
     "  --bits N            keygen: RSA key size, 2048 (default) to 4096\n"
     "  --out FILE          keygen: where to write the key (mode 0600; made by root:\n"
     "                      0640 with the group of the user the daemon of -c FILE becomes)\n"
     "  -c, --config FILE   the configuration (default: the embedded one)\n"},
    {"doctor", cmd_doctor, "check what receivers will check about us",
     "doctor [-c FILE] [--json]\ndoctor [-c FILE] --watch INTERVAL",
     "Checks, through dns.servers, what receivers check about the configuration's\n"
     "sending identity: each egress address's PTR, forward confirmation, EHLO name\n"
     "and public blocklists; each dkim domain's SPF, DKIM, DMARC, MX, MTA-STS and\n"
     "TLS-RPT records; the TLS certificate; the relay battery; and the refusals\n"
     "receivers logged. One row per finding: PASS, INFO, WARN or FAIL, with the fix.\n"
     "Exit status: 0 no FAIL, 1 a FAIL, 2 usage or configuration error.\n\noptions:\n"
     "  --json              the rows as a JSON array of objects\n"
     "  --watch INTERVAL    run again every INTERVAL (30s, 10m, 1h) until SIGTERM,\n"
     "                      logging each row whose status changed as an event\n"},
    {"audit-mx", cmd_audit_mx, "audit every MX of a domain from outside",
     "audit-mx [-c FILE | --dns SERVER[:PORT]] [--json] DOMAIN...",
     "Finds each DOMAIN's name servers (the NS set from the resolver, and the NS set\n"
     "each of them serves), asks each one directly (no recursion) for the MX set and\n"
     "reports disagreements. Then every address (A and AAAA) of every MX host is\n"
     "probed from outside: banner, EHLO capabilities, the certificate after STARTTLS,\n"
     "the relay battery of `sluice relay-test HOST:PORT`, and RCPT to an unknown\n"
     "recipient; each MX is judged against the primary (lowest preference): a backup\n"
     "that accepts what the primary refuses is the hole. One row per MX with its\n"
     "verdict and a summary naming the weakest, in doctor's table. Never sends DATA.\n"
     "Exit status: 0 clean, 1 an MX relays or is weaker than the primary, or the name\n"
     "servers disagree, 2 usage or configuration error.\n\noptions:\n"
     "  --dns SERVER[:PORT] the resolver to ask for the NS set and addresses\n"
     "                      (default: dns.servers of -c FILE, else /etc/resolv.conf)\n"
     "  -c, --config FILE   take the resolver from this configuration's dns.servers\n"
     "  --port N            the SMTP port to probe (default 25)\n"
     "  --ns-port N         the port the name servers are asked on (default 53)\n"
     "  --timeout SECONDS   bound on the whole audit (default 300)\n"
     "  --helo NAME         the EHLO name (default: this host's name)\n"
     "  --json              the rows as a JSON array of objects\n"},
    {"version", cmd_version, "print the version", "version", "Prints \"sluice VERSION\".\n"},
};
const size_t ncommands = ARRAY_LEN(commands);

int cmd_version(int argc, char **argv)
{
    if (command_parse("version", argc, argv, NULL, 0, NULL, 0, NULL) != 0)
        return 2;
    printf("sluice %s\n", SLUICE_VERSION);
    return 0;
}

const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < ncommands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Whether the synopsis line (len octets) has word among its words. */
static int line_has_word(const char *line, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    for (size_t at = 0; at + wlen <= len; at++)
        if ((at == 0 || line[at - 1] == ' ') && memcmp(line + at, word, wlen) == 0 &&
            (at + wlen == len || line[at + wlen] == ' '))
            return 1;
    return 0;
}

/* The synopsis after "usage: sluice ": a line starting with a space continues the one before.
 * With a verb, only the lines of that verb (all of them when none has it). */
static void print_synopsis(const struct command *c, const char *verb, FILE *out)
{
    int any = 0;
    for (int pass = 0; pass < 2 && !any; pass++) {
        int shown = 0; /* the entry being printed is shown */
        for (const char *p = c->synopsis; *p != '\0';) {
            size_t len = strcspn(p, "\n");
            if (p[0] != ' ')
                shown = pass == 1 || verb == NULL || line_has_word(p, len, verb);
            if (shown) {
                const char *lead = "       sluice ";
                if (p[0] == ' ')
                    lead = "              ";
                else if (!any)
                    lead = "usage: sluice ";
                fprintf(out, "%s%.*s\n", lead, (int)len, p);
                any = 1;
            }
            p += len + (p[len] == '\n');
        }
    }
}

void command_help_body(const struct command *c, struct buf *out)
{
    buf_append_str(out, c->help);
    /* Every command that reads a configuration says so in its synopsis. */
    if (strstr(c->synopsis, "-c FILE") != NULL)
        buf_append_str(out, config_option_help);
    buf_append_str(out, "  -h, --help          this help\n");
}

void command_help(const struct command *c, FILE *out)
{
    struct buf body = BUF_INIT;
    command_help_body(c, &body);
    print_synopsis(c, NULL, out);
    fprintf(out, "\n%.*s", (int)body.len, body.data);
    buf_free(&body);
}

void command_list(FILE *out)
{
    fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < ncommands; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'sluice help COMMAND' or 'sluice COMMAND --help' describes a command;\n"
                 "'sluice help sluice' and 'sluice help sluice.yaml' print the manual pages.\n");
}

int command_usage_error(const char *name, const char *fmt, ...)
{
    char first[32];
    size_t first_len = strcspn(name, " ");
    snprintf(first, sizeof first, "%.*s", (int)first_len, name);
    const struct command *c = command_find(first);
    const char *verb = name[first_len] == ' ' ? name + first_len + 1 : NULL;
    va_list ap;
    fprintf(stderr, "sluice %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c != NULL) {
        print_synopsis(c, verb, stderr);
        fprintf(stderr, "'sluice %s --help' for more.\n", c->name);
    }
    return 2;
}

int command_failed(struct buf *err)
{
    fprintf(stderr, "%.*s", (int)err->len, err->data);
    if (err->len > 0 && err->data[err->len - 1] != '\n')
        fputc('\n', stderr);
    buf_free(err);
    return 1;
}

int command_print_reference(const char *name, int argc, char **argv,
                            void (*describe)(struct buf *out))
{
    if (command_parse(name, argc, argv, NULL, 0, NULL, 0, NULL) != 0)
        return 2;
    struct buf out = BUF_INIT;
    describe(&out);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    return 0;
}

const char *command_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t len = strlen(word), best_score = SIZE_MAX;
    const char *best = NULL;
    int tied = 0;
    if (len < 3)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        /* A candidate that the word starts scores 0; others their distance (never 0: the word is
         * none of them). */
        size_t score = strncmp(candidates[i], word, len) == 0
                           ? 0
                           : edit_distance(word, len, candidates[i], strlen(candidates[i]));
        if (score < best_score) {
            best_score = score, best = candidates[i], tied = 0;
        } else if (score == best_score) {
            tied = 1;
        }
    }
    return !tied && best_score <= (len <= 4 ? 1u : 2u) ? best : NULL;
}

/* "unknown option '--x'" with a suggestion among the option names. */
static int unknown_option(const char *name, const char *arg, const struct command_option *opts,
                          size_t nopts)
{
    const char *names[2 * COMMAND_OPTIONS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < nopts && n + 2 <= ARRAY_LEN(names); i++) {
        names[n++] = opts[i].name;
        if (opts[i].alias != NULL)
            names[n++] = opts[i].alias;
    }
    char given[EDIT_DISTANCE_MAX + 1];
    snprintf(given, sizeof given, "%.*s", (int)strcspn(arg, "="), arg);
    const char *hint = command_suggest(given, names, n);
    if (hint != NULL)
        return command_usage_error(name, "unknown option '%s' (did you mean %s?)", given, hint);
    return command_usage_error(name, "unknown option '%s'", given);
}

int command_parse(const char *name, int argc, char **argv, const struct command_option *opts,
                  size_t nopts, char **words, int max_words, int *nwords)
{
    int seen[COMMAND_OPTIONS_MAX] = {0};
    if (nwords != NULL)
        *nwords = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') { /* "-" alone is a word */
            if (nwords == NULL || *nwords >= max_words)
                return command_usage_error(name, "unexpected argument '%s'", arg);
            words[(*nwords)++] = argv[i];
            continue;
        }
        size_t namelen = strcspn(arg, "=");
        const struct command_option *o = NULL;
        size_t k;
        for (k = 0; k < nopts && k < COMMAND_OPTIONS_MAX; k++) {
            const char *alias = opts[k].alias != NULL ? opts[k].alias : "";
            if ((strlen(opts[k].name) == namelen && strncmp(opts[k].name, arg, namelen) == 0) ||
                (strlen(alias) == namelen && strncmp(alias, arg, namelen) == 0)) {
                o = &opts[k];
                break;
            }
        }
        if (o == NULL)
            return unknown_option(name, arg, opts, nopts);
        if (seen[k]++)
            return command_usage_error(name, "%s given twice", o->name);
        if (o->value == NULL) { /* a flag */
            if (arg[namelen] == '=')
                return command_usage_error(name, "%s takes no value", o->name);
            *o->flag = 1;
        } else if (arg[namelen] == '=' && arg[namelen + 1] != '\0') {
            *o->value = arg + namelen + 1;
        } else if (arg[namelen] != '=' && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            *o->value = argv[++i];
        } else {
            return command_usage_error(name, "missing value for %.*s", (int)namelen, arg);
        }
    }
    return 0;
}
