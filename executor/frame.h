//  executor/frame.h: length-prefixed frames for the executor <-> runner socketpair (a byte
//  stream). Pure: no I/O. A frame is a u32 little-endian body length, then the body: a u8
//  frame type, then fields written in an order both sides know:
//      u8, u32, u64      little-endian integers
//      bytes, str        u32 length, the data, then one NUL byte the length does not count
//  The trailing NUL lets a reader hand out strings and value payloads in place (no copy)
//  as C strings. The reader checks every bound and the NUL, so a frame from a runner whose
//  user code scribbled on the socket is refused, never trusted.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_FRAME_H
#define EXEC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/function.h"

//  Largest frame body either side accepts (arguments and results are bounded well below).
#define EXEC_FRAME_MAX (512u << 20)

//  A growable byte buffer. Value type: zero it (or exec_buf_init) before use, fini after.
typedef struct {
    uint8_t *data; //  owned; NULL while cap is 0
    size_t len;    //  bytes used
    size_t cap;    //  bytes allocated
} exec_buf_t;

void exec_buf_init(exec_buf_t *self);
void exec_buf_fini(exec_buf_t *self);
//  Makes room for n more bytes; returns where they go (len is not changed).
uint8_t *exec_buf_reserve(exec_buf_t *self, size_t n);
void exec_buf_append(exec_buf_t *self, const void *data, size_t len);
//  Drops the first n bytes (n <= len).
void exec_buf_consume(exec_buf_t *self, size_t n);

//  Writing a frame: start = exec_frame_begin(buf, type); fields...; exec_frame_end(buf, start).
size_t exec_frame_begin(exec_buf_t *buf, uint8_t type);
void exec_frame_end(exec_buf_t *buf, size_t start);
void exec_frame_u8(exec_buf_t *buf, uint8_t v);
void exec_frame_u32(exec_buf_t *buf, uint32_t v);
void exec_frame_u64(exec_buf_t *buf, uint64_t v);
void exec_frame_bytes(exec_buf_t *buf, const void *data, size_t len);
//  NULL is written as "".
void exec_frame_str(exec_buf_t *buf, const char *s);

//  Reading one frame body. Any read past the end, a missing NUL, or (str) an embedded NUL
//  sets bad; later reads then return zeros / "" so a caller checks bad once at the end.
typedef struct {
    const uint8_t *p; //  next byte; borrowed from the frame's buffer
    size_t left;      //  bytes left in the body
    bool bad;         //  the body did not hold what was read
} exec_reader_t;

//  Looks for a complete frame at the start of data[0..len). Returns 1 and sets *body (its
//  first byte is the type, already consumed into *type) and *consumed (bytes of the whole
//  frame); 0 when more bytes are needed; -EPROTO for an empty body or one larger than
//  EXEC_FRAME_MAX. *body borrows data.
int exec_frame_parse(const uint8_t *data, size_t len, uint8_t *type, exec_reader_t *body,
                     size_t *consumed);
uint8_t exec_read_u8(exec_reader_t *r);
uint32_t exec_read_u32(exec_reader_t *r);
uint64_t exec_read_u64(exec_reader_t *r);
//  Borrowed pointer into the frame (followed by a NUL), length in *len. "" when bad.
const uint8_t *exec_read_bytes(exec_reader_t *r, size_t *len);
//  Borrowed C string into the frame. "" when bad.
const char *exec_read_str(exec_reader_t *r);
//  True when the whole body was read and nothing was bad.
bool exec_read_done(const exec_reader_t *r);

//  ---- cb values (common/value.h encoding) as cb_fn_value_t views, without copies ----------

//  The type number of an error value (CB_VALUE_ERROR); not a cb_fn_type_t.
#define EXEC_VALUE_ERROR 5u

//  Decodes data[0..len) into *out, whose payload points into data (so it is NUL-terminated
//  when data[len] is a NUL, as frame fields are). Bytes without the cb value prefix are
//  BYTES. Returns 0, or -EPROTO for a prefixed value of unknown type or wrong size. An error
//  value decodes with type EXEC_VALUE_ERROR and the message as payload.
int exec_value_view(const uint8_t *data, size_t len, cb_fn_value_t *out);
//  True for the types a function may return or store (cb_fn_type_t).
bool exec_value_type_ok(uint32_t type);
//  Bytes of v's encoding; v->type is a cb_fn_type_t or EXEC_VALUE_ERROR.
size_t exec_value_size(const cb_fn_value_t *v);
//  Writes v's encoding (exec_value_size bytes) at p.
void exec_value_write(const cb_fn_value_t *v, uint8_t *p);
//  Appends v's encoding to a frame as a bytes field.
void exec_frame_value(exec_buf_t *buf, const cb_fn_value_t *v);

void exec_frame_test(bool verbose);

#endif
