/*
 * Bounce categories: why a recipient failed or was deferred, in PowerMTA's vocabulary, for the
 * delivery log, the DSN and `sluice queue show`. The rules are regular expressions in pattern
 * files: the site's own (delivery.bounce_category_files) first, then the shipped ones
 * (packaging/bounce_categories.conf, compiled into the binary); the first rule that matches the
 * one-line reply "CODE X.Y.Z text" names the category, none matching is "other". Loaded (blocking)
 * where the configuration is; matched on the loop thread. Reporting only: reactions such as a
 * throttle are bounce_class's and the shaping rules' job.
 */
#ifndef SLUICE_BOUNCE_CATEGORY_H
#define SLUICE_BOUNCE_CATEGORY_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "mta/delivery/smtp_client.h"

enum bounce_category {
    BOUNCE_CAT_OTHER, /* nothing matched */
    BOUNCE_CAT_BAD_MAILBOX,
    BOUNCE_CAT_BAD_DOMAIN,
    BOUNCE_CAT_INACTIVE_MAILBOX,
    BOUNCE_CAT_QUOTA_ISSUES,
    BOUNCE_CAT_SPAM_RELATED,
    BOUNCE_CAT_POLICY_RELATED,
    BOUNCE_CAT_ROUTING_ERRORS,
    BOUNCE_CAT_MESSAGE_EXPIRED,
    BOUNCE_CAT_PROTOCOL_ERRORS,
    BOUNCE_CAT_CONTENT_RELATED,
    BOUNCE_CAT_RELAYING_ISSUES,
    BOUNCE_CAT_BAD_CONNECTION,
    BOUNCE_CAT_NO_ANSWER_FROM_HOST,
    BOUNCE_CAT_INVALID_SENDER,
    BOUNCE_CAT_VIRUS_RELATED,
    BOUNCE_CAT_BAD_CONFIGURATION,
    BOUNCE_CAT_ADMIN_BOUNCE, /* Sluice's own: an administrator bounced it */
    BOUNCE_CAT_COUNT
};

/* A compiled rule list; immutable once loaded. */
struct bounce_categories;

/* Compiles the files (in order), then the shipped rules. Returns 0, or -1 after appending
 * "file:line:column: message" lines to err (an unreadable file names the configuration key). */
int bounce_categories_load(char *const *files, size_t nfiles, struct bounce_categories **out,
                           struct buf *err);
/* The same for cfg's delivery.bounce_category_files. */
int bounce_categories_load_config(const struct config *cfg, struct bounce_categories **out,
                                  struct buf *err);
void bounce_categories_free(struct bounce_categories *set);

/* The category of a one-line reply "550 5.1.1 text" (Sluice's own reasons look the same). */
enum bounce_category bounce_categories_match(const struct bounce_categories *set,
                                             const char *reply);

/* Makes set (owned from now on, may be NULL) the rules of bounce_category_of, freeing the ones
 * before. Loop thread only, like bounce_category_of. */
void bounce_categories_use(struct bounce_categories *set);
/* The category of a result with the rules in use (the shipped ones when none were given): code
 * (0: none), enhanced ("5.1.1", "" or NULL) and text (may be NULL) as kept for a recipient. */
enum bounce_category bounce_category_of(int code, const char *enhanced, const char *text);

/* The same for a reply already on one line, as the spool keeps it ("550 5.1.1 text (host)"). */
enum bounce_category bounce_category_of_reply(const char *reply);

/* Sets the category of each 5xx outcome of o[0..n), so that it is found once per result. */
void bounce_category_outcomes(struct smtp_client_outcome *o, size_t n);

/* "bad-mailbox", "quota-issues", ... */
const char *bounce_category_name(enum bounce_category c);

#endif
