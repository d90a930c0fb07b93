//  examples/incr.c: x + 1 for one int argument. The smallest useful function.
//  Build: cc -shared -fPIC -I<repo> incr.c -o incr.so
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    if (nargs != 1 || args[0].type != CB_FN_INT64)
        return cb_fn_error(ctx, "incr takes one int");
    return cb_fn_return_int(ctx, result, args[0].i64 + 1);
}
