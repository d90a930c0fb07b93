//  anna/membership.h: the cluster membership messages (ClusterMessage, proto/anna.proto):
//  encoding, checked decoding, and the membership a message carries as an anna_cluster_t.
//  Pure: no I/O, no clock. The routing actor (anna/routing.c) runs the protocol: JOIN to the
//  seed, HEARTBEAT to every member each heartbeat period (carrying the members it knows, so a
//  newcomer learns of everyone), LEAVE on a graceful stop, expiry of silent members; it tells
//  its workers the live members (MEMBERS) whenever they change.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_MEMBERSHIP_H
#define ANNA_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anna.pb-c.h"
#include "anna/cluster.h"
#include "anna/config.h"
#include "common/bytes.h"

//  Longest layout string.
#define ANNA_MEMBERSHIP_LAYOUT 160
//  Most members a message may list (a bound on what a peer can make us allocate).
#define ANNA_MEMBERSHIP_MAX_LIST ANNA_CLUSTER_MAX_NODES

//  What every node of a cluster must agree on to place keys alike: threads, local
//  replication, virtual nodes, global replication and port offset.
void anna_membership_layout(const anna_config_t *config, char *buf, size_t len);

//  The incarnation of a node process starting at wall-clock time wall_ms: tenths of a second
//  since 2025-01-01, so that a restarted node (which takes longer than that to come back)
//  always joins with a higher count, without keeping state on disk.
uint32_t anna_membership_join_count(int64_t wall_ms);

//  True for a dotted IPv4 address (what nodes are named by).
bool anna_membership_address_ok(const char *address);

//  Encodes a message of type from address (with join_count and layout, either may be empty)
//  into *out (reset first). members (may be NULL) contributes its live members, except
//  `exclude` (may be NULL). error (may be NULL) becomes error_message.
void anna_membership_encode(ClusterMessageType type, const char *address, uint32_t join_count,
                            const char *layout, const anna_cluster_t *members,
                            const char *exclude, const char *error, uint32_t thread,
                            cb_bytes_t *out);

//  Decodes and checks a message: a known type, an IPv4 sender address for the types between
//  nodes, member addresses that are IPv4, at most ANNA_MEMBERSHIP_MAX_LIST members. Returns
//  the message (free with cluster_message__free_unpacked(msg, alloc)) or NULL with a reason
//  in *why (static text).
ClusterMessage *anna_membership_decode(const uint8_t *data, size_t size,
                                       ProtobufCAllocator *alloc, const char **why);

//  The cluster of msg's members as seen from node `self` (which need not be among them: a
//  node handing its keys over is not), placing keys on global_rep nodes. NULL if msg lists
//  no member. Caller owns result.
anna_cluster_t *anna_membership_cluster(const ClusterMessage *msg, const char *self,
                                        uint32_t global_rep, uint32_t vnodes);

void anna_membership_test(bool verbose);

#endif
