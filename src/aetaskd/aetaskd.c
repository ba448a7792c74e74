/* aetaskd: serves one handler's workers, on sockets from systemd (socket
 * activation) or on addresses given with --listen.  See aetaskd(8). */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include <aetask/aetask-server.h>

#include "log.h"
#include "macro.h"
#include "parse-number.h"
#include "protocol.h"

#define EXIT_USAGE 2
#define EXIT_NOT_CONFIGURED 6   /* LSB's "program is not configured": the handler cannot be loaded,
                                 * or refuses its options */
#define MAX_WORKERS_LIMIT 65536

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
               "     --spare-workers N       Workers kept forked, their setup run, for new\n"
               "                             connections (default 0; they count in\n"
               "                             --max-workers)\n"
               "     --max-worker-lifetime SECONDS  Retire a worker after its checkout once\n"
               "                             it has lived this long, less up to 20%% at\n"
               "                             random (default 0: no limit)\n"
               "     --max-worker-rss BYTES  Retire a worker after its checkout once its\n"
               "                             resident memory passes BYTES (K, M, G suffixes\n"
               "                             allowed; default 0: no limit)\n"
               "     --worker-scheduling POLICY  batch (default): workers switch from the\n"
               "                             normal policy to SCHED_BATCH and do not preempt\n"
               "                             their clients; inherit: the server's policy\n"
               "     --drain-timeout SECONDS On SIGTERM, how long busy workers may finish\n"
               "                             their checkouts before they are killed\n"
               "                             (default 90, 0: no limit)\n"
               "     --control ADDRESS       Also answer status requests on ADDRESS\n"
               "                             (default: systemd's socket named \"control\")\n"
               "     --control-group GROUP   Members of GROUP may ask for status too\n"
               "     --allow-user USER       Serve only USER (a name or uid) and the users\n"
               "                             of --allow-group (repeatable; unix sockets only)\n"
               "     --allow-group GROUP     Serve only members of GROUP and the users of\n"
               "                             --allow-user (repeatable; unix sockets only)\n"
               "     --log-level LEVEL       Most verbose messages written: emerg, alert, crit,\n"
               "                             err, warning, notice, info (default) or debug\n"
               "     --call-log-level LEVEL  Priority of each worker's entry per call (trace id,\n"
               "                             method, duration, outcome; default debug, so\n"
               "                             written only with --log-level debug)\n"
               "  -o --option KEY=VALUE      An option for the handler (repeatable)\n",
               AETASK_HANDLER_DIR);
}

/* The largest value --hung-timeout and --drain-timeout take, in seconds. */
#define SECONDS_MAX 1000000000ULL

/* Parses a numeric option; an invalid or out-of-range value is a usage
 * error that says what would do. */
static int parse_option_number(const char *option, const char *value, uint64_t min, uint64_t max, uint64_t *ret) {
        int r = parse_uint64(value, min, max, ret);
        if (r < 0)
                log_error("Invalid %s: %s: expected an integer from %llu to %llu", option, value,
                          (unsigned long long) min, (unsigned long long) max);
        return r;
}

static int parse_option_seconds(const char *option, const char *value, uint64_t *ret_usec) {
        int r = parse_seconds(value, SECONDS_MAX, ret_usec);
        if (r < 0)
                log_error("Invalid %s: %s: expected seconds from 0 to %llu (fractions allowed)", option, value,
                          SECONDS_MAX);
        return r;
}

/* BYTES, or with a K, M or G suffix (powers of 1024). */
static int parse_option_bytes(const char *option, const char *value, uint64_t *ret) {
        static const char suffixes[] = "KMG";
        _cleanup_(freep) char *digits = strdup(value);
        unsigned shift = 0;
        size_t l = digits ? strlen(digits) : 0;
        const char *p;
        uint64_t n;

        if (!digits)
                return log_error_errno(-ENOMEM, "Failed to parse %s", option);
        if (l > 0 && (p = strchr(suffixes, digits[l - 1])) && *p) {
                shift = 10 * (unsigned) (p - suffixes + 1);
                digits[l - 1] = 0;
        }
        if (parse_uint64(digits, 0, UINT64_MAX >> shift, &n) < 0) {
                log_error("Invalid %s: %s: expected a number of bytes, with an optional K, M or G suffix",
                          option, value);
                return -EINVAL;
        }
        *ret = n << shift;
        return 0;
}

