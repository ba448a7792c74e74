/* A checkout: exclusive use of one worker, a queue of calls run on it in
 * order, a timeout, and the errors that end it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "client-internal.h"
#include "log-context.h"
#include "message-ids.h"
#include "macro.h"
#include "protocol.h"

/* The largest scratch buffer a client keeps between calls. */
#define CALL_SCRATCH_KEEP (256U * 1024U)

static void checkout_free(aetask_checkout *co) {
        list_remove(&co->client_node);
        list_remove(&co->report_node);
        if (co->client) {
                checkout_forget_timer(co);
                co->client->n_checkouts--;
        }
        aetask_log_unref(co->log);
        free(co->fatal_message);
        free(co->trace_own);
        if (co->destroy)
                co->destroy(co->userdata);
        free(co);
}

call *checkout_first_call(aetask_checkout *co) {
        return list_first_entry(&co->calls, call, node);
}

void checkout_leave_queue(aetask_checkout *co) {
        if (co->state != CHECKOUT_WAITING)
                return;
        queue_remove(&co->client->waiting, &co->queued);
        co->state = CHECKOUT_IDLE;
}

/* The worker goes back to the pool, or away; the checkout is over. */
static void checkout_finish(aetask_checkout *co) {
        worker_conn *w = co->worker;

        if (co->state == CHECKOUT_FINISHED)
                return;
        checkout_leave_queue(co);
        co->state = CHECKOUT_FINISHED;
        co->deadline = USEC_INFINITY;
        checkout_journal(co, "released", LOG_DEBUG, NULL, NULL, UINT64_MAX, NULL, "Checkout released");
        if (w) {
                bool reuse = co->fatal_kind == 0 && (!co->had_error || co->client->dont_refork_after_error);
                conn_release(w, reuse);
        }
}

/* Ends the checkout once nobody can add calls and none are left. */
static void checkout_maybe_end(aetask_checkout *co) {
        if (!list_is_empty(&co->calls) || !list_is_empty(&co->doomed))
                return;
        if (co->n_ref > 0 && !co->released)
                return;
        checkout_finish(co);
        if (co->n_ref == 0)
                checkout_free(co);
}

_public_ int aetask_client_checkout(aetask_client *c, aetask_checkout **ret) {
        aetask_checkout *co;
        int r;

        assert_return(c, -EINVAL);
        assert_return(ret, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        assert_return(!c->freeing, -ESTALE);
        assert_return(c->event, -ENXIO);

        /* Room for its timeout now, so arming it later cannot fail. */
        r = heap_reserve(&c->timeouts, c->n_checkouts + 1);
        if (r < 0)
                return r;
        co = calloc(1, sizeof(*co));
        if (!co)
                return -ENOMEM;
        c->n_checkouts++;
        co->n_ref = 1;
        co->origin_pid = c->origin_pid;
        co->client = c;
        co->timeout = c->timeout;
        co->deadline = USEC_INFINITY;
        list_init(&co->client_node);
        queue_entry_init(&co->queued);
        list_init(&co->report_node);
        list_init(&co->calls);
        list_init(&co->doomed);
        list_append(&c->checkouts, &co->client_node);
        c->metrics.checkouts++;

        *ret = co;
        return 0;
}

_public_ aetask_checkout *aetask_checkout_ref(aetask_checkout *co) {
        if (!co)
                return NULL;
        co->n_ref++;
        return co;
}

_public_ aetask_checkout *aetask_checkout_unref(aetask_checkout *co) {
        if (!co)
                return NULL;
        /* In a forked child its calls are the parent's: ending them here
         * would run the parent's callbacks (as aetask_client_unref()). */
        if (checkout_origin_changed(co))
                return NULL;
        if (--co->n_ref == 0)
                checkout_maybe_end(co);
        return NULL;
}

_public_ int aetask_checkout_set_timeout(aetask_checkout *co, uint64_t usec) {
        assert_return(co, -EINVAL);
        assert_return(usec > 0, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);
        co->timeout = usec;
        return 0;
}

_public_ int aetask_checkout_set_error_handler(aetask_checkout *co, aetask_error_handler_t callback, void *userdata) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);
        co->error_handler = callback;
        co->error_userdata = userdata;
        return 0;
}

