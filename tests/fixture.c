/* The shared server, loop and client of most test files (fixture.h). */
#include "fixture.h"

test_server srv;
sd_event *event;
aetask_client *client;

void fixture_start(const aetask_handler *handler, test_server_configure_t configure, void *userdata) {
        test_server_start(&srv, handler, configure, userdata);
        client = test_client_new(&srv, &event);
}

void fixture_finish(void) {
        client = aetask_client_unref(client);
        event = sd_event_unref(event);
        test_server_cleanup(&srv);
}
