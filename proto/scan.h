//  proto/scan.h: reads the top-level fields of a KeyRequest straight from its protobuf
//  bytes, without unpacking it: how many tuples, the response address and the request id.
//  The KVS worker and the cache use it to refuse an oversized request before committing
//  memory to an unpack, and to answer a request that will not unpack. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#ifndef WIRE_SCAN_H
#define WIRE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t tuples;              //  occurrences of field 2
    const uint8_t *address;     //  last field 3 (response_address); borrowed, not terminated
    size_t address_len;
    const uint8_t *id;          //  last field 4 (request_id); borrowed, not terminated
    size_t id_len;
} wire_scan_t;

//  Fills *scan (pointers borrow from data). False if the wire framing is broken.
bool wire_scan_request(const uint8_t *data, size_t size, wire_scan_t *scan);

void wire_scan_test(bool verbose);

#endif
