//  executor/loader.c: FunctionBlob checks, signatures, memfd + dlopen (see loader.h).
//  SPDX-License-Identifier: Apache-2.0
#include "executor/loader.h"

#include <assert.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cloudburst.pb-c.h"
#include "common/alloc.h"

static int s_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int exec_trust_parse(exec_trust_t *out, const char *text, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->enforced = true;
    int line = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        line++;
        while (n && isspace((unsigned char)*p))
            p++, n--;
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (n && *p != '#') {
            uint8_t key[EXEC_KEY_BYTES];
            bool ok = n == 2 * EXEC_KEY_BYTES;
            for (size_t i = 0; ok && i < EXEC_KEY_BYTES; i++) {
                int hi = s_hex(p[2 * i]), lo = s_hex(p[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                key[i] = (uint8_t)(hi << 4 | (lo & 0xf));
            }
            if (!ok) {
                snprintf(err, errlen, "line %d: expected an Ed25519 public key as 64 hex digits",
                         line);
                exec_trust_fini(out);
                return -EINVAL;
            }
            out->keys = cb_realloc(out->keys, (out->n + 1) * sizeof *out->keys);
            memcpy(out->keys[out->n++], key, EXEC_KEY_BYTES);
        }
        p += n;
        p = end ? end + 1 : p + strlen(p);
    }
    return 0;
}

int exec_trust_load(exec_trust_t *out, const char *path, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 4096, len = 0;
    char *text = cb_malloc(cap);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            text = cb_realloc(text, cap *= 2);
    }
    fclose(f);
    text[len] = '\0';
    char why[256];
    int rc = exec_trust_parse(out, text, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, why);
    cb_free(text);
    return rc;
}

void exec_trust_fini(exec_trust_t *self)
{
    cb_free(self->keys);
    memset(self, 0, sizeof *self);
}

void exec_loader_digest(const void *code, size_t len, uint8_t digest[EXEC_DIGEST_BYTES])
{
    crypto_generichash(digest, EXEC_DIGEST_BYTES, code, len, NULL, 0);
}

void exec_loader_signed_message(const char *name, const void *code, size_t len, uint8_t **out,
                                size_t *out_len)
{
    size_t n = strlen(name);
    uint8_t *m = cb_malloc(n + 1 + len);
    memcpy(m, name, n);
    m[n] = 0;
    if (len)
        memcpy(m + n + 1, code, len);
    *out = m;
    *out_len = n + 1 + len;
}

static bool s_verify(const char *name, const FunctionBlob *blob)
{
    uint8_t *m;
    size_t mlen;
    exec_loader_signed_message(name, blob->code.data, blob->code.len, &m, &mlen);
    bool ok =
        crypto_sign_verify_detached(blob->signature.data, m, mlen, blob->public_key.data) == 0;
    cb_free(m);
    return ok;
}

int exec_loader_check(const char *name, const uint8_t *bytes, size_t len, const exec_trust_t *trust,
                      void **blob_out, const uint8_t **code, size_t *code_len, char *err,
                      size_t errlen)
{
    *blob_out = NULL;
    FunctionBlob *blob = function_blob__unpack(NULL, len, bytes);
    if (!blob) {
        snprintf(err, errlen, "function '%s': the value at funcs/%s is not a FunctionBlob", name,
                 name);
        return CB_ERROR__CB_LOAD_FAILED;
    }
    int rc = CB_ERROR__CB_OK;
    bool signed_ = blob->signature.len || blob->public_key.len;
    if (blob->code.len == 0) {
        snprintf(err, errlen, "function '%s' does not exist (it was deleted)", name);
        rc = CB_ERROR__CB_NO_SUCH_FUNCTION;
    } else if (blob->abi_version != 0 && blob->abi_version != CB_FN_ABI_VERSION) {
        snprintf(err, errlen,
                 "function '%s' was built for ABI version %u; this executor runs version %u", name,
                 blob->abi_version, CB_FN_ABI_VERSION);
        rc = CB_ERROR__CB_LOAD_FAILED;
    } else if (signed_ && (blob->signature.len != crypto_sign_BYTES ||
                           blob->public_key.len != crypto_sign_PUBLICKEYBYTES)) {
        snprintf(err, errlen,
                 "function '%s': malformed signature (%zu bytes, key %zu bytes; expected %d and "
                 "%d)",
                 name, blob->signature.len, blob->public_key.len, crypto_sign_BYTES,
                 crypto_sign_PUBLICKEYBYTES);
        rc = CB_ERROR__CB_UNTRUSTED;
    } else if (signed_ && !s_verify(name, blob)) {
        //  Checked with or without trusted keys: a signature that does not verify means
        //  the code or its name changed after signing.
        snprintf(err, errlen, "function '%s': the signature does not verify", name);
        rc = CB_ERROR__CB_UNTRUSTED;
    } else if (trust->enforced && !signed_) {
        snprintf(err, errlen,
                 "function '%s' is not signed, and this executor runs only code signed by a "
                 "trusted key",
                 name);
        rc = CB_ERROR__CB_UNTRUSTED;
    } else if (trust->enforced) {
        bool known = false;
        for (size_t i = 0; i < trust->n && !known; i++)
            known = !memcmp(trust->keys[i], blob->public_key.data, EXEC_KEY_BYTES);
        if (!known) {
            char hex[2 * EXEC_KEY_BYTES + 1];
            sodium_bin2hex(hex, sizeof hex, blob->public_key.data, EXEC_KEY_BYTES);
            snprintf(err, errlen,
                     "function '%s' is signed by key %.16s..., which this executor "
                     "does not trust",
                     name, hex);
            rc = CB_ERROR__CB_UNTRUSTED;
        }
    }
    if (rc != CB_ERROR__CB_OK) {
        function_blob__free_unpacked(blob, NULL);
        return rc;
    }
    *blob_out = blob;
    *code = blob->code.data;
    *code_len = blob->code.len;
    return CB_ERROR__CB_OK;
}

