/* How a forked child ends: _exit(), so that nothing the parent registered
 * (atexit handlers, stdio buffers, destructors) runs twice.  _exit() also
 * skips gcov's write-out, so in a coverage build (meson -Db_coverage=true,
 * which defines AETASK_COVERAGE) the child writes its counts first: without
 * that, code run only in workers and forked servers reads as never run. */
#pragma once

#include <unistd.h>

#ifdef AETASK_COVERAGE
#include <signal.h>
void __gcov_dump(void);
#endif

/* Not for signal handlers: in a coverage build it writes files.  The
 * signals are blocked first there, so that no handler interrupts the
 * write-out (a SIGTERM landing in it left workers stuck on gcov's locks,
 * and every other process of the suite waiting on their count files). */
_Noreturn static inline void child_exit(int status) {
#ifdef AETASK_COVERAGE
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        __gcov_dump();
#endif
        _exit(status);
}
