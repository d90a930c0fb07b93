//  anna/resp_codec.h: the Anna messages the RESP front end exchanges with the worker threads,
//  written and read by hand: KeyRequests are appended tuple by tuple straight into the
//  outgoing frame, and KeyResponses are read in place, values pointing into the received
//  frame. That spares protobuf-c's per-field allocations and copies on the hot path (the
//  workers themselves still use protobuf-c). Pure: no I/O. The self-test checks both
//  directions against protobuf-c and proto/wire.c.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_RESP_CODEC_H
#define ANNA_RESP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anna/resp_proto.h"

//  ---- KeyRequest, built tuple by tuple -----------------------------------------------------

//  Appends a GET tuple for key to msg. Returns the bytes appended.
size_t anna_resp_codec_get(anna_resp_buf_t *msg, const void *key, size_t klen);
//  Appends a PUT tuple of an LWW value {ts, value, writer}. Returns the bytes appended.
size_t anna_resp_codec_put_lww(anna_resp_buf_t *msg, const void *key, size_t klen, uint64_t ts,
                               uint32_t writer, const void *value, size_t vlen);
//  Appends a PUT tuple of a SET value holding the n members args[i] (offsets into base).
//  Duplicates are allowed: the server's decoder drops them. Returns the bytes appended.
size_t anna_resp_codec_put_set(anna_resp_buf_t *msg, const void *key, size_t klen,
                               const char *base, const anna_resp_arg_t *args, size_t n);
//  Completes msg as a KeyRequest (type 1 = GET, 2 = PUT) answered to address with
//  request_id id. Fields may come in any order in protobuf, so they go after the tuples.
void anna_resp_codec_finish(anna_resp_buf_t *msg, int type, const char *address,
                            const char *id, size_t idlen);

//  ---- KeyResponse, read in place ------------------------------------------------------------

typedef struct {
    int lattice_type;           //  LatticeType; 0 when absent
    int error;                  //  AnnaError; 0 = NO_ERROR
    const uint8_t *payload;     //  points into the frame
    size_t payload_len;
    const char *error_message;  //  points into the frame; not terminated
    size_t error_message_len;
} anna_resp_tuple_t;

typedef struct {
    const char *id;             //  response_id, not terminated
    size_t id_len;
    int error;                  //  KeyResponse.error
    const char *error_message;  //  KeyResponse.error_message, not terminated
    size_t error_message_len;
    const uint8_t *p;           //  tuple cursor
    const uint8_t *end;
} anna_resp_response_t;

//  Reads the top-level fields of a KeyResponse frame and readies the tuple cursor. The
//  frame must outlive self. Returns 0 or -EPROTO (broken framing).
int anna_resp_codec_response(anna_resp_response_t *self, const uint8_t *data, size_t len);
//  Next tuple in order. Returns 1 (tuple in *out), 0 at the end, -EPROTO.
int anna_resp_codec_next_tuple(anna_resp_response_t *self, anna_resp_tuple_t *out);

//  Reads an LWWValue payload. *value points into data. Returns 0 or -EPROTO.
int anna_resp_codec_lww(const uint8_t *data, size_t len, uint64_t *ts, uint32_t *writer,
                        const uint8_t **value, size_t *vlen);

//  Iterates the members of a SetValue payload (in the order sent: byte order from our
//  workers). Start with it->p = payload, it->end = payload + len.
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} anna_resp_set_iter_t;
//  Returns 1 (*item points into the payload), 0 at the end, -EPROTO.
int anna_resp_codec_set_next(anna_resp_set_iter_t *it, const uint8_t **item, size_t *len);

void anna_resp_codec_test(bool verbose);

#endif
