//  common/err.c
//  SPDX-License-Identifier: Apache-2.0
#include "err.h"

#include <string.h>

const char *cb_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case -ETIMEDOUT:
        return "timed out";
    case -EPROTO:
        return "malformed message";
    case -EMSGSIZE:
        return "value too large";
    case -ENOENT:
        return "not found";
    case -EHOSTUNREACH:
        return "no server answered";
    default:
        return strerror(rc < 0 ? -rc : rc);
    }
}
