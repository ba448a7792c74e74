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

/* Sends one entry made of "FIELD=value" strings (values may hold newlines).
 * Returns 0, or -errno when even stderr failed. */
int journal_send(const char *const *fields, size_t n_fields);

/* Like journal_send(), but each field as an iovec of its own. */
int journal_sendv(const struct iovec *fields, size_t n_fields);

/* Without a journal, returns -ENOTCONN instead of writing to stderr. */
int journal_send_only(const char *const *fields, size_t n_fields);

/* Sends never block by default: an event loop must not wait for journald,
 * and an entry it has no room for is dropped.  A worker, which may block,
 * turns this on so that none of its entries are lost. */
void journal_set_blocking(bool b);

/* True when a journal socket answered the last send. */
bool journal_is_connected(void);
