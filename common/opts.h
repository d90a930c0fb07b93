//  common/opts.h: table-driven option parsing shared by the servers' config modules:
//  `--name value` / `--name=value` flags, `name = value` config-file lines with `#`
//  comments, integers with K/M/G suffixes, one-line error messages, --help lines.
//  Each component declares its options as an array of cb_opts_t (name, type, offset of the
//  field in its config struct, help); fields of types the module does not know (addresses,
//  policies) are stored by the component itself. Pure apart from reading the config file.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_OPTS_H
#define CB_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CB_OPTS_INT,        //  int field: whole-string decimal integer in int range
    CB_OPTS_SIZE,       //  int64_t field: integer >= 0 with an optional K/M/G suffix
    CB_OPTS_FLAG,       //  bool field, set to true; takes no value
    CB_OPTS_FILE,       //  --config FILE: handled by the caller; not allowed in a file
    CB_OPTS_CUSTOM,     //  stored by the component (kind tells which sort)
} cb_opts_type_t;

typedef struct {
    const char *name;   //  long flag without "--", and config file key
    cb_opts_type_t type;
    int kind;           //  component's sub-type of CB_OPTS_CUSTOM options
    size_t offset;      //  offsetof the field in the config struct
    size_t size;        //  sizeof the field (for text fields)
    const char *arg;    //  placeholder in --help; NULL for flags
    const char *help;
} cb_opts_t;

//  Applies one value: returns 0 or -EINVAL with a message in err.
typedef int (cb_opts_set_fn)(void *cfg, const cb_opts_t *opt, const char *value, char *err,
                             size_t errlen);

//  Writes the message to err (if any) and returns -EINVAL.
__attribute__((format(printf, 3, 4))) int cb_opts_fail(char *err, size_t errlen,
                                                       const char *fmt, ...);
//  Whole-string integer; false on junk, empty, leading space or overflow.
bool cb_opts_parse_int64(const char *text, int64_t *out);
//  Integer >= 0 with an optional binary K/M/G suffix ("64M" = 64 MiB).
bool cb_opts_parse_size(const char *text, int64_t *out);
//  The option called name[0..len), or NULL.
const cb_opts_t *cb_opts_find(const cb_opts_t *table, size_t n, const char *name, size_t len);
//  Stores value into the INT or SIZE field of opt in cfg. Messages are "NAME: not an integer:
//  VALUE" and "NAME: not a size: VALUE", NAME prefixed with prefix ("" or "--").
int cb_opts_store(void *cfg, const cb_opts_t *opt, const char *value, const char *prefix,
                  char *err, size_t errlen);
//  Splits argv[*i] into option and value ("--name=value" or "--name value", advancing *i).
//  value is NULL for flags. Returns 0 or -EINVAL with a message.
int cb_opts_next(const cb_opts_t *table, size_t n, int argc, char **argv, int *i,
                 const cb_opts_t **opt_p, const char **value_p, char *err, size_t errlen);
//  Applies a config file of `name = value` lines through set; unknown names, flags and FILE
//  options are errors. Returns 0, -EINVAL (message "PATH:LINE: ...") or the negative errno
//  of opening it.
int cb_opts_parse_file(const cb_opts_t *table, size_t n, void *cfg, cb_opts_set_fn *set,
                       const char *path, char *err, size_t errlen);
//  Writes one --help line: "  --name ARG   help[dflt]".
void cb_opts_usage_line(FILE *out, const cb_opts_t *opt, const char *dflt);

void cb_opts_test(bool verbose);

#endif
