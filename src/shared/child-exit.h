/* How a forked child ends: _exit(), so that nothing the parent registered
 * (atexit handlers, stdio buffers, destructors) runs twice.  _exit() also
 * skips gcov's write-out, so in a coverage build (meson -Db_coverage=true,
 * which defines AETASK_COVERAGE) the child writes its counts first: without
 * that, code run only in workers and forked servers reads as never run. */
#pragma once

#include <unistd.h>

#ifdef AETASK_COVERAGE
void __gcov_dump(void);
#endif

/* Async-signal-safe in a normal build.  In a coverage build it is not
 * (gcov writes files), which is acceptable there: the one caller in a
 * signal handler runs only while the worker is blocked in read(). */
_Noreturn static inline void child_exit(int status) {
#ifdef AETASK_COVERAGE
        __gcov_dump();
#endif
        _exit(status);
}
