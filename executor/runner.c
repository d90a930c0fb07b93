//  executor/runner.c: the runner child and the executor's handle on it (see runner.h).
//  SPDX-License-Identifier: Apache-2.0
#include "executor/runner.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/log.h"
#include "executor/fnlib.h"

//  The runner's descriptor for its end of the pair (after stdio).
#define S_CHILD_FD 3

//  ======================================================================================
//  The runner (child process)

typedef struct {
    char *name; //  owned
    exec_loaded_t loaded;
    bool pinned;                       //  kept loaded until unpinned
    uint64_t used;                     //  LRU tick of the last use
    uint8_t digest[EXEC_DIGEST_BYTES]; //  of its code, to see when the stored code changes
} s_fn_t;

typedef struct {
    int fd; //  to the executor
    const exec_runner_config_t *config;
    cb_fn_ctx_t ctx; //  the one call context, reused
    exec_buf_t in;   //  the current job's frame
    exec_buf_t out;  //  a frame being written
    s_fn_t *fns;     //  loaded functions
    size_t n_fns;
    uint64_t tick;
    bool io_sent; //  this job sent an IO notice (so user code starts with RUN)
} s_child_t;

static void s_child_exit(s_child_t *c, int status) __attribute__((noreturn));
static void s_child_exit(s_child_t *c, int status)
{
    (void)c;
    //  _exit: no atexit handlers and no stdio flush of what the executor had buffered.
    _exit(status);
}

static void s_send(s_child_t *c)
{
    if (exec_chan_write(c->fd, &c->out) != 0)
        s_child_exit(c, 0); //  the executor is gone
}

static void s_notice(s_child_t *c, uint8_t type)
{
    c->out.len = 0;
    size_t start = exec_frame_begin(&c->out, type);
    exec_frame_end(&c->out, start);
    s_send(c);
    if (type == EXEC_R_IO)
        c->io_sent = true;
}

static void s_done(s_child_t *c, int code, const char *message, const cb_fn_value_t *result)
{
    //  A repeatable-read session goes out after the logs (issue 4), only when there is one.
    cb_bytes_t session;
    exec_fnctx_session_pack(&c->ctx, &session);
    c->out.len = 0;
    size_t start = exec_frame_begin(&c->out, EXEC_R_DONE);
    exec_frame_u32(&c->out, (uint32_t)code);
    exec_frame_str(&c->out, message);
    if (result)
        exec_frame_value(&c->out, result);
    else
        exec_frame_bytes(&c->out, NULL, 0);
    cb_fn_ctx_t *ctx = &c->ctx;
    exec_frame_u32(&c->out, (uint32_t)(ctx->n_logs + (ctx->logs_dropped ? 1 : 0)));
    for (size_t i = 0; i < ctx->n_logs; i++)
        exec_frame_str(&c->out, ctx->logs[i]);
    if (ctx->logs_dropped) {
        char line[96];
        snprintf(line, sizeof line, "(%zu more log lines dropped: at most %d per call)",
                 ctx->logs_dropped, EXEC_MAX_LOG_LINES);
        exec_frame_str(&c->out, line);
    }
    if (session.len)
        exec_frame_bytes(&c->out, session.data, session.len);
    cb_bytes_fini(&session);
    exec_frame_end(&c->out, start);
    s_send(c);
}

static s_fn_t *s_find(s_child_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_fns; i++)
        if (!strcmp(c->fns[i].name, name))
            return &c->fns[i];
    return NULL;
}

static void s_unload(s_child_t *c, size_t i)
{
    exec_loader_close(&c->fns[i].loaded);
    cb_free(c->fns[i].name);
    c->fns[i] = c->fns[--c->n_fns];
}

//  Unloads least recently used functions that are not pinned, down to the LRU's size.
static void s_evict(s_child_t *c)
{
    for (;;) {
        size_t unpinned = 0, oldest = 0;
        for (size_t i = 0; i < c->n_fns; i++) {
            if (c->fns[i].pinned)
                continue;
            if (!unpinned++ || c->fns[i].used < c->fns[oldest].used)
                oldest = i;
        }
        if (unpinned <= EXEC_LRU_FUNCTIONS)
            return;
        s_unload(c, oldest);
    }
}

