/*
 * Allocation that aborts on exhaustion. Used only for bounded allocations (every caller caps its
 * size first), so running out of memory is a broken invariant rather than a session error.
 */
#ifndef SLUICE_XALLOC_H
#define SLUICE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif
