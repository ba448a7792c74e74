/* The fixture most test files share: one server (srv), an event loop
 * (event) and a client on it (client).  fixture_start() starts them;
 * fixture_finish(), a TestSuite's .fini or called from the file's own,
 * ends them.  A file with variables of these names of its own does not
 * include this header. */
#pragma once

#include "helpers.h"

extern test_server srv;
extern sd_event *event;
extern aetask_client *client;

/* test_server_start(&srv, HANDLER, CONFIGURE, USERDATA), then a client on
 * a new loop. */
void fixture_start(const aetask_handler *handler, test_server_configure_t configure, void *userdata);
void fixture_finish(void);