_public_ void *aetask_checkout_set_userdata(aetask_checkout *co, void *userdata) {
        assert_return(co, NULL);
        assert_return(!checkout_origin_changed(co), NULL);
        void *old = co->userdata;
        co->userdata = userdata;
        return old;
}

_public_ void *aetask_checkout_get_userdata(aetask_checkout *co) {
        assert_return(co, NULL);
        assert_return(!checkout_origin_changed(co), NULL);
        return co->userdata;
}

_public_ int aetask_checkout_set_destroy_callback(aetask_checkout *co, aetask_destroy_t callback) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);
        co->destroy = callback;
        return 0;
}

_public_ aetask_client *aetask_checkout_get_client(aetask_checkout *co) {
        assert_return(co, NULL);
        assert_return(!checkout_origin_changed(co), NULL);
        return co->client;
}

static void checkout_report(aetask_checkout *co, aetask_error_kind kind, const char *message) {
        aetask_error_handler_t handler = co->error_handler;
        void *userdata = co->error_userdata;

        if (!handler && co->client) {
                handler = co->client->error_handler;
                userdata = co->client->error_userdata;
        }
        if (!handler) {
                client_log_debug("Unhandled %s error on a checkout: %s", aetask_error_kind_to_string(kind), message);
                return;
        }
        aetask_checkout_ref(co);
        handler(co, kind, message, userdata);
        aetask_checkout_unref(co);
}

void checkout_send_next(aetask_checkout *co) {
        worker_conn *w = co->worker;
        call *k = checkout_first_call(co);

        if (w && k && !conn_has_call_in_flight(w))
                conn_send_call(w, k);
}

void checkout_calls_changed(aetask_checkout *co, bool was_first) {
        if (list_is_empty(&co->calls)) {
                co->deadline = USEC_INFINITY;
                /* Nothing left to run: a waiting checkout does not need a worker. */
                checkout_leave_queue(co);
                checkout_maybe_end(co);
                return;
        }
        if (was_first) {
                checkout_arm_timer(co);
                checkout_send_next(co);
        }
}

/* What a reply handler's return value asks for, after the call ended. */
static void checkout_after_handler(aetask_checkout *co, int r) {
        char text[128];

        if (r >= 0 || co->fatal_kind != 0)
                return;
        snprintf(text, sizeof(text), "the reply handler failed: %s", strerror(-r));
        checkout_fail(co, AETASK_ERROR_ABORTED, text);
}

void checkout_deliver_reply(aetask_checkout *co, json_object *result, json_object *logs) {
        /* Sending the next call may fail and run the error handler, and the
         * reply callback may drop the last reference to the checkout or to
         * the client: both are held from the start. */
        _cleanup_(aetask_checkout_unrefp) aetask_checkout *hold = aetask_checkout_ref(co);
        _cleanup_(aetask_client_unrefp) aetask_client *c = co->client ? client_hold(co->client) : NULL;
        call *k = checkout_first_call(co);
        int r;

        call_trace_done(co, k, logs, NULL);
        list_remove(&k->node);
        k->state = CALL_ENDING;
        if (list_is_empty(&co->calls))
                co->deadline = USEC_INFINITY;
        else {
                checkout_arm_timer(co);
                /* Send the next call before running this one's callback, so
                 * the worker is busy while we are. */
                checkout_send_next(co);
        }

        /* Checkouts the callback makes are handed out once it returns and
         * this checkout is released, if it is: its worker is then free for
         * them, and the first call goes out in one write with its Done. */
        if (c)
                c->in_reply_callback++;
        r = call_deliver(k, result, 0, NULL);
        call_free(k);
        if (c)
                c->in_reply_callback--;
        checkout_after_handler(co, r);
        aetask_checkout_unref(TAKE_PTR(hold));
        if (c && c->dispatch_deferred) {
                c->dispatch_deferred = false;
                client_dispatch(c);
        }
}

