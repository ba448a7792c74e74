/* Process titles for ps: the server and each worker say who they are. */
#pragma once

/* Call once before forking anything, while argv is still as exec left it. */
void proctitle_init(void);
void proctitle_set(const char *format, ...) __attribute__((format(printf, 1, 2)));
