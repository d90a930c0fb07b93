//  examples/crash.c: dereferences NULL. The executor must answer CB_FUNCTION_CRASHED
//  ("... Segmentation fault (SIGSEGV)") and keep serving with a new runner.
#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)ctx;
    (void)args;
    (void)nargs;
    (void)result;
    volatile int *nowhere = NULL;
    *nowhere = 42;
    return 0;
}
