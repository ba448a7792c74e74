/* The hooks the server calls for pool governance (governance.h): they keep
 * recycle.c, backoff.c and metrics.c out of the server's own files. */
#include <errno.h>
#include <sys/mman.h>

#include "log.h"
#include "server-internal.h"

int governance_start(aetask_server *s) {
        /* Shared with the workers, which count their calls in it. */
        governance fresh = { .max_lifetime = s->gov.max_lifetime, .max_rss = s->gov.max_rss };
        s->gov = fresh;
        void *p = mmap(NULL, sizeof(metrics_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return log_error_errno(-errno, "Failed to map the metrics");
        s->gov.shared = p;
        return recycle_start(s);
}

void governance_stop(aetask_server *s) {
        recycle_stop(s);
        backoff_stop(s);
        if (s->gov.shared)
                munmap(s->gov.shared, sizeof(metrics_shared));
        s->gov.shared = NULL;
}

void governance_worker_added(aetask_server *s, worker_record *rec) {
        s->gov.spawned++;
        if (backoff_active(s))
                s->gov.backoff.attempts++;
        recycle_worker_added(s, rec);
}

void governance_worker_exited(aetask_server *s, worker_record *rec, int status) {
        backoff_worker_exited(s, rec, metrics_worker_exited(s, rec, status));
}
