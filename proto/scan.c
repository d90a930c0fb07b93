//  proto/scan.c: a walk over the protobuf wire format (tag varint, then a value by wire
//  type) of a KeyRequest's top-level fields. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "scan.h"

#include <assert.h>
#include <string.h>

static bool s_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool wire_scan_request(const uint8_t *data, size_t size, wire_scan_t *scan)
{
    memset(scan, 0, sizeof *scan);
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        uint64_t tag, len;
        if (!s_read_varint(&p, end, &tag))
            return false;
        switch (tag & 7) {
        case 0:
            if (!s_read_varint(&p, end, &len))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2:
            if (!s_read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return false;
            if (tag >> 3 == 2)
                scan->tuples++;
            else if (tag >> 3 == 3) {
                scan->address = p;
                scan->address_len = (size_t)len;
            } else if (tag >> 3 == 4) {
                scan->id = p;
                scan->id_len = (size_t)len;
            }
            p += len;
            break;
        default:
            return false;       //  groups (3, 4) are not used by proto3; 6, 7 do not exist
        }
    }
    return true;
}

void wire_scan_test(bool verbose)
{
    (void)verbose;
    //  type=GET, two tuples, response_address "ab", request_id "x".
    static const uint8_t req[] = {0x08, 0x01, 0x12, 0x02, 0x0a, 0x00, 0x12, 0x00,
                                  0x1a, 0x02, 'a',  'b',  0x22, 0x01, 'x'};
    wire_scan_t scan;
    assert(wire_scan_request(req, sizeof req, &scan));
    assert(scan.tuples == 2 && scan.address_len == 2 && !memcmp(scan.address, "ab", 2));
    assert(scan.id_len == 1 && scan.id[0] == 'x');
    //  Every truncation inside a field is refused or reads a prefix of the fields: never
    //  past the end.
    for (size_t cut = 0; cut < sizeof req; cut++)
        if (wire_scan_request(req, cut, &scan))
            assert(scan.tuples <= 2);
    assert(!wire_scan_request((const uint8_t *)"\xff\xff", 2, &scan));
    assert(!wire_scan_request((const uint8_t *)"\x0b", 1, &scan));     //  a group
    assert(wire_scan_request((const uint8_t *)"", 0, &scan) && scan.tuples == 0);
}
