#include "mta/server/body_sink.h"

#include <stdlib.h>

#include "check.h"
#include "lib/uvutil.h"

/* What the fakes and the set's callbacks did, in order: "a:finish b:free done:b:250 ...". */
static struct buf trace;

static void note(const char *what, const char *name)
{
    buf_printf(&trace, "%s%s:%s", trace.len > 0 ? " " : "", name, what);
}

static int trace_is(const char *want)
{
    buf_append(&trace, "", 1); /* NUL for the comparison, not counted */
    trace.len--;
    CHECK_STR_EQ(trace.data != NULL ? trace.data : "", want);
    return strcmp(trace.data != NULL ? trace.data : "", want) == 0;
}

/* A sink that records what it gets and answers as told. */
struct fake {
    struct body_sink sink;
    const char *name;
    struct buf got;
    size_t full_at;       /* write returns 1 once this much is held (0: never) */
    int async;            /* finish reports later (fake_report), else from inside finish */
    int code;             /* 0: accept, else refuse with this code */
    const char *field;    /* appended to the fields in front of the message */
    const char *result;   /* an Authentication-Results result */
    struct body_end *end; /* from finish */
};

static int fake_write(struct body_sink *sink, const char *data, size_t len)
{
    struct fake *f = container_of(sink, struct fake, sink);
    buf_append(&f->got, data, len);
    return f->full_at > 0 && f->got.len >= f->full_at;
}

static void fake_report(struct fake *f)
{
    struct policy_decision d = {POLICY_ACCEPT, 250, "2.0.0", "Ok", NULL, {NULL, 0, 0}};
    if (f->code != 0)
        d = (struct policy_decision){POLICY_REJECT, f->code, "5.7.1", "refused", f->name, {0}};
    if (f->code == 0 && f->field != NULL)
        buf_append_str(&f->end->fields, f->field);
    if (f->code == 0 && f->result != NULL)
        buf_append_str(body_end_result(f->end), f->result);
    body_sink_done(&f->sink, &d);
}

static void fake_finish(struct body_sink *sink, struct body_end *end)
{
    struct fake *f = container_of(sink, struct fake, sink);
    note("finish", f->name);
    f->end = end;
    if (!f->async)
        fake_report(f);
}

static void fake_free(struct body_sink *sink)
{
    struct fake *f = container_of(sink, struct fake, sink);
    note(sink->finishing ? "free-finishing" : sink->finished ? "free-finished" : "free", f->name);
    buf_free(&f->got);
}

static const struct body_sink_ops message_ops = {
    .name = "fake", .write = fake_write, .finish = fake_finish, .free = fake_free};
static const struct body_sink_ops stored_ops = {
    .name = "fake", .stored = 1, .write = fake_write, .finish = fake_finish, .free = fake_free};

/* Makes f a fresh fake sink called `name` and adds it to the set, after those already there. */
static void fake_add(struct body_sinks *set, struct fake *f, const char *name,
                     const struct body_sink_ops *ops)
{
    *f = (struct fake){.sink = {.ops = ops}, .name = name};
    body_sinks_add(set, &f->sink);
}

static unsigned writable_calls;

static void on_writable(void *arg)
{
    writable_calls++;
}

static void on_done(void *arg, const struct body_outcome *out)
{
    struct fake *f = container_of(out->sink, struct fake, sink);
    char code[16];
    snprintf(code, sizeof code, "%d", out->decision.code);
    note(code, f->name);
}

static void set_init(struct body_sinks *set)
{
    buf_free(&trace);
    writable_calls = 0;
    body_sinks_init(set, "mx.example.test", on_writable, on_done, NULL);
}

/* The client's message goes to every sink, our trace field only to those that store. */
static void test_writes_fan_out(void)
{
    struct body_sinks set;
    struct fake check, store;
    set_init(&set);
    fake_add(&set, &check, "check", &message_ops);
    fake_add(&set, &store, "store", &stored_ops);
    body_sinks_write_trace(&set, "Received: x\r\n", 13);
    body_sinks_write(&set, "Subject: a\r\n\r\nbody\r\n", 20);
    CHECK_MEM_EQ(check.got.data, check.got.len, "Subject: a\r\n\r\nbody\r\n");
    CHECK_MEM_EQ(store.got.data, store.got.len, "Received: x\r\nSubject: a\r\n\r\nbody\r\n");
    CHECK(!body_sinks_full(&set));
    body_sinks_free(&set);
    trace_is("check:free store:free");
}

/* The writer waits while any sink is full; on_writable runs once the last one has room. */
static void test_backpressure_waits_for_every_sink(void)
{
    struct body_sinks set;
    struct fake a, b;
    set_init(&set);
    fake_add(&set, &a, "a", &message_ops);
    fake_add(&set, &b, "b", &message_ops);
    a.full_at = 4, b.full_at = 8;
    body_sinks_write(&set, "1234", 4);
    CHECK(body_sinks_full(&set)); /* a */
    body_sinks_write(&set, "5678", 4);
    CHECK(body_sinks_full(&set)); /* a and b, a counted once */
    body_sink_writable(&a.sink);
    CHECK(body_sinks_full(&set));
    CHECK_INT_EQ(writable_calls, 0);
    body_sink_writable(&a.sink); /* again, while not full: nothing */
    CHECK_INT_EQ(writable_calls, 0);
    body_sink_writable(&b.sink);
    CHECK(!body_sinks_full(&set));
    CHECK_INT_EQ(writable_calls, 1);
    body_sinks_free(&set);
}

