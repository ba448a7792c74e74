/* The scoreboard: one slot per worker in memory shared between the server
 * and its workers.  A worker notes in its slot when a call starts and ends
 * (plain stores, no syscalls); the server reads the slots to kill hung
 * workers and to report status. */
#pragma once

#include "time-util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum slot_state {
        SLOT_FREE,
        SLOT_IDLE,        /* alive, waiting for a call */
        SLOT_BUSY,        /* running a call */
} slot_state;

#define SLOT_METHOD_MAX 64
#define SLOT_SETUP_ERROR_MAX 160

/* How far the handler's setup got, for the server's back-off (backoff.c). */
typedef enum slot_setup {
        SLOT_SETUP_NOT_RUN,
        SLOT_SETUP_RUNNING,
        SLOT_SETUP_DONE,
        SLOT_SETUP_FAILED,             /* setup_error says why */
} slot_setup;

typedef struct scoreboard_slot {
        uint32_t state;                /* slot_state, written with atomics */
        pid_t pid;
        unsigned number;
        pid_t client_pid;
        uid_t client_uid;
        uint64_t started_realtime;     /* usec */
        uint64_t call_started;         /* CLOCK_MONOTONIC usec, of the current call */
        uint64_t calls;                /* answered so far */
        char method[SLOT_METHOD_MAX];
        uint32_t setup;                /* slot_setup, written with atomics */
        char setup_error[SLOT_SETUP_ERROR_MAX];
} scoreboard_slot;

typedef struct scoreboard {
        unsigned n_slots;
        scoreboard_slot *slots;
} scoreboard;

int scoreboard_init(scoreboard *b, unsigned n_slots);
void scoreboard_done(scoreboard *b);
/* A free slot, or NULL. */
scoreboard_slot *scoreboard_take(scoreboard *b);
void scoreboard_release(scoreboard_slot *s);

void slot_call_begin(scoreboard_slot *s, const char *method);
/* A handler's method is about to run: "calls served" counts it, answered
 * or not (its worker may be killed, hung or past its deadline). */
void slot_count_call(scoreboard_slot *s);
void slot_call_end(scoreboard_slot *s);
slot_state slot_get_state(const scoreboard_slot *s);
/* In the worker: setup reached SETUP; a failure says why in ERROR. */
void slot_set_setup(scoreboard_slot *s, slot_setup setup, const char *error);
slot_setup slot_get_setup(const scoreboard_slot *s);
/* A consistent copy of a slot a worker may be writing to. */
void slot_snapshot(const scoreboard_slot *s, scoreboard_slot *ret);

