//  examples/echo_log.c: logs a line per argument (returned to the caller in Reply.logs)
//  and returns its first argument unchanged (empty bytes when there is none).
#include <inttypes.h>

#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    cb_fn_log(ctx, "%s got %zu arguments", cb_fn_name(ctx), nargs);
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].type == CB_FN_INT64)
            cb_fn_log(ctx, "arg %zu: int %" PRId64, i + 1, args[i].i64);
        else if (args[i].type == CB_FN_STRING)
            cb_fn_log(ctx, "arg %zu: string \"%s\"", i + 1, (const char *)args[i].data);
        else
            cb_fn_log(ctx, "arg %zu: type %u, %zu bytes", i + 1, args[i].type, args[i].len);
    }
    if (nargs == 0)
        return 0; //  *result starts as empty bytes
    return cb_fn_return_value(ctx, result, &args[0]);
}
