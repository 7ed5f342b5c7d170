/*
 * Fuzzes the parsing of SMTP AUTH responses (mta/server/smtp_auth.c) and the strict base64 decoder
 * under it (lib/base64.c): the text a client sends after "AUTH PLAIN" or "AUTH LOGIN" or in answer
 * to a 334. A response is "*" (cancel), or it decodes exactly when it is canonical strict base64,
 * to what OpenSSL's decoder makes of it, into a buffer of the size the session allocates; the
 * decoded octets re-encode to the same text. A decoded PLAIN message splits into authzid NUL
 * authcid NUL passwd exactly when it holds two NULs, and the slices cover it. Input: byte 0 bit 0
 * says whether the text is AUTH's initial response ("=" is then empty); the rest is the text.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "mta/server/smtp_auth.h"

/* RFC 4648 §4 in its strict form: quanta of four alphabet characters, "=" or "==" only at the
 * end. Written apart from lib/base64.c so that the two can disagree. */
static int strict_base64(const char *s, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len % 4 != 0)
        return 0;
    size_t pad = 0;
    if (len > 0 && s[len - 1] == '=')
        pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL)
            return 0;
    return 1;
}

static void check_plain(const unsigned char *msg, size_t len)
{
    struct smtp_auth_plain p;
    const unsigned char *nul1 = memchr(msg, '\0', len);
    int two_nuls = nul1 != NULL && memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg)) != NULL;
    if (smtp_auth_plain_split(msg, len, &p) < 0) {
        if (two_nuls)
            abort();
        return;
    }
    const char *text = (const char *)msg;
    if (!two_nuls || p.authzid.ptr != text || p.authcid.ptr != text + p.authzid.len + 1 ||
        p.passwd.ptr != p.authcid.ptr + p.authcid.len + 1 ||
        p.authzid.len + p.authcid.len + p.passwd.len + 2 != len ||
        memchr(p.authzid.ptr, '\0', p.authzid.len) || memchr(p.authcid.ptr, '\0', p.authcid.len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int initial = data[0] & 1;
    size_t len = size - 1;
    /* An exact copy, so that ASan sees a read past the end of the line. */
    char *text = malloc(len ? len : 1);
    memcpy(text, data + 1, len);

    unsigned char *msg;
    size_t n;
    enum smtp_auth_response r = smtp_auth_response_decode(text, len, initial, &msg, &n);
    int empty = initial && len == 1 && text[0] == '=';
    if (len == 1 && text[0] == '*') {
        if (r != SMTP_AUTH_RESPONSE_CANCEL || msg != NULL)
            abort();
    } else if (r != (empty || strict_base64(text, len) ? SMTP_AUTH_RESPONSE_OK
                                                       : SMTP_AUTH_RESPONSE_BAD_BASE64)) {
        abort();
    }
    if (r == SMTP_AUTH_RESPONSE_OK && !empty) {
        /* OpenSSL writes len / 4 * 3 octets, the padding's zeros included. */
        unsigned char *want = malloc(len / 4 * 3 + 1);
        int got = EVP_DecodeBlock(want, (const unsigned char *)text, (int)len);
        size_t pad = len > 0 && text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
        if (got < 0 || (size_t)got != len / 4 * 3 || n != (size_t)got - pad ||
            memcmp(msg, want, n) != 0 || msg[n] != '\0')
            abort();
        /* Back to text (canonical, so maybe not the input) and again: the same octets. */
        unsigned char *again = malloc(len + 1), *back = malloc(len / 4 * 3 + 1);
        int elen = EVP_EncodeBlock(again, msg, (int)n);
        if ((size_t)elen != len || base64_decode_strict((char *)again, len, back) != (long)n ||
            memcmp(back, msg, n) != 0)
            abort();
        free(want);
        free(again);
        free(back);
    }
    if (r == SMTP_AUTH_RESPONSE_OK) {
        if (empty && n != 0)
            abort();
        check_plain(msg, n);
        free(msg);
    } else if (msg != NULL) {
        abort();
    }
    check_plain(data + 1, len); /* any octets, as a decoded message could hold */
    free(text);
    return 0;
}
