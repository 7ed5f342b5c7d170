#include "lib/edit_distance.h"

#include <stdint.h>

size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen > EDIT_DISTANCE_MAX || blen > EDIT_DISTANCE_MAX)
        return SIZE_MAX;
    size_t row[EDIT_DISTANCE_MAX + 1]; /* distances of a's first i octets to each prefix of b */
    for (size_t j = 0; j <= blen; j++)
        row[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}
