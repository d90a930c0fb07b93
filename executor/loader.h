//  executor/loader.h: from the bytes stored at funcs/<name> to a function the runner can
//  call. Runs in the runner (dlopen runs the object's constructors: user code). The checks
//  come before anything is mapped: the blob must decode, must not be deleted, and, when the
//  executor has trusted keys, must carry an Ed25519 signature by one of them over
//  name || 0x00 || code (docs/faas-design.md). The code goes into a sealed memfd and is
//  dlopen'ed from /proc/self/fd/N: nothing is written to disk, and the loaded object is
//  exactly the bytes that were verified.
//  Results are CbError numbers of proto/cloudburst.proto (0 = CB_OK), with a message.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_LOADER_H
#define EXEC_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/function.h"

#define EXEC_KEY_BYTES 32

//  The public keys whose signatures this executor accepts. Value type.
typedef struct {
    uint8_t (*keys)[EXEC_KEY_BYTES]; //  owned
    size_t n;
    bool enforced; //  false: no --trusted-keys, unsigned code runs
} exec_trust_t;

//  Parses a trusted-keys file's text: one hex Ed25519 public key (64 hex digits) per line;
//  blank lines and lines starting with '#' are ignored. Sets enforced. Returns 0, or
//  -EINVAL with a message naming the line in err. Caller owns *out (exec_trust_fini).
int exec_trust_parse(exec_trust_t *out, const char *text, char *err, size_t errlen);
//  Reads and parses the file at path. -errno when it cannot be read (message in err).
int exec_trust_load(exec_trust_t *out, const char *path, char *err, size_t errlen);
void exec_trust_fini(exec_trust_t *self);

//  Checks the FunctionBlob stored for function name (blob[0..len), the LWW value bytes).
//  On CB_OK sets *code / *code_len to the ELF bytes inside *blob_out (a FunctionBlob the
//  caller frees with exec_loader_blob_free). Errors: CB_NO_SUCH_FUNCTION (deleted: empty
//  code), CB_LOAD_FAILED (not a FunctionBlob, or built for another ABI), CB_UNTRUSTED.
int exec_loader_check(const char *name, const uint8_t *blob, size_t len, const exec_trust_t *trust,
                      void **blob_out, const uint8_t **code, size_t *code_len, char *err,
                      size_t errlen);
void exec_loader_blob_free(void *blob);

typedef int(exec_fn_run_t)(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs,
                           cb_fn_value_t *result);

//  A loaded function. Value type: exec_loader_open fills it, exec_loader_close empties it.
typedef struct {
    void *handle;       //  from dlopen
    exec_fn_run_t *run; //  its cb_fn_run
    int fd;             //  the memfd; kept open while loaded, so that no other
                        //  object can be opened under the same /proc path
} exec_loaded_t;

//  Maps code[0..len) as function name and checks its cb_fn_abi_version. CB_OK, or
//  CB_LOAD_FAILED with dlerror()'s words (or the missing symbol / wrong ABI) in err.
int exec_loader_open(const char *name, const void *code, size_t len, exec_loaded_t *out, char *err,
                     size_t errlen);
void exec_loader_close(exec_loaded_t *self);

//  A digest of code, to tell when the code stored for a loaded function changed.
#define EXEC_DIGEST_BYTES 16
void exec_loader_digest(const void *code, size_t len, uint8_t digest[EXEC_DIGEST_BYTES]);

//  The message a signature covers: name || 0x00 || code. Caller owns *out (cb_free).
void exec_loader_signed_message(const char *name, const void *code, size_t len, uint8_t **out,
                                size_t *out_len);

void exec_loader_test(bool verbose);

#endif
