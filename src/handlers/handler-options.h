/* What the in-tree handlers share to check their options at start (the
 * check_options hook): refusing a key they do not know, so a typo such as
 * -o cots=12 fails the start instead of being ignored. */
#pragma once

#include <aetask/aetask-handler.h>
#include <stdio.h>
#include <string.h>

/* OPTIONS are "key=value" strings; KNOWN the keys the handler reads, ended
 * by NULL.  Returns 0, or aetask_worker_raise() naming the first unknown key
 * and the known ones. */
static inline int handler_check_keys(aetask_worker *w, const char *const *options, const char *const *known) {
        for (const char *const *o = options; *o; o++) {
                size_t len = strcspn(*o, "=");
                const char *const *k = known;
                while (*k && !(strlen(*k) == len && strncmp(*k, *o, len) == 0))
                        k++;
                if (*k)
                        continue;

                char list[256] = "";
                size_t n = 0;
                for (k = known; *k && n < sizeof(list); k++)
                        n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%s", k == known ? "" : ", ", *k);
                return aetask_worker_raise(w, "unknown option %.*s: this handler takes %s", (int) len, *o,
                                           known[0] ? list : "none");
        }
        return 0;
}
