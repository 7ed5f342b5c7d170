/*
 * A binary min-heap of nodes embedded in their owners (container_of gets the owner back), keyed by
 * a 64-bit value such as a due time. Every node knows its index, so removing or re-keying one is
 * O(log n) without a search.
 */
#ifndef SLUICE_MINHEAP_H
#define SLUICE_MINHEAP_H

#include <stddef.h>
#include <stdint.h>

struct minheap_node {
    uint64_t key;
    size_t index; /* position in the heap; MINHEAP_NONE when not in one */
};

#define MINHEAP_NONE SIZE_MAX

struct minheap {
    struct minheap_node **nodes;
    size_t n, cap;
};

#define MINHEAP_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
#define MINHEAP_NODE_INIT                                                                          \
    {                                                                                              \
        0, MINHEAP_NONE                                                                            \
    }

/* Puts node in the heap under key, or moves it there when it is in already. */
void minheap_set(struct minheap *h, struct minheap_node *node, uint64_t key);
/* Takes node out; nothing happens when it is not in the heap. */
void minheap_remove(struct minheap *h, struct minheap_node *node);
/* The node with the smallest key, or NULL when empty. */
struct minheap_node *minheap_top(const struct minheap *h);
void minheap_free(struct minheap *h);

#endif
