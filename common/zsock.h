//  common/zsock.h: the one way our actors bind their PULL sockets: a size limit enforced by
//  ZeroMQ before it allocates a message, no linger, and a clear message when the port is
//  taken.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_ZSOCK_H
#define CB_ZSOCK_H

#include <stddef.h>
#include <stdint.h>

//  A PULL socket of ctx (borrowed) bound to endpoint, refusing messages over maxmsg bytes (a
//  peer sending one is disconnected). NULL with "cannot bind tcp://...: Address already in
//  use" (or "cannot create socket ...") in err. Caller owns result (zmq_close).
void *cb_zsock_bind_pull(void *ctx, const char *endpoint, int64_t maxmsg, char *err,
                         size_t errlen);

#endif
