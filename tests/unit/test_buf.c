#include "lib/buf.h"
#include "tests/unit/check.h"

static void test_append_and_consume(void)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "hello ");
    buf_printf(&b, "%s %d", "world", 42);
    CHECK_MEM_EQ(b.data, b.len, "hello world 42");
    buf_consume(&b, 6);
    CHECK_MEM_EQ(b.data, b.len, "world 42");
    buf_consume(&b, b.len);
    CHECK(b.data == NULL); /* a drained buffer gives its memory back */
    CHECK_INT_EQ(b.cap, 0);
    buf_free(&b);
}

static void test_growth(void)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < 10000; i++)
        buf_append(&b, "x", 1);
    CHECK_INT_EQ(b.len, 10000);
    CHECK(b.cap >= 10000);
    buf_free(&b);
    CHECK(b.data == NULL);
}

/* Reserving nothing in a buffer that holds no memory (joining a reply line without text) must not
 * compute NULL + 0: undefined behaviour, fatal under clang's UBSan. */
static void test_reserve_nothing(void)
{
    struct buf b = BUF_INIT;
    CHECK(buf_reserve(&b, 0) == NULL);
    CHECK(b.data == NULL);
    *buf_reserve(&b, 1) = 'x';
    CHECK(b.data != NULL);
    CHECK(buf_reserve(&b, 0) == b.data + b.len);
    buf_free(&b);
}

int main(void)
{
    test_append_and_consume();
    test_growth();
    test_reserve_nothing();
    return check_report("test_buf");
}
