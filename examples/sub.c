//  examples/sub.c: args[0] - args[1]. Not commutative, so a DAG with two upstream functions
//  shows that inputs arrive in the order of the DAG's edges, not in arrival order.
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    if (nargs != 2 || args[0].type != CB_FN_INT64 || args[1].type != CB_FN_INT64)
        return cb_fn_error(ctx, "sub takes two ints, got %zu arguments", nargs);
    return cb_fn_return_int(ctx, result, args[0].i64 - args[1].i64);
}
