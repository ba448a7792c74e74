/* aetaskctl: the command line for people.  Dispatches to one file per verb. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void help(void) {
        printf("Usage: aetaskctl [OPTIONS...] call [METHOD|-] [ARG...]\n\n"
               "Talk to an aetask server.\n\n"
               "Commands:\n"
               "  call [METHOD|-] [ARG...]   Check out a worker, call METHOD (\"-\": the\n"
               "                             handler's catch-all) with the ARGs, print the\n"
               "                             result as JSON.  An ARG that is not valid JSON is\n"
               "                             taken as a string.\n\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -c --connect ADDRESS       The server: unix:/PATH, unix:@NAME, tcp:HOST:PORT\n"
               "  -t --timeout SECONDS       Give up after this long (default 30)\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h'         },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "connect", required_argument, NULL, 'c'         },
                { "timeout", required_argument, NULL, 't'         },
                {}
        };
        ctl_context ctx = { .timeout_usec = 30 * 1000000ULL };
        int c;

        /* "+": stop at the verb, so method arguments such as -1 stay arguments. */
        while ((c = getopt_long(argc, argv, "+hc:t:", options, NULL)) >= 0)
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
                case 't': {
                        char *end;
                        double d = strtod(optarg, &end);
                        if (end == optarg || *end || d <= 0) {
                                fprintf(stderr, "aetaskctl: invalid --timeout: %s\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        ctx.timeout_usec = (uint64_t) (d * 1e6);
                        break;
                }
                default:
                        return CTL_EXIT_USAGE;
                }

        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }
        if (strcmp(argv[optind], "call") == 0)
                return ctl_call(&ctx, argc - optind - 1, argv + optind + 1);

        fprintf(stderr, "aetaskctl: unknown command '%s', see --help\n", argv[optind]);
        return CTL_EXIT_USAGE;
}
