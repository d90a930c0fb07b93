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
//  Most versions accepted in a causal value's `versions` extension field: dropping the
//  dominated ones compares every pair of distinct clocks (CPU safety).
#define WIRE_MAX_VERSIONS 1024
//  Most clock and dependency entries an old client's causal value may expand to: it sends
//  one clock (and deps) for all its values, and each distinct value becomes a version with
//  its own copy (memory safety).
#define WIRE_MAX_EXPANSION (1 << 20)

//  Encodes value as the payload message of its kind. Caller owns *out (initialise zeroed;
//  out->data is NULL when the message packs to 0 bytes). Returns 0, or -EINVAL for
//  LAT_NONE or a MAP nested deeper than WIRE_MAX_DEPTH, -EMSGSIZE for a causal value of
//  more than WIRE_MAX_VERSIONS versions (*out left empty on error). The encoding is
//  canonical: equal values give equal bytes.
//    LWW -> LWWValue {timestamp, value, writer (ext 100)}
//    SET, ORDERED_SET -> SetValue, values in byte order
//    SINGLE_CAUSAL -> SingleKeyCausalValue, MULTI_CAUSAL -> MultiKeyCausalValue: public
//      fields = the join of the version clocks, (multi) the deps of all versions joined per
//      key, and the distinct values in byte order (what an old client reads); ext 100
//      `versions` = every version with its own clock (and deps) and value
//    PRIORITY -> PriorityValue (bottom is priority +inf, empty value); BOOL -> BoolValue;
//    MAX -> MaxValue; VECTOR_CLOCK -> VectorClockValue; MAP -> MapValue, entries in key
//      order, each with its kind and its value's payload
//  Clock ids and dep keys go out as proto3 strings: keep them UTF-8 for Google's runtimes.
int wire_encode(const lat_t *value, cb_bytes_t *out);

//  Decodes a payload of the given wire kind into *out (uninitialised; on success caller owns
//  and must lat_fini it; on failure *out is LAT_NONE with nothing to free). data may be NULL
//  when len is 0. Returns 0; -EINVAL for an unknown or NONE kind; -EPROTO for bytes that
//  do not unpack, a NaN priority, a +inf priority with a non-empty value (+inf is bottom's),
//  a single-key causal version with dependencies, a MAP nested deeper than
//  WIRE_MAX_DEPTH, or a MAP entry of unknown kind or with a bad payload; -EMSGSIZE for
//  more than WIRE_MAX_VERSIONS versions, or an old client's causal value that would expand
//  past WIRE_MAX_EXPANSION entries (values x (1 + clock entries + dep entries)).
//  Repaired, not refused: clock entries with count 0 are dropped, duplicate clock ids and
//  dep keys are joined, duplicate set values dropped, duplicate map keys joined (by
//  lat_map_merge_at's rule), -0.0 priority read as 0.0, ids cut at an embedded NUL.
//  Old clients (no extension fields) decode as they meant: LWW writer 0; a causal value
//  without `versions` is one version per listed value, each under the public clock (and
//  public deps); a causal value with no values is bottom (its clock alone is dropped).
//  An empty payload (0 bytes) is the message with every field at its default: LWW ts 0
//  empty value (= bottom), empty SET/causal/MAP/VECTOR_CLOCK, BOOL false, MAX 0, PRIORITY
//  priority 0 with an empty value (not bottom, whose encoding carries +inf).
int wire_decode(int kind, const uint8_t *data, size_t len, lat_t *out);

void wire_test(bool verbose);

#endif
