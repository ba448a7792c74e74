/* The intrusive min-heap behind the client's checkout timeouts. */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>

void heap_done(heap *h) {
        for (unsigned i = 0; i < h->n; i++)
                h->items[i]->index = 0;
        free(h->items);
        *h = (heap) {};
}

int heap_reserve(heap *h, unsigned n) {
        if (n <= h->alloc)
                return 0;
        unsigned alloc = h->alloc > 0 ? h->alloc : 16;
        while (alloc < n) {
                if (alloc > UINT32_MAX / 2)
                        return -ENOMEM;
                alloc *= 2;
        }
        heap_node **items = realloc(h->items, alloc * sizeof(heap_node *));
        if (!items)
                return -ENOMEM;
        h->items = items;
        h->alloc = alloc;
        return 0;
}

static void place(heap *h, unsigned i, heap_node *node) {
        h->items[i] = node;
        node->index = i + 1;
}

static void sift_up(heap *h, unsigned i) {
        heap_node *node = h->items[i];

        while (i > 0) {
                unsigned parent = (i - 1) / 2;
                if (h->items[parent]->key <= node->key)
                        break;
                place(h, i, h->items[parent]);
                i = parent;
        }
        place(h, i, node);
}

static void sift_down(heap *h, unsigned i) {
        heap_node *node = h->items[i];

        for (;;) {
                unsigned child = 2 * i + 1;
                if (child >= h->n)
                        break;
                if (child + 1 < h->n && h->items[child + 1]->key < h->items[child]->key)
                        child++;
                if (node->key <= h->items[child]->key)
                        break;
                place(h, i, h->items[child]);
                i = child;
        }
        place(h, i, node);
}

int heap_insert(heap *h, heap_node *node, uint64_t key) {
        int r = heap_reserve(h, h->n + 1);
        if (r < 0)
                return r;
        node->key = key;
        place(h, h->n++, node);
        sift_up(h, h->n - 1);
        return 0;
}

void heap_remove(heap *h, heap_node *node) {
        if (!heap_node_is_linked(node))
                return;
        unsigned i = node->index - 1;
        heap_node *last = h->items[--h->n];

        node->index = 0;
        if (last == node)
                return;
        /* The last node fills the hole, and moves whichever way it must. */
        place(h, i, last);
        if (i > 0 && h->items[(i - 1) / 2]->key > last->key)
                sift_up(h, i);
        else
                sift_down(h, i);
}

void heap_set_key(heap *h, heap_node *node, uint64_t key) {
        uint64_t old = node->key;

        node->key = key;
        if (key < old)
                sift_up(h, node->index - 1);
        else
                sift_down(h, node->index - 1);
}
