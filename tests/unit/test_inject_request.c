/*
 * The injection request's parser (mta/http/inject_request.h): a message and a batch with every
 * member, the content kept byte for byte (line ends as given), and each malformed body refused
 * with a message naming where the problem is.
 */
#include "mta/http/inject_request.h"
#include "tests/unit/check.h"

static int parse(const char *body, struct inject_request *r, struct buf *err)
{
    buf_reset(err);
    return inject_request_parse(body, strlen(body), r, err);
}

static void test_single(void)
{
    struct inject_request r;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(parse("{\"sender\": \"a@x.test\", \"recipients\": [\"b@y.test\", \"c@y.test\"],"
                       " \"content\": \"Subject: s\\n\\nhi\\r\\n\", \"tenant\": \"acme\","
                       " \"campaign\": \"spring\", \"headers\": {\"X-One\": \"1\","
                       " \"X-Two\": \"two words\"}}",
                       &r, &err),
                 0);
    CHECK_INT_EQ(r.batch, 0);
    CHECK_INT_EQ(r.nmsgs, 1);
    const struct inject_message *m = &r.msgs[0];
    CHECK_STR_EQ(m->sender, "a@x.test");
    CHECK_INT_EQ(m->nrcpts, 2);
    CHECK_STR_EQ(m->rcpts[1], "c@y.test");
    CHECK_MEM_EQ(m->content, m->content_len, "Subject: s\n\nhi\r\n");
    CHECK_STR_EQ(m->tenant, "acme");
    CHECK_STR_EQ(m->campaign, "spring");
    CHECK_INT_EQ(m->nfields, 2);
    CHECK_STR_EQ(m->fields[0].name, "X-One");
    CHECK_STR_EQ(m->fields[1].value, "two words");
    inject_request_free(&r);

    CHECK_INT_EQ(
        parse("{\"sender\": \"\", \"recipients\": [\"b@y.test\"], \"content\": \"x\"}", &r, &err),
        0);
    CHECK_STR_EQ(r.msgs[0].sender, ""); /* the null sender */
    CHECK(r.msgs[0].tenant == NULL && r.msgs[0].campaign == NULL && r.msgs[0].nfields == 0);
    inject_request_free(&r);
    buf_free(&err);
}

static void test_batch(void)
{
    struct inject_request r;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(parse("{\"messages\": [{\"sender\": \"a@x.test\", \"recipients\": [\"b@y.test\"],"
                       " \"content\": \"one\"}, {\"sender\": \"c@x.test\", \"recipients\":"
                       " [\"d@y.test\"], \"content\": \"two\"}]}",
                       &r, &err),
                 0);
    CHECK_INT_EQ(r.batch, 1);
    CHECK_INT_EQ(r.nmsgs, 2);
    CHECK_STR_EQ(r.msgs[1].content, "two");
    inject_request_free(&r);
    buf_free(&err);
}

static void test_refused(void)
{
    static const struct {
        const char *body, *err;
    } cases[] = {
        {"", "invalid JSON at line 1, column 0: '[' or '{' expected near end of file"},
        {"{\"sender\": ", "invalid JSON at line 1, column 11: unexpected token near end of file"},
        {"[1]", "the body is not a JSON object"},
        {"{\"recipients\": [\"b@y\"], \"content\": \"x\"}", "sender: missing"},
        {"{\"sender\": 1, \"recipients\": [\"b@y\"], \"content\": \"x\"}", "sender: not a string"},
        {"{\"sender\": \"a@x\", \"recipients\": [], \"content\": \"x\"}",
         "recipients: not a non-empty array"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\", null], \"content\": \"x\"}",
         "recipients[1]: not a string"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"\"}", "content: empty"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"a\\u0000b\"}",
         "invalid JSON at line 1, column 62: \\u0000 is not allowed without JSON_ALLOW_NUL near "
         "'\"a\\u0000b\"'"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\", \"bcc\": 1}",
         "bcc: unknown key"},
        {"{\"sender\": \"a@x\", \"sender\": \"b@x\", \"recipients\": [\"b@y\"], \"content\": "
         "\"x\"}",
         "invalid JSON at line 1, column 26: duplicate object key near '\"sender\"'"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\", \"headers\": []}",
         "headers: not an object"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\", \"headers\": "
         "{\"A:B\": \"v\"}}",
         "headers.A:B: not a header field name (1-64 printable characters, no ':')"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\", \"headers\": "
         "{\"X-A\": \"v\\r\\nBcc: evil@z\"}}",
         "headers.X-A: holds a line break or NUL"},
        {"{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\", \"campaign\": "
         "\"a\\nb\"}",
         "campaign: not 1-64 characters without line breaks"},
        {"{\"messages\": []}", "messages: not a non-empty array"},
        {"{\"messages\": [{}], \"sender\": \"a@x\"}", "a batch has the one key \"messages\""},
        {"{\"messages\": [{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\"}, "
         "3]}",
         "messages[1]: not an object"},
        {"{\"messages\": [{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": 5}]}",
         "messages[0].content: not a string"},
    };
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct inject_request r;
        CHECK_INT_EQ(parse(cases[i].body, &r, &err), -1);
        CHECK_MEM_EQ(err.data, err.len, cases[i].err);
        CHECK(r.msgs == NULL && r.nmsgs == 0);
    }
    buf_free(&err);
}

static void test_batch_cap(void)
{
    struct buf body = BUF_INIT, err = BUF_INIT;
    buf_printf(&body, "{\"messages\": [");
    for (int i = 0; i <= INJECT_BATCH_MAX; i++)
        buf_printf(&body, "%s{\"sender\": \"a@x\", \"recipients\": [\"b@y\"], \"content\": \"x\"}",
                   i > 0 ? "," : "");
    buf_printf(&body, "]}");
    struct inject_request r;
    CHECK_INT_EQ(inject_request_parse(body.data, body.len, &r, &err), -1);
    CHECK_MEM_EQ(err.data, err.len, "messages: more than 1000 messages");
    buf_free(&body);
    buf_free(&err);
}

int main(void)
{
    test_single();
    test_batch();
    test_refused();
    test_batch_cap();
    return check_report("test_inject_request");
}