static void s_unload_name(s_child_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_fns; i++)
        if (!strcmp(c->fns[i].name, name)) {
            s_unload(c, i);
            return;
        }
}

//  Finds function name, loading it if need be. With refresh (a LOAD: a pin), it reads the
//  stored code even when the function is loaded, and loads it again if the code changed
//  (or unloads it if it is gone): pinning again is how new code replaces old. CbError;
//  *out set on CB_OK.
static int s_ensure(s_child_t *c, const char *name, bool pin, bool refresh, s_fn_t **out, char *err,
                    size_t errlen)
{
    s_fn_t *fn = s_find(c, name);
    if (fn && !refresh) {
        fn->used = ++c->tick;
        fn->pinned |= pin;
        *out = fn;
        return CB_ERROR__CB_OK;
    }
    s_notice(c, EXEC_R_IO);
    cb_kvs_t *kvs = exec_fnctx_kvs(&c->ctx, err, errlen);
    if (!kvs)
        return CB_ERROR__CB_KVS;
    char key[512];
    if (snprintf(key, sizeof key, "funcs/%s", name) >= (int)sizeof key || !*name) {
        snprintf(err, errlen, "function '%.64s...' does not exist (name too long)", name);
        return CB_ERROR__CB_NO_SUCH_FUNCTION;
    }
    lat_t value;
    int rc = cb_kvs_get(kvs, key, &value);
    if (rc == -ETIMEDOUT) {
        //  Reads are safe to repeat, and a load that fails fails a pin: one more try, with
        //  a fresh I/O allowance from the executor.
        s_notice(c, EXEC_R_IO);
        rc = cb_kvs_get(kvs, key, &value);
    }
    if (rc == -ENOENT) {
        snprintf(err, errlen, "function '%s' does not exist", name);
        s_unload_name(c, name);
        return CB_ERROR__CB_NO_SUCH_FUNCTION;
    }
    if (rc) {
        snprintf(err, errlen, "function '%s': cannot read its code: %s", name,
                 cb_kvs_last_error(kvs));
        return CB_ERROR__CB_KVS;
    }
    if (value.kind != LAT_LWW) {
        snprintf(err, errlen, "function '%s': %s holds a %s value, not a FunctionBlob", name, key,
                 lat_kind_name(value.kind));
        lat_fini(&value);
        return CB_ERROR__CB_LOAD_FAILED;
    }
    void *blob;
    const uint8_t *code;
    size_t code_len;
    int status = exec_loader_check(name, value.u.lww.value.data, value.u.lww.value.len,
                                   c->config->trust, &blob, &code, &code_len, err, errlen);
    lat_fini(&value);
    if (status != CB_ERROR__CB_OK) {
        s_unload_name(c, name); //  deleted, or no longer trusted
        return status;
    }
    uint8_t digest[EXEC_DIGEST_BYTES];
    exec_loader_digest(code, code_len, digest);
    fn = s_find(c, name);
    if (fn && !memcmp(fn->digest, digest, sizeof digest)) {
        exec_loader_blob_free(blob); //  the code did not change
        fn->used = ++c->tick;
        fn->pinned |= pin;
        *out = fn;
        return CB_ERROR__CB_OK;
    }
    bool was_pinned = fn && fn->pinned;
    s_unload_name(c, name);
    exec_loaded_t loaded;
    status = exec_loader_open(name, code, code_len, &loaded, err, errlen);
    exec_loader_blob_free(blob);
    if (status != CB_ERROR__CB_OK)
        return status;
    c->fns = cb_realloc(c->fns, (c->n_fns + 1) * sizeof *c->fns);
    s_fn_t *added = &c->fns[c->n_fns++];
    *added = (s_fn_t){cb_strdup(name), loaded, pin || was_pinned, ++c->tick, {0}};
    memcpy(added->digest, digest, sizeof digest);
    s_evict(c); //  never the new one: it is the most recent
    *out = s_find(c, name);
    return CB_ERROR__CB_OK;
}

static void s_job_load(s_child_t *c, exec_reader_t *r)
{
    const char *name = exec_read_str(r);
    bool pinned = exec_read_u8(r) != 0;
    if (!exec_read_done(r))
        s_child_exit(c, 3);
    char err[1024] = "";
    s_fn_t *fn;
    int code = s_ensure(c, name, pinned, true, &fn, err, sizeof err);
    s_done(c, code, err, NULL);
}

