/* The control socket's protocol, shared by the server (src/server/control.c)
 * and aetaskctl status (src/ctl/ctl-status.c): Varlink-shaped messages, each
 * ended by a NUL, as aetask-protocol(7) describes.
 *
 * The request is {"method":"io.aetask.Server.Status"}; the reply is
 * {"parameters":{...}} with the server's name, handler, pid, draining,
 * started_usec, uptime_usec, alive, busy, idle, max_workers,
 * max_workers_per_uid, calls, killed_hung, "users" (uid or address, workers,
 * busy) and "workers" (pid, number, state, client_pid, client_uid or
 * client_address, method and call_usec when busy, calls, started_usec,
 * uptime_usec).  An error is {"error":NAME,"parameters":{...}}. */
#pragma once

#define CONTROL_METHOD_STATUS          "io.aetask.Server.Status"
#define CONTROL_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"

/* The request aetaskctl sends, with its NUL. */
#define CONTROL_STATUS_REQUEST         "{\"method\":\"" CONTROL_METHOD_STATUS "\"}"

/* The most a request may take on the server, and a reply on aetaskctl's side. */
#define CONTROL_REQUEST_MAX            4096U
#define CONTROL_REPLY_MAX              (4U * 1024U * 1024U)
