//  common/err.h: errors are negative errno values (libuv style); this turns them into text.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_ERR_H
#define CB_ERR_H

#include <errno.h>

//  Borrowed static string for a negative errno (or 0).
const char *cb_strerror(int rc);

#endif
