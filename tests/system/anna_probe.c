//  tests/system/anna_probe.c: small raw-protocol actions for the shell system tests.
//    anna_probe OFFSET stats THREAD        prints thread's counters (JSON), exit 0
//    anna_probe OFFSET put KEY TEXT        LWW PUT through routing; exit 0 if acknowledged
//    anna_probe OFFSET get KEY             prints the LWW value's text; exit 0 if found
//    anna_probe OFFSET flood THREAD N      N PUTs to THREAD whose replies go to an address
//                                          nobody listens on (fire and forget)
//    anna_probe OFFSET hold PORT SECONDS   binds tcp://127.0.0.1:PORT (a port taken by
//                                          someone else), prints "holding", sleeps
//  SPDX-License-Identifier: Apache-2.0
#include "tests/system/anna_testlib.h"

int main(int argc, char **argv)
{
    if (argc < 3)
        tl_fail("usage: anna_probe OFFSET stats|put|get|flood ...");
    tl_client_t c;
    tl_client_init(&c, atoi(argv[1]));
    const char *cmd = argv[2];
    char address[128];
    int rc = 0;
    if (!strcmp(cmd, "stats") && argc == 4) {
        tl_key_addr(&c, atoi(argv[3]), address, sizeof address);
        char *json = tl_stats(&c, address);
        printf("%s\n", json);
        cb_free(json);
    } else if (!strcmp(cmd, "put") && argc == 5) {
        tl_owner(&c, argv[3], address);
        lat_t v;
        lat_init(&v, LAT_LWW);
        lat_lww_assign(&v, cb_clock_lww_now(), 1, argv[4], strlen(argv[4]));
        char msg[256];
        rc = tl_put(&c, address, argv[3], &v, msg, sizeof msg) == 0 ? 0 : 1;
        if (rc)
            fprintf(stderr, "PUT failed: %s\n", msg);
        lat_fini(&v);
    } else if (!strcmp(cmd, "get") && argc == 4) {
        tl_owner(&c, argv[3], address);
        lat_t v;
        if (tl_get(&c, address, argv[3], &v) == 0 && v.kind == LAT_LWW)
            printf("%.*s\n", (int)v.u.lww.value.len, (const char *)v.u.lww.value.data);
        else
            rc = 1;
        lat_fini(&v);
    } else if (!strcmp(cmd, "flood") && argc == 5) {
        tl_key_addr(&c, atoi(argv[3]), address, sizeof address);
        int n = atoi(argv[4]);
        lat_t v;
        lat_init(&v, LAT_LWW);
        cb_bytes_t payload = {0};
        for (int i = 0; i < n; i++) {
            char key[32];
            snprintf(key, sizeof key, "flood-%d", i % 1000);
            lat_lww_assign(&v, (uint64_t)i + 1, 1, key, strlen(key));
            wire_encode(&v, &payload);
            KeyTuple tuple = KEY_TUPLE__INIT;
            tuple.key = key;
            tuple.lattice_type = LATTICE_TYPE__LWW;
            tuple.payload.data = payload.data;
            tuple.payload.len = payload.len;
            KeyTuple *tuples[1] = {&tuple};
            KeyRequest req = KEY_REQUEST__INIT;
            req.type = REQUEST_TYPE__PUT;
            req.tuples = tuples;
            req.n_tuples = 1;
            req.response_address = "tcp://127.0.0.1:1";
            tl_send_request(&c, address, &req);
            cb_bytes_fini(&payload);
        }
        lat_fini(&v);
    } else if (!strcmp(cmd, "hold") && argc == 5) {
        void *sock = zmq_socket(c.ctx, ZMQ_PULL);
        tl_addr(address, sizeof address, atoi(argv[3]));
        if (zmq_bind(sock, address) != 0)
            tl_fail("bind %s: %s", address, zmq_strerror(errno));
        printf("holding %s\n", address);
        fflush(stdout);
        struct timespec ts = {atoi(argv[4]), 0};
        nanosleep(&ts, NULL);
        zmq_close(sock);
    } else
        tl_fail("bad arguments");
    tl_client_fini(&c);
    return rc;
}
