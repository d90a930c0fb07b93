//  proto/wire.h: lattice values <-> the public Anna payload messages (KeyTuple.payload).
//  The only module that turns lattices into protobuf; anna/ and client/ both use it.
//  Decoding validates everything a peer sends: it never asserts on input.
//  SPDX-License-Identifier: Apache-2.0
#ifndef WIRE_WIRE_H
#define WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "lattices/lattice.h"

//  Maximum nesting of MAP values accepted from the wire (stack safety).
#define WIRE_MAX_DEPTH 16

//  Encodes value as the payload message of its kind. Caller owns *out (initialise zeroed).
//  Returns 0, or -EINVAL for LAT_NONE.
int wire_encode(const lat_t *value, cb_bytes_t *out);

//  Decodes a payload of the given wire kind into *out (uninitialised; on success caller owns
//  and must lat_fini it; on failure nothing to free). Returns 0, -EINVAL for an unknown or
//  NONE kind, -EPROTO for malformed bytes or invalid content (NaN priority, zero clock
//  entries, too deep). Old clients' messages without our extension fields decode as they meant.
int wire_decode(int kind, const uint8_t *data, size_t len, lat_t *out);

void wire_test(bool verbose);

#endif