/* Sinks finish one after the other in the order they were added; the outcome of a finish that
 * went on later comes through on_done, naming the last sink. */
static void test_finish_in_order(void)
{
    struct body_sinks set;
    struct fake a, b, c;
    struct body_outcome out;
    set_init(&set);
    fake_add(&set, &a, "a", &message_ops);
    fake_add(&set, &b, "b", &message_ops);
    fake_add(&set, &c, "c", &stored_ops);
    b.async = c.async = 1;
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 1);
    CHECK(body_sinks_waiting(&set));
    trace_is("a:finish b:finish");
    fake_report(&b);
    trace_is("a:finish b:finish c:finish");
    CHECK(body_sinks_waiting(&set));
    fake_report(&c);
    trace_is("a:finish b:finish c:finish c:250");
    CHECK(!body_sinks_waiting(&set));
    body_sinks_free(&set);
}

/* Every sink answering at once: the outcome is returned, and on_done never runs. */
static void test_all_at_once(void)
{
    struct body_sinks set;
    struct fake a, b;
    struct body_outcome out;
    set_init(&set);
    fake_add(&set, &a, "a", &message_ops);
    fake_add(&set, &b, "b", &message_ops);
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 0);
    CHECK(out.sink == &b.sink);
    CHECK_INT_EQ(out.decision.verdict, POLICY_ACCEPT);
    CHECK(!body_sinks_waiting(&set));
    body_sinks_free(&set);
    trace_is("a:finish b:finish a:free-finished b:free-finished");
}

/* Two sinks, a then b (which stores); a finishes later when `async`, and refuses with `code`. */
static void pair_init(struct body_sinks *set, struct fake *a, struct fake *b, int async, int code)
{
    set_init(set);
    fake_add(set, a, "a", &message_ops);
    fake_add(set, b, "b", &stored_ops);
    a->async = async, a->code = code;
}

/* The first refusal ends the finish: the sinks after it are never finished. */
static void test_refusal_stops(void)
{
    struct body_sinks set;
    struct fake a, b;
    struct body_outcome out;
    pair_init(&set, &a, &b, 0, 554);
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 0);
    CHECK(out.sink == &a.sink);
    CHECK_INT_EQ(out.decision.code, 554);
    CHECK_STR_EQ(out.decision.rule, "a");
    body_sinks_free(&set);
    trace_is("a:finish a:free-finished b:free");

    pair_init(&set, &a, &b, 1, 451); /* the same, reported later */
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 1);
    fake_report(&a);
    CHECK(!body_sinks_waiting(&set));
    body_sinks_free(&set);
    trace_is("a:finish a:451 a:free-finished b:free");
}

/* Freed while a sink finishes: the sink is told (it finishes on its own), nothing reports. */
static void test_free_while_finishing(void)
{
    struct body_sinks set;
    struct fake a, b;
    struct body_outcome out;
    pair_init(&set, &a, &b, 1, 0);
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 1);
    body_sinks_free(&set);
    CHECK(!body_sinks_waiting(&set));
    trace_is("a:finish a:free-finishing b:free");
}

/* What goes in front of the message: the sinks' fields, then one Authentication-Results field. */
static void test_front_fields(void)
{
    struct body_sinks set;
    struct fake sign, verify, store;
    struct body_outcome out;
    struct buf front = BUF_INIT;

    set_init(&set);
    body_end_front(&set.end, &front);
    CHECK_INT_EQ(front.len, 0); /* nothing found: nothing added */
    buf_append_str(body_end_result(&set.end), "spf=pass smtp.mailfrom=a@example.org");
    fake_add(&set, &verify, "verify", &message_ops);
    fake_add(&set, &sign, "sign", &stored_ops);
    fake_add(&set, &store, "store", &stored_ops);
    verify.result = "dkim=none";
    sign.field = "DKIM-Signature: v=1\r\n";
    CHECK_INT_EQ(body_sinks_finish(&set, &out), 0);
    body_end_front(store.end, &front);
    CHECK_MEM_EQ(front.data, front.len,
                 "DKIM-Signature: v=1\r\n"
                 "Authentication-Results: mx.example.test;\r\n"
                 "\tspf=pass smtp.mailfrom=a@example.org;\r\n"
                 "\tdkim=none\r\n");
    buf_free(&front);
    body_sinks_free(&set);
}

int main(void)
{
    test_writes_fan_out();
    test_backpressure_waits_for_every_sink();
    test_finish_in_order();
    test_all_at_once();
    test_refusal_stops();
    test_free_while_finishing();
    test_front_fields();
    buf_free(&trace);
    return check_report("test_body_sink");
}
