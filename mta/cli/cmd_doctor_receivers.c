/*
 * `sluice doctor`, what receivers have been saying: the end of the daemon's log (server.log.file)
 * read on the thread pool, its deferred, failed and expired deliveries' reply texts grouped by the
 * blocklist or reputation system they name, with counts and the latest text. Replies the delivery
 * side classed as reputation refusals without naming a known system are counted apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"
#include "mta/cli/cmd_doctor.h"

/* How much of the end of the log is read: recent events, in bounded memory and time. */
#define LOG_TAIL_MAX (16u << 20)
/* Octets of a reply text kept as the latest example. */
#define REPLY_SHOWN_MAX 240

struct receiver_system {
    const char *name;
    const char *markers[4]; /* matched case-insensitively anywhere in the reply */
    const char *fix;
};

/* The systems receivers name when they refuse for reputation, most specific first. */
static const struct receiver_system systems[] = {
    {"Spamhaus",
     {"spamhaus"},
     "look the address up at https://check.spamhaus.org/ and follow its "
     "removal steps"},
    {"Barracuda BRBL",
     {"barracuda", "brbl"},
     "ask for removal at https://www.barracudacentral.org/rbl/removal-request"},
    {"SenderBase/IronPort (Cisco Talos)",
     {"senderbase", "ironport", "talosintelligence"},
     "look the address up at https://talosintelligence.com/reputation_center and open a ticket "
     "there"},
    {"Microsoft (S3150/S3140)",
     {"s3150", "s3140", "banned sending ip"},
     "ask for delisting at https://sender.office.com/ and join SNDS and JMRP"},
    {"SpamCop",
     {"spamcop"},
     "see https://www.spamcop.net/bl.shtml: listings expire a day after "
     "the last report"},
    {"UCEPROTECT", {"uceprotect"}, "see https://www.uceprotect.net/en/rblcheck.php"},
    {"SORBS", {"sorbs"}, "SORBS closed in 2024: ask the receiver's postmaster to stop using it"},
    {"PSBL", {"psbl", "surriel"}, "ask for removal at https://psbl.org/"},
    {"Mailspike", {"mailspike"}, "see https://mailspike.org/"},
    {"SpamRATS", {"spamrats"}, "see https://www.spamrats.com/lookup.php"},
    {"Yahoo (TS03/TSS09)", {"[ts03]", "[tss09]"}, "see https://senders.yahooinc.com/"},
    {"Comcast (BL000000/BL000010)",
     {"bl000000", "bl000010"},
     "see https://postmaster.comcast.net/"},
    {"Gmail (unsolicited mail)",
     {"unsolicitedmessageerror", "unsolicitedratelimiterror"},
     "check Google Postmaster Tools and https://support.google.com/mail/answer/81126"},
};

#define OTHER_REPUTATION ARRAY_LEN(systems)

struct receivers_work {
    uv_work_t req;
    struct doctor *d;
    const char *path;
    int error;         /* errno of opening or reading the log; 0: read */
    size_t deliveries; /* deferred, failed and expired events read */
    size_t count[OTHER_REPUTATION + 1];
    char latest[OTHER_REPUTATION + 1][256 + 2 + REPLY_SHOWN_MAX + 1]; /* mx: reply */
    char since[32]; /* "ts" of the first event read */
};

/* The JSON string value of "key" in the line, decoded into out (cut at size - 1); 0 when absent.
 * \u escapes other than ASCII become '?': the text is only shown. */
static int json_field(const char *line, const char *key, char *out, size_t size)
{
    char pattern[40];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(line, pattern);
    if (p == NULL)
        return 0;
    size_t n = 0;
    for (p += strlen(pattern); *p != '\0' && *p != '"'; p++) {
        char ch = *p;
        if (ch == '\\' && p[1] != '\0') {
            ch = *++p;
            if (ch == 'u') {
                unsigned v = 0;
                if (sscanf(p + 1, "%4x", &v) == 1 && strlen(p + 1) >= 4)
                    p += 4;
                ch = v >= 0x20 && v < 0x7f ? (char)v : '?';
            } else if (ch == 'n' || ch == 'r' || ch == 't') {
                ch = ' ';
            }
        }
        if (n + 1 < size)
            out[n++] = ch;
    }
    out[n] = '\0';
    return 1;
}

/* The index in systems of the one the reply names; OTHER_REPUTATION for an unnamed reputation
 * refusal; -1 for anything else. */
