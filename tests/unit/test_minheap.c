#include "lib/minheap.h"

#include <stdlib.h>

#include "check.h"
#include "lib/uvutil.h"

struct item {
    struct minheap_node node;
    int id;
};

/* Pops everything and checks the keys come out in order. */
static size_t drain_sorted(struct minheap *h)
{
    size_t n = 0;
    uint64_t last = 0;
    struct minheap_node *top;
    while ((top = minheap_top(h)) != NULL) {
        CHECK(top->key >= last);
        last = top->key;
        minheap_remove(h, top);
        CHECK(top->index == MINHEAP_NONE);
        n++;
    }
    return n;
}

static void test_order_and_rekey(void)
{
    struct minheap h = MINHEAP_INIT;
    struct item items[500];
    srandom(7);
    for (int i = 0; i < 500; i++) {
        items[i] = (struct item){MINHEAP_NODE_INIT, i};
        minheap_set(&h, &items[i].node, (uint64_t)(random() % 1000));
    }
    /* Re-key some up and some down, remove some from the middle. */
    for (int i = 0; i < 500; i += 7)
        minheap_set(&h, &items[i].node, (uint64_t)(random() % 1000));
    for (int i = 3; i < 500; i += 11)
        minheap_remove(&h, &items[i].node);
    minheap_remove(&h, &items[3].node); /* twice: no effect */
    minheap_set(&h, &items[1].node, 0);
    CHECK(container_of(minheap_top(&h), struct item, node)->id == 1 || minheap_top(&h)->key == 0);
    CHECK_INT_EQ(drain_sorted(&h), 500 - 46);
    CHECK(minheap_top(&h) == NULL);
    minheap_free(&h);
}

int main(void)
{
    test_order_and_rekey();
    return check_report("test_minheap");
}
