/*
 * Reply classification: provider markers, then decisive enhanced codes, then phrases, then the
 * enhanced code's subject and the reply code. The rule order is documented in bounce_class.h.
 */
#include "mta/delivery/bounce_class.h"

#include <string.h>

#include "lib/smtp_reply.h"

struct phrase_rule {
    const char *phrase; /* matched case-insensitively anywhere in the text */
    enum bounce_class cls;
};

/* Tokens the big providers put in their replies; each names exactly one cause. */
static const struct phrase_rule provider_markers[] = {
    {"[TSS04]", BOUNCE_RATE_LIMIT},  /* Yahoo: deferred for volume or complaints */
    {"[TS03]", BOUNCE_REPUTATION},   /* Yahoo: permanently deferred */
    {"[TSS09]", BOUNCE_REPUTATION},  /* Yahoo: permanently deferred */
    {"(S3150)", BOUNCE_REPUTATION},  /* Microsoft: network on its block list */
    {"(S3140)", BOUNCE_REPUTATION},  /* Microsoft: IP on its block list */
    {"RL000001", BOUNCE_RATE_LIMIT}, /* Comcast: too many sessions */
    {"RL000010", BOUNCE_RATE_LIMIT}, /* Comcast: too many messages */
    {"BL000000", BOUNCE_REPUTATION}, /* Comcast: IP on its block list */
    {"BL000010", BOUNCE_REPUTATION}, /* Comcast: IP on an RBL */
};

/* In order: the first rule whose phrase the text contains wins. Distinctive phrases come before
 * generic ones ("spamhaus" before "spam", "over quota" before "exceeded", "blocked" last). */
static const struct phrase_rule phrase_rules[] = {
    {"greylist", BOUNCE_OTHER},
    {"graylist", BOUNCE_OTHER},
    {"unusual rate", BOUNCE_RATE_LIMIT},
    {"rate limit", BOUNCE_RATE_LIMIT},
    {"rate-limit", BOUNCE_RATE_LIMIT},
    {"ratelimit", BOUNCE_RATE_LIMIT},
    {"receiving mail at a rate", BOUNCE_RATE_LIMIT},
    {"throttl", BOUNCE_RATE_LIMIT},
    {"too many connections", BOUNCE_RATE_LIMIT},
    {"too many sessions", BOUNCE_RATE_LIMIT},
    {"too many concurrent", BOUNCE_RATE_LIMIT},
    {"too many messages", BOUNCE_RATE_LIMIT},
    {"temporarily deferred", BOUNCE_RATE_LIMIT},
    {"starttls", BOUNCE_TLS},
    {"tls required", BOUNCE_TLS},
    {"encryption required", BOUNCE_TLS},
    {"handshake", BOUNCE_TLS},
    {"certificate", BOUNCE_TLS},
    {"quota", BOUNCE_MAILBOX_FULL},
    {"mailbox full", BOUNCE_MAILBOX_FULL},
    {"mailbox is full", BOUNCE_MAILBOX_FULL},
    {"insufficient storage", BOUNCE_MAILBOX_FULL},
    {"message size", BOUNCE_MESSAGE_SIZE},
    {"size exceeds", BOUNCE_MESSAGE_SIZE},
    {"too large", BOUNCE_MESSAGE_SIZE},
    {"too big", BOUNCE_MESSAGE_SIZE},
    {"size limit", BOUNCE_MESSAGE_SIZE},
    {"nxdomain", BOUNCE_DNS},
    {"null mx", BOUNCE_DNS},
    {"no mx", BOUNCE_DNS},
    {"host not found", BOUNCE_DNS},
    {"domain not found", BOUNCE_DNS},
    {"no such domain", BOUNCE_DNS},
    {"unresolvable", BOUNCE_DNS},
    {"name service error", BOUNCE_DNS},
    {"spamhaus", BOUNCE_REPUTATION},
    {"spamcop", BOUNCE_REPUTATION},
    {"barracuda", BOUNCE_REPUTATION},
    {"sorbs", BOUNCE_REPUTATION},
    {"blocklist", BOUNCE_REPUTATION},
    {"block list", BOUNCE_REPUTATION},
    {"blacklist", BOUNCE_REPUTATION},
    {"denylist", BOUNCE_REPUTATION},
    {"dnsbl", BOUNCE_REPUTATION},
    {"rbl", BOUNCE_REPUTATION},
    {"listed", BOUNCE_REPUTATION},
    {"reputation", BOUNCE_REPUTATION},
    {"banned", BOUNCE_REPUTATION},
    {"user unknown", BOUNCE_UNKNOWN_USER},
    {"unknown user", BOUNCE_UNKNOWN_USER},
    {"unknown recipient", BOUNCE_UNKNOWN_USER},
    {"no such user", BOUNCE_UNKNOWN_USER},
    {"no such recipient", BOUNCE_UNKNOWN_USER},
    {"does not exist", BOUNCE_UNKNOWN_USER},
    {"doesn't exist", BOUNCE_UNKNOWN_USER},
    {"doesn't have a", BOUNCE_UNKNOWN_USER}, /* Yahoo: "doesn't have a yahoo.com account" */
    {"mailbox not found", BOUNCE_UNKNOWN_USER},
    {"mailbox unavailable", BOUNCE_UNKNOWN_USER},
    {"recipient not found", BOUNCE_UNKNOWN_USER},
    {"invalid recipient", BOUNCE_UNKNOWN_USER},
    {"account is disabled", BOUNCE_UNKNOWN_USER},
    {"unsolicited", BOUNCE_POLICY},
    {"spam", BOUNCE_POLICY},
    {"policy", BOUNCE_POLICY},
    {"virus", BOUNCE_POLICY},
    {"malware", BOUNCE_POLICY},
    {"phish", BOUNCE_POLICY},
    {"unauthenticated", BOUNCE_POLICY},
    {"authentication", BOUNCE_POLICY},
    {"dmarc", BOUNCE_POLICY},
    {"blocked", BOUNCE_REPUTATION},
};

