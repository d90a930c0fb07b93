//  client/codec.h: the client's side of the Anna wire protocol (KeyRequest, KeyResponse,
//  KeyAddressRequest, KeyAddressResponse) as plain structs. The only client file that
//  includes the generated protobuf header; kvs.c never sees protobuf types.
//  Pure: no sockets, no clock. Decoding validates what a peer sends and never asserts on it.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_CODEC_H
#define CB_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "lattices/lattice.h"

//  Wire enums (proto/anna.proto), repeated here so that users of this header need no protobuf.
enum {
    CB_CODEC_GET = 1,
    CB_CODEC_PUT = 2,
};
enum {
    CB_ANNA_NO_ERROR = 0,
    CB_ANNA_KEY_DNE = 1,
    CB_ANNA_WRONG_THREAD = 2,
    CB_ANNA_TIMEOUT = 3,
    CB_ANNA_LATTICE = 4,
    CB_ANNA_NO_SERVERS = 5,
    CB_ANNA_BAD_REQUEST = 16,
    CB_ANNA_TOO_LARGE = 17,
};

//  One tuple of an outgoing KeyRequest. Everything borrowed.
typedef struct {
    const char *key;
    int kind;                   //  lattice kind of payload (PUT); 0 for GET
    const uint8_t *payload;     //  encoded value (PUT); NULL for GET
    size_t payload_len;
    uint32_t address_cache_size;
} cb_codec_tuple_t;

//  Encodes a KeyRequest of type CB_CODEC_GET or CB_CODEC_PUT. Caller owns *out (initialise
//  it zeroed). Returns 0 or -EINVAL (bad type, no tuples, NULL strings).
int cb_codec_key_request(int type, const cb_codec_tuple_t *tuples, size_t n,
                         const char *response_address, const char *request_id, cb_bytes_t *out);

//  One tuple of an incoming KeyResponse, decoded.
typedef struct {
    char *key;                  //  owned
    int error;                  //  AnnaError as sent (CB_ANNA_*; unknown values kept)
    char *error_message;        //  owned; NULL when the server gave none
    bool invalidate;            //  the server says our cached addresses for key are stale
    lat_t value;                //  owned; LAT_NONE unless the tuple carried a payload
    int value_rc;               //  0, or why the payload did not decode (-EPROTO, -EINVAL)
} cb_codec_reply_tuple_t;

typedef struct {
    char *response_id;          //  owned
    int error;                  //  response-level AnnaError
    char *error_message;        //  owned; NULL when none
    cb_codec_reply_tuple_t *tuples;     //  owned array
    size_t len;
} cb_codec_reply_t;

//  Decodes a KeyResponse into *out (uninitialised). On 0 the caller owns *out and must
//  cb_codec_reply_fini it; on -EPROTO nothing is left to free. A tuple whose payload does
//  not decode is kept with value_rc set, so one bad value does not hide the others.
int cb_codec_reply_decode(const uint8_t *data, size_t len, cb_codec_reply_t *out);
//  Idempotent.
void cb_codec_reply_fini(cb_codec_reply_t *self);

//  Encodes a KeyAddressRequest. Caller owns *out (initialise it zeroed).
int cb_codec_address_request(const char *const *keys, size_t n, const char *response_address,
                             const char *request_id, cb_bytes_t *out);

typedef struct {
    char *key;                  //  owned
    char **ips;                 //  owned array of owned worker addresses ("tcp://ip:port")
    size_t n_ips;
} cb_codec_key_address_t;

typedef struct {
    char *response_id;          //  owned
    int error;                  //  AnnaError (NO_SERVERS when the routing tier knows none)
    cb_codec_key_address_t *addresses;  //  owned array
    size_t len;
} cb_codec_addresses_t;

//  Decodes a KeyAddressResponse into *out (uninitialised). Same ownership rules as
//  cb_codec_reply_decode. Returns 0 or -EPROTO.
int cb_codec_addresses_decode(const uint8_t *data, size_t len, cb_codec_addresses_t *out);
void cb_codec_addresses_fini(cb_codec_addresses_t *self);

//  Both response messages carry their response_id as field 3, a string, so the id can be
//  read before we know which of the two a message is. Sets *id (borrowed, points into
//  data, not NUL-terminated) and *id_len. Returns 0, -ENOENT if the message has no id,
//  -EPROTO if the bytes are not a well-formed protobuf message.
int cb_codec_response_id(const uint8_t *data, size_t len, const char **id, size_t *id_len);

//  ---- the server's direction: what a node decodes and sends. The client does not need
//  these; they make every message testable by round trip, and the fault injector of
//  tests/system/client_faults.c builds its misbehaving replies with them.

typedef struct {
    char *key;                  //  owned
    int kind;                   //  lattice kind as sent (0 for GET)
    cb_bytes_t payload;         //  owned
    uint32_t address_cache_size;
} cb_codec_request_tuple_t;

typedef struct {
    int type;                   //  CB_CODEC_GET, CB_CODEC_PUT, or what the peer sent
    char *response_address;     //  owned ("" when absent)
    char *request_id;           //  owned ("" when absent)
    cb_codec_request_tuple_t *tuples;   //  owned array
    size_t len;
} cb_codec_request_t;

//  Decodes a KeyRequest into *out (uninitialised). Returns 0 (caller owns *out, must
//  cb_codec_request_fini it) or -EPROTO (nothing to free).
int cb_codec_request_decode(const uint8_t *data, size_t len, cb_codec_request_t *out);
void cb_codec_request_fini(cb_codec_request_t *self);

//  Encodes a KeyResponse of the given type from *reply (borrowed): each tuple's value is
//  encoded with wire_encode unless it is LAT_NONE. Caller owns *out (initialise it zeroed).
int cb_codec_reply_encode(int type, const cb_codec_reply_t *reply, cb_bytes_t *out);

typedef struct {
    char *response_address;     //  owned
    char *request_id;           //  owned
    char **keys;                //  owned array of owned keys
    size_t len;
} cb_codec_address_request_t;

//  Decodes a KeyAddressRequest. Same ownership rules as cb_codec_request_decode.
int cb_codec_address_request_decode(const uint8_t *data, size_t len,
                                    cb_codec_address_request_t *out);
void cb_codec_address_request_fini(cb_codec_address_request_t *self);

//  Encodes a KeyAddressResponse from *addresses (borrowed). Caller owns *out (zeroed).
void cb_codec_addresses_encode(const cb_codec_addresses_t *addresses, cb_bytes_t *out);

void cb_codec_test(bool verbose);

#endif