static void s_job_unpin(s_child_t *c, exec_reader_t *r)
{
    const char *name = exec_read_str(r);
    if (!exec_read_done(r))
        s_child_exit(c, 3);
    s_unload_name(c, name); //  the next call loads it again, from the current code
    s_done(c, CB_ERROR__CB_OK, "", NULL);
}

static void s_job_put(s_child_t *c, exec_reader_t *r)
{
    const char *key = exec_read_str(r);
    size_t len;
    const uint8_t *value = exec_read_bytes(r, &len);
    if (!exec_read_done(r))
        s_child_exit(c, 3);
    s_notice(c, EXEC_R_IO);
    char err[1024] = "";
    cb_kvs_t *kvs = exec_fnctx_kvs(&c->ctx, err, sizeof err);
    int code = CB_ERROR__CB_OK;
    if (!kvs)
        code = CB_ERROR__CB_KVS;
    else if (cb_kvs_put_lww(kvs, key, value, len) != 0) {
        snprintf(err, sizeof err, "%s", cb_kvs_last_error(kvs));
        code = CB_ERROR__CB_KVS;
    }
    s_done(c, code, err, NULL);
}

//  Resolves the ref arguments (refs[i] is the key of args[ref_at[i]]) with one batch GET.
static int s_resolve(s_child_t *c, const char **refs, const uint32_t *ref_at, size_t n,
                     cb_fn_value_t *args, char *err, size_t errlen)
{
    s_notice(c, EXEC_R_IO);
    cb_kvs_t *kvs = exec_fnctx_kvs(&c->ctx, err, errlen);
    if (!kvs)
        return CB_ERROR__CB_KVS;
    cb_kvs_result_t *res = cb_calloc(n, sizeof *res);
    int rc = 0;
    if (c->ctx.consistency != CONSISTENCY__CONSISTENCY_LWW) {
        //  Refs are reads of the request like any other: through its session.
        for (size_t i = 0; i < n; i++)
            res[i].error = exec_fnctx_read(&c->ctx, refs[i], &res[i].value);
    } else
        rc = cb_kvs_get_many(kvs, refs, n, res);
    if (rc == -ETIMEDOUT) {
        s_notice(c, EXEC_R_IO); //  one more try, as for code
        for (size_t i = 0; i < n; i++)
            lat_fini(&res[i].value);
        rc = cb_kvs_get_many(kvs, refs, n, res);
    }
    int code = CB_ERROR__CB_OK;
    for (size_t i = 0; i < n && code == CB_ERROR__CB_OK; i++) {
        unsigned argno = ref_at[i] + 1;
        const lat_t *v = &res[i].value;
        if (res[i].error == -ENOENT) {
            snprintf(err, errlen, "argument %u: key '%s' does not exist", argno, refs[i]);
            code = CB_ERROR__CB_INVALID;
        } else if (res[i].error == -ESTALE && c->ctx.session_error) {
            snprintf(err, errlen, "argument %u: %s", argno, c->ctx.session_error);
            code = CB_ERROR__CB_KVS;
        } else if (res[i].error || rc) {
            snprintf(err, errlen, "argument %u: key '%s': %s", argno, refs[i],
                     cb_kvs_last_error(kvs));
            code = CB_ERROR__CB_KVS;
        } else if (res[i].error == -EINVAL || !exec_fnctx_value_bytes(&c->ctx, v)) {
            bool causal = c->ctx.consistency == CONSISTENCY__CONSISTENCY_SINGLE_CAUSAL ||
                          c->ctx.consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL;
            snprintf(err, errlen, "argument %u: key '%s' holds a %s value, not %s", argno,
                     refs[i], lat_kind_name(v->kind),
                     causal ? "a causal value (the causal levels read keys written under them)"
                            : "a cb value");
            code = CB_ERROR__CB_INVALID;
        } else {
            const cb_bytes_t *bytes = exec_fnctx_value_bytes(&c->ctx, v);
            const uint8_t *copy = exec_fnctx_dup(&c->ctx, bytes->data, bytes->len);
            cb_fn_value_t *arg = &args[ref_at[i]];
            if (exec_value_view(copy, bytes->len, arg) != 0) {
                snprintf(err, errlen, "argument %u: key '%s' holds a malformed cb value", argno,
                         refs[i]);
                code = CB_ERROR__CB_INVALID;
            } else if (arg->type == EXEC_VALUE_ERROR) {
                snprintf(err, errlen, "argument %u: key '%s' holds a failed call's error: %.*s",
                         argno, refs[i], (int)(arg->len > 512 ? 512 : arg->len),
                         (const char *)arg->data);
                code = CB_ERROR__CB_INVALID;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        lat_fini(&res[i].value);
    cb_free(res);
    return code;
}

//  Checks what a function returned. CbError.
static int s_check_result(const char *name, const cb_fn_value_t *result, char *err, size_t errlen)
{
    if (!exec_value_type_ok(result->type)) {
        snprintf(err, errlen, "function '%s' returned a value of unknown type %u", name,
                 result->type);
        return CB_ERROR__CB_FUNCTION_FAILED;
    }
    bool scalar = result->type == CB_FN_INT64 || result->type == CB_FN_FLOAT64;
    if (!scalar && result->len && !result->data) {
        snprintf(err, errlen, "function '%s' returned %zu bytes at NULL", name, result->len);
        return CB_ERROR__CB_FUNCTION_FAILED;
    }
    if (!scalar && result->len > EXEC_MAX_RESULT) {
        snprintf(err, errlen, "function '%s' returned %zu bytes; the limit is %u", name,
                 result->len, EXEC_MAX_RESULT);
        return CB_ERROR__CB_TOO_LARGE;
    }
    return CB_ERROR__CB_OK;
}


//  PUTs a value at a call's output key, in the cb value encoding. 0 or a negative errno.
static int s_put_output(cb_kvs_t *kvs, const char *key, const cb_fn_value_t *value)
{
    if (!kvs)
        return -EHOSTUNREACH;
    size_t n = exec_value_size(value);
    uint8_t *bytes = cb_malloc(n);
    exec_value_write(value, bytes);
    int rc = cb_kvs_put_lww(kvs, key, bytes, n);
    cb_free(bytes);
    return rc;
}

static void s_job_call(s_child_t *c, exec_reader_t *r)
{
    const char *name = exec_read_str(r);
    const char *output_key = exec_read_str(r);
    bool put_result = exec_read_u8(r) != 0;
    uint32_t nargs = exec_read_u32(r);
    if (r->bad || nargs > EXEC_MAX_ARGS)
        s_child_exit(c, 3);
    cb_fn_value_t *args = cb_calloc(nargs ? nargs : 1, sizeof *args);
    const char **refs = cb_calloc(nargs ? nargs : 1, sizeof *refs);
    uint32_t *ref_at = cb_calloc(nargs ? nargs : 1, sizeof *ref_at);
    size_t n_refs = 0;
    char err[EXEC_MAX_ERROR + 256] = "";
    int code = CB_ERROR__CB_OK;
    for (uint32_t i = 0; i < nargs; i++) {
        bool is_ref = exec_read_u8(r) != 0;
        size_t len;
        const uint8_t *data = exec_read_bytes(r, &len);
        if (r->bad)
            break;
        if (is_ref) {
            refs[n_refs] = (const char *)data;
            ref_at[n_refs++] = i;
        } else if (code == CB_ERROR__CB_OK) {
            if (exec_value_view(data, len, &args[i]) != 0) {
                snprintf(err, sizeof err, "argument %u is a malformed cb value", i + 1);
                code = CB_ERROR__CB_INVALID;
            } else if (args[i].type == EXEC_VALUE_ERROR) {
                snprintf(err, sizeof err, "argument %u is an error value: %.*s", i + 1,
                         (int)(args[i].len > 512 ? 512 : args[i].len), (const char *)args[i].data);
                code = CB_ERROR__CB_INVALID;
            }
        }
    }
    //  Issue 4, optional: the call's consistency level and its upstream session.
    uint32_t consistency = 0;
    const uint8_t *session = NULL;
    size_t session_len = 0;
    const char *request_id = "", *session_cache = "";
    if (!r->bad && r->left > 0) {
        consistency = exec_read_u32(r);
        session = exec_read_bytes(r, &session_len);
        request_id = exec_read_str(r);
        session_cache = exec_read_str(r);
    }
    if (!exec_read_done(r))
        s_child_exit(c, 3);

    c->io_sent = false;
    cb_fn_ctx_t *ctx = &c->ctx;
    exec_fnctx_begin(ctx, name);
    ctx->request_id = request_id;
    ctx->session_cache = session_cache;
    if (exec_fnctx_session_load(ctx, consistency, session, session_len) != 0 &&
        code == CB_ERROR__CB_OK) {
        snprintf(err, sizeof err, "function '%s': a malformed session from upstream", name);
        code = CB_ERROR__CB_INVALID;
    } else if (ctx->session_error && code == CB_ERROR__CB_OK) {
        snprintf(err, sizeof err, "function '%s': %s", name, ctx->session_error);
        code = CB_ERROR__CB_KVS;
    }
    s_fn_t *fn = NULL;
    if (code == CB_ERROR__CB_OK)
        code = s_ensure(c, name, false, false, &fn, err, sizeof err);
    if (code == CB_ERROR__CB_OK && n_refs)
        code = s_resolve(c, refs, ref_at, n_refs, args, err, sizeof err);
    cb_fn_value_t result = cb_fn_bytes(NULL, 0);
    if (code == CB_ERROR__CB_OK) {
        if (c->io_sent)
            s_notice(c, EXEC_R_RUN);
        int rc = fn->loaded.run(ctx, args, nargs, &result);
        if (rc != 0) {
            if (ctx->error)
                snprintf(err, sizeof err, "function '%s' failed: %s", name, ctx->error);
            else
                snprintf(err, sizeof err, "function '%s' failed (returned %d)", name, rc);
            code = CB_ERROR__CB_FUNCTION_FAILED;
        } else
            code = s_check_result(name, &result, err, sizeof err);
        if ((code == CB_ERROR__CB_OK || code == CB_ERROR__CB_FUNCTION_FAILED) &&
            ctx->session_error) {
            //  A read the level could not serve: the call fails rather than go on with
            //  (or return) what an inconsistent read would have given.
            snprintf(err, sizeof err, "function '%s': %s", name, ctx->session_error);
            code = CB_ERROR__CB_KVS;
        }
    }
    if (*output_key && (code != CB_ERROR__CB_OK || put_result)) {
        //  The result, or the error, goes to the output key: a client polling it learns
        //  the outcome either way.
        s_notice(c, EXEC_R_IO);
        cb_fn_value_t stored = result;
        if (code != CB_ERROR__CB_OK)
            stored = (cb_fn_value_t){.type = EXEC_VALUE_ERROR, .data = err, .len = strlen(err)};
        char why[512];
        cb_kvs_t *kvs = exec_fnctx_kvs(ctx, why, sizeof why);
        int rc = s_put_output(kvs, output_key, &stored);
        if (rc && code == CB_ERROR__CB_OK) {
            snprintf(err, sizeof err, "output key '%s': %s", output_key,
                     kvs ? cb_kvs_last_error(kvs) : why);
            code = CB_ERROR__CB_KVS;
            //  The result could not be stored (too large, KVS refused it): store why
            //  instead, so the future ends with this error rather than waiting it out.
            cb_fn_value_t failure = {.type = EXEC_VALUE_ERROR, .data = err, .len = strlen(err)};
            if (kvs)
                (void)s_put_output(kvs, output_key, &failure);
        }
    }
    //  A result stored at its output key is not needed by the executor (no reply, no
    //  downstream): spare the copy.
    bool send_result = code == CB_ERROR__CB_OK && !(*output_key && put_result);
    s_done(c, code, err, send_result ? &result : NULL);
    //  The sink of a repeatable-read request (it stores the result or sends it back) ends
    //  the request's session at its home cache.
    if (put_result)
        exec_fnctx_session_done(ctx);
    exec_fnctx_end(ctx);
    cb_free(args);
    cb_free(refs);
    cb_free(ref_at);
}

static void s_child_main(int fd, const exec_runner_config_t *config) __attribute__((noreturn));
static void s_child_main(int fd, const exec_runner_config_t *config)
{
    cb_log_set_name("cb-runner");
    s_child_t child = {.fd = fd, .config = config};
    s_child_t *c = &child;
    cb_kvs_config_t kvs_config = {
        .routing = config->routing, .bind_ip = config->bind_ip, .timeout_ms = EXEC_KVS_TIMEOUT_MS};
    exec_fnctx_init(&c->ctx, fd, config->executor_id, config->writer_id, &kvs_config);
    for (;;) {
        uint8_t type;
        exec_reader_t r;
        int rc = exec_chan_read(fd, &c->in, -1, &type, &r);
        if (rc == -EPIPE)
            s_child_exit(c, 0); //  the executor closed its end: we are done
        if (rc != 1) {
            cb_error("bad frame from the executor (%d): stopping", rc);
            s_child_exit(c, 3);
        }
        switch (type) {
        case EXEC_J_LOAD:
            s_job_load(c, &r);
            break;
        case EXEC_J_UNPIN:
            s_job_unpin(c, &r);
            break;
        case EXEC_J_CALL:
            s_job_call(c, &r);
            break;
        case EXEC_J_PUT:
            s_job_put(c, &r);
            break;
        case EXEC_M_INBOX:
            break; //  an answer to a RECV that gave up waiting: stale
        default:
            cb_error("unknown frame type %d from the executor: stopping", type);
            s_child_exit(c, 3);
        }
    }
}

//  Makes the new process a clean runner: its own signals, no inherited descriptors, no
//  core files, gone when the executor goes.
static void s_child_setup(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); //  the executor died before the line above
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_IGN); //  a write to a gone executor returns EPIPE instead
    //  A crash must kill the runner with its own signal, so that the executor can name it;
    //  handlers installed at start-up (a sanitizer's, in test builds) must not turn it into
    //  an abort or an exit.
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(fatal[i], &dfl, NULL);
    }
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    //  Nothing of the executor's but our socket and stdio (its descriptors are close-on-exec
    //  anyway; this also covers any that are not).
    if (close_range(S_CHILD_FD + 1, ~0U, 0) != 0)
        for (int i = S_CHILD_FD + 1; i < 65536; i++)
            close(i);
}

