//  examples/fail.c: fails on purpose, with a message (CB_FUNCTION_FAILED). With a STRING
//  argument, that is the message.
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)result;
    if (nargs >= 1 && args[0].type == CB_FN_STRING)
        return cb_fn_error(ctx, "%s", (const char *)args[0].data);
    return cb_fn_error(ctx, "this function always fails");
}