void checkout_fail_call(aetask_checkout *co, aetask_error_kind kind, const char *message, json_object *logs) {
        call *k = checkout_first_call(co);

        if (k)
                call_trace_done(co, k, logs, message);
        /* The caller cancelled this call: its handler's error is nobody's
         * business, and the calls behind it go on. */
        if (k && k->cancelled && kind == AETASK_ERROR_HANDLER) {
                checkout_deliver_reply(co, NULL, NULL);
                return;
        }
        checkout_fail(co, kind, message);
}

void checkout_fail(aetask_checkout *co, aetask_error_kind kind, const char *message) {
        /* The handlers may drop the last reference. */
        _cleanup_(aetask_checkout_unrefp) aetask_checkout *hold = aetask_checkout_ref(co);
        bool had_calls = !list_is_empty(&co->calls), handled = false;
        const char *message_id = kind == AETASK_ERROR_WORKER_DIED ? AETASK_MESSAGE_WORKER_DIED :
                                  kind == AETASK_ERROR_TIMEOUT ? AETASK_MESSAGE_CHECKOUT_TIMEOUT : NULL;
        list_node failed;
        int r = 0;

        if (had_calls || kind != AETASK_ERROR_CANCELLED)
                checkout_journal(co, "error", kind == AETASK_ERROR_HANDLER ? LOG_NOTICE : LOG_WARNING, message_id,
                                 NULL, UINT64_MAX, aetask_error_kind_to_string(kind),
                                 "Checkout failed (%s): %s", aetask_error_kind_to_string(kind), message);

        /* The seed's rule: an error clears the queue.  The calls leave it
         * before any handler runs, so calls those make start a new one. */
        list_init(&failed);
        while (!list_is_empty(&co->calls)) {
                call *k = checkout_first_call(co);
                list_remove(&k->node);
                k->state = CALL_ENDING;
                list_append(&failed, &k->node);
        }
        co->deadline = USEC_INFINITY;

        if (kind == AETASK_ERROR_HANDLER)
                co->had_error = true;
        else if (co->fatal_kind == 0) {
                /* Fatal: the worker is never used again, and the error sticks. */
                co->fatal_kind = kind;
                co->fatal_message = strdup(message);
                checkout_leave_queue(co);
                if (co->worker)
                        conn_release(co->worker, false);
        }

        /* The failed call learns why; those behind it that they never ran. */
        for (bool first = true; !list_is_empty(&failed); first = false) {
                call *k = list_first_entry(&failed, call, node);
                if (first) {
                        r = call_deliver(k, NULL, kind, message);
                        handled = r > 0 && !k->cancelled;
                } else if (kind == AETASK_ERROR_CANCELLED)
                        (void) call_deliver(k, NULL, kind, message);
                else
                        (void) call_deliver(k, NULL, AETASK_ERROR_CANCELLED,
                                            "not run: an earlier call on the checkout failed");
                call_free(k);
        }
        if (had_calls && !handled)
                checkout_report(co, kind, message);
        checkout_after_handler(co, r);
}

void checkout_requeue(aetask_checkout *co) {
        if (co->client && co->state == CHECKOUT_IDLE)
                client_enqueue_checkout(co->client, co, true);
}

void checkout_report_pending(aetask_checkout *co) {
        aetask_checkout_ref(co);
        while (!list_is_empty(&co->doomed)) {
                call *k = list_first_entry(&co->doomed, call, node);
                list_remove(&k->node);
                k->state = CALL_ENDING;
                int r = call_deliver(k, NULL, co->fatal_kind, co->fatal_message ?: "");
                bool handled = r > 0 && !k->cancelled;
                call_free(k);
                if (!handled)
                        checkout_report(co, co->fatal_kind, co->fatal_message ?: "");
        }
        checkout_maybe_end(co);
        aetask_checkout_unref(co);
}

void checkout_cancel(aetask_checkout *co, const char *why) {
        aetask_checkout_ref(co);
        checkout_fail(co, AETASK_ERROR_CANCELLED, why);
        checkout_report_pending(co);
        checkout_leave_queue(co);
        list_remove(&co->client_node);
        list_remove(&co->report_node);
        checkout_forget_timer(co);
        co->client->n_checkouts--;
        co->client = NULL;
        aetask_checkout_unref(co);
}

