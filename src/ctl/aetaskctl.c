/* aetaskctl: the command line for people.  Dispatches to one file per verb. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "ctl.h"
#include "macro.h"
#include "parse-number.h"

enum { ARG_VERSION = 0x100, ARG_INTERVAL, ARG_ITERATIONS };

/* As aetaskd's timeouts: a bound that keeps microseconds far from wrapping. */
#define CTL_TIMEOUT_MAX 1000000000
/* A watch refreshing faster would mostly measure itself. */
#define CTL_INTERVAL_MIN_USEC 100000

static void help(FILE *f) {
        fprintf(f, "Usage: aetaskctl [OPTIONS...] [NAME] COMMAND ...\n\n"
               "Talk to an aetask server: the one given with --connect, or unit aetask@NAME\n"
               "(its sockets in " UNIT_RUNTIME_DIR ").\n\n"
               "Commands:\n"
               "  call [METHOD|-] [ARG...]   Check out a worker, call METHOD (\"-\": the\n"
               "                             handler's catch-all) with the ARGs, print the\n"
               "                             result as JSON.  An ARG that is not valid JSON is\n"
               "                             taken as a string.\n"
               "  status [NAME|ADDRESS]      Show the server's workers, from its control\n"
               "                             socket (" UNIT_RUNTIME_DIR "/NAME.control)\n\n"
               "Options go anywhere before call's METHOD; after it, and after \"--\", every\n"
               "word is an argument.\n\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -c --connect ADDRESS       The server: unix:/PATH, unix:@NAME, tcp:HOST:PORT\n"
               "  -t --timeout SECONDS       Give up after this long (default 30)\n"
               "  -j --json                  status: print the server's reply as JSON\n"
               "  -w --watch                 status: refresh in place until q or Ctrl-C\n"
               "     --interval SECONDS      status --watch: between refreshes (default 1)\n"
               "     --iterations N          status --watch: stop after N refreshes\n"
               "  -r --raw                   call: print a string result as it is, unquoted\n\n"
               "Exit status: 0 done, 1 the call or status failed, 2 usage error.\n");
}

static bool is_verb(const char *word) {
        return strcmp(word, "call") == 0 || strcmp(word, "status") == 0;
}

const char *ctl_unit_address(const char *name, const char *suffix) {
        static char address[4096];

        return unit_address(name, suffix, address, sizeof(address)) < 0 ? NULL : address;
}

/* A word that is never an option: a negative number (aetaskctl has no
 * digit options), so that "call -1" sends -1 to the catch-all. */
static bool is_negative_number(const char *word) {
        return word[0] == '-' && word[1] >= '0' && word[1] <= '9';
}

/* Whether the words so far end option parsing: after call's METHOD (or "-",
 * or its first argument) every word is an argument of the call, so that
 * JSON such as -1 or a string such as "-j" can be sent as it is. */
static bool words_end_options(char **words, size_t n) {
        size_t verb = is_verb(words[0]) ? 0 : 1;

        return n == verb + 2 && strcmp(words[verb], "call") == 0;
}

static int parse_option(ctl_context *ctx, int c) {
        switch (c) {
        case 'h':
                help(stdout);
                return 0;
        case ARG_VERSION:
                puts("aetaskctl " AETASK_VERSION);
                return 0;
        case 'c':
                ctx->address = optarg;
                return 1;
        case 't':
                if (parse_seconds(optarg, CTL_TIMEOUT_MAX, &ctx->timeout_usec) < 0 || ctx->timeout_usec == 0) {
                        fprintf(stderr, "aetaskctl: invalid --timeout: %s: expected seconds, more than 0 "
                                        "and at most %d (fractions allowed)\n", optarg, CTL_TIMEOUT_MAX);
                        return -CTL_EXIT_USAGE;
                }
                return 1;
        case 'j':
                ctx->json = true;
                return 1;
        case 'r':
                ctx->raw = true;
                return 1;
        case 'w':
                ctx->watch = true;
                return 1;
        case ARG_INTERVAL:
                if (parse_seconds(optarg, CTL_TIMEOUT_MAX, &ctx->interval_usec) < 0 ||
                    ctx->interval_usec < CTL_INTERVAL_MIN_USEC) {
                        fprintf(stderr, "aetaskctl: invalid --interval: %s: expected seconds, at least 0.1 "
                                        "and at most %d (fractions allowed)\n", optarg, CTL_TIMEOUT_MAX);
                        return -CTL_EXIT_USAGE;
                }
                return 1;
        case ARG_ITERATIONS:
                if (parse_uint64(optarg, 1, UINT32_MAX, &ctx->iterations) < 0) {
                        fprintf(stderr, "aetaskctl: invalid --iterations: %s: expected a number from 1 to %u\n",
                                optarg, UINT32_MAX);
                        return -CTL_EXIT_USAGE;
                }
                return 1;
        default:  /* getopt said what was wrong */
                fprintf(stderr, "Try 'aetaskctl --help' for more information.\n");
                return -CTL_EXIT_USAGE;
        }
}