//  argv: PROGRAM --runner PARENT_PID ROUTING BIND_IP EXECUTOR_ID WRITER_ID open|trust
//        [KEY_HEX...]
void exec_runner_main(int argc, char **argv)
{
    if (argc < 8 || strcmp(argv[1], "--runner")) {
        fprintf(stderr, "cb-runner: bad arguments (this mode is started by cb-executor)\n");
        _exit(2);
    }
    s_child_setup((pid_t)atol(argv[2]));
    exec_trust_t trust = {0};
    trust.enforced = !strcmp(argv[7], "trust");
    for (int i = 8; i < argc; i++) {
        exec_trust_t one;
        char err[128];
        if (exec_trust_parse(&one, argv[i], err, sizeof err) != 0 || one.n != 1) {
            fprintf(stderr, "cb-runner: bad key '%s'\n", argv[i]);
            _exit(2);
        }
        trust.keys = cb_realloc(trust.keys, (trust.n + 1) * sizeof *trust.keys);
        memcpy(trust.keys[trust.n++], one.keys[0], EXEC_KEY_BYTES);
        exec_trust_fini(&one);
    }
    exec_runner_config_t config = {
        .routing = argv[3], .bind_ip = argv[4], .executor_id = argv[5], .writer_id = argv[6],
        .trust = &trust};
    s_child_main(S_CHILD_FD, &config);
}

