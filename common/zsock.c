//  common/zsock.c: see zsock.h.
//  SPDX-License-Identifier: Apache-2.0
#include "common/zsock.h"

#include <errno.h>
#include <stdio.h>
#include <zmq.h>

void *cb_zsock_bind_pull(void *ctx, const char *endpoint, int64_t maxmsg, char *err,
                         size_t errlen)
{
    void *sock = zmq_socket(ctx, ZMQ_PULL);
    if (!sock) {
        snprintf(err, errlen, "cannot create socket for %s: %s", endpoint, zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}