/* Makes the call for a message serialized in the client's scratch buffer:
 * copied into a call of just its size, so a queued call costs its message,
 * not the room a growing buffer leaves. */
/* The scratch buffer a call is serialized into starts with room for the
 * call's own fields, so that a large call takes the buffer's memory as its
 * own instead of a copy of a megabyte. */
#define CALL_HEADER offsetof(call, message)

static int scratch_begin_call(buffer *scratch) {
        int r;

        buffer_clear(scratch);
        r = buffer_reserve(scratch, CALL_HEADER);
        if (r < 0)
                return r;
        scratch->end += CALL_HEADER;  /* filled in by checkout_new_call() */
        return 0;
}

/* The call for the message in the scratch buffer, with the method's name
 * after it (for its trace): a copy of just its size, so that a queued call
 * costs its message and not the room a growing buffer leaves, or, past
 * CALL_SCRATCH_KEEP, the buffer itself. */
static call *scratch_take_call(buffer *scratch, const char *method, size_t method_size) {
        size_t size = buffer_length(scratch) + method_size;
        call *k;

        if (buffer_length(scratch) - CALL_HEADER > CALL_SCRATCH_KEEP) {
                if (method && buffer_append(scratch, method, method_size) < 0)
                        return NULL;
                k = realloc(scratch->data, size);  /* a shrink: it stays in place */
                if (!k)
                        return NULL;
                *scratch = (buffer) {};
        } else {
                k = malloc(size);
                if (!k)
                        return NULL;
                memcpy(k, buffer_head(scratch), buffer_length(scratch));
                if (method)
                        memcpy((char *) k + buffer_length(scratch), method, method_size);
        }
        memset(k, 0, CALL_HEADER);
        return k;
}

static int checkout_new_call(aetask_checkout *co, const char *method, aetask_slot **ret_slot,
                             aetask_reply_handler_t callback, void *userdata, call **ret) {
        aetask_client *c = co->client;
        size_t size = buffer_length(&c->scratch) - CALL_HEADER;  /* the NUL included */
        size_t method_size = method ? strlen(method) + 1 : 0;
        _cleanup_(freep) aetask_slot *slot = NULL;
        call *k;

        if (size - 1 > c->max_message_size)
                return -EMSGSIZE;
        if (ret_slot) {
                slot = calloc(1, sizeof(*slot));
                if (!slot)
                        return -ENOMEM;
                slot->n_ref = 1;
                slot->origin_pid = co->origin_pid;
        }
        k = scratch_take_call(&c->scratch, method, method_size);
        if (!k)
                return -ENOMEM;
        k->checkout = co;
        k->callback = callback;
        k->userdata = userdata;
        k->size = size;
        list_init(&k->node);
        k->has_method = method != NULL;
        if (slot) {
                slot->call = k;
                k->slot = slot;
                *ret_slot = TAKE_PTR(slot);
        }
        *ret = k;
        return 0;
}

/* Queues K, made for CO: sends it, or waits for a worker, or fails it with
 * the error that stuck. */
static void checkout_queue_call(aetask_checkout *co, call *k) {
        aetask_client *c = co->client;

        if (co->fatal_kind == 0 && co->state == CHECKOUT_IDLE && list_is_empty(&co->calls) && client_queue_is_full(c))
                checkout_refuse(co);
        if (co->fatal_kind != 0) {
                /* Fails at once, through its handler like any error. */
                k->state = CALL_DOOMED;
                list_append(&co->doomed, &k->node);
                client_schedule_reports(c, co);
                return;
        }

        bool first = list_is_empty(&co->calls);
        k->state = CALL_QUEUED;
        list_append(&co->calls, &k->node);
        if (first) {
                checkout_arm_timer(co);
                if (co->state == CHECKOUT_ASSIGNED)
                        checkout_send_next(co);
                else {
                        checkout_journal(co, "queued", LOG_DEBUG, NULL, NULL, UINT64_MAX, NULL, "Checkout queued");
                        client_enqueue_checkout(c, co, false);
                        client_dispatch(c);
                }
        }
}

