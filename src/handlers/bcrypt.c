/* The bcrypt handler: password hashing, the seed manual's first synopsis.
 * Hashing a password on purpose takes tens of milliseconds of CPU, which is
 * exactly what an event loop must not spend itself.
 *   hash(plaintext)           returns a new "$2b$" hash with a fresh salt
 *   verify(crypted, plaintext) returns true or false
 * Option: cost=N (4..31, default 10), the log2 of the number of rounds.
 * The hashing is libxcrypt's (crypt_gensalt_rn, crypt_rn); the salt is 16
 * bytes from the kernel (getrandom).  See aetask-bcrypt(8). */
#include <aetask/aetask-handler.h>
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "handler-options.h"

#define BCRYPT_COST_DEFAULT 10
#define BCRYPT_COST_MIN 4
#define BCRYPT_COST_MAX 31
#define BCRYPT_SALT_BYTES 16
#define BCRYPT_HASH_LENGTH 60   /* "$2b$NN$" + 22 characters of salt + 31 of hash */
/* bcrypt reads no more of a password: libxcrypt silently ignores the rest up
 * to 512 bytes (two passwords alike in their first 72 bytes would verify
 * each other) and fails with ERANGE past that. */
#define BCRYPT_PASSWORD_MAX 72

/* One worker is one process: the cost read in setup, and libxcrypt's
 * scratch space (about 32 KiB, too big for the stack of a call). */
static unsigned long bcrypt_cost = BCRYPT_COST_DEFAULT;
static struct crypt_data bcrypt_scratch;

/* Reads cost=N into *RET, or leaves the default. */
static int parse_cost(aetask_worker *w, unsigned long *ret) {
        const char *value = aetask_worker_get_option(w, "cost");
        unsigned long cost;
        char *end;

        if (!value)
                return 0;
        errno = 0;
        cost = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end || value[0] == '-' ||
            cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX)
                return aetask_worker_raise(w, "invalid option cost=%s: expected an integer from %d to %d",
                                           value, BCRYPT_COST_MIN, BCRYPT_COST_MAX);
        *ret = cost;
        return 0;
}

/* At start: aetaskd refuses a bad cost or an unknown key. */
static int bcrypt_check_options(aetask_worker *w, const char *const *options) {
        static const char *const known[] = { "cost", NULL };
        unsigned long cost;
        int r = handler_check_keys(w, options, known);

        return r < 0 ? r : parse_cost(w, &cost);
}

static int bcrypt_setup(aetask_worker *w) {
        return parse_cost(w, &bcrypt_cost);
}

/* The string argument number I, which crypt() can take whole: a JSON string
 * with a NUL in it would be cut short there, and so match another password. */
static int get_string_arg(aetask_worker *w, json_object *args, size_t i, const char *what, const char **ret) {
        json_object *o = json_object_array_get_idx(args, i);
        const char *s;

        if (!json_object_is_type(o, json_type_string))
                return aetask_worker_raise(w, "%s: argument %zu (%s) must be a string",
                                           aetask_worker_get_method(w), i + 1, what);
        s = json_object_get_string(o);
        if (strlen(s) != (size_t) json_object_get_string_len(o))
                return aetask_worker_raise(w, "%s: argument %zu (%s) contains a NUL character",
                                           aetask_worker_get_method(w), i + 1, what);
        *ret = s;
        return 0;
}

static int check_arg_count(aetask_worker *w, json_object *args, size_t n, const char *usage) {
        if (json_object_array_length(args) != n)
                return aetask_worker_raise(w, "%s: expected %zu argument%s: %s", aetask_worker_get_method(w),
                                           n, n == 1 ? "" : "s", usage);
        return 0;
}

/* The plaintext argument number I: a string that bcrypt reads whole. */
static int get_password_arg(aetask_worker *w, json_object *args, size_t i, const char **ret) {
        const char *s;
        int r;

        r = get_string_arg(w, args, i, "the plaintext", &s);
        if (r < 0)
                return r;
        if (strlen(s) > BCRYPT_PASSWORD_MAX)
                return aetask_worker_raise(w, "%s: password longer than %d bytes",
                                           aetask_worker_get_method(w), BCRYPT_PASSWORD_MAX);
        *ret = s;
        return 0;
}

