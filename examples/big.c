//  examples/big.c: returns args[0] bytes (an int; 1 MiB without arguments), each byte its
//  offset mod 251, built in place in runtime memory (cb_fn_alloc): large results.
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    int64_t n = nargs >= 1 && args[0].type == CB_FN_INT64 ? args[0].i64 : 1 << 20;
    if (n < 0)
        return cb_fn_error(ctx, "size %lld is negative", (long long)n);
    unsigned char *p = cb_fn_alloc(ctx, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i % 251);
    *result = cb_fn_bytes(p, (size_t)n);
    return 0;
}
