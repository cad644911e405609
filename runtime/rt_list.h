/*
 * rt_list.h - intrusive doubly linked lists: the element struct carries
 * `next` and `prev` pointers, the owner keeps a head (and, for RT_DLIST_*,
 * a tail). One implementation for the hooks, waiters, subscriptions,
 * clients, children and publish entries that each had their own.
 *
 * Macros, so they work on any element type; each argument may be
 * evaluated more than once: pass plain lvalues, never expressions with
 * side effects. An unlinked element has next == prev == NULL.
 */
#ifndef JETLUA_RT_LIST_H
#define JETLUA_RT_LIST_H

/* ---- head only: push at the front, unlink anywhere ---- */

#define RT_LIST_PUSH(head, e) do {                                          \
        (e)->prev = NULL;                                                   \
        (e)->next = (head);                                                 \
        if (head) (head)->prev = (e);                                       \
        (head) = (e);                                                       \
    } while (0)

#define RT_LIST_UNLINK(head, e) do {                                        \
        if ((e)->prev) (e)->prev->next = (e)->next; else (head) = (e)->next;\
        if ((e)->next) (e)->next->prev = (e)->prev;                         \
        (e)->next = (e)->prev = NULL;                                       \
    } while (0)

/* ---- head and tail: FIFO order, append, insert after an element ---- */

#define RT_DLIST_APPEND(head, tail, e) do {                                 \
        (e)->next = NULL;                                                   \
        (e)->prev = (tail);                                                 \
        if (tail) (tail)->next = (e); else (head) = (e);                    \
        (tail) = (e);                                                       \
    } while (0)

#define RT_DLIST_PUSH(head, tail, e) do {                                   \
        (e)->prev = NULL;                                                   \
        (e)->next = (head);                                                 \
        if (head) (head)->prev = (e); else (tail) = (e);                    \
        (head) = (e);                                                       \
    } while (0)

/* insert e after at (at == NULL: at the front) */
#define RT_DLIST_INSERT_AFTER(head, tail, at, e) do {                       \
        if (at) {                                                           \
            (e)->prev = (at);                                               \
            (e)->next = (at)->next;                                         \
            if ((at)->next) (at)->next->prev = (e); else (tail) = (e);      \
            (at)->next = (e);                                               \
        } else {                                                            \
            RT_DLIST_PUSH(head, tail, e);                                   \
        }                                                                   \
    } while (0)

#define RT_DLIST_UNLINK(head, tail, e) do {                                 \
        if ((e)->prev) (e)->prev->next = (e)->next; else (head) = (e)->next;\
        if ((e)->next) (e)->next->prev = (e)->prev; else (tail) = (e)->prev;\
        (e)->next = (e)->prev = NULL;                                       \
    } while (0)

#endif
