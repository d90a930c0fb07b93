//  examples/kvs_rw.c: reads the value at key args[0] and writes it at key args[1] (both
//  STRING keys), returning it: the user library's cb_fn_get and cb_fn_put.
#include <errno.h>

#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    if (nargs != 2 || args[0].type != CB_FN_STRING || args[1].type != CB_FN_STRING)
        return cb_fn_error(ctx, "kvs_rw takes two keys (strings)");
    const char *from = args[0].data, *to = args[1].data; //  payloads end with a NUL
    cb_fn_value_t v;
    int rc = cb_fn_get(ctx, from, &v);
    if (rc == -ENOENT)
        return cb_fn_error(ctx, "key '%s' does not exist", from);
    if (rc)
        return cb_fn_error(ctx, "get '%s' failed (%d)", from, rc);
    rc = cb_fn_put(ctx, to, &v);
    if (rc)
        return cb_fn_error(ctx, "put '%s' failed (%d)", to, rc);
    cb_fn_log(ctx, "copied '%s' to '%s'", from, to);
    return cb_fn_return_value(ctx, result, &v);
}