static int checkout_check_callable(aetask_checkout *co) {
        aetask_client *c = co->client;

        assert_return(!checkout_origin_changed(co), -ECHILD);
        assert_return(c, -ENOTCONN);
        assert_return(!co->released && co->state != CHECKOUT_FINISHED, -ESTALE);
        /* Never a loop of our choosing: the default one may not be the one
         * the program runs, and its calls would never complete. */
        assert_return(c->event, -ENXIO);
        return 0;
}

_public_ int aetask_checkout_call(aetask_checkout *co, aetask_slot **ret_slot, const char *method,
                                  json_object *args, aetask_reply_handler_t callback, void *userdata) {
        char trace[CHECKOUT_TRACE_MAX];
        aetask_client *c;
        call *k = NULL;
        int r;

        assert_return(co, -EINVAL);
        assert_return(!method || protocol_method_name_is_valid(method), -EINVAL);
        assert_return(!args || json_object_is_type(args, json_type_array), -EINVAL);
        r = checkout_check_callable(co);
        if (r < 0)
                return r;
        c = co->client;

        r = scratch_begin_call(&c->scratch);
        if (r >= 0)
                r = protocol_append_call(&c->scratch, method, args, checkout_trace_id(co, trace));
        if (r >= 0)
                r = checkout_new_call(co, method, ret_slot, callback, userdata, &k);
        /* What a rare large call needed is not kept. */
        if (c->scratch.alloc > CALL_SCRATCH_KEEP)
                buffer_done(&c->scratch);
        if (r < 0)
                return r;

        c->metrics.calls++;
        checkout_queue_call(co, k);
        return 0;
}

/* TYPES and the arguments after it as a JSON array, as
 * sd_bus_message_append() reads its signature. */
static int build_args(const char *types, va_list ap, json_object **ret) {
        _cleanup_(json_object_putp) json_object *args = json_object_new_array();
        const char *s;
        json_object *j;

        if (!args)
                return -ENOMEM;
        for (const char *t = types; *t; t++) {
                json_object *v = NULL;
                switch (*t) {
                case 's':
                        s = va_arg(ap, const char *);
                        if (s && !(v = json_object_new_string(s)))
                                return -ENOMEM;
                        break;
                case 'i':
                        v = json_object_new_int64(va_arg(ap, int64_t));
                        break;
                case 'u':
                        v = json_object_new_uint64(va_arg(ap, uint64_t));
                        break;
                case 'b':
                        v = json_object_new_boolean(!!va_arg(ap, int));
                        break;
                case 'd':
                        v = json_object_new_double(va_arg(ap, double));
                        break;
                case 'n':
                        break;
                case 'j':
                        j = va_arg(ap, json_object *);
                        v = json_object_get(j);
                        break;
                default:
                        return -EINVAL;
                }
                if (json_object_array_add(args, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(args);
        return 0;
}

_public_ int aetask_checkout_call_format(aetask_checkout *co, aetask_slot **ret_slot, const char *method,
                                         aetask_reply_handler_t callback, void *userdata, const char *types, ...) {
        _cleanup_(json_object_putp) json_object *args = NULL;
        va_list ap;
        int r;

        assert_return(co, -EINVAL);
        assert_return(types, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);

        va_start(ap, types);
        r = build_args(types, ap, &args);
        va_end(ap);
        if (r < 0)
                return r;
        return aetask_checkout_call(co, ret_slot, method, args, callback, userdata);
}

_public_ int aetask_checkout_throw_fatal_error(aetask_checkout *co, const char *message) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);

        if (co->fatal_kind != 0)
                return 0;
        checkout_fail(co, AETASK_ERROR_ABORTED, message ?: "aborted by the caller");
        return 1;
}

_public_ int aetask_checkout_get_error(aetask_checkout *co, aetask_error_kind *ret_kind, const char **ret_message) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);

        if (co->fatal_kind == 0)
                return -ENODATA;
        if (ret_kind)
                *ret_kind = co->fatal_kind;
        if (ret_message)
                *ret_message = co->fatal_message ?: "";
        return 0;
}

_public_ int aetask_checkout_release(aetask_checkout *co) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);

        if (co->released)
                return 0;
        co->released = true;
        aetask_checkout_ref(co);
        checkout_maybe_end(co);
        aetask_checkout_unref(co);
        return 1;
}