/* A syslog level by name (as journalctl -p takes them) or number. */
static int parse_level(const char *option, const char *value, int *ret) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };
        uint64_t n;

        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                if (strcmp(value, names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        if (parse_uint64(value, LOG_EMERG, LOG_DEBUG, &n) >= 0) {
                *ret = (int) n;
                return 0;
        }
        log_error("Invalid %s: %s: expected emerg, alert, crit, err, warning, notice, info, debug or 0 to 7",
                  option, value);
        return -EINVAL;
}

static int parse_group(const char *name, gid_t *ret) {
        uint64_t n;
        struct group *g;

        if (parse_uint64(name, 0, (gid_t) -2, &n) >= 0) {
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

static int parse_user(const char *name, uid_t *ret) {
        uint64_t n;
        struct passwd *p;

        if (parse_uint64(name, 0, (uid_t) -2, &n) >= 0) {
                *ret = (uid_t) n;
                return 0;
        }
        errno = 0;
        p = getpwnam(name);
        if (!p)
                return errno > 0 ? -errno : -ESRCH;
        *ret = p->pw_uid;
        return 0;
}

static void log_control_not_unix(const char *what) {
        log_error("Refusing %s as the control socket: it must be a unix socket, since callers are told "
                  "apart by their peer credentials, which TCP does not carry", what);
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
                        if (r == -EAFNOSUPPORT)
                                log_control_not_unix("the socket named \"control\" from systemd");
                        else if (r < 0)
                                log_error_errno(r, "Failed to use socket %d", fd);
                        n_data += !control;
                }
        }
        for (int i = 0; names && i < n_fds; i++)
                free(names[i]);
        free(names);
        return r < 0 ? r : n_data;
}

enum {
        ARG_VERSION = 0x100,
        ARG_HANDLER,
        ARG_HANDLER_DIR,
        ARG_NAME,
        ARG_HUNG_TIMEOUT,
        ARG_MAX_MESSAGE_SIZE,
        ARG_MAX_WORKERS,
        ARG_MAX_WORKERS_PER_UID,
        ARG_SPARE_WORKERS,
        ARG_DRAIN_TIMEOUT,
        ARG_MAX_WORKER_LIFETIME,
        ARG_MAX_WORKER_RSS,
        ARG_CONTROL,
        ARG_CONTROL_GROUP,
        ARG_ALLOW_USER,
        ARG_ALLOW_GROUP,
        ARG_LOG_LEVEL,
        ARG_CALL_LOG_LEVEL,
        ARG_WORKER_SCHEDULING,
};

/* What an option's parser returns to go on with the next (the others
 * return the exit status). */
#define ARGV_CONTINUE (-1)

/* What the command line asks for that the server is not told at once. */
static const char *arg_handler = NULL;
static const char *arg_handler_dir = NULL;
static unsigned arg_n_listen = 0;

/* --listen and --control: the sockets are made as the options come, so that
 * a failure names the option that asked for it. */
static int option_listen(aetask_server *s, int c, const char *value) {
        int r = c == 'l' ? aetask_server_listen(s, value) : aetask_server_listen_control(s, value);

        if (c == 'l' && r == -EINVAL) {
                log_error("Invalid address '%s': expected unix:/PATH, unix:@NAME or tcp:HOST:PORT", value);
                return EXIT_USAGE;
        }
        if (c == ARG_CONTROL && r == -EAFNOSUPPORT) {
                log_control_not_unix(value);
                return EXIT_USAGE;
        }
        if (r == -EEXIST) {
                /* Only a socket file is replaced (one nobody answers on). */
                log_error("Failed to listen on %s: the path exists and is not a socket", value);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to listen on %s", value);
                return EXIT_FAILURE;
        }
        arg_n_listen += c == 'l';
        return ARGV_CONTINUE;
}

/* The options that take a number of seconds, bytes or workers. */
static int option_number(aetask_server *s, int c, const char *value) {
        uint64_t n;

        switch (c) {
        case ARG_HUNG_TIMEOUT:
        case ARG_DRAIN_TIMEOUT:
                if (parse_option_seconds(c == ARG_HUNG_TIMEOUT ? "--hung-timeout" : "--drain-timeout", value, &n) < 0)
                        return EXIT_USAGE;
                (void) (c == ARG_HUNG_TIMEOUT ? aetask_server_set_hung_timeout(s, n) : aetask_server_set_drain_timeout(s, n));
                break;
        case ARG_MAX_MESSAGE_SIZE:
                if (parse_option_number("--max-message-size", value, PROTOCOL_MESSAGE_SIZE_MIN,
                                        PROTOCOL_MESSAGE_SIZE_LIMIT, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_max_message_size(s, n);
                break;
        case ARG_MAX_WORKERS:
                if (parse_option_number("--max-workers", value, 1, MAX_WORKERS_LIMIT, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_max_workers(s, (unsigned) n);
                break;
        case ARG_MAX_WORKERS_PER_UID:
                if (parse_option_number("--max-workers-per-uid", value, 1, MAX_WORKERS_LIMIT, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_max_workers_per_uid(s, (unsigned) n);
                break;
        case ARG_SPARE_WORKERS:
                if (parse_option_number("--spare-workers", value, 0, MAX_WORKERS_LIMIT, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_spare_workers(s, (unsigned) n);
                break;
        case ARG_MAX_WORKER_LIFETIME:
                if (parse_option_seconds("--max-worker-lifetime", value, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_max_worker_lifetime(s, n);
                break;
        case ARG_MAX_WORKER_RSS:
                if (parse_option_bytes("--max-worker-rss", value, &n) < 0)
                        return EXIT_USAGE;
                (void) aetask_server_set_max_worker_rss(s, n);
                break;
        }
        return ARGV_CONTINUE;
}

/* --control-group, --allow-user and --allow-group: who may talk to us. */
static int option_access(aetask_server *s, int c, const char *value) {
        const char *option = c == ARG_CONTROL_GROUP ? "--control-group" :
                             c == ARG_ALLOW_USER ? "--allow-user" : "--allow-group";
        uid_t uid = 0;
        gid_t gid = 0;
        int r;

        r = c == ARG_ALLOW_USER ? parse_user(value, &uid) : parse_group(value, &gid);
        if (r < 0) {
                log_error_errno(r, "Failed to find %s %s for %s", c == ARG_ALLOW_USER ? "user" : "group", value, option);
                return EXIT_USAGE;
        }
        if (c == ARG_CONTROL_GROUP) {
                (void) aetask_server_set_control_group(s, gid);
                return ARGV_CONTINUE;
        }
        r = c == ARG_ALLOW_USER ? aetask_server_allow_user(s, uid) : aetask_server_allow_group(s, gid);
        if (r < 0) {
                log_error_errno(r, "Failed to allow %s %s", c == ARG_ALLOW_USER ? "user" : "group", value);
                return EXIT_FAILURE;
        }
        return ARGV_CONTINUE;
}

/* --worker-scheduling: batch or inherit. */
static int option_worker_scheduling(aetask_server *s, const char *value) {
        static const char *const names[_AETASK_WORKER_SCHEDULING_MAX] = {
                [AETASK_WORKER_SCHEDULING_BATCH] = "batch",
                [AETASK_WORKER_SCHEDULING_INHERIT] = "inherit",
        };

        for (int i = 0; i < _AETASK_WORKER_SCHEDULING_MAX; i++)
                if (strcmp(value, names[i]) == 0) {
                        (void) aetask_server_set_worker_scheduling(s, (aetask_worker_scheduling) i);
                        return ARGV_CONTINUE;
                }
        log_error("Invalid --worker-scheduling '%s': expected batch or inherit", value);
        return EXIT_USAGE;
}

/* The options whose value is a word: the log levels, the scheduling. */
static int option_word(aetask_server *s, int c, const char *value) {
        int level;

        if (c == ARG_WORKER_SCHEDULING)
                return option_worker_scheduling(s, value);

        if (parse_level(c == ARG_LOG_LEVEL ? "--log-level" : "--call-log-level", value, &level) < 0)
                return EXIT_USAGE;
        if (c == ARG_LOG_LEVEL) {
                /* At once, for what is said before the server runs too. */
                log_set_max_level(level);
                (void) aetask_server_set_log_level(s, level);
        } else
                (void) aetask_server_set_call_log_level(s, level);
        return ARGV_CONTINUE;
}

/* -o KEY=VALUE, handed to the handler as it is. */
static int option_handler_option(aetask_server *s, char *value) {
        char *eq = strchr(value, '=');
        int r;

        if (!eq || eq == value) {
                log_error("Invalid --option, expected KEY=VALUE: %s", value);
                return EXIT_USAGE;
        }
        *eq = 0;
        r = aetask_server_set_option(s, value, eq + 1);
        *eq = '=';
        if (r < 0) {
                log_error_errno(r, "Invalid --option %s", value);
                return EXIT_USAGE;
        }
        return ARGV_CONTINUE;
}

/* Reads the command line into S (and arg_*), option by option.  Returns
 * ARGV_CONTINUE to run, or the exit status. */
static int parse_argv(int argc, char *argv[], aetask_server *s) {
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
                { "spare-workers",    required_argument, NULL, ARG_SPARE_WORKERS    },
                { "worker-scheduling", required_argument, NULL, ARG_WORKER_SCHEDULING },
                { "drain-timeout",    required_argument, NULL, ARG_DRAIN_TIMEOUT    },
                { "max-worker-lifetime", required_argument, NULL, ARG_MAX_WORKER_LIFETIME },
                { "max-worker-rss",   required_argument, NULL, ARG_MAX_WORKER_RSS   },
                { "control",          required_argument, NULL, ARG_CONTROL          },
                { "control-group",    required_argument, NULL, ARG_CONTROL_GROUP    },
                { "allow-user",       required_argument, NULL, ARG_ALLOW_USER       },
                { "allow-group",      required_argument, NULL, ARG_ALLOW_GROUP      },
                { "log-level",        required_argument, NULL, ARG_LOG_LEVEL        },
                { "call-log-level",   required_argument, NULL, ARG_CALL_LOG_LEVEL   },
                { "option",           required_argument, NULL, 'o'                  },
                {}
        };
        int c, r = ARGV_CONTINUE;

        while (r == ARGV_CONTINUE && (c = getopt_long(argc, argv, "hl:o:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        puts("aetaskd " AETASK_VERSION);
                        return EXIT_SUCCESS;
                case ARG_HANDLER:
                        arg_handler = optarg;
                        break;
                case ARG_HANDLER_DIR:
                        arg_handler_dir = optarg;
                        break;
                case ARG_NAME:
                        (void) aetask_server_set_name(s, optarg);
                        break;
                case 'l':
                case ARG_CONTROL:
                        r = option_listen(s, c, optarg);
                        break;
                case ARG_HUNG_TIMEOUT: case ARG_DRAIN_TIMEOUT: case ARG_MAX_MESSAGE_SIZE:
                case ARG_MAX_WORKERS: case ARG_MAX_WORKERS_PER_UID: case ARG_SPARE_WORKERS:
                case ARG_MAX_WORKER_LIFETIME: case ARG_MAX_WORKER_RSS:
                        r = option_number(s, c, optarg);
                        break;
                case ARG_CONTROL_GROUP: case ARG_ALLOW_USER: case ARG_ALLOW_GROUP:
                        r = option_access(s, c, optarg);
                        break;
                case ARG_LOG_LEVEL: case ARG_CALL_LOG_LEVEL: case ARG_WORKER_SCHEDULING:
                        r = option_word(s, c, optarg);
                        break;
                case 'o':
                        r = option_handler_option(s, optarg);
                        break;
                default:  /* getopt said what was wrong */
                        fprintf(stderr, "Try 'aetaskd --help' for more information.\n");
                        return EXIT_USAGE;
                }
        if (r != ARGV_CONTINUE)
                return r;

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return EXIT_USAGE;
        }
        if (!arg_handler) {
                log_error("No handler given: use --handler NAME");
                return EXIT_USAGE;
        }
        return ARGV_CONTINUE;
}

/* Loads the handler, takes systemd's sockets when none were given, and
 * serves until told to stop.  Returns the exit status. */
static int run(aetask_server *s) {
        int r;

        r = aetask_server_load_handler(s, arg_handler, arg_handler_dir);
        if (r < 0) {
                const char *why = aetask_server_get_load_error(s);
                if (why)
                        log_error("%s", why);
                else
                        log_error_errno(r, "Failed to load handler '%s'", arg_handler);
                return EXIT_NOT_CONFIGURED;
        }

        if (arg_n_listen == 0) {
                r = take_systemd_sockets(s);
                if (r < 0)
                        return EXIT_FAILURE;
                if (r == 0) {
                        log_error("No socket to serve: use --listen ADDRESS, or start aetaskd through its socket unit");
                        return EXIT_USAGE;
                }
        }

        r = aetask_server_run(s);
        if (r == -EAFNOSUPPORT)
                return EXIT_USAGE;  /* allow lists with a TCP socket, said already */
        if (r == -EINVAL)
                return EXIT_NOT_CONFIGURED;  /* the handler refused its options, said already */
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        _cleanup_(aetask_server_freep) aetask_server *s = NULL;
        int r;

        r = aetask_server_new(&s);
        if (r < 0) {
                log_error_errno(r, "Failed to create server");
                return EXIT_FAILURE;
        }
        /* getopt names the program as argv[0] has it: "aetaskd:", not a path. */
        argv[0] = program_invocation_short_name;
        r = parse_argv(argc, argv, s);
        if (r != ARGV_CONTINUE)
                return r;
        return run(s);
}
