//  examples/sendrecv.c: sends its STRING argument to its own executor (cb_fn_getid) and
//  receives it back (cb_fn_recv): returns "<sender> said <text>".
#include <stdio.h>

#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    const char *text = nargs >= 1 && args[0].type == CB_FN_STRING ? args[0].data : "hello";
    const char *me = cb_fn_getid(ctx);
    int rc = cb_fn_send(ctx, me, text, strlen(text));
    if (rc)
        return cb_fn_error(ctx, "send to %s failed (%d)", me, rc);
    cb_fn_message_t msg;
    rc = cb_fn_recv(ctx, &msg, 2000);
    if (rc)
        return cb_fn_error(ctx, "nothing received (%d)", rc);
    size_t n = strlen(msg.sender) + msg.len + 8;
    char *out = cb_fn_alloc(ctx, n); //  lives until the result is sent
    snprintf(out, n, "%s said %.*s", msg.sender, (int)msg.len, (const char *)msg.data);
    *result = cb_fn_string(out);
    return 0;
}
