/* aetask_log: a checkout's collected log, the seed's Log::Defer object. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log-context.h"
#include "macro.h"
#include "time-util.h"

_public_ int aetask_log_new(aetask_log **ret) {
        aetask_log *l;

        assert_return(ret, -EINVAL);
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->n_ref = 1;
        l->start = now_usec(CLOCK_REALTIME);
        *ret = l;
        return 0;
}

_public_ aetask_log *aetask_log_ref(aetask_log *l) {
        if (l)
                l->n_ref++;
        return l;
}

_public_ aetask_log *aetask_log_unref(aetask_log *l) {
        if (!l || --l->n_ref > 0)
                return NULL;
        if (l->finish) {
                /* Readable, and alive, while the callback runs; cleared
                 * first, so a reference it takes and drops later does not
                 * run it again. */
                aetask_log_finish_t finish = TAKE_PTR(l->finish);
                l->n_ref = 1;
                finish(l, l->finish_userdata);
                if (--l->n_ref > 0)
                        return NULL;
        }
        for (unsigned i = 0; i < l->n_messages; i++)
                free(l->messages[i].text);
        for (unsigned i = 0; i < l->n_timers; i++)
                free(l->timers[i].name);
        free(l->messages);
        free(l->timers);
        json_object_put(l->data);
        free(l);
        return NULL;
}

_public_ int aetask_log_set_journal(aetask_log *l, int b) {
        assert_return(l, -EINVAL);
        l->journal = !!b;
        return 0;
}

_public_ int aetask_log_set_finish_callback(aetask_log *l, aetask_log_finish_t callback, void *userdata) {
        assert_return(l, -EINVAL);
        l->finish = callback;
        l->finish_userdata = userdata;
        return 0;
}

