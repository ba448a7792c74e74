/* The shared-memory scoreboard of workers. */
#include "scoreboard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int scoreboard_init(scoreboard *b, unsigned n_slots) {
        void *p = mmap(NULL, n_slots * sizeof(scoreboard_slot), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        b->slots = p;
        b->n_slots = n_slots;
        return 0;
}

void scoreboard_done(scoreboard *b) {
        if (b->slots)
                munmap(b->slots, b->n_slots * sizeof(scoreboard_slot));
        b->slots = NULL;
        b->n_slots = 0;
}

scoreboard_slot *scoreboard_take(scoreboard *b) {
        for (unsigned i = 0; i < b->n_slots; i++)
                if (slot_get_state(&b->slots[i]) == SLOT_FREE) {
                        memset(&b->slots[i], 0, sizeof(b->slots[i]));
                        __atomic_store_n(&b->slots[i].state, SLOT_IDLE, __ATOMIC_RELEASE);
                        return &b->slots[i];
                }
        return NULL;
}

void scoreboard_release(scoreboard_slot *s) {
        __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

slot_state slot_get_state(const scoreboard_slot *s) {
        return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

void slot_set_setup(scoreboard_slot *s, slot_setup setup, const char *error) {
        if (error)
                snprintf(s->setup_error, sizeof(s->setup_error), "%s", error);
        __atomic_store_n(&s->setup, setup, __ATOMIC_RELEASE);
}

slot_setup slot_get_setup(const scoreboard_slot *s) {
        return __atomic_load_n(&s->setup, __ATOMIC_ACQUIRE);
}

void slot_call_begin(scoreboard_slot *s, const char *method) {
        size_t n = strlen(method);
        if (n >= SLOT_METHOD_MAX)
                n = SLOT_METHOD_MAX - 1;
        memcpy(s->method, method, n);
        s->method[n] = 0;
        __atomic_store_n(&s->call_started, now_usec(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
        __atomic_store_n(&s->state, SLOT_BUSY, __ATOMIC_RELEASE);
}

void slot_count_call(scoreboard_slot *s) {
        __atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
}

void slot_call_end(scoreboard_slot *s) {
        __atomic_store_n(&s->state, SLOT_IDLE, __ATOMIC_RELEASE);
}

void slot_snapshot(const scoreboard_slot *s, scoreboard_slot *ret) {
        /* The method name is not written atomically: copy again if a call
         * began meanwhile (a few tries; a torn name is only cosmetic). */
        for (int i = 0; i < 8; i++) {
                uint64_t started = __atomic_load_n(&s->call_started, __ATOMIC_ACQUIRE);
                memcpy(ret, s, sizeof(*ret));
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (__atomic_load_n(&s->call_started, __ATOMIC_ACQUIRE) == started)
                        break;
        }
        ret->method[SLOT_METHOD_MAX - 1] = 0;
}
