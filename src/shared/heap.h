/* An intrusive binary min-heap keyed by uint64_t (a deadline, say): the node
 * lives in the element and knows its place, so removing or re-keying any
 * element is O(log n) and never allocates.  Inserting allocates only when
 * the array must grow; heap_reserve() makes room ahead of time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct heap_node {
        uint64_t key;
        unsigned index;          /* position + 1; 0 when not in a heap */
} heap_node;

typedef struct heap {
        heap_node **items;
        unsigned n, alloc;
} heap;

#define heap_entry(ptr, type, member) \
        ((type *) ((char *) (ptr) - offsetof(type, member)))

void heap_done(heap *h);

static inline bool heap_node_is_linked(const heap_node *node) {
        return node->index > 0;
}

static inline heap_node *heap_top(const heap *h) {
        return h->n > 0 ? h->items[0] : NULL;
}

/* Makes room for N nodes in all; returns -ENOMEM. */
int heap_reserve(heap *h, unsigned n);
/* Returns -ENOMEM when there was no room and none could be made. */
int heap_insert(heap *h, heap_node *node, uint64_t key);
void heap_remove(heap *h, heap_node *node);
void heap_set_key(heap *h, heap_node *node, uint64_t key);
