/* Entries for systemd's journal, written over its native protocol.  Our own
 * socket, not libsystemd's: workers close the descriptors they inherit, and
 * a socket cached in another library would be left pointing at a closed (or
 * reused) descriptor number.  This one notices a fork and reopens.
 * Without a journal, entries go to stderr as plain lines. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* The largest value written for one field; longer ones are cut. */
#define JOURNAL_FIELD_MAX (48U * 1024U)

/* Sends one entry, each "FIELD=value" an iovec of its own (values may hold
 * newlines).  Returns 0, or -errno when even stderr failed. */
int journal_sendv(const struct iovec *fields, size_t n_fields);

/* One entry built field by field, for the server, its workers and the
 * client library alike:
 *
 *      _cleanup_(journal_entry_done) journal_entry e = {};
 *      journal_entry_add(&e, "MESSAGE", "Worker %u exited", n);
 *      journal_entry_add(&e, "PRIORITY", "%d", LOG_INFO);
 *      r = journal_entry_send(&e);
 *
 * A field past JOURNAL_ENTRY_FIELDS_MAX, or one there was no memory for, is
 * left out: the rest still make an entry. */
#define JOURNAL_ENTRY_FIELDS_MAX 16

typedef struct journal_entry {
        struct iovec fields[JOURNAL_ENTRY_FIELDS_MAX];
        size_t n;
} journal_entry;

/* Adds FIELD=value, the value formatted by FORMAT. */
void journal_entry_add(journal_entry *e, const char *field, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
/* journal_sendv() of the entry: the journal, or stderr without one. */
int journal_entry_send(journal_entry *e);
/* The same, but -ENOTCONN without a journal (journal_send_only()). */
int journal_entry_send_only(journal_entry *e);
void journal_entry_done(journal_entry *e);

/* Sends never block by default: an event loop must not wait for journald,
 * and an entry it has no room for is dropped.  A worker, which may block,
 * turns this on so that none of its entries are lost. */
void journal_set_blocking(bool b);

/* True when a journal socket answered the last send. */
bool journal_is_connected(void);