static long reply_system(const char *reply, const char *cls)
{
    for (size_t i = 0; i < ARRAY_LEN(systems); i++)
        for (size_t m = 0; m < ARRAY_LEN(systems[i].markers) && systems[i].markers[m]; m++)
            if (strcasestr(reply, systems[i].markers[m]) != NULL)
                return (long)i;
    return strcmp(cls, "reputation") == 0 ? (long)OTHER_REPUTATION : -1;
}

static void scan_line(struct receivers_work *w, const char *line)
{
    char event[40], reply[1024], cls[32] = "", mx[256] = "";
    if (!json_field(line, "event", event, sizeof event) ||
        (strcmp(event, "delivery.deferred") != 0 && strcmp(event, "delivery.failed") != 0 &&
         strcmp(event, "delivery.expired") != 0) ||
        !json_field(line, "reply", reply, sizeof reply))
        return;
    if (w->deliveries++ == 0)
        json_field(line, "ts", w->since, sizeof w->since);
    json_field(line, "class", cls, sizeof cls);
    json_field(line, "mx", mx, sizeof mx);
    long sys = reply_system(reply, cls);
    if (sys < 0)
        return;
    w->count[sys]++;
    snprintf(w->latest[sys], sizeof w->latest[sys], "%s%s%.*s", mx, mx[0] ? ": " : "",
             (int)REPLY_SHOWN_MAX, reply);
}

static void receivers_on_work(uv_work_t *req)
{
    struct receivers_work *w = container_of(req, struct receivers_work, req);
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        w->error = errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    off_t start = st.st_size > (off_t)LOG_TAIL_MAX ? st.st_size - (off_t)LOG_TAIL_MAX : 0;
    size_t len = (size_t)(st.st_size - start);
    char *text = xmalloc(len + 1);
    ssize_t got = pread(fd, text, len, start);
    close(fd);
    if (got < 0) {
        w->error = errno;
        free(text);
        return;
    }
    text[got] = '\0';
    char *line = text;
    if (start > 0) /* the first line read is cut: skip it */
        line = strchr(text, '\n') != NULL ? strchr(text, '\n') + 1 : text + got;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        scan_line(w, line);
        line = nl != NULL ? nl + 1 : line + strlen(line);
    }
    free(text);
}

static void receivers_on_done(uv_work_t *req, int status)
{
    struct receivers_work *w = container_of(req, struct receivers_work, req);
    struct doctor *d = w->d;
    char found[1200];
    int any = 0;
    (void)status;
    if (w->error != 0) {
        snprintf(found, sizeof found, "cannot read the log: %s", strerror(w->error));
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RECEIVERS, 0, 0), DOCTOR_WARN, "receivers", w->path,
                   found, "run doctor as a user who may read server.log.file (the daemon's group)");
    }
    for (size_t i = 0; w->error == 0 && i <= OTHER_REPUTATION; i++) {
        if (w->count[i] == 0)
            continue;
        any = 1;
        snprintf(found, sizeof found, "%zu refusal(s) naming %s since %s; latest: %s", w->count[i],
                 i < OTHER_REPUTATION ? systems[i].name : "no known system", w->since,
                 w->latest[i]);
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RECEIVERS, 0, i), DOCTOR_WARN,
                   i < OTHER_REPUTATION ? "refusals" : "refusals-other", w->path, found,
                   i < OTHER_REPUTATION
                       ? systems[i].fix
                       : "read the replies: they name the receiver's reason and where to appeal");
    }
    if (w->error == 0 && !any) {
        snprintf(found, sizeof found,
                 "no blocklist or reputation refusal among %zu deferred or failed deliveries%s%s",
                 w->deliveries, w->deliveries > 0 ? " since " : "", w->since);
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RECEIVERS, 0, 0), DOCTOR_PASS, "receivers", w->path,
                   found, NULL);
    }
    doctor_end(d);
    free(w);
}

void doctor_receivers_start(struct doctor *d)
{
    const char *path = d->cfg->server.log_file;
    if (path == NULL || strcmp(path, "-") == 0) {
        doctor_add(d, DOCTOR_ORDER(DOCTOR_AREA_RECEIVERS, 0, 0), DOCTOR_INFO, "receivers",
                   "(standard error)",
                   "server.log.file is standard error: no log of receivers' replies to read",
                   "set server.log.file to have the replies kept and read here");
        return;
    }
    struct receivers_work *w = xcalloc(1, sizeof *w);
    w->d = d;
    w->path = path;
    doctor_begin(d);
    int rc = uv_queue_work(d->loop, &w->req, receivers_on_work, receivers_on_done);
    if (rc < 0) {
        w->error = -rc;
        receivers_on_done(&w->req, rc);
    }
}