/* Options anywhere on the line (as systemctl takes them), up to call's
 * METHOD or "--": getopt in order ("+"), each word it stops at taken as
 * the next of WORDS, in order.  Returns 1 to go on, 0 when done (--help),
 * or -EXIT_CODE. */
static int parse_argv(ctl_context *ctx, int argc, char *argv[], char **words, size_t *ret_n) {
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h'         },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "connect", required_argument, NULL, 'c'         },
                { "timeout", required_argument, NULL, 't'         },
                { "json",    no_argument,       NULL, 'j'         },
                { "raw",     no_argument,       NULL, 'r'         },
                { "watch",   no_argument,       NULL, 'w'         },
                { "interval", required_argument, NULL, ARG_INTERVAL },
                { "iterations", required_argument, NULL, ARG_ITERATIONS },
                {}
        };
        size_t n = 0;
        int c, r;

        while (optind < argc) {
                int before = optind;

                if (is_negative_number(argv[optind])) {
                        words[n++] = argv[optind++];
                        if (words_end_options(words, n))
                                break;
                        continue;
                }
                c = getopt_long(argc, argv, "+hc:t:jrw", options, NULL);
                if (c >= 0) {
                        r = parse_option(ctx, c);
                        if (r <= 0)
                                return r;
                        continue;
                }
                if (optind == before + 1 && strcmp(argv[before], "--") == 0)
                        break;  /* "--": the rest are words */
                if (optind >= argc)
                        break;
                words[n++] = argv[optind++];
                if (words_end_options(words, n))
                        break;
        }
        while (optind < argc)
                words[n++] = argv[optind++];
        *ret_n = n;
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(freep) char **words = NULL;
        ctl_context ctx = { .timeout_usec = 30 * 1000000ULL, .interval_usec = 1000000ULL };
        size_t n, i = 0;
        int r;

        words = calloc(argc + 1, sizeof(char *));
        if (!words) {
                fprintf(stderr, "aetaskctl: out of memory\n");
                return CTL_EXIT_CALL_FAILED;
        }
        /* getopt names the program as argv[0] has it: "aetaskctl:", not a path. */
        argv[0] = program_invocation_short_name;
        r = parse_argv(&ctx, argc, argv, words, &n);
        if (r <= 0)
                return -r;

        if (n == 0) {  /* a usage error: the help goes where errors go */
                help(stderr);
                return CTL_EXIT_USAGE;
        }
        /* "aetaskctl NAME VERB ...": a word that is no verb names a unit. */
        if (!is_verb(words[0]) && ctl_unit_address(words[0], ".sock")) {
                ctx.name = words[i++];
                if (i >= n) {
                        fprintf(stderr, "aetaskctl: no command after '%s', see --help\n", ctx.name);
                        return CTL_EXIT_USAGE;
                }
        }
        if (strcmp(words[i], "call") == 0)
                return ctl_call(&ctx, (int) (n - i - 1), words + i + 1);
        if (strcmp(words[i], "status") == 0)
                return ctl_status(&ctx, (int) (n - i - 1), words + i + 1);

        fprintf(stderr, "aetaskctl: unknown command '%s', see --help\n", words[i]);
        return CTL_EXIT_USAGE;
}
