//  common/opts.c: see opts.h.
//  SPDX-License-Identifier: Apache-2.0
#include "common/opts.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cb_opts_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

bool cb_opts_parse_int64(const char *text, int64_t *out)
{
    if (!*text || isspace((unsigned char)*text))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool cb_opts_parse_size(const char *text, int64_t *out)
{
    size_t len = strlen(text);
    int64_t unit = 1;
    char digits[32];
    if (len > 1 && strchr("kKmMgG", text[len - 1])) {
        char last = (char)toupper((unsigned char)text[len - 1]);
        unit = last == 'K' ? 1 << 10 : last == 'M' ? 1 << 20 : 1 << 30;
        if (len - 1 >= sizeof digits)
            return false;
        memcpy(digits, text, len - 1);
        digits[len - 1] = '\0';
        text = digits;
    }
    int64_t v;
    if (!cb_opts_parse_int64(text, &v) || v < 0 || v > INT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

const cb_opts_t *cb_opts_find(const cb_opts_t *table, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return &table[i];
    return NULL;
}

int cb_opts_store(void *cfg, const cb_opts_t *opt, const char *value, const char *prefix,
                  char *err, size_t errlen)
{
    assert(cfg && opt && value && prefix);
    char *field = (char *)cfg + opt->offset;
    int64_t v;
    if (opt->type == CB_OPTS_SIZE) {
        if (!cb_opts_parse_size(value, &v))
            return cb_opts_fail(err, errlen, "%s%s: not a size: %s", prefix, opt->name, value);
        memcpy(field, &v, sizeof v);
        return 0;
    }
    assert(opt->type == CB_OPTS_INT);
    if (!cb_opts_parse_int64(value, &v) || v < INT_MIN || v > INT_MAX)
        return cb_opts_fail(err, errlen, "%s%s: not an integer: %s", prefix, opt->name, value);
    int iv = (int)v;
    memcpy(field, &iv, sizeof iv);
    return 0;
}

int cb_opts_next(const cb_opts_t *table, size_t n, int argc, char **argv, int *i,
                 const cb_opts_t **opt_p, const char **value_p, char *err, size_t errlen)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
        return cb_opts_fail(err, errlen, "unexpected argument '%s'", arg);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cb_opts_t *opt = cb_opts_find(table, n, name, len);
    if (!opt)
        return cb_opts_fail(err, errlen, "unknown option --%.*s", (int)len, name);
    const char *value = NULL;
    if (opt->type == CB_OPTS_FLAG) {
        if (eq)
            return cb_opts_fail(err, errlen, "option --%s takes no value", opt->name);
    } else if (eq)
        value = eq + 1;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return cb_opts_fail(err, errlen, "option --%s needs a value", opt->name);
    *opt_p = opt;
    *value_p = value;
    return 0;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

int cb_opts_parse_file(const cb_opts_t *table, size_t n, void *cfg, cb_opts_set_fn *set,
                       const char *path, char *err, size_t errlen)
{
    assert(table && cfg && set && path);
    FILE *file = fopen(path, "r");
    if (!file) {
        int rc = -errno;
        cb_opts_fail(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return rc;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, file)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(file)) {
            rc = cb_opts_fail(err, errlen, "%s:%d: line too long", path, lineno);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *text = s_trim(line);
        if (!*text)
            continue;
        char *eq = strchr(text, '=');
        if (!eq) {
            rc = cb_opts_fail(err, errlen, "%s:%d: expected `name = value`", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = s_trim(text);
        char *value = s_trim(eq + 1);
        const cb_opts_t *opt = cb_opts_find(table, n, name, strlen(name));
        char msg[256];
        if (!opt)
            rc = cb_opts_fail(err, errlen, "%s:%d: unknown option %s", path, lineno, name);
        else if (opt->type == CB_OPTS_FLAG || opt->type == CB_OPTS_FILE)
            rc = cb_opts_fail(err, errlen, "%s:%d: option %s is not allowed in a config file",
                              path, lineno, name);
        else if (set(cfg, opt, value, msg, sizeof msg) != 0)
            rc = cb_opts_fail(err, errlen, "%s:%d: %s", path, lineno, msg);
    }
    fclose(file);
    return rc;
}

void cb_opts_usage_line(FILE *out, const cb_opts_t *opt, const char *dflt)
{
    char flag[48];
    snprintf(flag, sizeof flag, "--%s%s%s", opt->name, opt->arg ? " " : "",
             opt->arg ? opt->arg : "");
    fprintf(out, "  %-24s %s%s\n", flag, opt->help, dflt ? dflt : "");
}

//  ---- self-test ----------------------------------------------------------------------------

typedef struct {
    int n;
    int64_t bytes;
    bool on;
    char name[8];
} s_test_cfg_t;

static const cb_opts_t s_test_opts[] = {
    {"config", CB_OPTS_FILE, 0, 0, 0, "FILE", "read FILE"},
    {"n", CB_OPTS_INT, 0, offsetof(s_test_cfg_t, n), sizeof(int), "N", "a number"},
    {"bytes", CB_OPTS_SIZE, 0, offsetof(s_test_cfg_t, bytes), sizeof(int64_t), "N", "a size"},
    {"on", CB_OPTS_FLAG, 0, offsetof(s_test_cfg_t, on), sizeof(bool), NULL, "a flag"},
    {"name", CB_OPTS_CUSTOM, 0, offsetof(s_test_cfg_t, name), 8, "S", "a name"},
};
#define S_TEST_N (sizeof s_test_opts / sizeof s_test_opts[0])

static int s_test_set(void *cfg, const cb_opts_t *opt, const char *value, char *err,
                      size_t errlen)
{
    if (opt->type != CB_OPTS_CUSTOM)
        return cb_opts_store(cfg, opt, value, "", err, errlen);
    if (strlen(value) >= opt->size)
        return cb_opts_fail(err, errlen, "%s: too long", opt->name);
    snprintf((char *)cfg + opt->offset, opt->size, "%s", value);
    return 0;
}

void cb_opts_test(bool verbose)
{
    int64_t v;
    assert(cb_opts_parse_int64("42", &v) && v == 42);
    assert(cb_opts_parse_int64("-7", &v) && v == -7);
    assert(!cb_opts_parse_int64("", &v) && !cb_opts_parse_int64(" 1", &v));
    assert(!cb_opts_parse_int64("2x", &v) && !cb_opts_parse_int64("99999999999999999999", &v));
    assert(cb_opts_parse_size("1K", &v) && v == 1024);
    assert(cb_opts_parse_size("64m", &v) && v == 64 << 20);
    assert(cb_opts_parse_size("2G", &v) && v == (int64_t)2 << 30);
    assert(cb_opts_parse_size("5", &v) && v == 5);
    assert(!cb_opts_parse_size("-1K", &v) && !cb_opts_parse_size("lots", &v));
    assert(!cb_opts_parse_size("K", &v) && !cb_opts_parse_size("9999999999999G", &v));

    s_test_cfg_t cfg = {0};
    char err[256];
    char *argv[] = {"prog", "--n", "3", "--bytes=2K", "--on", "--name", "x", NULL};
    const cb_opts_t *opt;
    const char *value;
    for (int i = 1; i < 7; i++) {
        assert(cb_opts_next(s_test_opts, S_TEST_N, 7, argv, &i, &opt, &value, err,
                            sizeof err) == 0);
        if (opt->type == CB_OPTS_FLAG)
            *(bool *)((char *)&cfg + opt->offset) = true;
        else
            assert(s_test_set(&cfg, opt, value, err, sizeof err) == 0);
    }
    assert(cfg.n == 3 && cfg.bytes == 2048 && cfg.on && !strcmp(cfg.name, "x"));

    struct {
        const char *arg;
        const char *expect;
    } bad[] = {
        {"--foo", "unknown option --foo"},
        {"--foo=1", "unknown option --foo"},
        {"--n", "option --n needs a value"},
        {"--on=1", "option --on takes no value"},
        {"stray", "unexpected argument 'stray'"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        char *args[] = {"prog", (char *)bad[b].arg, NULL};
        int i = 1;
        assert(cb_opts_next(s_test_opts, S_TEST_N, 2, args, &i, &opt, &value, err,
                            sizeof err) == -EINVAL);
        if (verbose)
            printf("  %s -> %s\n", bad[b].arg, err);
        assert(strstr(err, bad[b].expect));
    }
    assert(cb_opts_store(&cfg, &s_test_opts[1], "two", "--", err, sizeof err) == -EINVAL);
    assert(!strcmp(err, "--n: not an integer: two"));
    assert(cb_opts_store(&cfg, &s_test_opts[2], "lots", "", err, sizeof err) == -EINVAL);
    assert(!strcmp(err, "bytes: not a size: lots"));

    //  Config file: comments, blanks, spaces around '='; errors name file and line.
    char path[] = "/tmp/cb-opts-test-XXXXXX";
    int fd = mkstemp(path);
    assert(fd >= 0);
    FILE *file = fdopen(fd, "w");
    fprintf(file, "# comment\n\n  n = 9\nbytes=1M   # inline\nname = yy\n");
    fclose(file);
    assert(cb_opts_parse_file(s_test_opts, S_TEST_N, &cfg, s_test_set, path, err,
                              sizeof err) == 0);
    assert(cfg.n == 9 && cfg.bytes == 1 << 20 && !strcmp(cfg.name, "yy"));
    const char *bad_files[][2] = {
        {"n = 1\nbogus = 1\n", ":2: unknown option bogus"},
        {"n 2\n", ":1: expected `name = value`"},
        {"config = x\n", "option config is not allowed in a config file"},
        {"on = 1\n", "option on is not allowed in a config file"},
        {"n = x\n", ":1: n: not an integer: x"},
        {"name = toolongname\n", ":1: name: too long"},
    };
    for (size_t b = 0; b < sizeof bad_files / sizeof bad_files[0]; b++) {
        file = fopen(path, "w");
        fputs(bad_files[b][0], file);
        fclose(file);
        assert(cb_opts_parse_file(s_test_opts, S_TEST_N, &cfg, s_test_set, path, err,
                                  sizeof err) == -EINVAL);
        assert(strstr(err, bad_files[b][1]));
    }
    unlink(path);
    assert(cb_opts_parse_file(s_test_opts, S_TEST_N, &cfg, s_test_set, "/nonexistent/x.conf",
                              err, sizeof err) == -ENOENT);
    assert(strstr(err, "cannot open config file"));

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    cb_opts_usage_line(mem, &s_test_opts[1], " [1]");
    cb_opts_usage_line(mem, &s_test_opts[3], NULL);
    fclose(mem);
    assert(!strcmp(text, "  --n N                    a number [1]\n"
                         "  --on                     a flag\n"));
    free(text);
}
