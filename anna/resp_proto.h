//  anna/resp_proto.h: the RESP2 wire format (Redis serialization protocol): a request parser
//  for multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline (`GET k\r\n`) commands that
//  resumes across reads and parses in place, and the reply writers. Pure: no I/O, no clock.
//  A parser and a buffer belong to one connection, owned by one RESP thread.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_RESP_PROTO_H
#define ANNA_RESP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Redis's own limits: most arguments in one multibulk, longest inline line and longest
//  `*N` / `$N` header line.
#define ANNA_RESP_MAX_ARGS (1024 * 1024)
#define ANNA_RESP_MAX_INLINE (64 * 1024)

//  A growable byte buffer (requests to workers, replies to clients).
typedef struct {
    char *data;                 //  owned; NULL until the first append
    size_t len;                 //  bytes used
    size_t cap;                 //  bytes allocated
} anna_resp_buf_t;

//  Room for at least n more bytes; returns where they go (data + len). Never NULL.
char *anna_resp_buf_reserve(anna_resp_buf_t *self, size_t n);
void anna_resp_buf_append(anna_resp_buf_t *self, const void *data, size_t len);
//  Drops the first n bytes (a consumed prefix).
void anna_resp_buf_consume(anna_resp_buf_t *self, size_t n);
//  Frees the memory if more than keep bytes are allocated (an idle connection gives back
//  what a burst took), else only empties it.
void anna_resp_buf_shrink(anna_resp_buf_t *self, size_t keep);
void anna_resp_buf_fini(anna_resp_buf_t *self);

//  Reply writers: `+text`, `-text` (text must not hold CR or LF; the writer replaces them by
//  spaces), `:n`, `$len` bulk, `$-1` nil, `*n` array header.
void anna_resp_put_simple(anna_resp_buf_t *out, const char *text);
void anna_resp_put_error(anna_resp_buf_t *out, const char *text);
void anna_resp_put_errorf(anna_resp_buf_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void anna_resp_put_int(anna_resp_buf_t *out, int64_t value);
void anna_resp_put_bulk(anna_resp_buf_t *out, const void *data, size_t len);
void anna_resp_put_nil(anna_resp_buf_t *out);
void anna_resp_put_array(anna_resp_buf_t *out, int64_t count);

//  One argument of the command parsed last: an offset from the start of the command.
typedef struct {
    size_t off;
    size_t len;
} anna_resp_arg_t;

//  Parser state of one connection: how far into the current command it got, so that a
//  command arriving in many reads is scanned once.
typedef struct {
    anna_resp_arg_t *args;      //  owned; the arguments found so far
    size_t nargs;
    size_t cap;
    size_t pos;                 //  bytes of the current command scanned
    int64_t want;               //  multibulk arguments announced; -1 before the `*N` line
    size_t max_bulk;            //  longest argument accepted
    char error[64];             //  text of the last error that quotes the input
} anna_resp_parser_t;

void anna_resp_parser_init(anna_resp_parser_t *self, size_t max_bulk);
void anna_resp_parser_fini(anna_resp_parser_t *self);

//  Parses the command at the start of buf[0..len), which must begin where the previous
//  complete command ended (the same bytes as at the previous call, plus any that arrived).
//  Returns 1 when a command is complete: self->args[0..nargs) locate its arguments in buf,
//  *used is its length in bytes; the arguments are valid until the next call. Inline
//  arguments are unquoted in place (buf is written). Returns 0 when more bytes are needed
//  (*used is 0) or when the bytes were an empty command to skip (*used > 0, nargs 0).
//  Returns -EPROTO on a protocol error and sets *error to a static message such as
//  "Protocol error: invalid bulk length"; the connection must then be closed.
int anna_resp_parse(anna_resp_parser_t *self, char *buf, size_t len, size_t *used,
                    const char **error);

void anna_resp_proto_test(bool verbose);

#endif