void exec_loader_blob_free(void *blob)
{
    if (blob)
        function_blob__free_unpacked(blob, NULL);
}

static int s_load_failed(char *err, size_t errlen, const char *name, const char *why)
{
    snprintf(err, errlen, "function '%s' could not be loaded: %s", name, why);
    return CB_ERROR__CB_LOAD_FAILED;
}

int exec_loader_open(const char *name, const void *code, size_t len, exec_loaded_t *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    char label[64];
    snprintf(label, sizeof label, "cb:%s", name);
    int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return s_load_failed(err, errlen, name, strerror(errno));
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, (const uint8_t *)code + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return s_load_failed(err, errlen, name, strerror(e));
        }
        done += (size_t)n;
    }
    //  Sealed: what is mapped stays what was verified.
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);

    //  dlopen finds an object already loaded under the same path name before it looks at
    //  the file. An object from a closed memfd whose number was reused could still be
    //  loaded (dlclose need not unload it): then take another descriptor number.
    char path[64];
    int spare[8], n_spare = 0;
    for (;;) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        void *stale = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
        if (!stale)
            break;
        dlclose(stale);
        int other = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
        if (other < 0 || n_spare == (int)(sizeof spare / sizeof spare[0])) {
            if (other >= 0)
                close(other);
            close(fd);
            for (int i = 0; i < n_spare; i++)
                close(spare[i]);
            return s_load_failed(err, errlen, name, "no free descriptor to load it from");
        }
        spare[n_spare++] = fd;
        fd = other;
    }
    for (int i = 0; i < n_spare; i++)
        close(spare[i]);
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        //  The loader's words start with our /proc path, which says nothing to the user.
        size_t n = strlen(path);
        if (why && !strncmp(why, path, n) && !strncmp(why + n, ": ", 2))
            why += n + 2;
        int rc = s_load_failed(err, errlen, name, why ? why : "dlopen failed");
        close(fd);
        return rc;
    }
    const uint32_t *abi = dlsym(handle, "cb_fn_abi_version");
    exec_fn_run_t *run = NULL;
    //  POSIX's way to turn dlsym's object pointer into a function pointer.
    *(void **)&run = dlsym(handle, "cb_fn_run");
    const char *why = NULL;
    char what[160];
    if (!abi)
        why = "it does not export cb_fn_abi_version (build it against executor/function.h)";
    else if (*abi != CB_FN_ABI_VERSION) {
        snprintf(what, sizeof what, "it was built for ABI version %u; this executor runs %u", *abi,
                 CB_FN_ABI_VERSION);
        why = what;
    } else if (!run)
        why = "it does not export cb_fn_run";
    if (why) {
        int rc = s_load_failed(err, errlen, name, why);
        dlclose(handle);
        close(fd);
        return rc;
    }
    out->handle = handle;
    out->run = run;
    out->fd = fd;
    return CB_ERROR__CB_OK;
}

void exec_loader_close(exec_loaded_t *self)
{
    if (self->handle)
        dlclose(self->handle);
    if (self->fd >= 0)
        close(self->fd);
    memset(self, 0, sizeof *self);
    self->fd = -1;
}

//  --------------------------------------------------------------------------------------
//  Self-test

