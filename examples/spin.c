//  examples/spin.c: never returns. The executor must kill the runner at the call's timeout
//  (CB_TIMEOUT "function 'spin' ran past its N ms timeout") and keep serving.
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)ctx;
    (void)args;
    (void)nargs;
    (void)result;
    for (volatile unsigned long i = 0;; i++)
        ;
}
