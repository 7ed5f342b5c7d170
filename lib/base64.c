#include "lib/base64.h"

#include <stdint.h>

int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long base64_decode_strict(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t word = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            int v = 0;
            if (in[i + j] == '=' && j >= 2 && i + 4 == len) {
                pad++;
            } else if (pad > 0 || (v = base64_value((unsigned char)in[i + j])) < 0) {
                return -1; /* data after padding, or a byte outside the alphabet */
            }
            word = word << 6 | (uint32_t)v;
        }
        out[n++] = (unsigned char)(word >> 16);
        if (pad < 2)
            out[n++] = (unsigned char)(word >> 8);
        if (pad < 1)
            out[n++] = (unsigned char)word;
    }
    return (long)n;
}