static int grow(void **array, unsigned *alloc, unsigned need, size_t size) {
        if (need <= *alloc)
                return 0;
        unsigned n = MAX(*alloc * 2, 16U);
        void *p = reallocarray(*array, n, size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *alloc = n;
        return 0;
}

/* Appends a message at the end, in no particular order. */
static int append_message(aetask_log *l, uint64_t usec, pid_t pid, int priority, const char *text) {
        if (l->n_messages >= LOG_CONTEXT_MAX_MESSAGES) {
                l->dropped++;
                return 0;
        }
        if (grow((void **) &l->messages, &l->n_messages_alloc, l->n_messages + 1, sizeof(log_message)) < 0)
                return -ENOMEM;
        char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        l->messages[l->n_messages++] = (log_message) { .usec = usec, .pid = pid, .priority = priority, .text = copy };
        l->end = MAX(l->end, usec);
        return 0;
}

/* Messages and timers are both kept in time order (a message by when it
 * was logged, a timer by when it started, as the seed keeps them), and
 * sorted by the same code. */
typedef uint64_t (*time_of_t)(const void *entry);

static uint64_t message_time(const void *m) {
        return ((const log_message *) m)->usec;
}

static uint64_t timer_time(const void *t) {
        return ((const log_timer *) t)->start;
}

#define AT(base, i, size) ((char *) (base) + (i) * (size))

/* Moves the last of N entries back past those that are later: usually the
 * newest, so it stays where it is. */
static void settle_last(void *base, size_t n, size_t size, time_of_t time_of) {
        union { log_message m; log_timer t; } x;  /* aligned for either */
        size_t i;

        memcpy(&x, AT(base, n - 1, size), size);
        for (i = n - 1; i > 0 && time_of(AT(base, i - 1, size)) > time_of(&x); i--)
                ;
        memmove(AT(base, i + 1, size), AT(base, i, size), (n - 1 - i) * size);
        memcpy(AT(base, i, size), &x, size);
}

int log_context_add_message(aetask_log *l, uint64_t usec, pid_t pid, int priority, const char *text) {
        unsigned n = l->n_messages;
        int r;

        r = append_message(l, usec, pid, priority, text);
        if (r < 0 || l->n_messages == n)
                return r;
        settle_last(l->messages, l->n_messages, sizeof(log_message), message_time);
        return 0;
}

/* Merges a[0..n1) and a[n1..n1+n2), each in time order, keeping entries of
 * equal time in the order they came; TMP has room for N1 entries. */
static void merge_runs(void *a, size_t n1, size_t n2, void *tmp, size_t size, time_of_t time_of) {
        size_t i = 0, j = n1, k = 0;

        memcpy(tmp, a, n1 * size);
        while (i < n1 && j < n1 + n2) {
                bool right = time_of(AT(a, j, size)) < time_of(AT(tmp, i, size));
                memcpy(AT(a, k++, size), right ? AT(a, j++, size) : AT(tmp, i++, size), size);
        }
        if (i < n1)
                memcpy(AT(a, k, size), AT(tmp, i, size), (n1 - i) * size);
}

/* Puts the N - FIRST entries from FIRST on, appended as they came in a
 * worker's reply, among the others in time order.  A reply's entries are
 * usually in order and later than the rest, which costs one pass; anything
 * else is a merge sort, so a worker sending many entries newest first
 * cannot make the client spend quadratic time. */
static void order_from(void *base, size_t n, size_t first, size_t size, time_of_t time_of) {
        size_t batch = n - first, i;
        void *tmp;

        for (i = MAX(first, (size_t) 1); i < n && time_of(AT(base, i - 1, size)) <= time_of(AT(base, i, size)); i++)
                ;
        if (i >= n)
                return;

        tmp = reallocarray(NULL, n, size);
        if (!tmp) {
                /* No memory for the merge: insertion, slow but in place. */
                for (i = MAX(first, (size_t) 1); i < n; i++)
                        settle_last(base, i + 1, size, time_of);
                return;
        }
        for (size_t width = 1; width < batch; width *= 2)
                for (size_t lo = first; lo + width < n; lo += 2 * width)
                        merge_runs(AT(base, lo, size), width, MIN(width, n - lo - width), tmp, size, time_of);
        if (first > 0)
                merge_runs(base, first, batch, tmp, size, time_of);
        free(tmp);
}

/* Appends a timer at the end, in no particular order. */
static int append_timer(aetask_log *l, const char *name, uint64_t start, uint64_t duration) {
        if (l->n_timers >= LOG_CONTEXT_MAX_TIMERS) {
                l->dropped++;
                return 0;
        }
        if (grow((void **) &l->timers, &l->n_timers_alloc, l->n_timers + 1, sizeof(log_timer)) < 0)
                return -ENOMEM;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        l->timers[l->n_timers++] = (log_timer) { .name = copy, .start = start, .duration = duration };
        l->end = MAX(l->end, start + duration);
        return 0;
}

int log_context_add_timer(aetask_log *l, const char *name, uint64_t start, uint64_t duration) {
        unsigned n = l->n_timers;
        int r;

        r = append_timer(l, name, start, duration);
        if (r < 0 || l->n_timers == n)
                return r;
        settle_last(l->timers, l->n_timers, sizeof(log_timer), timer_time);
        return 0;
}

_public_ int aetask_log_append(aetask_log *l, int priority, const char *format, ...) {
        _cleanup_(freep) char *text = NULL;
        va_list ap;
        int r;

        assert_return(l, -EINVAL);
        assert_return(format, -EINVAL);
        assert_return(priority >= LOG_EMERG && priority <= LOG_DEBUG, -EINVAL);

        va_start(ap, format);
        r = vasprintf(&text, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return log_context_add_message(l, now_usec(CLOCK_REALTIME), getpid(), priority, text);
}

void log_context_merge(aetask_log *l, json_object *logs) {
        json_object *v;

        if (json_object_object_get_ex(logs, "messages", &v) && json_object_is_type(v, json_type_array)) {
                unsigned first = l->n_messages;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        json_object *m = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 4)
                                continue;
                        (void) append_message(l,
                                (uint64_t) json_object_get_int64(json_object_array_get_idx(m, 0)),
                                json_object_get_int(json_object_array_get_idx(m, 1)),
                                json_object_get_int(json_object_array_get_idx(m, 2)),
                                json_object_get_string(json_object_array_get_idx(m, 3)) ?: "");
                }
                order_from(l->messages, l->n_messages, first, sizeof(log_message), message_time);
        }
        if (json_object_object_get_ex(logs, "timers", &v) && json_object_is_type(v, json_type_array)) {
                unsigned first = l->n_timers;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        json_object *t = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(t, json_type_array) || json_object_array_length(t) != 3)
                                continue;
                        (void) append_timer(l,
                                json_object_get_string(json_object_array_get_idx(t, 0)) ?: "",
                                (uint64_t) json_object_get_int64(json_object_array_get_idx(t, 1)),
                                (uint64_t) json_object_get_int64(json_object_array_get_idx(t, 2)));
                }
                order_from(l->timers, l->n_timers, first, sizeof(log_timer), timer_time);
        }
        if (json_object_object_get_ex(logs, "data", &v) && json_object_is_type(v, json_type_object)) {
                if (!l->data)
                        l->data = json_object_new_object();
                json_object_object_foreach(v, key, value)
                        json_object_object_add(l->data, key, json_object_get(value));
        }
        if (json_object_object_get_ex(logs, "dropped", &v))
                l->dropped += (unsigned) json_object_get_int64(v);
}