//  ======================================================================================
//  The executor's handle

struct _exec_runner_t {
    pid_t pid;
    int fd;          //  our end, non-blocking
    exec_buf_t in;   //  bytes read, not yet taken as frames
    size_t in_taken; //  bytes of the frame last handed out, dropped at next call
    exec_buf_t out;  //  frames not yet written
    bool reaped;
    int status; //  wait status once reaped
};

//  The runner is a new process image, not just a fork: the executor has threads (ZeroMQ's),
//  and a fork copies whatever locks they held (the allocator's, ZeroMQ's) into a child that
//  would then block on them. A fork that goes straight to exec (posix_spawn) copies nothing.
exec_runner_t *exec_runner_new(const exec_runner_config_t *config, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return NULL;
    }
    //  Bigger buffers: a call and its answer usually fit in one write each.
    int size = 1 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    //  The child's end becomes its descriptor 3; from a number above 3, so that the dup2
    //  of the spawn really happens (and clears close-on-exec).
    int child_end = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    close(sv[1]);
    if (child_end < 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        close(sv[0]);
        return NULL;
    }

    char parent[32];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    const exec_trust_t *trust = config->trust;
    size_t n_keys = trust ? trust->n : 0;
    char **argv = cb_calloc(9 + n_keys, sizeof *argv);
    char(*hex)[2 * EXEC_KEY_BYTES + 1] = cb_calloc(n_keys ? n_keys : 1, sizeof *hex);
    const char *program = config->program ? config->program : "/proc/self/exe";
    int argc = 0;
    argv[argc++] = (char *)program;
    argv[argc++] = "--runner";
    argv[argc++] = parent;
    argv[argc++] = (char *)config->routing;
    argv[argc++] = (char *)(config->bind_ip ? config->bind_ip : "127.0.0.1");
    argv[argc++] = (char *)config->executor_id;
    argv[argc++] = (char *)(config->writer_id && config->writer_id[0] ? config->writer_id
                                                                      : config->executor_id);
    argv[argc++] = trust && trust->enforced ? "trust" : "open";
    for (size_t i = 0; i < n_keys; i++) {
        for (size_t b = 0; b < EXEC_KEY_BYTES; b++)
            snprintf(&hex[i][2 * b], 3, "%02x", trust->keys[i][b]);
        argv[argc++] = hex[i];
    }
    argv[argc] = NULL;

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_end, S_CHILD_FD);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGPIPE); //  stays ignored, as the executor has it
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int rc = posix_spawn(&pid, program, &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    cb_free(argv);
    cb_free(hex);
    close(child_end);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", program, strerror(rc));
        close(sv[0]);
        return NULL;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    exec_runner_t *self = cb_calloc(1, sizeof *self);
    self->pid = pid;
    self->fd = sv[0];
    return self;
}

