/* The log context's internals, for merging what workers send back. */
#pragma once

#include <aetask/aetask-client.h>
#include <stdbool.h>

#define LOG_CONTEXT_MAX_MESSAGES 100000
#define LOG_CONTEXT_MAX_TIMERS 100000

typedef struct log_message {
        uint64_t usec;
        pid_t pid;
        int priority;
        char *text;
} log_message;

typedef struct log_timer {
        char *name;
        uint64_t start, duration;
} log_timer;

struct aetask_log {
        unsigned n_ref;
        bool journal;
        uint64_t start, end;
        log_message *messages;
        unsigned n_messages, n_messages_alloc;
        log_timer *timers;
        unsigned n_timers, n_timers_alloc;
        json_object *data;
        unsigned dropped;
        aetask_log_finish_t finish;    /* runs once, when the last reference goes */
        void *finish_userdata;
};

/* Adds a message in time order (workers' clocks are this machine's). */
int log_context_add_message(aetask_log *l, uint64_t usec, pid_t pid, int priority, const char *text);
/* Adds a timer in the order timers started, as the seed keeps them. */
int log_context_add_timer(aetask_log *l, const char *name, uint64_t start, uint64_t duration);
/* Merges a reply's "logs" object; what does not parse is skipped. */
void log_context_merge(aetask_log *l, json_object *logs);