/* Words of a failed connection. A server that answered with a permanent refusal had a working
 * connection, whatever its text says ("554 Message refused"), so these apply to temporary
 * failures and to Sluice's own reports only. */
static const struct phrase_rule connection_phrases[] = {
    {"refused", BOUNCE_CONNECTION},         {"timed out", BOUNCE_CONNECTION},
    {"timeout", BOUNCE_CONNECTION},         {"connection reset", BOUNCE_CONNECTION},
    {"lost connection", BOUNCE_CONNECTION}, {"unreachable", BOUNCE_CONNECTION},
};

/* Enhanced codes (subject.detail, either class) that name the cause by themselves. */
static const struct {
    unsigned subject, detail;
    enum bounce_class cls;
} decisive_codes[] = {
    {1, 1, BOUNCE_UNKNOWN_USER}, {1, 10, BOUNCE_UNKNOWN_USER}, {1, 2, BOUNCE_DNS},
    {2, 2, BOUNCE_MAILBOX_FULL}, {2, 3, BOUNCE_MESSAGE_SIZE},  {3, 4, BOUNCE_MESSAGE_SIZE},
    {4, 1, BOUNCE_CONNECTION},   {4, 2, BOUNCE_CONNECTION},    {4, 3, BOUNCE_DNS},
    {4, 4, BOUNCE_DNS},          {7, 5, BOUNCE_TLS},           {7, 10, BOUNCE_TLS},
    {7, 23, BOUNCE_POLICY},      {7, 24, BOUNCE_POLICY},       {7, 25, BOUNCE_POLICY},
    {7, 26, BOUNCE_POLICY},      {7, 27, BOUNCE_DNS},          {7, 28, BOUNCE_RATE_LIMIT},
    {7, 606, BOUNCE_REPUTATION}, {7, 650, BOUNCE_RATE_LIMIT},
};

static const struct phrase_rule *match_phrase(const struct phrase_rule *rules, size_t n,
                                              const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strcasestr(text, rules[i].phrase) != NULL)
            return &rules[i];
    return NULL;
}

/* The enhanced code from the argument or, failing that, from the start of the text. */
static struct smtp_enhanced enhanced_find(const char *enhanced, const char *text)
{
    struct smtp_enhanced e = {0, 0, 0};
    if (enhanced != NULL && enhanced[0] != '\0')
        smtp_enhanced_parse(enhanced, strlen(enhanced), &e);
    if (e.cls == 0 && text != NULL)
        smtp_enhanced_parse(text, strlen(text), &e);
    return e;
}

enum bounce_class bounce_classify(int code, const char *enhanced, const char *text)
{
    if (code >= 200 && code < 300)
        return BOUNCE_NONE;
    if (text == NULL)
        text = "";
    const struct phrase_rule *rule = match_phrase(
        provider_markers, sizeof(provider_markers) / sizeof(provider_markers[0]), text);
    if (rule != NULL)
        return rule->cls;

    struct smtp_enhanced e = enhanced_find(enhanced, text);
    if (e.cls != 0) {
        /* 5.2.1 is a disabled mailbox, but Gmail's 4.2.1 is "receiving mail at a rate". */
        if (e.cls == 5 && e.subject == 2 && e.detail == 1)
            return BOUNCE_UNKNOWN_USER;
        for (size_t i = 0; i < sizeof(decisive_codes) / sizeof(decisive_codes[0]); i++)
            if (decisive_codes[i].subject == e.subject && decisive_codes[i].detail == e.detail)
                return decisive_codes[i].cls;
    }

    rule = match_phrase(phrase_rules, sizeof(phrase_rules) / sizeof(phrase_rules[0]), text);
    if (rule == NULL && code < 500)
        rule = match_phrase(connection_phrases,
                            sizeof(connection_phrases) / sizeof(connection_phrases[0]), text);
    if (rule != NULL)
        return rule->cls;
    /* "Try again later" is a rate limit when the server also drops the connection (421); a
     * plain 4xx saying it (greylisting, a busy backend) asks for nothing but a retry. */
    if (code == 421)
        return BOUNCE_RATE_LIMIT;
    if (e.cls != 0 && e.subject == 7)
        return BOUNCE_POLICY;
    if (code == 0 && e.cls == 0)
        return BOUNCE_CONNECTION;
    if (code == 552)
        return BOUNCE_MESSAGE_SIZE;
    /* 554 "transaction failed" (RFC 5321 §4.2.3): at end of data, the content or a policy was
     * refused; at the greeting, the client. Either way a policy decision. */
    if (code == 554)
        return BOUNCE_POLICY;
    return BOUNCE_OTHER;
}

const char *bounce_class_name(enum bounce_class c)
{
    switch (c) {
    case BOUNCE_NONE:
        return "none";
    case BOUNCE_UNKNOWN_USER:
        return "unknown_user";
    case BOUNCE_MAILBOX_FULL:
        return "mailbox_full";
    case BOUNCE_POLICY:
        return "policy";
    case BOUNCE_REPUTATION:
        return "reputation";
    case BOUNCE_RATE_LIMIT:
        return "rate_limit";
    case BOUNCE_TLS:
        return "tls";
    case BOUNCE_DNS:
        return "dns";
    case BOUNCE_CONNECTION:
        return "connection";
    case BOUNCE_MESSAGE_SIZE:
        return "message_size";
    case BOUNCE_OTHER:
        break;
    }
    return "other";
}

int bounce_class_is_throttle(enum bounce_class c)
{
    return c == BOUNCE_RATE_LIMIT;
}