void exec_runner_destroy(exec_runner_t **self_p)
{
    exec_runner_t *self = *self_p;
    if (!self)
        return;
    exec_runner_kill(self);
    close(self->fd);
    exec_buf_fini(&self->in);
    exec_buf_fini(&self->out);
    cb_free(self);
    *self_p = NULL;
}

int exec_runner_fd(const exec_runner_t *self)
{
    return self->fd;
}

pid_t exec_runner_pid(const exec_runner_t *self)
{
    return self->pid;
}

exec_buf_t *exec_runner_out(exec_runner_t *self)
{
    return &self->out;
}

int exec_runner_flush(exec_runner_t *self)
{
    size_t done = 0;
    while (done < self->out.len) {
        ssize_t n = send(self->fd, self->out.data + done, self->out.len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            self->out.len = 0;
            return -EPIPE;
        }
        done += (size_t)n;
    }
    exec_buf_consume(&self->out, done);
    return 0;
}

bool exec_runner_pending(const exec_runner_t *self)
{
    return self->out.len > 0;
}

int exec_runner_read(exec_runner_t *self)
{
    for (;;) {
        uint8_t *p = exec_buf_reserve(&self->in, 64 * 1024);
        ssize_t n = read(self->fd, p, self->in.cap - self->in.len);
        if (n > 0) {
            self->in.len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -EPIPE; //  end of stream, or a reset
    }
}

int exec_runner_next(exec_runner_t *self, uint8_t *type, exec_reader_t *body)
{
    if (self->in_taken) {
        exec_buf_consume(&self->in, self->in_taken);
        self->in_taken = 0;
    }
    size_t used;
    int rc = exec_frame_parse(self->in.data, self->in.len, type, body, &used);
    if (rc == 1)
        self->in_taken = used;
    return rc;
}

int exec_runner_kill(exec_runner_t *self)
{
    if (self->reaped)
        return self->status;
    kill(self->pid, SIGKILL); //  a no-op on a runner that already died: its status stays
    int status = 0;
    while (waitpid(self->pid, &status, 0) < 0 && errno == EINTR)
        ;
    self->reaped = true;
    self->status = status;
    return status;
}

const char *exec_runner_describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, len, "%s (SIG%s)", strsignal(sig), abbrev ? abbrev : "?");
    } else if (WIFEXITED(status))
        snprintf(buf, len, "the runner exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, len, "wait status %d", status);
    return buf;
}

