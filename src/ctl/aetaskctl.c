/* aetaskctl: the command line for people.  Dispatches to one file per verb. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "parse-number.h"

/* As aetaskd's timeouts: a bound that keeps microseconds far from wrapping. */
#define CTL_TIMEOUT_MAX 1000000000

static void help(void) {
        printf("Usage: aetaskctl [OPTIONS...] [NAME] COMMAND ...\n\n"
               "Talk to an aetask server: the one given with --connect, or unit aetask@NAME\n"
               "(its sockets in " CTL_RUNTIME_DIR ").\n\n"
               "Commands:\n"
               "  call [METHOD|-] [ARG...]   Check out a worker, call METHOD (\"-\": the\n"
               "                             handler's catch-all) with the ARGs, print the\n"
               "                             result as JSON.  An ARG that is not valid JSON is\n"
               "                             taken as a string.\n"
               "  status [NAME|ADDRESS]      Show the server's workers, from its control\n"
               "                             socket (" CTL_RUNTIME_DIR "/NAME.control)\n\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -c --connect ADDRESS       The server: unix:/PATH, unix:@NAME, tcp:HOST:PORT\n"
               "  -t --timeout SECONDS       Give up after this long (default 30)\n"
               "  -j --json                  status: print the server's reply as JSON\n");
}

static bool is_verb(const char *word) {
        return strcmp(word, "call") == 0 || strcmp(word, "status") == 0;
}

const char *ctl_unit_address(const char *name, const char *suffix) {
        static char address[4096];
        const char *dir = getenv("AETASK_RUNTIME_DIR") ?: CTL_RUNTIME_DIR;

        /* Handler names: what aetaskd accepts for --handler. */
        if (!*name || *name == '-' || strlen(name) > 64)
                return NULL;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return NULL;
        snprintf(address, sizeof(address), "unix:%s/%s%s", dir, name, suffix);
        return address;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h'         },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "connect", required_argument, NULL, 'c'         },
                { "timeout", required_argument, NULL, 't'         },
                { "json",    no_argument,       NULL, 'j'         },
                {}
        };
        ctl_context ctx = { .timeout_usec = 30 * 1000000ULL };
        int c;

        /* "+": stop at the verb, so method arguments such as -1 stay arguments. */
        while ((c = getopt_long(argc, argv, "+hc:t:j", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        puts("aetaskctl " AETASK_VERSION);
                        return EXIT_SUCCESS;
                case 'c':
                        ctx.address = optarg;
                        break;
                case 't':
                        if (parse_seconds(optarg, CTL_TIMEOUT_MAX, &ctx.timeout_usec) < 0 || ctx.timeout_usec == 0) {
                                fprintf(stderr, "aetaskctl: invalid --timeout: %s: expected seconds, more than 0 "
                                                "and at most %d (fractions allowed)\n", optarg, CTL_TIMEOUT_MAX);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'j':
                        ctx.json = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }

        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }
        /* "aetaskctl NAME VERB ...": a word that is no verb names a unit. */
        if (!is_verb(argv[optind]) && ctl_unit_address(argv[optind], ".sock")) {
                ctx.name = argv[optind++];
                if (optind >= argc) {
                        fprintf(stderr, "aetaskctl: no command after '%s', see --help\n", ctx.name);
                        return CTL_EXIT_USAGE;
                }
        }
        if (strcmp(argv[optind], "call") == 0)
                return ctl_call(&ctx, argc - optind - 1, argv + optind + 1);
        if (strcmp(argv[optind], "status") == 0)
                return ctl_status(&ctx, argc - optind - 1, argv + optind + 1);

        fprintf(stderr, "aetaskctl: unknown command '%s', see --help\n", argv[optind]);
        return CTL_EXIT_USAGE;
}