_public_ unsigned aetask_log_get_n_messages(aetask_log *l) {
        return l ? l->n_messages : 0;
}

_public_ int aetask_log_get_message(aetask_log *l, unsigned i, uint64_t *ret_usec, pid_t *ret_pid,
                                   int *ret_priority, const char **ret_text) {
        assert_return(l, -EINVAL);
        assert_return(i < l->n_messages, -ERANGE);
        if (ret_usec)
                *ret_usec = l->messages[i].usec;
        if (ret_pid)
                *ret_pid = l->messages[i].pid;
        if (ret_priority)
                *ret_priority = l->messages[i].priority;
        if (ret_text)
                *ret_text = l->messages[i].text;
        return 0;
}

_public_ unsigned aetask_log_get_n_timers(aetask_log *l) {
        return l ? l->n_timers : 0;
}

_public_ int aetask_log_get_timer(aetask_log *l, unsigned i, const char **ret_name,
                                 uint64_t *ret_start_usec, uint64_t *ret_duration_usec) {
        assert_return(l, -EINVAL);
        assert_return(i < l->n_timers, -ERANGE);
        if (ret_name)
                *ret_name = l->timers[i].name;
        if (ret_start_usec)
                *ret_start_usec = l->timers[i].start;
        if (ret_duration_usec)
                *ret_duration_usec = l->timers[i].duration;
        return 0;
}

_public_ json_object *aetask_log_get_data(aetask_log *l) {
        assert_return(l, NULL);
        if (!l->data)
                l->data = json_object_new_object();
        return l->data;
}

_public_ unsigned aetask_log_get_dropped(aetask_log *l) {
        return l ? l->dropped : 0;
}

_public_ json_object *aetask_log_to_json(aetask_log *l) {
        json_object *o, *logs, *timers;

        assert_return(l, NULL);
        o = json_object_new_object();
        logs = json_object_new_array_ext((int) l->n_messages);
        timers = json_object_new_array_ext((int) l->n_timers);
        for (unsigned i = 0; i < l->n_messages; i++) {
                json_object *m = json_object_new_array_ext(4);
                json_object_array_add(m, json_object_new_int64((int64_t) l->messages[i].usec));
                json_object_array_add(m, json_object_new_int(l->messages[i].pid));
                json_object_array_add(m, json_object_new_int(l->messages[i].priority));
                json_object_array_add(m, json_object_new_string(l->messages[i].text));
                json_object_array_add(logs, m);
        }
        for (unsigned i = 0; i < l->n_timers; i++) {
                json_object *t = json_object_new_array_ext(3);
                json_object_array_add(t, json_object_new_string(l->timers[i].name));
                json_object_array_add(t, json_object_new_int64((int64_t) l->timers[i].start));
                json_object_array_add(t, json_object_new_int64((int64_t) l->timers[i].duration));
                json_object_array_add(timers, t);
        }
        json_object_object_add(o, "start", json_object_new_int64((int64_t) l->start));
        json_object_object_add(o, "end", json_object_new_int64((int64_t) MAX(l->end, l->start)));
        json_object_object_add(o, "logs", logs);
        json_object_object_add(o, "timers", timers);
        json_object_object_add(o, "data", json_object_get(aetask_log_get_data(l)));
        json_object_object_add(o, "dropped", json_object_new_int64(l->dropped));
        return o;
}
