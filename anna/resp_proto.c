//  anna/resp_proto.c: RESP2 parsing and reply writing. The parser follows redis-server's
//  networking.c in what it accepts and in its error texts, so that clients see the errors
//  they know; it is stricter in one place: the CRLF after a bulk argument is checked, not
//  skipped, so a client that miscounts a length is told at once instead of desynchronising.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/resp_proto.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

//  ---- buffers ------------------------------------------------------------------------------

char *anna_resp_buf_reserve(anna_resp_buf_t *self, size_t n)
{
    if (self->cap - self->len < n) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap - self->len < n)
            cap *= 2;
        self->data = cb_realloc(self->data, cap);
        self->cap = cap;
    }
    return self->data + self->len;
}

void anna_resp_buf_append(anna_resp_buf_t *self, const void *data, size_t len)
{
    if (len == 0)
        return;
    memcpy(anna_resp_buf_reserve(self, len), data, len);
    self->len += len;
}

void anna_resp_buf_consume(anna_resp_buf_t *self, size_t n)
{
    assert(n <= self->len);
    if (n == self->len)
        self->len = 0;
    else if (n > 0) {
        memmove(self->data, self->data + n, self->len - n);
        self->len -= n;
    }
}

void anna_resp_buf_shrink(anna_resp_buf_t *self, size_t keep)
{
    if (self->len == 0 && self->cap > keep) {
        cb_free(self->data);
        self->data = NULL;
        self->cap = 0;
    }
}

