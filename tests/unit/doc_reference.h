/*
 * For unit tests of a generated reference: whether a file under docs/ carries the generated text
 * as is. Include after check.h, in the test of the table the reference comes from.
 */
#ifndef SLUICE_DOC_REFERENCE_H
#define SLUICE_DOC_REFERENCE_H

#include <stdio.h>
#include <string.h>

/* Checks that docs/<doc> in the source tree holds text (a string); if not, names the command whose
 * output it should carry. */
static void check_doc_carries(const char *doc, const char *text, const char *command)
{
    char path[4096];
    /* SLUICE_TEST_SUPPORT_DIR is tests/support under the source tree. */
    snprintf(path, sizeof path, "%s/../../docs/%s", SLUICE_TEST_SUPPORT_DIR, doc);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    static char content[262144];
    size_t n = fread(content, 1, sizeof content - 1, f);
    content[n] = '\0';
    fclose(f);
    int same = strstr(content, text) != NULL;
    CHECK(same);
    if (!same)
        fprintf(stderr, "%s: differs from `%s`\n", path, command);
}

#endif
