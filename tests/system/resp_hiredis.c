//  tests/system/resp_hiredis.c: the RESP front end through a real Redis client library,
//  hiredis (Debian's libhiredis-dev). hiredis is loaded with dlopen, so that test programs
//  keep the Makefile's one link line; its header gives the types. Exits 0 on success, 77
//  (skip) when hiredis is not installed, and aborts on the first wrong answer.
//    resp_hiredis PORT
//  SPDX-License-Identifier: Apache-2.0
#include <assert.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<hiredis/hiredis.h>)
#include <hiredis/hiredis.h>
#define S_HAVE_HIREDIS 1
#endif
#endif

#ifndef S_HAVE_HIREDIS
int main(void)
{
    printf("skip: hiredis headers not installed (apt-get install libhiredis-dev)\n");
    return 77;
}
#else

static redisContext *(*s_connect)(const char *ip, int port);
static void *(*s_command_argv)(redisContext *c, int argc, const char **argv,
                               const size_t *argvlen);
static int (*s_append_argv)(redisContext *c, int argc, const char **argv,
                            const size_t *argvlen);
static int (*s_get_reply)(redisContext *c, void **reply);
static void (*s_free_reply)(void *reply);
static void (*s_free)(redisContext *c);

//  A command from words (each a C string) through redisCommandArgv.
static redisReply *s_cmd(redisContext *c, int argc, const char **argv)
{
    size_t lens[16];
    assert(argc <= 16);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = s_command_argv(c, argc, argv, lens);
    if (!r) {
        fprintf(stderr, "resp_hiredis: %s failed: %s\n", argv[0], c->errstr);
        exit(1);
    }
    return r;
}

static void s_expect(redisReply *r, int type, const char *str, long long integer,
                     const char *what)
{
    bool ok = r->type == type;
    if (ok && str)
        ok = r->len == strlen(str) && memcmp(r->str, str, r->len) == 0;
    if (ok && type == REDIS_REPLY_INTEGER)
        ok = r->integer == integer;
    if (!ok) {
        fprintf(stderr, "resp_hiredis: %s: got type %d '%.*s' %lld\n", what, r->type,
                r->str ? (int)r->len : 0, r->str ? r->str : "", r->integer);
        exit(1);
    }
    printf("ok: %s\n", what);
    s_free_reply(r);
}

#define S_CMD(c, ...) s_cmd(c, sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *), \
                            (const char *[]){__VA_ARGS__})

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: resp_hiredis PORT\n");
        return 2;
    }
    void *lib = dlopen("libhiredis.so.0.14", RTLD_NOW);
    if (!lib)
        lib = dlopen("libhiredis.so", RTLD_NOW);
    if (!lib) {
        printf("skip: libhiredis not installed (%s)\n", dlerror());
        return 77;
    }
    *(void **)&s_connect = dlsym(lib, "redisConnect");
    *(void **)&s_command_argv = dlsym(lib, "redisCommandArgv");
    *(void **)&s_append_argv = dlsym(lib, "redisAppendCommandArgv");
    *(void **)&s_get_reply = dlsym(lib, "redisGetReply");
    *(void **)&s_free_reply = dlsym(lib, "freeReplyObject");
    *(void **)&s_free = dlsym(lib, "redisFree");
    assert(s_connect && s_command_argv && s_append_argv && s_get_reply && s_free_reply &&
           s_free);

    redisContext *c = s_connect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) {
        fprintf(stderr, "resp_hiredis: cannot connect: %s\n", c ? c->errstr : "no memory");
        return 1;
    }
    s_expect(S_CMD(c, "PING"), REDIS_REPLY_STATUS, "PONG", 0, "PING");
    //  Binary-safe values: NUL, CR, LF and high bytes survive the round trip.
    const char value[] = "a\0b\r\nc\xff";
    const char *set[] = {"SET", "h:bin", value};
    size_t set_lens[] = {3, 5, sizeof value - 1};
    redisReply *r = s_command_argv(c, 3, set, set_lens);
    s_expect(r, REDIS_REPLY_STATUS, "OK", 0, "SET of a binary value");
    r = S_CMD(c, "GET", "h:bin");
    assert(r->type == REDIS_REPLY_STRING && r->len == sizeof value - 1 &&
           memcmp(r->str, value, r->len) == 0);
    printf("ok: GET of a binary value\n");
    s_free_reply(r);
    s_expect(S_CMD(c, "GET", "h:none"), REDIS_REPLY_NIL, NULL, 0, "GET of an absent key");
    s_expect(S_CMD(c, "SADD", "h:set", "x", "y"), REDIS_REPLY_INTEGER, NULL, 2, "SADD");
    r = S_CMD(c, "SMEMBERS", "h:set");
    assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    assert(!strcmp(r->element[0]->str, "x") && !strcmp(r->element[1]->str, "y"));
    printf("ok: SMEMBERS\n");
    s_free_reply(r);
    r = S_CMD(c, "MGET", "h:bin", "h:none", "h:set");
    assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    assert(r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_NIL &&
           r->element[2]->type == REDIS_REPLY_NIL);
    printf("ok: MGET\n");
    s_free_reply(r);
    s_expect(S_CMD(c, "GET", "h:set"), REDIS_REPLY_ERROR,
             "WRONGTYPE Operation against a key holding the wrong kind of value", 0,
             "WRONGTYPE");
    s_expect(S_CMD(c, "BOGUS"), REDIS_REPLY_ERROR,
             "ERR unknown command 'BOGUS', with args beginning with: ", 0, "unknown command");

    //  A pipeline of 3000 commands, keys on every worker thread, read back in order.
    enum { N = 1000 };
    char keys[N][16], vals[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "h:p%d", i);
        snprintf(vals[i], sizeof vals[i], "v%d", i * 7);
        const char *a[] = {"SET", keys[i], vals[i]};
        size_t l[] = {3, strlen(keys[i]), strlen(vals[i])};
        const char *g[] = {"GET", keys[i]};
        size_t gl[] = {3, strlen(keys[i])};
        const char *e[] = {"EXISTS", keys[i], "h:none"};
        size_t el[] = {6, strlen(keys[i]), 6};
        assert(s_append_argv(c, 3, a, l) == 0 && s_append_argv(c, 2, g, gl) == 0 &&
               s_append_argv(c, 3, e, el) == 0);
    }
    for (int i = 0; i < N; i++) {
        void *reply;
        assert(s_get_reply(c, &reply) == 0);
        r = reply;
        assert(r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK"));
        s_free_reply(r);
        assert(s_get_reply(c, &reply) == 0);
        r = reply;
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, vals[i])) {
            fprintf(stderr, "resp_hiredis: pipelined GET %s: got '%s'\n", keys[i],
                    r->str ? r->str : "(nil)");
            return 1;
        }
        s_free_reply(r);
        assert(s_get_reply(c, &reply) == 0);
        r = reply;
        assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        s_free_reply(r);
    }
    printf("ok: %d pipelined commands answered in order\n", 3 * N);
    s_free(c);
    dlclose(lib);
    return 0;
}
#endif
