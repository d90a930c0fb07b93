//  anna/server.h: one anna-server node: owns the ZeroMQ context, the routing actor and one
//  worker actor per thread. Used by main.c from the main thread only; the actors run on
//  their own threads and share nothing with it while they run.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_SERVER_H
#define ANNA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "anna/config.h"

typedef struct _anna_server_t anna_server_t;

//  Binds every port, then starts the routing and worker threads; returns once they run.
//  config must be validated (anna_config_validate); it is copied. Returns NULL with a
//  message in err ("cannot bind tcp://127.0.0.1:6200: Address already in use").
//  Caller owns result.
anna_server_t *anna_server_new(const anna_config_t *config, char *err, size_t errlen);
//  Shuts the context down and joins every thread. Idempotent.
void anna_server_stop(anna_server_t *self);
//  Writes one line of counters per thread (and the routing thread) to out. After stop.
void anna_server_report(anna_server_t *self, FILE *out);
//  Stops the server if running and frees everything. Idempotent; sets *self_p to NULL.
void anna_server_destroy(anna_server_t **self_p);

#endif
