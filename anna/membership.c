//  anna/membership.c: ClusterMessage encoding and checks. Contract in membership.h.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/membership.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

//  2025-01-01T00:00:00Z in Unix milliseconds.
#define S_EPOCH_MS 1735689600000LL

void anna_membership_layout(const anna_config_t *config, char *buf, size_t len)
{
    snprintf(buf, len, "threads=%d replication=%d vnodes=%d global-replication=%d "
             "port-offset=%d", config->threads, config->replication, config->vnodes,
             config->global_replication, config->port_offset);
}

uint32_t anna_membership_join_count(int64_t wall_ms)
{
    int64_t t = (wall_ms - S_EPOCH_MS) / 100;
    return t < 1 ? 1 : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

bool anna_membership_address_ok(const char *address)
{
    struct in_addr in;
    return address && strlen(address) < ANNA_CLUSTER_ADDRESS &&
           inet_pton(AF_INET, address, &in) == 1;
}

void anna_membership_encode(ClusterMessageType type, const char *address, uint32_t join_count,
                            const char *layout, const anna_cluster_t *members,
                            const char *exclude, const char *error, uint32_t thread,
                            cb_bytes_t *out)
{
    ClusterMessage msg = CLUSTER_MESSAGE__INIT;
    msg.type = type;
    msg.address = (char *)(address ? address : "");
    msg.join_count = join_count;
    msg.layout = (char *)(layout ? layout : "");
    msg.error_message = (char *)(error ? error : "");
    msg.thread = thread;
    size_t n = members ? anna_cluster_count(members) : 0;
    ClusterMember *list = cb_calloc(n ? n : 1, sizeof *list);
    ClusterMember **ptrs = cb_calloc(n ? n : 1, sizeof *ptrs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a = anna_cluster_member(members, i);
        if (exclude && !strcmp(a, exclude))
            continue;
        cluster_member__init(&list[k]);
        list[k].address = (char *)a;
        list[k].join_count = anna_cluster_member_join_count(members, i);
        ptrs[k] = &list[k];
        k++;
    }
    msg.members = ptrs;
    msg.n_members = k;
    cb_bytes_fini(out);
    size_t size = cluster_message__get_packed_size(&msg);
    out->data = cb_malloc(size ? size : 1);
    cluster_message__pack(&msg, out->data);
    out->len = size;
    cb_free(ptrs);
    cb_free(list);
}

ClusterMessage *anna_membership_decode(const uint8_t *data, size_t size,
                                       ProtobufCAllocator *alloc, const char **why)
{
    ClusterMessage *msg = cluster_message__unpack(alloc, size, data);
    if (!msg) {
        *why = "undecodable cluster message";
        return NULL;
    }
    *why = NULL;
    switch (msg->type) {
    case CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN:
    case CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT:
    case CLUSTER_MESSAGE_TYPE__CLUSTER_LEAVE:
    case CLUSTER_MESSAGE_TYPE__CLUSTER_REFUSED:
        if (!anna_membership_address_ok(msg->address))
            *why = "cluster message without an IPv4 sender address";
        break;
    case CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS:
    case CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER:
    case CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER_DONE:
        break;
    default:
        *why = "cluster message of unknown type";
    }
    if (!*why && msg->n_members > ANNA_MEMBERSHIP_MAX_LIST)
        *why = "cluster message listing too many members";
    for (size_t i = 0; !*why && i < msg->n_members; i++)
        if (!anna_membership_address_ok(msg->members[i]->address))
            *why = "cluster message listing a member that is not an IPv4 address";
    if (*why) {
        cluster_message__free_unpacked(msg, alloc);
        return NULL;
    }
    return msg;
}

anna_cluster_t *anna_membership_cluster(const ClusterMessage *msg, const char *self,
                                        uint32_t global_rep, uint32_t vnodes)
{
    if (msg->n_members == 0)
        return NULL;
    //  Placement depends on the members only; starting from self (when listed) makes
    //  anna_cluster_owns answer for this node.
    const char *first = msg->members[0]->address;
    uint32_t first_count = msg->members[0]->join_count;
    for (size_t i = 0; i < msg->n_members; i++)
        if (self && !strcmp(msg->members[i]->address, self)) {
            first = self;
            first_count = msg->members[i]->join_count;
        }
    anna_cluster_t *cluster = anna_cluster_new(first, first_count, global_rep, vnodes);
    for (size_t i = 0; i < msg->n_members; i++)
        if (strcmp(msg->members[i]->address, first))
            anna_cluster_join(cluster, msg->members[i]->address, msg->members[i]->join_count,
                              0);
    return cluster;
}

//  ---- self-test ------------------------------------------------------------------------------

void anna_membership_test(bool verbose)
{
    assert(anna_membership_address_ok("127.0.0.2"));
    assert(!anna_membership_address_ok("localhost") && !anna_membership_address_ok(""));
    assert(!anna_membership_address_ok("127.0.0.1:6400") && !anna_membership_address_ok(NULL));
    //  Join counts grow with time, a tenth of a second apart.
    assert(anna_membership_join_count(S_EPOCH_MS + 1000) == 10);
    assert(anna_membership_join_count(S_EPOCH_MS + 1100) == 11);
    assert(anna_membership_join_count(0) == 1);

    anna_cluster_t *c = anna_cluster_new("127.0.0.1", 7, 2, 50);
    assert(anna_cluster_join(c, "127.0.0.2", 9, 0) == 1);
    assert(anna_cluster_join(c, "127.0.0.3", 11, 0) == 1);
    cb_bytes_t bytes = {0};
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT, "127.0.0.1", 7, "L", c,
                           NULL, NULL, 0, &bytes);
    const char *why;
    ClusterMessage *msg = anna_membership_decode(bytes.data, bytes.len, NULL, &why);
    assert(msg && msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT);
    assert(!strcmp(msg->address, "127.0.0.1") && msg->join_count == 7);
    assert(!strcmp(msg->layout, "L") && msg->n_members == 3);
    //  The cluster rebuilt from the message places keys as the original does.
    anna_cluster_t *d = anna_membership_cluster(msg, "127.0.0.3", 2, 50);
    assert(anna_cluster_count(d) == 3 && anna_cluster_owns(d, "x", 1) ==
                                             anna_cluster_node_owns(c, "127.0.0.3", "x", 1));
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        const char *a[2], *b[2];
        assert(anna_cluster_owners(c, key, strlen(key), a, 2) == 2);
        assert(anna_cluster_owners(d, key, strlen(key), b, 2) == 2);
        assert(!strcmp(a[0], b[0]) && !strcmp(a[1], b[1]));
    }
    anna_cluster_destroy(&d);
    cluster_message__free_unpacked(msg, NULL);
    //  A member left out (a node handing over lists everyone but itself).
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER, "", 0, "", c, "127.0.0.1",
                           NULL, 0, &bytes);
    msg = anna_membership_decode(bytes.data, bytes.len, NULL, &why);
    assert(msg && msg->n_members == 2);
    d = anna_membership_cluster(msg, "127.0.0.1", 2, 50);
    assert(anna_cluster_count(d) == 2 && !anna_cluster_contains(d, "127.0.0.1"));
    assert(!anna_cluster_node_owns(d, "127.0.0.1", "x", 1));
    anna_cluster_destroy(&d);
    cluster_message__free_unpacked(msg, NULL);

    //  Refused: garbage, unknown type, a sender or member that is not an IPv4 address.
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    assert(!anna_membership_decode(junk, sizeof junk, NULL, &why) && why);
    anna_membership_encode((ClusterMessageType)77, "127.0.0.1", 1, "", NULL, NULL, NULL, 0,
                           &bytes);
    assert(!anna_membership_decode(bytes.data, bytes.len, NULL, &why) && strstr(why, "type"));
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN, "tcp://x", 1, "", NULL, NULL,
                           NULL, 0, &bytes);
    assert(!anna_membership_decode(bytes.data, bytes.len, NULL, &why) && strstr(why, "IPv4"));
    anna_cluster_t *bad = anna_cluster_new("127.0.0.1", 1, 1, 10);
    assert(anna_cluster_join(bad, "node-b", 1, 0) == 1);
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT, "127.0.0.1", 1, "", bad,
                           NULL, NULL, 0, &bytes);
    assert(!anna_membership_decode(bytes.data, bytes.len, NULL, &why) && strstr(why, "member"));
    anna_cluster_destroy(&bad);
    cb_bytes_fini(&bytes);
    anna_cluster_destroy(&c);
    if (verbose)
        printf(" membership: messages round trip, rebuilt placement agrees, bad input refused\n");
}