static void s_blob(const char *name, const char *code, const uint8_t *pk, const uint8_t *sk,
                   uint8_t **out, size_t *len)
{
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = (char *)name;
    blob.code.data = (uint8_t *)code;
    blob.code.len = strlen(code);
    uint8_t sig[crypto_sign_BYTES];
    if (sk) {
        uint8_t *m;
        size_t mlen;
        exec_loader_signed_message(name, code, strlen(code), &m, &mlen);
        crypto_sign_detached(sig, NULL, m, mlen, sk);
        cb_free(m);
        blob.signature.data = sig;
        blob.signature.len = sizeof sig;
        blob.public_key.data = (uint8_t *)pk;
        blob.public_key.len = crypto_sign_PUBLICKEYBYTES;
    }
    *len = function_blob__get_packed_size(&blob);
    *out = cb_malloc(*len);
    function_blob__pack(&blob, *out);
}

static int s_check(const char *name, const uint8_t *bytes, size_t len, const exec_trust_t *trust,
                   char *err, size_t errlen)
{
    void *blob;
    const uint8_t *code;
    size_t code_len;
    int rc = exec_loader_check(name, bytes, len, trust, &blob, &code, &code_len, err, errlen);
    assert((rc == 0) == (blob != NULL));
    exec_loader_blob_free(blob);
    return rc;
}

void exec_loader_test(bool verbose)
{
    assert(sodium_init() >= 0);
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    uint8_t seed[crypto_sign_SEEDBYTES] = {1};
    crypto_sign_seed_keypair(pk, sk, seed);
    seed[0] = 2;
    crypto_sign_seed_keypair(pk2, sk2, seed);
    char hex[2 * EXEC_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);

    //  Trusted-keys files.
    char text[256], err[512];
    snprintf(text, sizeof text, "# keys\n\n  %s  \n", hex);
    exec_trust_t trust;
    assert(exec_trust_parse(&trust, text, err, sizeof err) == 0);
    assert(trust.enforced && trust.n == 1 && !memcmp(trust.keys[0], pk, sizeof pk));
    exec_trust_t bad;
    assert(exec_trust_parse(&bad, "# ok\nabcd\n", err, sizeof err) == -EINVAL);
    assert(strstr(err, "line 2") && bad.keys == NULL);
    assert(exec_trust_load(&bad, "/nonexistent/keys", err, sizeof err) == -ENOENT);
    exec_trust_t open_door = {0};

    uint8_t *b;
    size_t len;
    //  Unsigned: fine without trusted keys, refused with them.
    s_blob("f", "ELF", NULL, NULL, &b, &len);
    assert(s_check("f", b, len, &open_door, err, sizeof err) == CB_ERROR__CB_OK);
    assert(s_check("f", b, len, &trust, err, sizeof err) == CB_ERROR__CB_UNTRUSTED);
    assert(strstr(err, "not signed"));
    cb_free(b);
    //  Signed by the trusted key: runs. Under another name: the signature does not verify.
    s_blob("f", "ELF", pk, sk, &b, &len);
    assert(s_check("f", b, len, &trust, err, sizeof err) == CB_ERROR__CB_OK);
    assert(s_check("g", b, len, &trust, err, sizeof err) == CB_ERROR__CB_UNTRUSTED);
    assert(strstr(err, "does not verify"));
    cb_free(b);
    //  Signed by another key: refused with trusted keys, fine without.
    s_blob("f", "ELF", pk2, sk2, &b, &len);
    assert(s_check("f", b, len, &trust, err, sizeof err) == CB_ERROR__CB_UNTRUSTED);
    assert(strstr(err, "does not trust"));
    assert(s_check("f", b, len, &open_door, err, sizeof err) == CB_ERROR__CB_OK);
    //  A flipped code byte (the code is near the end of the packed blob).
    b[len - 1 - crypto_sign_BYTES - crypto_sign_PUBLICKEYBYTES - 4] ^= 1;
    int rc = s_check("f", b, len, &open_door, err, sizeof err);
    assert(rc == CB_ERROR__CB_UNTRUSTED || rc == CB_ERROR__CB_LOAD_FAILED);
    cb_free(b);
    //  Deleted (empty code), and bytes that are no FunctionBlob.
    s_blob("f", "", NULL, NULL, &b, &len);
    assert(s_check("f", b, len, &trust, err, sizeof err) == CB_ERROR__CB_NO_SUCH_FUNCTION);
    cb_free(b);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    assert(s_check("f", junk, sizeof junk, &trust, err, sizeof err) == CB_ERROR__CB_LOAD_FAILED);

    //  Code that is not an ELF object: CB_LOAD_FAILED with the loader's words.
    exec_loaded_t loaded;
    assert(exec_loader_open("junk", "not an elf", 10, &loaded, err, sizeof err) ==
           CB_ERROR__CB_LOAD_FAILED);
    assert(strstr(err, "function 'junk' could not be loaded: "));
    assert(loaded.handle == NULL);
    exec_loader_close(&loaded);
    exec_trust_fini(&trust);
    if (verbose)
        printf("  loader: trusted keys, signatures, deleted and junk blobs, junk ELF (%s)\n", err);
}
