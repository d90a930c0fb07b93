//  anna/wal.c: the write-ahead log of one worker thread. Format and guarantees in wal.h.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/wal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "proto/wire.h"

#define S_MAGIC "ANNAWAL1"
#define S_MAGIC_LEN 8
#define S_REC_HEAD 12                           //  body length, its CRC, body CRC
#define S_BODY_MIN 5                            //  kind, key length
#define S_MAX_BODY ((uint32_t)INT32_MAX)
#define S_MAX_LAYOUT 4096
#define S_FLUSH_BYTES (1 << 20)                 //  compaction writes in pieces this big

struct _anna_wal_t {
    char *dir;                  //  owned
    char *path;                 //  owned: DIR/wal-<t>.log
    char *tmp_path;             //  owned: DIR/wal-<t>.log.tmp
    char *layout;               //  owned
    int fd;                     //  the log, O_APPEND
    int lock_fd;                //  DIR/wal-<t>.lock, flocked
    anna_fsync_t policy;
    int every_ms;
    int64_t compact_bytes;
    uint8_t *buf;               //  owned: records appended, not yet written
    size_t len;
    size_t cap;
    uint64_t file_bytes;        //  bytes in the file
    uint64_t base_bytes;        //  bytes in the file after open or the last compaction
    bool dirty;                 //  written but not fsynced
    int64_t next_sync_ms;       //  ANNA_FSYNC_EVERY_MS: deadline of the fsync; -1 = none
    int failed;                 //  sticky negative errno of a failed write or fsync
    uint64_t records;
    uint64_t fsyncs;
    uint64_t compactions;
};

//  ---- CRC-32C --------------------------------------------------------------------------------

static uint32_t s_crc_table[256];
static bool s_crc_ready;

static void s_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_crc_table[i] = c;
    }
    s_crc_ready = true;
}