static bool is_bcrypt_prefix(const char *s) {
        /* $2a$, $2b$ and $2y$ are the same algorithm for passwords shorter
         * than 256 bytes; $2x$ marks hashes of an old bug, still checkable. */
        return s[0] == '$' && s[1] == '2' && s[2] && strchr("abxy", s[2]) && s[3] == '$';
}

/* Equal strings of equal length, in a time that does not depend on where
 * they differ. */
static bool equal_in_constant_time(const char *a, const char *b, size_t n) {
        unsigned char d = 0;
        for (size_t i = 0; i < n; i++)
                d |= (unsigned char) a[i] ^ (unsigned char) b[i];
        return d == 0;
}

static int fill_random(void *p, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = getrandom((char *) p + done, n - done, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        return 0;
}

static int bcrypt_hash(aetask_worker *w, json_object *args, json_object **ret) {
        char salt_bytes[BCRYPT_SALT_BYTES];
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *plaintext, *hashed;
        int r;

        r = check_arg_count(w, args, 1, "hash(plaintext)");
        if (r < 0)
                return r;
        r = get_password_arg(w, args, 0, &plaintext);
        if (r < 0)
                return r;

        r = fill_random(salt_bytes, sizeof(salt_bytes));
        if (r < 0)
                return aetask_worker_raise(w, "hash: cannot get random bytes for the salt: %s", strerror(-r));
        if (!crypt_gensalt_rn("$2b$", bcrypt_cost, salt_bytes, sizeof(salt_bytes), setting, sizeof(setting)))
                return aetask_worker_raise(w, "hash: cannot make a bcrypt salt: %s", strerror(errno));
        explicit_bzero(salt_bytes, sizeof(salt_bytes));

        errno = 0;
        hashed = crypt_rn(plaintext, setting, &bcrypt_scratch, sizeof(bcrypt_scratch));
        if (!hashed || hashed[0] == '*')
                r = aetask_worker_raise(w, "hash: libcrypt failed to hash: %s", strerror(errno ?: EINVAL));
        else {
                *ret = json_object_new_string(hashed);
                r = *ret ? 0 : -ENOMEM;
        }
        /* The scratch space held the password. */
        explicit_bzero(&bcrypt_scratch, sizeof(bcrypt_scratch));
        return r;
}

static int bcrypt_verify(aetask_worker *w, json_object *args, json_object **ret) {
        const char *crypted, *plaintext, *hashed;
        size_t length;
        int r;

        r = check_arg_count(w, args, 2, "verify(crypted, plaintext)");
        if (r < 0)
                return r;
        r = get_string_arg(w, args, 0, "the bcrypt hash", &crypted);
        if (r < 0)
                return r;
        r = get_password_arg(w, args, 1, &plaintext);
        if (r < 0)
                return r;

        length = strlen(crypted);
        if (!is_bcrypt_prefix(crypted))
                return aetask_worker_raise(w, "verify: not a bcrypt hash: it must start with $2b$ (or $2a$, $2x$, $2y$)");
        if (length != BCRYPT_HASH_LENGTH)
                return aetask_worker_raise(w, "verify: malformed bcrypt hash: %zu characters long instead of %d",
                                           length, BCRYPT_HASH_LENGTH);

        errno = 0;
        hashed = crypt_rn(plaintext, crypted, &bcrypt_scratch, sizeof(bcrypt_scratch));
        if (!hashed || hashed[0] == '*' || strlen(hashed) != length)
                r = aetask_worker_raise(w, "verify: malformed bcrypt hash (bad cost or salt)");
        else {
                *ret = json_object_new_boolean(equal_in_constant_time(hashed, crypted, length));
                r = *ret ? 0 : -ENOMEM;
        }
        explicit_bzero(&bcrypt_scratch, sizeof(bcrypt_scratch));
        return r;
}

static const aetask_method bcrypt_methods[] = {
        { "hash", bcrypt_hash },
        { "verify", bcrypt_verify },
        {}
};

static const aetask_handler bcrypt_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "bcrypt",
        .setup = bcrypt_setup,
        .methods = bcrypt_methods,
        .check_options = bcrypt_check_options,
};

AETASK_HANDLER_MODULE(bcrypt_handler);
