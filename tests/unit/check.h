/*
 * A tiny assertion kit for unit tests: each failure prints the file, line and both sides, and the
 * test's exit status counts the failures. Include in exactly one .c per test executable.
 */
#ifndef SLUICE_CHECK_H
#define SLUICE_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(got, want)                                                                    \
    do {                                                                                           \
        long long check_g_ = (long long)(got), check_w_ = (long long)(want);                       \
        check_count++;                                                                             \
        if (check_g_ != check_w_) {                                                                \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #got, check_g_,  \
                    check_w_);                                                                     \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(got, want)                                                                    \
    do {                                                                                           \
        const char *check_g_ = (got), *check_w_ = (want);                                          \
        check_count++;                                                                             \
        if (check_g_ == NULL || check_w_ == NULL ? check_g_ != check_w_                            \
                                                 : strcmp(check_g_, check_w_) != 0) {              \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got,        \
                    check_g_ ? check_g_ : "(null)", check_w_ ? check_w_ : "(null)");               \
        }                                                                                          \
    } while (0)

#define CHECK_MEM_EQ(got, got_len, want)                                                           \
    do {                                                                                           \
        const char *check_w_ = (want);                                                             \
        size_t check_gl_ = (got_len), check_wl_ = strlen(check_w_);                                \
        check_count++;                                                                             \
        if (check_gl_ != check_wl_ ||                                                              \
            (check_wl_ > 0 && memcmp((got), check_w_, check_wl_) != 0)) {                          \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: %s == \"%.*s\", want \"%s\"\n", __FILE__, __LINE__, #got,      \
                    (int)check_gl_, (const char *)(got), check_w_);                                \
        }                                                                                          \
    } while (0)

/* A refusal (struct policy_decision, policy/policy.h): its verdict, SMTP reply code and enhanced
 * status code, three checks. */
#define CHECK_DECISION(d, want_verdict, want_code, want_enhanced)                                  \
    do {                                                                                           \
        CHECK_INT_EQ((d).verdict, want_verdict);                                                   \
        CHECK_INT_EQ((d).code, want_code);                                                         \
        CHECK_STR_EQ((d).enhanced, want_enhanced);                                                 \
    } while (0)

/* Ends main(): prints a summary line and returns the exit status. */
static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}

#endif