uint32_t anna_wal_crc32c(uint32_t crc, const void *data, size_t len)
{
    //  The table is the same whoever fills it: a race writes equal values.
    if (!__atomic_load_n(&s_crc_ready, __ATOMIC_ACQUIRE)) {
        s_crc_init();
        __atomic_store_n(&s_crc_ready, true, __ATOMIC_RELEASE);
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = s_crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

//  ---- helpers --------------------------------------------------------------------------------

__attribute__((format(printf, 3, 4))) static void s_err(char *err, size_t errlen,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int s_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

//  Reads exactly len bytes at off; -EIO if the file is shorter.
static int s_read_at(int fd, void *data, size_t len, uint64_t off)
{
    uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

//  The header for layout in *out (caller frees).
static size_t s_header(const char *layout, uint8_t **out)
{
    size_t n = strlen(layout);
    uint8_t *h = cb_malloc(S_MAGIC_LEN + 8 + n);
    memcpy(h, S_MAGIC, S_MAGIC_LEN);
    s_put32(h + S_MAGIC_LEN, (uint32_t)n);
    memcpy(h + S_MAGIC_LEN + 4, layout, n);
    s_put32(h + S_MAGIC_LEN + 4 + n, anna_wal_crc32c(0, layout, n));
    *out = h;
    return S_MAGIC_LEN + 8 + n;
}

static void s_reserve(anna_wal_t *self, size_t more)
{
    if (self->cap - self->len >= more)
        return;
    size_t cap = self->cap ? self->cap : 4096;
    while (cap - self->len < more)
        cap *= 2;
    self->buf = cb_realloc(self->buf, cap);
    self->cap = cap;
}

//  Appends one record to buf (grown as needed) at *len.
static void s_record(anna_wal_t *self, const char *key, size_t klen, int kind,
                     const void *payload, size_t len)
{
    size_t body = S_BODY_MIN + klen + len;
    s_reserve(self, S_REC_HEAD + body);
    uint8_t *p = self->buf + self->len;
    p[S_REC_HEAD] = (uint8_t)kind;
    s_put32(p + S_REC_HEAD + 1, (uint32_t)klen);
    memcpy(p + S_REC_HEAD + S_BODY_MIN, key, klen);
    if (len)
        memcpy(p + S_REC_HEAD + S_BODY_MIN + klen, payload, len);
    s_put32(p, (uint32_t)body);
    s_put32(p + 4, anna_wal_crc32c(0, p, 4));
    s_put32(p + 8, anna_wal_crc32c(0, p + S_REC_HEAD, body));
    self->len += S_REC_HEAD + body;
}

//  ---- replay ---------------------------------------------------------------------------------

//  True if every byte of the file from off to size is zero (what a crash may leave after a
//  torn write on some file systems).
static bool s_zeros_from(int fd, uint64_t off, uint64_t size)
{
    uint8_t chunk[4096];
    while (off < size) {
        size_t n = size - off < sizeof chunk ? (size_t)(size - off) : sizeof chunk;
        if (s_read_at(fd, chunk, n, off))
            return false;
        for (size_t i = 0; i < n; i++)
            if (chunk[i])
                return false;
        off += n;
    }
    return true;
}

//  Checks the header; returns its length, or 0 with err set.
static uint64_t s_check_header(anna_wal_t *self, uint64_t size, char *err, size_t errlen)
{
    uint8_t head[S_MAGIC_LEN + 4];
    if (size < sizeof head || s_read_at(self->fd, head, sizeof head, 0) ||
        memcmp(head, S_MAGIC, S_MAGIC_LEN) != 0) {
        s_err(err, errlen, "%s: not an anna write-ahead log", self->path);
        return 0;
    }
    uint32_t n = s_get32(head + S_MAGIC_LEN);
    if (n > S_MAX_LAYOUT || size < sizeof head + n + 4) {
        s_err(err, errlen, "%s: damaged header", self->path);
        return 0;
    }
    char *layout = cb_malloc(n + 5);
    uint8_t *crc = (uint8_t *)layout + n + 1;
    if (s_read_at(self->fd, layout, n, sizeof head) ||
        s_read_at(self->fd, crc, 4, sizeof head + n) ||
        s_get32(crc) != anna_wal_crc32c(0, layout, n)) {
        cb_free(layout);
        s_err(err, errlen, "%s: damaged header", self->path);
        return 0;
    }
    layout[n] = '\0';
    if (strcmp(layout, self->layout) != 0) {
        s_err(err, errlen, "%s was written with \"%s\", not \"%s\": start with the same options "
              "or another wal-dir", self->path, layout, self->layout);
        cb_free(layout);
        return 0;
    }
    cb_free(layout);
    return sizeof head + n + 4;
}

//  Replays the records after the header; cuts a torn tail. 0, or -1 with err set.
static int s_replay(anna_wal_t *self, uint64_t off, uint64_t size, anna_store_t *store,
                    int flags, anna_wal_replay_t *replay, char *err, size_t errlen)
{
    uint8_t *body = NULL;
    size_t body_cap = 0;
    int result = 0;
    while (off < size) {
        uint8_t head[S_REC_HEAD];
        bool torn = false, bad = false;
        uint32_t len = 0;
        if (size - off < S_REC_HEAD)
            torn = true;        //  a header cut short
        else if (s_read_at(self->fd, head, S_REC_HEAD, off)) {
            s_err(err, errlen, "%s: cannot read: %s", self->path, strerror(errno));
            result = -1;
            break;
        } else if (s_get32(head + 4) != anna_wal_crc32c(0, head, 4)) {
            //  A damaged length: the end of a torn write if only zeros follow, else
            //  corruption (its CRC keeps a flipped length from passing for a torn tail).
            bad = true;
            torn = s_zeros_from(self->fd, off + S_REC_HEAD, size);
        } else {
            len = s_get32(head);
            if (len > size - off - S_REC_HEAD)
                torn = true;    //  cut short
        }
        if (bad && !torn) {
            s_err(err, errlen, "%s: corrupt record header at offset %" PRIu64
                  " (records follow it: refusing to drop them)", self->path, off);
            result = -1;
            break;
        }
        if (!torn) {
            if (len < S_BODY_MIN || len > S_MAX_BODY)
                bad = true;
            else {
                if (len > body_cap) {
                    cb_free(body);
                    body = cb_malloc(len);
                    body_cap = len;
                }
                if (s_read_at(self->fd, body, len, off + S_REC_HEAD)) {
                    s_err(err, errlen, "%s: cannot read: %s", self->path, strerror(errno));
                    result = -1;
                    break;
                }
                bad = anna_wal_crc32c(0, body, len) != s_get32(head + 8);
            }
            if (bad) {
                uint64_t end = len >= S_BODY_MIN ? off + S_REC_HEAD + len : off;
                torn = end >= size || s_zeros_from(self->fd, end, size);
                if (!torn) {
                    s_err(err, errlen, "%s: corrupt record at offset %" PRIu64
                          " (records follow it: refusing to drop them)", self->path, off);
                    result = -1;
                    break;
                }
            }
        }
        if (torn) {
            if (ftruncate(self->fd, (off_t)off) || fsync(self->fd)) {
                s_err(err, errlen, "%s: cannot cut the torn tail: %s", self->path,
                      strerror(errno));
                result = -1;
                break;
            }
            replay->torn_bytes += size - off;
            size = off;
            break;
        }
        uint32_t klen = s_get32(body + 1);
        lat_t value;
        if (klen == 0 || klen > len - S_BODY_MIN || memchr(body + S_BODY_MIN, 0, klen) ||
            wire_decode(body[0], body + S_BODY_MIN + klen, len - S_BODY_MIN - klen, &value))
            replay->rejected++;
        else {
            char *key = cb_strndup((const char *)body + S_BODY_MIN, klen);
            if (anna_store_merge_move(store, key, &value, flags) < 0)
                replay->rejected++;
            else
                replay->records++;
            cb_free(key);
        }
        off += S_REC_HEAD + len;
    }
    cb_free(body);
    self->file_bytes = size;
    replay->log_bytes = size;
    return result;
}

//  ---- open / close ---------------------------------------------------------------------------

anna_wal_t *anna_wal_open(const char *dir, uint32_t thread, const char *layout,
                          anna_fsync_t policy, int every_ms, int64_t compact_bytes,
                          anna_store_t *store, int replay_flags, anna_wal_replay_t *replay,
                          char *err, size_t errlen)
{
    assert(dir && layout && store);
    anna_wal_replay_t ignored;
    if (!replay)
        replay = &ignored;
    memset(replay, 0, sizeof *replay);
    if (strlen(layout) > S_MAX_LAYOUT) {
        s_err(err, errlen, "wal layout too long");
        return NULL;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) {
        s_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    anna_wal_t *self = cb_calloc(1, sizeof *self);
    self->fd = -1;
    self->lock_fd = -1;
    self->dir = cb_strdup(dir);
    self->layout = cb_strdup(layout);
    self->policy = policy;
    self->every_ms = every_ms < 1 ? 1 : every_ms;
    self->compact_bytes = compact_bytes;
    self->next_sync_ms = -1;
    size_t n = strlen(dir) + 32;
    self->path = cb_malloc(n);
    self->tmp_path = cb_malloc(n);
    snprintf(self->path, n, "%s/wal-%" PRIu32 ".log", dir, thread);
    snprintf(self->tmp_path, n, "%s/wal-%" PRIu32 ".log.tmp", dir, thread);
    char *lock_path = cb_malloc(n);
    snprintf(lock_path, n, "%s/wal-%" PRIu32 ".lock", dir, thread);
    self->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd < 0 || flock(self->lock_fd, LOCK_EX | LOCK_NB)) {
        s_err(err, errlen, errno == EWOULDBLOCK ? "%s: in use by another process"
                                                : "%s: cannot lock: %s",
              lock_path, strerror(errno));
        cb_free(lock_path);
        anna_wal_destroy(&self);
        return NULL;
    }
    cb_free(lock_path);
    //  A temporary file is a compaction the crash interrupted before the rename: the log
    //  is complete without it.
    if (unlink(self->tmp_path) && errno != ENOENT) {
        s_err(err, errlen, "cannot remove %s: %s", self->tmp_path, strerror(errno));
        anna_wal_destroy(&self);
        return NULL;
    }
    self->fd = open(self->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    if (self->fd < 0 || fstat(self->fd, &st)) {
        s_err(err, errlen, "cannot open %s: %s", self->path, strerror(errno));
        anna_wal_destroy(&self);
        return NULL;
    }
    uint8_t *h;
    size_t hlen = s_header(layout, &h);
    if (st.st_size > 0 && (uint64_t)st.st_size < hlen) {
        //  A crash while the header of a new log was written leaves a prefix of it: the log
        //  is empty.
        uint8_t prefix[S_MAGIC_LEN + 8 + S_MAX_LAYOUT];
        if (s_read_at(self->fd, prefix, (size_t)st.st_size, 0) == 0 &&
            memcmp(prefix, h, (size_t)st.st_size) == 0 && ftruncate(self->fd, 0) == 0)
            st.st_size = 0;
    }
    if (st.st_size == 0) {
        int rc = s_write_all(self->fd, h, hlen);
        cb_free(h);
        if (rc == 0 && fsync(self->fd))
            rc = -errno;
        if (rc == 0)
            rc = s_fsync_dir(dir);
        if (rc) {
            s_err(err, errlen, "cannot write %s: %s", self->path, strerror(-rc));
            anna_wal_destroy(&self);
            return NULL;
        }
        self->file_bytes = hlen;
        replay->log_bytes = hlen;
    } else {
        cb_free(h);
        uint64_t off = s_check_header(self, (uint64_t)st.st_size, err, errlen);
        if (off == 0 || s_replay(self, off, (uint64_t)st.st_size, store, replay_flags, replay, err,
                                  errlen)) {
            anna_wal_destroy(&self);
            return NULL;
        }
    }
    self->base_bytes = self->file_bytes;
    return self;
}

void anna_wal_destroy(anna_wal_t **self_p)
{
    assert(self_p);
    anna_wal_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0) {
        if (self->failed == 0 && (self->len > 0 || self->dirty)) {
            anna_fsync_t policy = self->policy;
            self->policy = ANNA_FSYNC_ALWAYS;   //  a clean stop keeps everything
            anna_wal_commit(self);
            self->policy = policy;
        }
        close(self->fd);
    }
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    cb_free(self->buf);
    cb_free(self->dir);
    cb_free(self->path);
    cb_free(self->tmp_path);
    cb_free(self->layout);
    cb_free(self);
    *self_p = NULL;
}

//  ---- writing --------------------------------------------------------------------------------

int anna_wal_append(anna_wal_t *self, const char *key, int kind, const void *payload,
                    size_t len)
{
    assert(self && key && kind > 0 && kind < 256);
    size_t klen = strlen(key);
    if (klen + len > S_MAX_BODY - S_BODY_MIN)
        return -EMSGSIZE;
    s_record(self, key, klen, kind, payload, len);
    self->records++;
    return 0;
}

static int s_fail(anna_wal_t *self, int rc)
{
    if (self->failed == 0)
        self->failed = rc;
    return rc;
}

static int s_sync(anna_wal_t *self)
{
    if (fdatasync(self->fd))
        return s_fail(self, -errno);
    self->fsyncs++;
    self->dirty = false;
    self->next_sync_ms = -1;
    return 0;
}

int anna_wal_commit(anna_wal_t *self)
{
    assert(self);
    if (self->failed)
        return self->failed;
    if (self->len > 0) {
        int rc = s_write_all(self->fd, self->buf, self->len);
        if (rc)
            return s_fail(self, rc);
        self->file_bytes += self->len;
        self->len = 0;
        self->dirty = true;
        if (self->cap > 4 * S_FLUSH_BYTES) {    //  do not keep a huge request's buffer
            cb_free(self->buf);
            self->buf = NULL;
            self->cap = 0;
        }
    }
    if (self->dirty && self->policy == ANNA_FSYNC_ALWAYS)
        return s_sync(self);
    return 0;
}

int anna_wal_tick(anna_wal_t *self, int64_t now_ms, const anna_store_t *store)
{
    assert(self && store);
    int rc = anna_wal_commit(self);
    if (rc)
        return rc;
    if (self->dirty && self->policy == ANNA_FSYNC_EVERY_MS) {
        if (self->next_sync_ms < 0)
            self->next_sync_ms = now_ms + self->every_ms;
        else if (now_ms >= self->next_sync_ms && (rc = s_sync(self)) != 0)
            return rc;
    }
    if (self->compact_bytes > 0 && self->file_bytes > (uint64_t)self->compact_bytes &&
        self->file_bytes > 2 * self->base_bytes) {
        rc = anna_wal_compact(self, store);
        if (rc == -EMSGSIZE)
            self->compact_bytes = 0;    //  a value the format cannot hold: stop trying
        else if (rc)
            return rc;
    }
    return 0;
}

long anna_wal_due_ms(const anna_wal_t *self, int64_t now_ms)
{
    assert(self);
    if (self->len > 0)
        return 0;
    if (!self->dirty || self->policy != ANNA_FSYNC_EVERY_MS)
        return -1;
    if (self->next_sync_ms < 0)
        return 0;
    return self->next_sync_ms <= now_ms ? 0 : (long)(self->next_sync_ms - now_ms);
}

//  Writes the snapshot of store to fd (buffered in self->buf, which is empty on entry).
static int s_write_snapshot(anna_wal_t *self, int fd, const anna_store_t *store)
{
    uint8_t *h;
    size_t hlen = s_header(self->layout, &h);
    int rc = s_write_all(fd, h, hlen);
    cb_free(h);
    size_t cursor = 0;
    const char *key;
    const lat_t *value;
    while (rc == 0 && (key = anna_store_next(store, &cursor, &value)) != NULL) {
        cb_bytes_t encoded = {0};
        rc = wire_encode(value, &encoded);
        if (rc)
            break;
        size_t klen = strlen(key);
        if (klen + encoded.len > S_MAX_BODY - S_BODY_MIN)
            rc = -EMSGSIZE;
        else
            s_record(self, key, klen, (int)value->kind, encoded.data, encoded.len);
        cb_bytes_fini(&encoded);
        if (rc == 0 && self->len >= S_FLUSH_BYTES) {
            rc = s_write_all(fd, self->buf, self->len);
            self->len = 0;
        }
    }
    if (rc == 0 && self->len > 0)
        rc = s_write_all(fd, self->buf, self->len);
    self->len = 0;
    if (rc == 0 && fsync(fd))
        rc = -errno;
    return rc;
}

int anna_wal_compact(anna_wal_t *self, const anna_store_t *store)
{
    assert(self && store);
    //  The store holds everything the buffered records say: write them first anyway, so
    //  that a failed compaction leaves a complete old log.
    int rc = anna_wal_commit(self);
    if (rc)
        return rc;
    int fd = open(self->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = s_write_snapshot(self, fd, store);
    struct stat st;
    if (rc == 0 && fstat(fd, &st))
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(self->tmp_path, self->path))
        rc = -errno;
    if (rc) {
        unlink(self->tmp_path);
        return rc;
    }
    //  The new log is in place: from here on a failure leaves the log unusable.
    rc = s_fsync_dir(self->dir);
    if (rc)
        return s_fail(self, rc);
    close(self->fd);
    self->fd = open(self->path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (self->fd < 0)
        return s_fail(self, -errno);
    self->file_bytes = (uint64_t)st.st_size;
    self->base_bytes = self->file_bytes;
    self->dirty = false;
    self->next_sync_ms = -1;
    self->compactions++;
    return 0;
}

uint64_t anna_wal_bytes(const anna_wal_t *self)
{
    return self->file_bytes;
}

uint64_t anna_wal_records(const anna_wal_t *self)
{
    return self->records;
}

uint64_t anna_wal_fsyncs(const anna_wal_t *self)
{
    return self->fsyncs;
}

uint64_t anna_wal_compactions(const anna_wal_t *self)
{
    return self->compactions;
}

int anna_wal_parse_fsync(const char *text, anna_fsync_t *policy, int *every_ms)
{
    assert(text && policy && every_ms);
    if (!strcmp(text, "always")) {
        *policy = ANNA_FSYNC_ALWAYS;
        return 0;
    }
    if (!strcmp(text, "never")) {
        *policy = ANNA_FSYNC_NEVER;
        return 0;
    }
    if (!strncmp(text, "everyms:", 8) && text[8] >= '0' && text[8] <= '9') {
        char *end;
        errno = 0;
        long v = strtol(text + 8, &end, 10);
        if (errno || *end || v < 1 || v > 60000)
            return -EINVAL;
        *policy = ANNA_FSYNC_EVERY_MS;
        *every_ms = (int)v;
        return 0;
    }
    return -EINVAL;
}

//  ---- self-test ------------------------------------------------------------------------------

static void s_test_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

//  Appends the merge of value at key to wal and store, as the worker does.
static void s_test_put(anna_wal_t *wal, anna_store_t *store, const char *key, lat_t *value)
{
    cb_bytes_t payload = {0};
    assert(wire_encode(value, &payload) == 0);
    assert(anna_wal_append(wal, key, (int)value->kind, payload.data, payload.len) == 0);
    cb_bytes_fini(&payload);
    assert(anna_store_merge_move(store, key, value, 0) >= 0);
}

static bool s_test_same(const anna_store_t *a, const anna_store_t *b)
{
    if (anna_store_count(a) != anna_store_count(b))
        return false;
    size_t cursor = 0;
    const char *key;
    const lat_t *value;
    while ((key = anna_store_next(a, &cursor, &value)) != NULL) {
        const lat_t *other = anna_store_get(b, key);
        if (!other || !lat_equal(value, other))
            return false;
    }
    return true;
}

static uint64_t s_test_size(const char *path)
{
    struct stat st;
    assert(stat(path, &st) == 0);
    return (uint64_t)st.st_size;
}

static void s_test_rm(const char *dir)
{
    char path[512];
    for (int t = 0; t < 4; t++) {
        snprintf(path, sizeof path, "%s/wal-%d.log", dir, t);
        unlink(path);
        snprintf(path, sizeof path, "%s/wal-%d.lock", dir, t);
        unlink(path);
        snprintf(path, sizeof path, "%s/wal-%d.log.tmp", dir, t);
        unlink(path);
    }
    rmdir(dir);
}

void anna_wal_test(bool verbose)
{
    //  CRC-32C check value.
    assert(anna_wal_crc32c(0, "123456789", 9) == 0xE3069283u);
    uint32_t part = anna_wal_crc32c(0, "1234", 4);
    assert(anna_wal_crc32c(part, "56789", 5) == 0xE3069283u);

    anna_fsync_t policy;
    int ms = 0;
    assert(anna_wal_parse_fsync("always", &policy, &ms) == 0 && policy == ANNA_FSYNC_ALWAYS);
    assert(anna_wal_parse_fsync("never", &policy, &ms) == 0 && policy == ANNA_FSYNC_NEVER);
    assert(anna_wal_parse_fsync("everyms:50", &policy, &ms) == 0);
    assert(policy == ANNA_FSYNC_EVERY_MS && ms == 50);
    assert(anna_wal_parse_fsync("everyms:0", &policy, &ms) == -EINVAL);
    assert(anna_wal_parse_fsync("everyms:", &policy, &ms) == -EINVAL);
    assert(anna_wal_parse_fsync("everyms:5x", &policy, &ms) == -EINVAL);
    assert(anna_wal_parse_fsync("sometimes", &policy, &ms) == -EINVAL);

    char dir[] = "/tmp/anna-wal-test-XXXXXX";
    assert(mkdtemp(dir));
    char sub[sizeof dir + 8];
    snprintf(sub, sizeof sub, "%s/wal", dir);
    char path[sizeof sub + 16];
    snprintf(path, sizeof path, "%s/wal-1.log", sub);
    const char *layout = "threads=2 replication=1 vnodes=200";
    char err[512];

    //  Replay: records written and committed come back, merged; a second open of the same
    //  log is refused while the first holds it.
    anna_store_t *store = anna_store_new(0);
    anna_wal_replay_t replay;
    anna_wal_t *wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_ALWAYS, 1, 0, store, 0,
                                    &replay, err, sizeof err);
    assert(wal && replay.records == 0 && replay.torn_bytes == 0);
    anna_store_t *other = anna_store_new(0);
    assert(anna_wal_open(sub, 1, layout, ANNA_FSYNC_ALWAYS, 1, 0, other, 0, NULL, err,
                         sizeof err) == NULL);
    assert(strstr(err, "in use by another process"));
    lat_t v;
    s_test_lww(&v, 10, "one");
    s_test_put(wal, store, "a", &v);
    s_test_lww(&v, 20, "two");
    s_test_put(wal, store, "a", &v);
    s_test_lww(&v, 5, "old");
    s_test_put(wal, store, "a", &v);
    lat_init(&v, LAT_SET);
    lat_set_insert(&v.u.set, "x", 1);
    s_test_put(wal, store, "s", &v);
    lat_init(&v, LAT_SET);
    lat_set_insert(&v.u.set, "y", 1);
    s_test_put(wal, store, "s", &v);
    lat_init(&v, LAT_LWW);     //  an empty value is a value
    s_test_put(wal, store, "empty", &v);
    assert(anna_wal_commit(wal) == 0);
    assert(anna_wal_fsyncs(wal) == 1 && anna_wal_records(wal) == 6);
    assert(anna_wal_commit(wal) == 0 && anna_wal_fsyncs(wal) == 1);   //  nothing pending
    assert(anna_wal_due_ms(wal, 0) == -1);
    uint64_t good = anna_wal_bytes(wal);
    assert(good == s_test_size(path));
    anna_wal_destroy(&wal);
    assert(wal == NULL);
    wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, other, ANNA_STORE_MARK,
                        &replay, err, sizeof err);
    assert(wal && replay.records == 6 && replay.rejected == 0 && replay.torn_bytes == 0);
    assert(s_test_same(store, other));
    assert(anna_store_marked(other) == 3);      //  to be gossiped again
    anna_wal_destroy(&wal);
    anna_store_destroy(&other);

    //  Another layout is refused.
    other = anna_store_new(0);
    assert(anna_wal_open(sub, 1, "threads=3 replication=1 vnodes=200", ANNA_FSYNC_NEVER, 1, 0,
                         other, 0, NULL, err, sizeof err) == NULL);
    assert(strstr(err, "was written with"));

    //  Torn tails: a record cut short; a last record with a bad CRC; a bad record followed
    //  by zeros. Each is cut off and the records before it replayed.
    for (int kind = 0; kind < 5; kind++) {
        int fd = open(path, O_WRONLY | O_APPEND);
        assert(fd >= 0);
        uint8_t rec[64];
        memset(rec, 0, sizeof rec);
        s_put32(rec, 20);
        s_put32(rec + 4, kind == 3 ? 0x12345678 : anna_wal_crc32c(0, rec, 4));
        s_put32(rec + 8, 0xdeadbeef);
        rec[S_REC_HEAD] = kind == 3 ? 0 : LAT_LWW;
        //  0: body cut short; 1: bad body CRC at the end; 2: bad body CRC, then zeros;
        //  3: bad length CRC, then zeros; 4: a header cut short.
        size_t n = kind == 0 ? 13 : kind == 1 ? S_REC_HEAD + 20 : kind == 4 ? 7 : sizeof rec;
        assert(s_write_all(fd, rec, n) == 0);
        close(fd);
        assert(s_test_size(path) == good + n);
        anna_store_destroy(&other);
        other = anna_store_new(0);
        wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, other, 0, &replay, err,
                            sizeof err);
        assert(wal && replay.records == 6 && replay.torn_bytes == n);
        assert(s_test_same(store, other));
        assert(s_test_size(path) == good);
        anna_wal_destroy(&wal);
    }

    //  Corruption in the middle: a flipped byte in the first record, records after it.
    {
        int fd = open(path, O_RDWR);
        assert(fd >= 0);
        uint64_t off = S_MAGIC_LEN + 8 + strlen(layout) + S_REC_HEAD + S_BODY_MIN + 1 + 2;
        uint8_t byte;
        assert(s_read_at(fd, &byte, 1, off) == 0);
        byte ^= 0x40;
        assert(pwrite(fd, &byte, 1, (off_t)off) == 1);
        anna_store_destroy(&other);
        other = anna_store_new(0);
        assert(anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, other, 0, NULL, err,
                             sizeof err) == NULL);
        assert(strstr(err, "corrupt record at offset"));
        assert(s_test_size(path) == good);      //  nothing cut
        byte ^= 0x40;
        assert(pwrite(fd, &byte, 1, (off_t)off) == 1);
        //  A flipped bit in a length is caught by the length's CRC: not taken for a torn
        //  tail (which would cut every record after it).
        off = S_MAGIC_LEN + 8 + strlen(layout) + 1;
        assert(s_read_at(fd, &byte, 1, off) == 0);
        byte ^= 0x10;
        assert(pwrite(fd, &byte, 1, (off_t)off) == 1);
        anna_store_destroy(&other);
        other = anna_store_new(0);
        assert(anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, other, 0, NULL, err,
                             sizeof err) == NULL);
        assert(strstr(err, "corrupt record header at offset"));
        assert(s_test_size(path) == good);
        byte ^= 0x10;
        assert(pwrite(fd, &byte, 1, (off_t)off) == 1);
        close(fd);
    }

    //  Compaction: many overwrites of few keys; the log stays small and replays the same
    //  store. everyms: the fsync waits for its deadline.
    anna_store_destroy(&other);
    other = anna_store_new(0);
    wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_EVERY_MS, 10, 4096, other, 0, &replay, err,
                        sizeof err);
    assert(wal && replay.records == 6);
    anna_store_destroy(&other);
    for (int i = 0; i < 2000; i++) {
        char key[16], text[32];
        snprintf(key, sizeof key, "k%d", i % 10);
        snprintf(text, sizeof text, "value %d", i);
        s_test_lww(&v, 100 + (uint64_t)i, text);
        s_test_put(wal, store, key, &v);
        if (i % 7 == 0) {
            assert(anna_wal_commit(wal) == 0);
            assert(anna_wal_tick(wal, 1000 + i, store) == 0);
        }
    }
    assert(anna_wal_tick(wal, 5000, store) == 0);
    assert(anna_wal_compactions(wal) > 0);
    assert(anna_wal_bytes(wal) < 3 * 4096 + 4096);
    s_test_lww(&v, 5000, "last");
    s_test_put(wal, store, "k0", &v);
    assert(anna_wal_due_ms(wal, 6000) == 0);     //  a record to write
    assert(anna_wal_tick(wal, 6000, store) == 0);
    assert(anna_wal_due_ms(wal, 6000) == 10);    //  written, fsync scheduled
    assert(anna_wal_due_ms(wal, 6004) == 6);
    assert(anna_wal_tick(wal, 6010, store) == 0);
    assert(anna_wal_due_ms(wal, 6010) == -1);
    uint64_t fsyncs = anna_wal_fsyncs(wal);
    assert(fsyncs > 0);
    anna_wal_destroy(&wal);
    other = anna_store_new(0);
    wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 4096, other, 0, &replay, err,
                        sizeof err);
    assert(wal && replay.rejected == 0 && replay.torn_bytes == 0);
    assert(replay.records < 2000);
    assert(s_test_same(store, other));
    //  An explicit compaction of a store gives a log of exactly its keys.
    assert(anna_wal_compact(wal, other) == 0);
    anna_wal_destroy(&wal);
    anna_store_t *third = anna_store_new(0);
    wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, third, 0, &replay, err,
                        sizeof err);
    assert(wal && replay.records == anna_store_count(store));
    assert(s_test_same(store, third));
    anna_wal_destroy(&wal);

    //  A log whose header was cut short by a crash is an empty log.
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert(fd >= 0 && s_write_all(fd, S_MAGIC "\x22\0", S_MAGIC_LEN + 2) == 0);
    close(fd);
    anna_store_destroy(&third);
    third = anna_store_new(0);
    wal = anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, third, 0, &replay, err,
                        sizeof err);
    assert(wal && replay.records == 0 && anna_store_count(third) == 0);
    anna_wal_destroy(&wal);

    //  Garbage in place of a log is refused, not replayed.
    fd = open(path, O_WRONLY | O_TRUNC);
    assert(fd >= 0 && s_write_all(fd, "hello, world", 12) == 0);
    close(fd);
    assert(anna_wal_open(sub, 1, layout, ANNA_FSYNC_NEVER, 1, 0, third, 0, NULL, err,
                         sizeof err) == NULL);
    assert(strstr(err, "not an anna write-ahead log"));

    anna_store_destroy(&third);
    anna_store_destroy(&other);
    anna_store_destroy(&store);
    s_test_rm(sub);
    rmdir(dir);
    if (verbose)
        printf(" wal: replay, torn tails, corruption, compaction, locking\n");
}
