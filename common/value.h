//  common/value.h: the typed values functions take and return ("cb values"): bytes, string,
//  int64, float64, a user-defined type, or an error message. One compact encoding for the
//  wire, the KVS and the CLI:
//      0xCB 0x01 <type:u8> [user tag: u32 LE, only for USER] <payload>
//  int64 and float64 payloads are 8 bytes little-endian; the others are the raw bytes.
//  Bytes without the 0xCB 0x01 prefix decode as BYTES, so a value anyone wrote to the KVS
//  (anna-cli PUT, an Anna client) is a valid argument.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_VALUE_H
#define CB_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

typedef enum {
    CB_VALUE_BYTES = 0,
    CB_VALUE_STRING = 1,
    CB_VALUE_INT64 = 2,
    CB_VALUE_FLOAT64 = 3,
    CB_VALUE_USER = 4,          //  payload bytes with the user's own type tag
    CB_VALUE_ERROR = 5,         //  a failed call: payload is the message (a future's result)
} cb_value_type_t;

typedef struct {
    cb_value_type_t type;
    uint32_t user_tag;          //  CB_VALUE_USER only
    int64_t i64;                //  CB_VALUE_INT64
    double f64;                 //  CB_VALUE_FLOAT64
    cb_bytes_t bytes;           //  BYTES, STRING, USER, ERROR payload; owned
} cb_value_t;

void cb_value_fini(cb_value_t *self);
void cb_value_copy(cb_value_t *dst, const cb_value_t *src);
//  Constructors: dst uninitialised; copies data.
void cb_value_set_bytes(cb_value_t *dst, cb_value_type_t type, const void *data, size_t len);
void cb_value_set_int(cb_value_t *dst, int64_t v);
void cb_value_set_float(cb_value_t *dst, double v);

//  Caller owns *out (initialise zeroed).
void cb_value_encode(const cb_value_t *self, cb_bytes_t *out);
//  Decodes into *out (uninitialised; caller owns on success). -EPROTO for a prefixed value
//  with a bad type or payload size; bytes without the prefix are BYTES.
int cb_value_decode(const void *data, size_t len, cb_value_t *out);

//  Parses "TYPE:TEXT" as typed on a command line: int:3, float:2.5, str:hello, bytes:\x00..,
//  or an untyped word: an integer literal is INT64, a float literal FLOAT64, else STRING.
//  Returns 0 or -EINVAL. Caller owns *out.
int cb_value_parse(const char *text, cb_value_t *out);
//  Text for people: 16, 2.5, "text", bytes as "\xNN..", user as user(7):"..", error as
//  error: msg. Caller owns result.
char *cb_value_format(const cb_value_t *self);

const char *cb_value_type_name(cb_value_type_t type);

void cb_value_test(bool verbose);

#endif