void anna_resp_buf_fini(anna_resp_buf_t *self)
{
    cb_free(self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}

//  ---- replies ------------------------------------------------------------------------------

//  Decimal digits of v into buf (room for 21); returns the length.
static size_t s_format_int(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

//  `<prefix><n>\r\n`
static void s_put_line_int(anna_resp_buf_t *out, char prefix, int64_t n)
{
    char *p = anna_resp_buf_reserve(out, 24);
    p[0] = prefix;
    size_t len = 1 + s_format_int(p + 1, n);
    p[len++] = '\r';
    p[len++] = '\n';
    out->len += len;
}

//  A status or error line: CR and LF would end the line early, so they become spaces.
static void s_put_line(anna_resp_buf_t *out, char prefix, const char *text, size_t len)
{
    char *p = anna_resp_buf_reserve(out, len + 3);
    p[0] = prefix;
    for (size_t i = 0; i < len; i++)
        p[1 + i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    p[len + 1] = '\r';
    p[len + 2] = '\n';
    out->len += len + 3;
}

void anna_resp_put_simple(anna_resp_buf_t *out, const char *text)
{
    s_put_line(out, '+', text, strlen(text));
}

void anna_resp_put_error(anna_resp_buf_t *out, const char *text)
{
    s_put_line(out, '-', text, strlen(text));
}

void anna_resp_put_errorf(anna_resp_buf_t *out, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n;
    s_put_line(out, '-', text, len);
}

void anna_resp_put_int(anna_resp_buf_t *out, int64_t value)
{
    s_put_line_int(out, ':', value);
}

void anna_resp_put_bulk(anna_resp_buf_t *out, const void *data, size_t len)
{
    char *p = anna_resp_buf_reserve(out, len + 26);
    p[0] = '$';
    size_t at = 1 + s_format_int(p + 1, (int64_t)len);
    p[at++] = '\r';
    p[at++] = '\n';
    if (len)
        memcpy(p + at, data, len);
    at += len;
    p[at++] = '\r';
    p[at++] = '\n';
    out->len += at;
}

void anna_resp_put_nil(anna_resp_buf_t *out)
{
    anna_resp_buf_append(out, "$-1\r\n", 5);
}

void anna_resp_put_array(anna_resp_buf_t *out, int64_t count)
{
    s_put_line_int(out, '*', count);
}

//  ---- parser -------------------------------------------------------------------------------

void anna_resp_parser_init(anna_resp_parser_t *self, size_t max_bulk)
{
    memset(self, 0, sizeof *self);
    self->want = -1;
    self->max_bulk = max_bulk;
}

void anna_resp_parser_fini(anna_resp_parser_t *self)
{
    cb_free(self->args);
    self->args = NULL;
    self->nargs = self->cap = 0;
}

static void s_push_arg(anna_resp_parser_t *self, size_t off, size_t len)
{
    if (self->nargs == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 8;
        self->args = cb_realloc(self->args, self->cap * sizeof *self->args);
    }
    self->args[self->nargs].off = off;
    self->args[self->nargs].len = len;
    self->nargs++;
}

//  A header number as redis-server's string2ll reads it: optional '-', digits, no spaces,
//  no '+', no leading zeros except "0" itself. False on anything else or overflow.
static bool s_parse_ll(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len || (p[i] == '0' && len - i > 1))
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int s_hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

//  Splits an inline line into arguments as redis-server's sdssplitargs does (spaces
//  separate; "double quotes" take \n \r \t \b \a \xHH and \<c> escapes; 'single quotes'
//  take \'), writing each unquoted argument over its own text. False on unbalanced quotes
//  or a closing quote not followed by a space.
static bool s_split_inline(anna_resp_parser_t *self, char *buf, size_t end)
{
    size_t i = 0;
    while (true) {
        while (i < end && isspace((unsigned char)buf[i]))
            i++;
        if (i == end)
            return true;
        size_t start = i, out = i;
        char quote = buf[i] == '"' || buf[i] == '\'' ? buf[i] : 0;
        if (quote)
            i++;
        while (true) {
            if (i == end) {
                if (quote)
                    return false;
                break;
            }
            char c = buf[i];
            if (!quote) {
                if (isspace((unsigned char)c))
                    break;
                buf[out++] = c;
                i++;
            } else if (c == quote) {
                i++;
                if (i < end && !isspace((unsigned char)buf[i]))
                    return false;
                break;
            } else if (c == '\\' && quote == '"' && i + 3 < end && buf[i + 1] == 'x' &&
                       s_hex(buf[i + 2]) >= 0 && s_hex(buf[i + 3]) >= 0) {
                buf[out++] = (char)(s_hex(buf[i + 2]) * 16 + s_hex(buf[i + 3]));
                i += 4;
            } else if (c == '\\' && i + 1 < end && (quote == '"' || buf[i + 1] == '\'')) {
                char e = buf[i + 1];
                buf[out++] = quote == '\'' ? e
                             : e == 'n'    ? '\n'
                             : e == 'r'    ? '\r'
                             : e == 't'    ? '\t'
                             : e == 'b'    ? '\b'
                             : e == 'a'    ? '\a'
                                           : e;
                i += 2;
            } else {
                buf[out++] = c;
                i++;
            }
        }
        s_push_arg(self, start, out - start);
    }
}

static int s_fail(const char **error, const char *msg)
{
    *error = msg;
    return -EPROTO;
}

static int s_parse_inline(anna_resp_parser_t *self, char *buf, size_t len, size_t *used,
                          const char **error)
{
    const char *nl = memchr(buf + self->pos, '\n', len - self->pos);
    if (!nl) {
        if (len > ANNA_RESP_MAX_INLINE)
            return s_fail(error, "Protocol error: too big inline request");
        self->pos = len;        //  no newline up to here: do not scan these bytes again
        return 0;
    }
    size_t end = (size_t)(nl - buf);
    if (end > ANNA_RESP_MAX_INLINE)
        return s_fail(error, "Protocol error: too big inline request");
    *used = end + 1;
    self->pos = 0;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    if (!s_split_inline(self, buf, end))
        return s_fail(error, "Protocol error: unbalanced quotes in request");
    return self->nargs > 0 ? 1 : 0;
}

int anna_resp_parse(anna_resp_parser_t *self, char *buf, size_t len, size_t *used,
                    const char **error)
{
    *used = 0;
    if (self->pos == 0 && self->want < 0)
        self->nargs = 0;
    if (len == 0)
        return 0;
    if (buf[0] != '*')
        return s_parse_inline(self, buf, len, used, error);
    if (self->want < 0) {
        const char *cr = memchr(buf + 1, '\r', len - 1);
        if (!cr || (size_t)(cr - buf) + 1 >= len) {
            if (len > ANNA_RESP_MAX_INLINE)
                return s_fail(error, "Protocol error: too big mbulk count string");
            return 0;
        }
        size_t r = (size_t)(cr - buf);
        int64_t count;
        if (buf[r + 1] != '\n' || !s_parse_ll(buf + 1, r - 1, &count) ||
            count > ANNA_RESP_MAX_ARGS)
            return s_fail(error, "Protocol error: invalid multibulk length");
        if (count <= 0) {
            *used = r + 2;      //  `*0` and `*-1` are empty commands: skipped
            return 0;
        }
        self->want = count;
        self->pos = r + 2;
    }
    while ((int64_t)self->nargs < self->want) {
        size_t pos = self->pos;
        if (pos >= len)
            return 0;
        if (buf[pos] != '$') {
            unsigned char c = (unsigned char)buf[pos];
            snprintf(self->error, sizeof self->error,
                     isprint(c) ? "Protocol error: expected '$', got '%c'"
                                : "Protocol error: expected '$', got '\\x%02x'",
                     c);
            self->want = -1;
            self->pos = 0;
            return s_fail(error, self->error);
        }
        const char *cr = memchr(buf + pos + 1, '\r', len - pos - 1);
        if (!cr || (size_t)(cr - buf) + 1 >= len) {
            if (len - pos > ANNA_RESP_MAX_INLINE)
                return s_fail(error, "Protocol error: too big bulk count string");
            return 0;
        }
        size_t r = (size_t)(cr - buf);
        int64_t blen;
        if (buf[r + 1] != '\n' || !s_parse_ll(buf + pos + 1, r - pos - 1, &blen) || blen < 0 ||
            (uint64_t)blen > self->max_bulk)
            return s_fail(error, "Protocol error: invalid bulk length");
        size_t start = r + 2;
        if (len - start < (size_t)blen + 2)
            return 0;
        if (buf[start + (size_t)blen] != '\r' || buf[start + (size_t)blen + 1] != '\n')
            return s_fail(error, "Protocol error: expected CRLF after bulk argument");
        s_push_arg(self, start, (size_t)blen);
        self->pos = start + (size_t)blen + 2;
    }
    *used = self->pos;
    self->pos = 0;
    self->want = -1;
    return 1;
}

//  ---- self-test ----------------------------------------------------------------------------

//  Parses text fed in chunks of `step` bytes (as reads would deliver it); returns the
//  arguments of every command joined by '|' and commands by ';', or "ERR:<message>".
static void s_feed(const char *text, size_t tlen, size_t step, char *out, size_t outlen)
{
    anna_resp_parser_t p;
    anna_resp_parser_init(&p, 1000);
    char *buf = cb_malloc(tlen + 1);
    size_t have = 0, fed = 0, at = 0;
    out[0] = '\0';
    while (true) {
        size_t used;
        const char *error = NULL;
        int rc = anna_resp_parse(&p, buf, have, &used, &error);
        if (rc < 0) {
            snprintf(out + at, outlen - at, "ERR:%s", error);
            break;
        }
        if (rc == 1) {
            for (size_t i = 0; i < p.nargs; i++)
                at += (size_t)snprintf(out + at, outlen - at, "%s%.*s", i ? "|" : "",
                                       (int)p.args[i].len, buf + p.args[i].off);
            at += (size_t)snprintf(out + at, outlen - at, ";");
        }
        if (used) {
            memmove(buf, buf + used, have - used);
            have -= used;
            continue;
        }
        if (fed == tlen)
            break;
        size_t n = tlen - fed < step ? tlen - fed : step;
        memcpy(buf + have, text + fed, n);
        have += n;
        fed += n;
    }
    cb_free(buf);
    anna_resp_parser_fini(&p);
}

void anna_resp_proto_test(bool verbose)
{
    struct {
        const char *in;
        const char *expect;
    } cases[] = {
        {"*1\r\n$4\r\nPING\r\n", "PING;"},
        {"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
         "GET|k;SET|k|;"},
        {"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", "PING;"},
        {"PING\r\n", "PING;"},
        {"  set  a   b \n\r\n\nget a\r\n", "set|a|b;get|a;"},
        {"set \"a b\" 'c d'\r\n", "set|a b|c d;"},
        {"set \"\\x41\\n\" 'it\\'s'\r\n", "set|A\n|it's;"},
        {"set \"a\r\n", "ERR:Protocol error: unbalanced quotes in request"},
        {"set \"a\"b\r\n", "ERR:Protocol error: unbalanced quotes in request"},
        {"*x\r\n", "ERR:Protocol error: invalid multibulk length"},
        {"*01\r\n", "ERR:Protocol error: invalid multibulk length"},
        {"*1048577\r\n", "ERR:Protocol error: invalid multibulk length"},
        {"*1\r\n+PING\r\n", "ERR:Protocol error: expected '$', got '+'"},
        {"*1\r\n\x01", "ERR:Protocol error: expected '$', got '\\x01'"},
        {"*1\r\n$-1\r\n", "ERR:Protocol error: invalid bulk length"},
        {"*1\r\n$1001\r\n", "ERR:Protocol error: invalid bulk length"},
        {"*1\r\n$2\r\nabc\r\n", "ERR:Protocol error: expected CRLF after bulk argument"},
        {"*2\r\n$1\r\na\r\n", ""},         //  incomplete: nothing yet, no error
    };
    char out[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t tlen = strlen(cases[i].in);
        //  Whole, byte by byte, and in 3-byte chunks: the result must not depend on how
        //  the bytes arrive.
        size_t steps[] = {tlen ? tlen : 1, 1, 3};
        for (size_t s = 0; s < 3; s++) {
            s_feed(cases[i].in, tlen, steps[s], out, sizeof out);
            if (verbose || strcmp(out, cases[i].expect))
                printf("  case %zu step %zu: %s\n", i, steps[s], out);
            assert(strcmp(out, cases[i].expect) == 0);
        }
    }
    //  Over-long header and inline lines are refused before their end arrives.
    char *big = cb_malloc(ANNA_RESP_MAX_INLINE + 2);
    memset(big, 'a', ANNA_RESP_MAX_INLINE + 1);
    s_feed(big, ANNA_RESP_MAX_INLINE + 1, 4096, out, sizeof out);
    assert(strcmp(out, "ERR:Protocol error: too big inline request") == 0);
    big[0] = '*';
    s_feed(big, ANNA_RESP_MAX_INLINE + 1, 4096, out, sizeof out);
    assert(strcmp(out, "ERR:Protocol error: too big mbulk count string") == 0);
    cb_free(big);

    //  Replies.
    anna_resp_buf_t b = {0};
    anna_resp_put_simple(&b, "OK");
    anna_resp_put_error(&b, "ERR bad\r\nthing");
    anna_resp_put_int(&b, -42);
    anna_resp_put_int(&b, INT64_MIN);
    anna_resp_put_bulk(&b, "hi", 2);
    anna_resp_put_bulk(&b, NULL, 0);
    anna_resp_put_nil(&b);
    anna_resp_put_array(&b, 3);
    anna_resp_put_errorf(&b, "ERR %s %d", "x", 7);
    const char *want = "+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n"
                       "$0\r\n\r\n$-1\r\n*3\r\n-ERR x 7\r\n";
    assert(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
    anna_resp_buf_consume(&b, 5);
    assert(b.len == strlen(want) - 5 && b.data[0] == '-');
    anna_resp_buf_consume(&b, b.len);
    anna_resp_buf_shrink(&b, 16);
    assert(b.data == NULL && b.cap == 0);
    anna_resp_buf_fini(&b);
}
