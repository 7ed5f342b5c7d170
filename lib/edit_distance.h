/*
 * Levenshtein distance of two short strings: how many octets must be inserted, removed or replaced
 * to turn one into the other. Used to suggest the name that was probably meant ("did you mean
 * ...?") for a misspelled configuration key or command-line word.
 */
#ifndef SLUICE_EDIT_DISTANCE_H
#define SLUICE_EDIT_DISTANCE_H

#include <stddef.h>

/* The longest string compared; longer ones are "far" from everything. */
#define EDIT_DISTANCE_MAX 64

/* The distance of a[alen] and b[blen], or SIZE_MAX when either is longer than EDIT_DISTANCE_MAX. */
size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen);

#endif
