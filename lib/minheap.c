#include "lib/minheap.h"

#include <stdlib.h>

#include "lib/xalloc.h"

static void heap_place(struct minheap *h, size_t i, struct minheap_node *node)
{
    h->nodes[i] = node;
    node->index = i;
}

static void heap_sift_up(struct minheap *h, size_t i)
{
    struct minheap_node *node = h->nodes[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->nodes[parent]->key <= node->key)
            break;
        heap_place(h, i, h->nodes[parent]);
        i = parent;
    }
    heap_place(h, i, node);
}

static void heap_sift_down(struct minheap *h, size_t i)
{
    struct minheap_node *node = h->nodes[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->nodes[child + 1]->key < h->nodes[child]->key)
            child++;
        if (node->key <= h->nodes[child]->key)
            break;
        heap_place(h, i, h->nodes[child]);
        i = child;
    }
    heap_place(h, i, node);
}

void minheap_set(struct minheap *h, struct minheap_node *node, uint64_t key)
{
    if (node->index == MINHEAP_NONE) {
        if (h->n == h->cap) {
            h->cap = h->cap ? 2 * h->cap : 64;
            h->nodes = xrealloc(h->nodes, h->cap * sizeof *h->nodes);
        }
        node->key = key;
        heap_place(h, h->n++, node);
        heap_sift_up(h, node->index);
        return;
    }
    uint64_t old = node->key;
    node->key = key;
    if (key < old)
        heap_sift_up(h, node->index);
    else
        heap_sift_down(h, node->index);
}

void minheap_remove(struct minheap *h, struct minheap_node *node)
{
    size_t i = node->index;
    if (i == MINHEAP_NONE)
        return;
    node->index = MINHEAP_NONE;
    struct minheap_node *last = h->nodes[--h->n];
    if (last == node)
        return;
    heap_place(h, i, last);
    heap_sift_up(h, i);
    heap_sift_down(h, last->index);
}

struct minheap_node *minheap_top(const struct minheap *h)
{
    return h->n > 0 ? h->nodes[0] : NULL;
}

void minheap_free(struct minheap *h)
{
    free(h->nodes);
    h->nodes = NULL;
    h->n = h->cap = 0;
}
