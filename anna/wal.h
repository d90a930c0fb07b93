//  anna/wal.h: the write-ahead log of one worker thread (issue 5, durability). Every merge
//  that changed the thread's store is appended as a record (key, lattice kind, the payload
//  that was merged) before the reply that acknowledges it leaves; on start the log is replayed
//  into the store. Merges are idempotent and commutative, so a log of the merged payloads
//  (not of full values) rebuilds the same store, whatever the order and duplication.
//  One file per thread, DIR/wal-<t>.log:
//    header  "ANNAWAL1", u32 layout length, layout text, u32 CRC-32C of the layout
//    record  u32 body length, u32 CRC-32C of the length, u32 CRC-32C of the body, body =
//            u8 kind, u32 key length, key, payload (the rest); integers little endian
//  A torn last record (cut short, or a bad CRC followed only by zero bytes up to the end of
//  the file) is what a crash during a write leaves: it is cut off and replay goes on. Any
//  other bad record is corruption: the log is refused (the node does not start) rather than
//  silently lose the records after it. (The length has a CRC of its own so that a flipped
//  length cannot pass for a record cut short by the end of the file.)
//  Compaction rewrites the log as one record per key holding its full value (a snapshot) into
//  wal-<t>.log.tmp, fsyncs it, renames it over the log and fsyncs the directory: a crash at
//  any point leaves either the old or the new log, both complete.
//  Owned by one worker thread; not thread safe. Does file I/O; no ZeroMQ, no clock (callers
//  pass `now`). DIR/wal-<t>.lock holds a flock so that two processes never share a log.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_WAL_H
#define ANNA_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anna/store.h"

typedef enum {
    ANNA_FSYNC_ALWAYS = 0,      //  fsync before every acknowledgement (anna_wal_commit)
    ANNA_FSYNC_EVERY_MS = 1,    //  write before every acknowledgement, fsync every N ms
    ANNA_FSYNC_NEVER = 2,       //  write before every acknowledgement, the OS syncs
} anna_fsync_t;

//  What a replay found.
typedef struct {
    uint64_t records;           //  records merged
    uint64_t rejected;          //  records with a valid CRC that did not decode or merge
    uint64_t torn_bytes;        //  bytes of a torn tail cut off
    uint64_t log_bytes;         //  size of the log after the replay
} anna_wal_replay_t;

typedef struct _anna_wal_t anna_wal_t;

//  Opens (creating DIR and the log if needed) the log of thread `thread` in dir and replays
//  it into store, merging each record with replay_flags (ANNA_STORE_MARK: the replayed keys
//  join the change set, so that they are gossiped to the other replicas again). layout (copied) names the placement the
//  log was written under ("threads=2 replication=1 vnodes=200"): a log written under another
//  layout is refused, since its keys would land on threads that do not own them.
//  compact_bytes: compact when the log exceeds it (and twice its size after the last
//  compaction); 0 = never. every_ms is the period of ANNA_FSYNC_EVERY_MS (>= 1).
//  Returns NULL with a message in err ("wal-dir/wal-0.log: corrupt record at offset 812").
//  Caller owns result.
anna_wal_t *anna_wal_open(const char *dir, uint32_t thread, const char *layout,
                          anna_fsync_t policy, int every_ms, int64_t compact_bytes,
                          anna_store_t *store, int replay_flags, anna_wal_replay_t *replay,
                          char *err, size_t errlen);
//  Closes the log (after writing and fsyncing what is buffered). Idempotent; sets *self_p
//  to NULL.
void anna_wal_destroy(anna_wal_t **self_p);

//  Appends one merge record to the buffer (copies key and payload). Nothing is written yet:
//  anna_wal_commit does. Returns 0 or -EMSGSIZE for a record over 2 GiB.
int anna_wal_append(anna_wal_t *self, const char *key, int kind, const void *payload,
                    size_t len);
//  Before an acknowledgement: writes the buffered records to the file and, with
//  ANNA_FSYNC_ALWAYS, fsyncs it. No-op (0) when nothing is pending. Returns 0 or a negative
//  errno (the log is then unusable: the caller must not acknowledge).
int anna_wal_commit(anna_wal_t *self);
//  Periodic duty, once per loop iteration: the fsync of ANNA_FSYNC_EVERY_MS when due, and
//  compaction (from store, the thread's store, whose contents the log holds) when the log
//  grew past the threshold. Returns 0 or a negative errno as anna_wal_commit.
int anna_wal_tick(anna_wal_t *self, int64_t now_ms, const anna_store_t *store);
//  Milliseconds until anna_wal_tick has something to do (a poll timeout), -1 for never.
long anna_wal_due_ms(const anna_wal_t *self, int64_t now_ms);
//  Rewrites the log as a snapshot of store now. Returns 0 or a negative errno (the old log
//  is then kept and still valid).
int anna_wal_compact(anna_wal_t *self, const anna_store_t *store);

//  Bytes in the log file (written), records appended, fsyncs and compactions done.
uint64_t anna_wal_bytes(const anna_wal_t *self);
uint64_t anna_wal_records(const anna_wal_t *self);
uint64_t anna_wal_fsyncs(const anna_wal_t *self);
uint64_t anna_wal_compactions(const anna_wal_t *self);

//  Parses an --fsync value: "always", "never", "everyms:N" (N 1..60000). Returns 0 or
//  -EINVAL.
int anna_wal_parse_fsync(const char *text, anna_fsync_t *policy, int *every_ms);

//  CRC-32C (Castagnoli) of data, continuing from crc (0 to start).
uint32_t anna_wal_crc32c(uint32_t crc, const void *data, size_t len);

void anna_wal_test(bool verbose);

#endif
