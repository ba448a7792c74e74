/* aetaskd: serves one handler's workers, on sockets from systemd (socket
 * activation) or on addresses given with --listen.  See aetaskd(8). */
#include <getopt.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include <aetask/aetask-server.h>

#include "log.h"
#include "macro.h"

#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: aetaskd --handler NAME [OPTIONS...]\n\n"
               "Serve a pool of aetask worker processes running handler NAME.\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "     --handler NAME          The handler module to load\n"
               "     --handler-dir DIR       Where handler modules are (default %s,\n"
               "                             or $AETASK_HANDLER_DIR)\n"
               "  -l --listen ADDRESS        Listen on unix:/PATH, unix:@NAME or tcp:HOST:PORT\n"
               "                             (default: the sockets systemd passes)\n"
               "     --name NAME             Name shown in ps (default: the handler's)\n"
               "     --hung-timeout SECONDS  Kill a worker stuck in one call this long\n"
               "                             (default 300, fractions allowed, 0 disables)\n"
               "     --max-message-size BYTES  Largest message accepted (default 16777216)\n"
               "     --max-workers N         Most workers alive at once (1-65536, default 256,\n"
               "                             fewer if the file descriptor limit is lower)\n"
               "     --max-workers-per-uid N Most workers one user (over TCP, one address)\n"
               "                             may hold (default: half of --max-workers)\n"
               "     --drain-timeout SECONDS On SIGTERM, how long busy workers may finish\n"
               "                             their checkouts before they are killed\n"
               "                             (default 90, 0: no limit)\n"
               "     --control ADDRESS       Also answer status requests on ADDRESS\n"
               "                             (default: systemd's socket named \"control\")\n"
               "     --control-group GROUP   Members of GROUP may ask for status too\n"
               "  -o --option KEY=VALUE      An option for the handler (repeatable)\n",
               AETASK_HANDLER_DIR);
}

static int parse_seconds(const char *s, uint64_t *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || end == s || *end || d < 0 || d > 1e9)
                return -EINVAL;
        *ret = (uint64_t) (d * 1e6 + 0.5);
        return 0;
}

static int parse_unsigned(const char *s, unsigned long long *ret) {
        char *end;

        errno = 0;
        *ret = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-')
                return -EINVAL;
        return 0;
}

static int parse_group(const char *name, gid_t *ret) {
        unsigned long long n;
        struct group *g;

        if (parse_unsigned(name, &n) >= 0 && n < (gid_t) -1) {
                *ret = (gid_t) n;
                return 0;
        }
        errno = 0;
        g = getgrnam(name);
        if (!g)
                return errno > 0 ? -errno : -ESRCH;
        *ret = g->gr_gid;
        return 0;
}

/* Sockets passed by systemd: the one named "control" (FileDescriptorName=
 * of aetask-control@.socket) is the control socket, the others serve
 * workers.  Returns how many serve workers. */
