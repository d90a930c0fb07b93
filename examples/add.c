//  examples/add.c: the sum of all its int arguments (any number, e.g. the results of
//  several upstream functions in a DAG).
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    int64_t sum = 0;
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].type != CB_FN_INT64)
            return cb_fn_error(ctx, "argument %zu is not an int", i + 1);
        sum += args[i].i64;
    }
    return cb_fn_return_int(ctx, result, sum);
}
