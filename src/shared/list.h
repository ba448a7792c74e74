/* An intrusive doubly linked list, as in c-list: the node lives inside the
 * element, so adding and removing never allocates. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
        struct list_node *next, *prev;
} list_node;

#define LIST_HEAD_INIT(name) { &(name), &(name) }

static inline void list_init(list_node *head) {
        head->next = head->prev = head;
}

static inline bool list_is_empty(const list_node *head) {
        return head->next == head;
}

/* A node that is not on any list points at itself. */
static inline bool list_is_linked(const list_node *n) {
        return n->next && n->next != n;
}

static inline void list_insert_before(list_node *where, list_node *n) {
        n->prev = where->prev;
        n->next = where;
        where->prev->next = n;
        where->prev = n;
}

static inline void list_append(list_node *head, list_node *n) {
        list_insert_before(head, n);
}

static inline void list_remove(list_node *n) {
        if (!list_is_linked(n))
                return;
        n->prev->next = n->next;
        n->next->prev = n->prev;
        n->next = n->prev = n;
}

#define list_entry(ptr, type, member) \
        ((type *) ((char *) (ptr) - offsetof(type, member)))

#define list_first_entry(head, type, member) \
        (list_is_empty(head) ? NULL : list_entry((head)->next, type, member))

/* Walks a list while allowing removal of the current node. */
#define list_for_each_safe(node, tmp, head) \
        for ((node) = (head)->next, (tmp) = (node)->next; (node) != (head); \
             (node) = (tmp), (tmp) = (node)->next)