static int take_systemd_sockets(aetask_server *s) {
        char **names = NULL;
        int n_fds, n_data = 0, r = 0;

        n_fds = sd_listen_fds_with_names(true, &names);
        if (n_fds < 0)
                return log_error_errno(n_fds, "Failed to get sockets from systemd");
        for (int i = 0; i < n_fds; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                bool control = names && names[i] && strcmp(names[i], "control") == 0;

                if (r >= 0) {
                        r = control ? aetask_server_add_control_fd(s, fd) : aetask_server_add_listen_fd(s, fd);
                        if (r < 0)
                                log_error_errno(r, "Failed to use socket %d", fd);
                        n_data += !control;
                }
        }
        for (int i = 0; names && i < n_fds; i++)
                free(names[i]);
        free(names);
        return r < 0 ? r : n_data;
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_HANDLER,
                ARG_HANDLER_DIR,
                ARG_NAME,
                ARG_HUNG_TIMEOUT,
                ARG_MAX_MESSAGE_SIZE,
                ARG_MAX_WORKERS,
                ARG_MAX_WORKERS_PER_UID,
                ARG_DRAIN_TIMEOUT,
                ARG_CONTROL,
                ARG_CONTROL_GROUP,
        };
        static const struct option options[] = {
                { "help",             no_argument,       NULL, 'h'                  },
                { "version",          no_argument,       NULL, ARG_VERSION          },
                { "handler",          required_argument, NULL, ARG_HANDLER          },
                { "handler-dir",      required_argument, NULL, ARG_HANDLER_DIR      },
                { "listen",           required_argument, NULL, 'l'                  },
                { "name",             required_argument, NULL, ARG_NAME             },
                { "hung-timeout",     required_argument, NULL, ARG_HUNG_TIMEOUT     },
                { "max-message-size", required_argument, NULL, ARG_MAX_MESSAGE_SIZE },
                { "max-workers",      required_argument, NULL, ARG_MAX_WORKERS      },
                { "max-workers-per-uid", required_argument, NULL, ARG_MAX_WORKERS_PER_UID },
                { "drain-timeout",    required_argument, NULL, ARG_DRAIN_TIMEOUT    },
                { "control",          required_argument, NULL, ARG_CONTROL          },
                { "control-group",    required_argument, NULL, ARG_CONTROL_GROUP    },
                { "option",           required_argument, NULL, 'o'                  },
                {}
        };
        _cleanup_(aetask_server_freep) aetask_server *s = NULL;
        const char *handler = NULL, *handler_dir = NULL;
        unsigned long long n;
        uint64_t usec;
        int c, r, n_listen = 0;

        r = aetask_server_new(&s);
        if (r < 0) {
                log_error_errno(r, "Failed to create server");
                return EXIT_FAILURE;
        }

        while ((c = getopt_long(argc, argv, "hl:o:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        puts("aetaskd " AETASK_VERSION);
                        return EXIT_SUCCESS;
                case ARG_HANDLER:
                        handler = optarg;
                        break;
                case ARG_HANDLER_DIR:
                        handler_dir = optarg;
                        break;
                case 'l':
                        r = aetask_server_listen(s, optarg);
                        if (r == -EINVAL) {
                                log_error("Invalid address '%s': expected unix:/PATH, unix:@NAME or tcp:HOST:PORT", optarg);
                                return EXIT_USAGE;
                        }
                        if (r < 0) {
                                log_error_errno(r, "Failed to listen on %s", optarg);
                                return EXIT_FAILURE;
                        }
                        n_listen++;
                        break;
                case ARG_NAME:
                        (void) aetask_server_set_name(s, optarg);
                        break;
                case ARG_HUNG_TIMEOUT:
                        if (parse_seconds(optarg, &usec) < 0) {
                                log_error("Invalid --hung-timeout: %s", optarg);
                                return EXIT_USAGE;
                        }
                        (void) aetask_server_set_hung_timeout(s, usec);
                        break;
                case ARG_DRAIN_TIMEOUT:
                        if (parse_seconds(optarg, &usec) < 0) {
                                log_error("Invalid --drain-timeout: %s", optarg);
                                return EXIT_USAGE;
                        }
                        (void) aetask_server_set_drain_timeout(s, usec);
                        break;
                case ARG_CONTROL:
                        r = aetask_server_listen_control(s, optarg);
                        if (r < 0) {
                                log_error_errno(r, "Failed to listen on %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_CONTROL_GROUP: {
                        gid_t gid;
                        r = parse_group(optarg, &gid);
                        if (r < 0) {
                                log_error_errno(r, "Failed to find group %s for --control-group", optarg);
                                return EXIT_USAGE;
                        }
                        (void) aetask_server_set_control_group(s, gid);
                        break;
                }
                case ARG_MAX_MESSAGE_SIZE:
                        if (parse_unsigned(optarg, &n) < 0 || aetask_server_set_max_message_size(s, n) < 0) {
                                log_error("Invalid --max-message-size: %s", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_MAX_WORKERS:
                        if (parse_unsigned(optarg, &n) < 0 || n > 65536 || aetask_server_set_max_workers(s, n) < 0) {
                                log_error("Invalid --max-workers: %s (expected 1 to 65536)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_MAX_WORKERS_PER_UID:
                        if (parse_unsigned(optarg, &n) < 0 || n == 0 || n > 65536 ||
                            aetask_server_set_max_workers_per_uid(s, n) < 0) {
                                log_error("Invalid --max-workers-per-uid: %s (expected 1 to 65536)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'o': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg) {
                                log_error("Invalid --option, expected KEY=VALUE: %s", optarg);
                                return EXIT_USAGE;
                        }
                        *eq = 0;
                        r = aetask_server_set_option(s, optarg, eq + 1);
                        *eq = '=';
                        if (r < 0) {
                                log_error_errno(r, "Invalid --option %s", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                }
                default:
                        return EXIT_USAGE;
                }

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return EXIT_USAGE;
        }
        if (!handler) {
                log_error("No handler given: use --handler NAME");
                return EXIT_USAGE;
        }

        r = aetask_server_load_handler(s, handler, handler_dir);
        if (r < 0)
                return EXIT_FAILURE;

        if (n_listen == 0) {
                r = take_systemd_sockets(s);
                if (r < 0)
                        return EXIT_FAILURE;
                if (r == 0) {
                        log_error("No socket to serve: use --listen ADDRESS, or start aetaskd through its socket unit");
                        return EXIT_USAGE;
                }
        }

        r = aetask_server_run(s);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
