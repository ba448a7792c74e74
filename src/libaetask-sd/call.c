/* Calls and their slots: the handle a caller keeps to cancel one call, and
 * the one place a call ends (call_free()), so its destroy callback runs
 * exactly once whatever ends it: its reply, an error, a cancel, the client
 * going away. */
#include <stdio.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"

static void call_run_destroy(call *k) {
        aetask_destroy_t destroy = k->destroy;

        k->destroy = NULL;
        if (destroy)
                destroy(k->userdata);
}

int call_deliver(call *k, json_object *result, aetask_error_kind kind, const char *message) {
        aetask_error error = { .kind = kind, .message = message ?: "" };
        aetask_reply_handler_t callback = k->callback;

        if (k->cancelled || !callback)
                return 0;
        k->callback = NULL;  /* once */
        return callback(k->checkout, result, kind != 0 ? &error : NULL, k->userdata);
}

void call_free(call *k) {
        if (!k)
                return;
        list_remove(&k->node);
        if (k->slot) {
                aetask_slot *slot = TAKE_PTR(k->slot);
                slot->call = NULL;
                if (slot->floating)
                        aetask_slot_unref(slot);
        }
        call_run_destroy(k);
        free(k);
}

/* The caller let go of the call.  What is not sent yet goes at once; a call
 * the worker has stays at the head of the queue as a placeholder, so its
 * reply is recognized and discarded, and the calls behind it wait for it. */
static void call_cancel(call *k) {
        aetask_checkout *co = k->checkout;

        k->cancelled = true;
        k->callback = NULL;
        call_run_destroy(k);
        if (k->state != CALL_QUEUED && k->state != CALL_DOOMED)
                return;  /* sent, or ending: the reply or the failure frees it */

        bool was_first = k->state == CALL_QUEUED && checkout_first_call(co) == k;
        aetask_checkout_ref(co);
        call_free(k);
        checkout_calls_changed(co, was_first);
        aetask_checkout_unref(co);
}

_public_ aetask_slot *aetask_slot_ref(aetask_slot *slot) {
        if (!slot)
                return NULL;
        slot->n_ref++;
        return slot;
}

_public_ aetask_slot *aetask_slot_unref(aetask_slot *slot) {
        if (!slot)
                return NULL;
        /* In a forked child the call is the parent's: not cancelled here. */
        if (slot_origin_changed(slot))
                return NULL;
        /* No references left: it is being freed, and the call's destroy
         * callback, run from here, let go of it once more. */
        if (slot->n_ref == 0)
                return NULL;
        if (--slot->n_ref > 0)
                return NULL;
        if (slot->call) {
                call *k = TAKE_PTR(slot->call);
                k->slot = NULL;
                call_cancel(k);
        }
        free(slot);
        return NULL;
}

_public_ int aetask_slot_set_destroy_callback(aetask_slot *slot, aetask_destroy_t callback) {
        assert_return(slot, -EINVAL);
        assert_return(!slot_origin_changed(slot), -ECHILD);
        assert_return(slot->call, -ESTALE);
        slot->call->destroy = callback;
        return 0;
}

_public_ int aetask_slot_set_floating(aetask_slot *slot, int b) {
        assert_return(slot, -EINVAL);
        assert_return(!slot_origin_changed(slot), -ECHILD);

        if (slot->floating == !!b)
                return 0;
        assert_return(slot->call, -ESTALE);
        slot->floating = !!b;
        if (b)
                aetask_slot_ref(slot);
        else
                aetask_slot_unref(slot);
        return 1;
}

_public_ void *aetask_slot_get_userdata(aetask_slot *slot) {
        assert_return(slot, NULL);
        assert_return(!slot_origin_changed(slot), NULL);
        return slot->call ? slot->call->userdata : NULL;
}

_public_ aetask_checkout *aetask_slot_get_checkout(aetask_slot *slot) {
        assert_return(slot, NULL);
        assert_return(!slot_origin_changed(slot), NULL);
        return slot->call ? slot->call->checkout : NULL;
}