//  --------------------------------------------------------------------------------------
//  Self-test: a real runner, driven through jobs that need no KVS.

static int s_test_frame(exec_runner_t *r, uint8_t *type, exec_reader_t *body)
{
    for (int i = 0; i < 500; i++) {
        int rc = exec_runner_next(r, type, body);
        if (rc)
            return rc;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        if (exec_runner_read(r) < 0)
            return exec_runner_next(r, type, body) == 1 ? 1 : -EPIPE;
    }
    return 0;
}

void exec_runner_test(bool verbose)
{
    //  The runner mode lives in cb-executor, built next to the self-test binary.
    char self_path[4096], program[4200];
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    assert(n > 0);
    self_path[n] = 0;
    char *slash = strrchr(self_path, '/');
    *slash = 0;
    snprintf(program, sizeof program, "%s/bin/cb-executor", self_path);
    if (access(program, X_OK) != 0) {
        printf("  runner: skipped (no %s; make build-all)\n", program);
        return;
    }
    exec_trust_t trust = {0};
    exec_runner_config_t config = {.program = program,
                                   .routing = "tcp://127.0.0.1:1",
                                   .bind_ip = "127.0.0.1",
                                   .executor_id = "tcp://127.0.0.1:2",
                                   .trust = &trust};
    char err[256];
    exec_runner_t *r = exec_runner_new(&config, err, sizeof err);
    assert(r && exec_runner_pid(r) > 0 && exec_runner_fd(r) >= 0);

    //  An UNPIN of a function it never loaded: answered DONE, CB_OK, no logs.
    exec_buf_t *out = exec_runner_out(r);
    size_t start = exec_frame_begin(out, EXEC_J_UNPIN);
    exec_frame_str(out, "nothing");
    exec_frame_end(out, start);
    assert(exec_runner_flush(r) == 0 && !exec_runner_pending(r));
    uint8_t type;
    exec_reader_t body;
    assert(s_test_frame(r, &type, &body) == 1 && type == EXEC_R_DONE);
    assert(exec_read_u32(&body) == CB_ERROR__CB_OK);
    exec_read_str(&body);
    size_t len;
    exec_read_bytes(&body, &len);
    assert(exec_read_u32(&body) == 0 && exec_read_done(&body));

    //  A frame it does not know: the runner stops (exit 3), seen as end of stream.
    start = exec_frame_begin(out, 'Z');
    exec_frame_end(out, start);
    assert(exec_runner_flush(r) == 0);
    assert(s_test_frame(r, &type, &body) == -EPIPE);
    int status = exec_runner_kill(r);
    char how[128];
    assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    assert(
        !strcmp(exec_runner_describe(status, how, sizeof how), "the runner exited with status 3"));
    exec_runner_destroy(&r);
    assert(r == NULL);

    //  A runner killed while idle reports the signal (once it is set up: after a job).
    r = exec_runner_new(&config, err, sizeof err);
    assert(r);
    out = exec_runner_out(r);
    start = exec_frame_begin(out, EXEC_J_UNPIN);
    exec_frame_str(out, "nothing");
    exec_frame_end(out, start);
    assert(exec_runner_flush(r) == 0);
    assert(s_test_frame(r, &type, &body) == 1 && type == EXEC_R_DONE);
    kill(exec_runner_pid(r), SIGSEGV);
    assert(s_test_frame(r, &type, &body) == -EPIPE); //  as the executor sees a crash
    status = exec_runner_kill(r);
    assert(!strcmp(exec_runner_describe(status, how, sizeof how), "Segmentation fault (SIGSEGV)"));
    exec_runner_destroy(&r);
    exec_runner_destroy(&r);
    if (verbose)
        printf("  runner: start, a job, a bad frame, a signal (%s)\n", how);
}
