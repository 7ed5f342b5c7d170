#include "lib/base64.h"

#include "check.h"

static long decode(const char *in, unsigned char *out)
{
    return base64_decode_strict(in, strlen(in), out);
}

static void test_strict_decode(void)
{
    unsigned char out[64];
    CHECK_INT_EQ(decode("", out), 0);
    CHECK_INT_EQ(decode("AGFsaWNlAHNlY3JldA==", out), 13);
    CHECK(memcmp(out, "\0alice\0secret", 13) == 0);
    CHECK_INT_EQ(decode("Zm9vYg==", out), 4);
    CHECK_INT_EQ(decode("Zm9vYmE=", out), 5);
    CHECK_INT_EQ(decode("Zm9vYmFy", out), 6);
    CHECK(memcmp(out, "foobar", 6) == 0);
    /* Refused: length not a multiple of 4, spaces, padding inside, bytes outside the alphabet. */
    CHECK_INT_EQ(decode("Zm9", out), -1);
    CHECK_INT_EQ(decode("Zm9v YmFy", out), -1);
    CHECK_INT_EQ(decode("Zg==Zm9v", out), -1);
    CHECK_INT_EQ(decode("Z===", out), -1);
    CHECK_INT_EQ(decode("Zm9v\xff\xff==", out), -1);
    CHECK_INT_EQ(decode("Zm-_", out), -1); /* the URL-safe alphabet is not this one */
}

static void test_values(void)
{
    CHECK_INT_EQ(base64_value('A'), 0);
    CHECK_INT_EQ(base64_value('z'), 51);
    CHECK_INT_EQ(base64_value('9'), 61);
    CHECK_INT_EQ(base64_value('/'), 63);
    CHECK_INT_EQ(base64_value('='), -1);
    CHECK_INT_EQ(base64_value('\n'), -1);
}

int main(void)
{
    test_strict_decode();
    test_values();
    return check_report("test_base64");
}
