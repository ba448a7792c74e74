/* Replays a fuzz target's corpus as an ordinary test, so builds without
 * libFuzzer (gcc, plain) check the saved inputs too: every file under the
 * directories given (or every file given) goes to LLVMFuzzerTestOneInput()
 * once.  A crash fails the test; the last line counts what passed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rb");
        char *data = NULL;
        size_t size = 0, alloc = 0;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (size == alloc) {
                        alloc = alloc ? alloc * 2 : 4096;
                        data = realloc(data, alloc);
                        if (!data)
                                abort();
                }
                size_t n = fread(data + size, 1, alloc - size, f);
                if (n == 0)
                        break;
                size += n;
        }
        fclose(f);
        (void) LLVMFuzzerTestOneInput((const uint8_t *) data, size);
        free(data);
        return 0;
}

static int compare(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        replay_file(argv[i]) < 0 ? failed++ : passed++;
                        continue;
                }
                struct dirent **names;
                int n = scandir(argv[i], &names, NULL, compare);
                if (n < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                for (int j = 0; j < n; j++) {
                        char path[4096];
                        if (names[j]->d_name[0] != '.') {
                                snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                                replay_file(path) < 0 ? failed++ : passed++;
                        }
                        free(names[j]);
                }
                free(names);
        }
        printf("%u passed, %u failed\n", passed, failed);
        return failed > 0 || passed == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
