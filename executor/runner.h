//  executor/runner.h: the runner, a child process that loads and runs functions for its
//  executor, and the executor's handle on it (docs/faas-design.md, "Executor and runner").
//
//  The executor never runs user code. exec_runner_new starts a runner (fork + exec of the
//  executor's own binary in runner mode, so that nothing of the executor's threads, locks
//  or sockets carries over) connected by a SOCK_STREAM socketpair; the runner makes its
//  own KVS client (to the cache), closes every descriptor but its end of the pair and
//  stdio, sets RLIMIT_CORE to 0, and dies with its executor (PR_SET_PDEATHSIG). It runs
//  one job at a time and keeps no state that matters: a new runner loads functions again
//  on demand (the executor re-sends LOADs for its pinned functions).
//
//  Protocol: frames of executor/frame.h, one job at a time, each answered by one DONE.
//    executor -> runner
//      'L' LOAD   str function, u8 pinned       fetch funcs/<function>, verify, dlopen; if
//                                               loaded already, again when its code changed
//      'U' UNPIN  str function                  unload it (the next call loads the current
//                                               code); functions never pinned live in a
//                                               small LRU
//      'C' CALL   str function, str output_key, u8 put_result, u32 nargs,
//                 nargs x (u8 is_ref, bytes cb-value-or-key)
//                 [u32 consistency, bytes session (packed SessionReads), str request_id,
//                  str session_cache]   (issue 4; optional: absent = LWW)
//                 resolve refs, run; with an output key the runner PUTs the result (when
//                 put_result) or, on any error, the error value there. A put_result call of
//                 a REPEATABLE_READ request is its sink: it ends the session at the home
//                 cache afterwards.
//      'P' PUT    str key, bytes cb value       an LWW PUT (the error value of a call whose
//                                               runner died)
//      'I' INBOX  u8 found, str sender, bytes data    the answer to a RECV
//    runner -> executor
//      'i' IO     the runner starts KVS I/O or loading: the executor allows EXEC_IO_MS
//      'r' RUN    user code starts (sent only after an IO): the call's timeout starts now.
//                 A warm call sends neither: its timeout runs from when the CALL was sent.
//      's' SEND   str executor address, bytes data     cb_fn_send, forwarded
//      'v' RECV   u32 timeout_ms                        cb_fn_recv; answered by INBOX
//      'd' DONE   u32 error (CbError), str message, bytes result (cb value),
//                 u32 nlogs, nlogs x str [bytes session: packed SessionReads, when the call
//                 read under REPEATABLE_READ (issue 4)]
//  A crash shows as end of stream; the executor reaps the runner and reads the signal.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_RUNNER_H
#define EXEC_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "executor/frame.h"
#include "executor/loader.h"

//  The runner's KVS client timeout, and the time it gets for one I/O step (a load, the
//  refs of a call, an output PUT): the client makes at most two attempts.
#define EXEC_KVS_TIMEOUT_MS 2000
#define EXEC_IO_MS (2 * EXEC_KVS_TIMEOUT_MS + 2000)
//  Functions loaded but not pinned that a runner keeps (least recently used go first).
#define EXEC_LRU_FUNCTIONS 8
//  Most arguments a call may have.
#define EXEC_MAX_ARGS 65536
//  Largest result a function may return (CB_TOO_LARGE beyond).
#define EXEC_MAX_RESULT (64u << 20)

typedef struct _exec_runner_t exec_runner_t;

typedef struct {
    const char *program;       //  the executable with a runner mode (cb-executor); NULL: this one
    const char *routing;       //  KVS routing address for the runner's client (the cache's)
    const char *bind_ip;       //  where that client binds its reply socket
    const char *executor_id;   //  this executor's address, for cb_fn_getid
    const char *writer_id;     //  this executor's id ("n0/1"): the vector clock entry of its
                               //  causal writes; NULL or "": executor_id
    const exec_trust_t *trust; //  signatures required when trust->enforced
} exec_runner_config_t;

//  Starts a runner: `program --runner ...` in a new process (fork + exec), its end of the
//  socketpair as descriptor 3. config is borrowed (copied into the runner's argv). NULL
//  with err set if the socketpair or the spawn fails.
exec_runner_t *exec_runner_new(const exec_runner_config_t *config, char *err, size_t errlen);
//  The runner process's main: cb-executor calls it first thing when its argv[1] is
//  "--runner" (the arguments exec_runner_new passes). Never returns.
void exec_runner_main(int argc, char **argv) __attribute__((noreturn));
//  Kills the runner (SIGKILL) if it still runs, reaps it, frees the handle. Idempotent.
void exec_runner_destroy(exec_runner_t **self_p);

//  The executor's end of the socketpair (non-blocking), to poll for input and output.
int exec_runner_fd(const exec_runner_t *self);
pid_t exec_runner_pid(const exec_runner_t *self);

//  Frames to send are appended here (frame.h writers), then flushed.
exec_buf_t *exec_runner_out(exec_runner_t *self);
//  Writes as much of the output as the socket takes now. 0, or -EPIPE when the runner is
//  gone.
int exec_runner_flush(exec_runner_t *self);
//  True while output waits for the socket (poll for POLLOUT).
bool exec_runner_pending(const exec_runner_t *self);

//  Reads whatever the socket holds. 0, or -EPIPE at end of stream (the runner died or
//  closed it); frames read before the end can still be taken with exec_runner_next.
int exec_runner_read(exec_runner_t *self);
//  The next complete frame: 1 with *type and *body (borrowed until the next call on self),
//  0 when there is none, -EPROTO for a frame that cannot be one (the runner is broken).
int exec_runner_next(exec_runner_t *self, uint8_t *type, exec_reader_t *body);

//  Kills the runner with SIGKILL unless it already exited, and reaps it. Returns its wait
//  status (as waitpid gives it). Blocks only until the kernel has torn the process down.
int exec_runner_kill(exec_runner_t *self);

//  "Segmentation fault (SIGSEGV)" for a wait status that is a signal; "exit status 3" for an
//  exit. Caller provides buf.
const char *exec_runner_describe(int status, char *buf, size_t len);

void exec_runner_test(bool verbose);

#endif
