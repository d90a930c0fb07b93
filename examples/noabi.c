//  examples/noabi.c: a test fixture, not a usable function: it exports cb_fn_run but no
//  cb_fn_abi_version, so an executor must refuse to load it (CB_LOAD_FAILED).
#include "executor/function.h"

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)args;
    (void)nargs;
    return cb_fn_return_int(ctx, result, 0);
}
