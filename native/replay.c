/* Compiled twin of twitch_line_py (tests/reference/replay_step.py) (the pure-Python reference): one pass over a
 * received Twitch line that reads it as girc does (formats.irc.parse_compat_py) and writes, at
 * once, the canonical bytes of its archive record (formats.canonical.canonical_bytes_py) around
 * the two numbers that may still change while its batch is open (`time` and `time_range`):
 *
 *     head = {"command":..,"host":..,"params":[..],"receivers":{RECEIVER:NOW},"sender":..,"tags":{..},"time":
 *     tail = ,"user":..}
 *
 * so that the record is `head + time + ,"time_range": + time_range + tail`, with no Python string
 * per tag and no dict. It also returns what the engine decides on: the command, the first
 * parameter and the `tmi-sent-ts` server time.
 *
 * One source of truth: only the common shape is handled here (no CR, LF or NUL, no run of spaces,
 * no whitespace at either end, ASCII tag names that need no JSON escape, no repeated tag name, an
 * ASCII command, a plain tmi-sent-ts). Anything else returns None and the caller takes the
 * reference path, which also raises every error. tests/test_replay_core.py holds the two equal
 * over random and damaged lines (hypothesis), the real corpus and the fixtures.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "jsonchars.h"
#include "parts.h"

#define MAX_TAGS 64

static inline char *
put_lit(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* 1 for the bytes json.dumps copies as they are inside a string: ' ' to '~' but '"' and '\\' */
static unsigned char plain[256];

static void
init_plain(void)
{
    for (int c = ' '; c <= '~'; c++)
        plain[c] = c != '"' && c != '\\';
}

/* the end of the run of `plain` bytes of d from j on (before `end`) */
static inline Py_ssize_t
plain_run(const Py_UCS1 *d, Py_ssize_t j, Py_ssize_t end)
{
    return jc_plain_run(d + j, d + end, 1) - d;
}

/* "line[start:end]" as a JSON string */
static inline __attribute__((always_inline)) char *
put_str(char *p, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    *p++ = '"';
    if (kind == PyUnicode_1BYTE_KIND) {  /* runs of plain characters copied at once */
        const Py_UCS1 *d = data;
        Py_ssize_t i = start;
        while (i < end) {
            Py_ssize_t j = plain_run(d, i, end);
            memcpy(p, d + i, j - i);
            p += j - i;
            if (j < end)
                p = put_char(p, d[j++]);
            i = j;
        }
        *p++ = '"';
        return p;
    }
    for (Py_ssize_t i = start; i < end; i++)
        p = put_char(p, PyUnicode_READ(kind, data, i));
    *p++ = '"';
    return p;
}

/* a tag value, unescaped as girc does (formats.irc.unescape_tag_value_compat), as a JSON string */
static inline __attribute__((always_inline)) char *
put_tag_value(char *p, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    *p++ = '"';
    Py_ssize_t i = start;
    while (i < end) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (kind == PyUnicode_1BYTE_KIND && plain[c]) {  /* a run of plain characters, copied at once */
            const Py_UCS1 *d = data;
            Py_ssize_t j = plain_run(d, i + 1, end);
            memcpy(p, d + i, j - i);
            p += j - i;
            i = j;
            continue;
        }
        if (c != '\\') {
            p = put_char(p, c);
            i++;
            continue;
        }
        if (i + 1 >= end) {  /* a lone backslash at the end: kept */
            p = put_char(p, '\\');
            i++;
            continue;
        }
        Py_UCS4 d = PyUnicode_READ(kind, data, i + 1);
        switch (d) {
        case ':': p = put_char(p, ';'); break;
        case 's': p = put_char(p, ' '); break;
        case '\\': p = put_char(p, '\\'); break;
        case 'r': p = put_char(p, '\r'); break;
        case 'n': p = put_char(p, '\n'); break;
        default:  /* an unknown escape: kept as written */
            p = put_char(p, '\\');
            p = put_char(p, d);
        }
        i += 2;
    }
    *p++ = '"';
    return p;
}

/* Whether two spaces follow each other in d[0:n], eight bytes at a time: a byte of x ^ 0x20.. is
 * zero exactly where x holds a space, and `zero` has the high bit of exactly those bytes set. */
static inline int
has_double_space(const void *data, Py_ssize_t n)
{
    const unsigned char *d = data;
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, spaces = 0x2020202020202020ULL;
    uint64_t carry = 0;  /* the high bit of the last byte of the previous word, if it was a space */
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, d + i, 8);
        uint64_t t = x ^ spaces;
        uint64_t zero = ~(((t & low7) + low7) | t | low7);  /* little-endian: byte k of d at bits 8k */
        if ((zero & (zero >> 8)) || (carry && (zero & 0x80)))
            return 1;
        carry = zero >> 63;
    }
    for (; i < n; i++) {
        if (d[i] == ' ' && (carry || (i + 1 < n && d[i + 1] == ' ')))
            return 1;
        carry = 0;
    }
    return 0;
}

typedef struct {
    Py_ssize_t key, key_end, value, value_end;  /* value < 0: no '=' (True) */
} Tag;

/* compare two ASCII tag names of the line, as str comparison orders them */
static inline __attribute__((always_inline)) int
key_cmp(int kind, const void *data, const Tag *a, const Tag *b)
{
    Py_ssize_t la = a->key_end - a->key, lb = b->key_end - b->key;
    Py_ssize_t n = la < lb ? la : lb;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 x = PyUnicode_READ(kind, data, a->key + i), y = PyUnicode_READ(kind, data, b->key + i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return la < lb ? -1 : (la > lb ? 1 : 0);
}

static const char TMI_SENT_TS[] = "tmi-sent-ts";

static inline __attribute__((always_inline)) int
key_is(int kind, const void *data, const Tag *t, const char *name)
{
    Py_ssize_t n = (Py_ssize_t)strlen(name);
    if (t->key_end - t->key != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_READ(kind, data, t->key + i) != (Py_UCS4)(unsigned char)name[i])
            return 0;
    return 1;
}


static PyObject *
float_repr(PyObject *Py_UNUSED(self), PyObject *arg)
{
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred())
        return NULL;
    if (!isfinite(d)) {
        PyErr_SetString(PyExc_ValueError, "not finite");
        return NULL;
    }
    char buf[64];
    Py_ssize_t n = put_double(buf, d);
    return n < 0 ? NULL : PyUnicode_FromStringAndSize(buf, n);
}

/* The ASCII str s[0:n] (new reference), the very object of the last call with the same text when
 * there was one (`*cache` keeps it): a command or a channel name repeats line after line, and the
 * same object costs no allocation and keeps its hash. */
static PyObject *
cached_ascii(PyObject **cache, const char *s, Py_ssize_t n)
{
    if (*cache != NULL && PyUnicode_GET_LENGTH(*cache) == n && memcmp(PyUnicode_1BYTE_DATA(*cache), s, n) == 0)
        return Py_NewRef(*cache);
    PyObject *obj = PyUnicode_FromStringAndSize(s, n);
    if (obj != NULL)
        Py_XSETREF(*cache, Py_NewRef(obj));
    return obj;
}

static PyObject *last_command = NULL;

/* The body, inlined once per string kind so that every character read is a plain load. */
typedef struct {
    PyObject *command, *head, *tail;      /* new references */
    Py_ssize_t first_start, first_end;    /* the first parameter, first_start < 0 if none */
    double server_time;                   /* < 0: none */
} Parsed;

/* 1: read into *out; 0: the reference must read the line; -1: error set */
static inline __attribute__((always_inline)) int
twitch_line_kind(PyObject *line, const int kind, PyObject *receiver, double now, int clean, Parsed *out)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    const void *data = PyUnicode_DATA(line);
    /* the reference str.strip()s the line first: any whitespace at either end is its business */
    if (n == 0 || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0))
        || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, n - 1)))
        return 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        /* `clean`: the caller knows there is no CR, LF or NUL (the lane's text held no control byte) */
        if ((!clean && (memchr(data, '\r', n) || memchr(data, '\n', n) || memchr(data, 0, n)))
            || has_double_space(data, n))
            return 0;
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == '\r' || c == '\n' || c == '\0' || (c == ' ' && PyUnicode_READ(kind, data, i + 1) == ' '))
                return 0;
        }
    }
    /* From here on: single spaces only, none at either end, so every word is non-empty. */
    Tag tags[MAX_TAGS];
    Py_ssize_t ntags = -1;  /* -1: no tags (null) */
    Py_ssize_t pos = 0;
    double server_time = -1.0;
    if (PyUnicode_READ(kind, data, 0) == '@') {
        Py_ssize_t end = find_char(kind, data, 0, n, ' ');
        if (end < 0)
            return 0;
        ntags = 0;
        Py_ssize_t item = 1;
        for (;;) {
            Py_ssize_t stop = find_char(kind, data, item, end, ';');
            if (stop < 0)
                stop = end;
            if (ntags == MAX_TAGS)
                return 0;
            Tag *t = &tags[ntags];
            t->key = item;
            t->value = -1;
            t->value_end = stop;
            Py_ssize_t eq = find_char(kind, data, item, stop, '=');
            t->key_end = eq < 0 ? stop : eq;
            if (eq >= 0)
                t->value = eq + 1;
            if (t->key_end == t->key)
                return 0;  /* an empty name */
            for (Py_ssize_t i = t->key; i < t->key_end; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                if (c > 0xff || !plain[c])  /* plain: ' ' to '~' but '"' and '\\' */
                    return 0;  /* a name JSON would escape, or not ASCII */
            }
            /* insertion by name (Twitch sends them sorted: usually no move at all) */
            Py_ssize_t j = ntags;
            while (j > 0) {
                int cmp = key_cmp(kind, data, &tags[j - 1], t);
                if (cmp == 0)
                    return 0;  /* a repeated name: the dict keeps the last value */
                if (cmp < 0)
                    break;
                j--;
            }
            if (j != ntags) {
                Tag moved = *t;
                memmove(&tags[j + 1], &tags[j], (ntags - j) * sizeof(Tag));
                tags[j] = moved;
            }
            ntags++;
            if (stop >= end)
                break;
            item = stop + 1;
        }
        for (Py_ssize_t k = 0; k < ntags; k++) {
            Tag *t = &tags[k];
            if (!key_is(kind, data, t, TMI_SENT_TS))
                continue;
            if (t->value < 0)
                break;  /* true: not a time */
            Py_ssize_t len = t->value_end - t->value;
            if (len >= 16)
                return 0;  /* beyond what a double holds exactly: the reference's division */
            long long ms = 0;
            int digits = len > 0;
            for (Py_ssize_t i = t->value; i < t->value_end; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                if (c == '\\')
                    return 0;
                if (c < '0' || c > '9')
                    digits = 0;
                else
                    ms = ms * 10 + (c - '0');
            }
            if (digits)
                server_time = (double)ms / 1000.0;  /* int / 1000, both exact: correctly rounded */
            break;
        }
        pos = end + 1;
    }
    Py_ssize_t pstart = -1, pend = -1, at = -1, bang = -1;
    if (PyUnicode_READ(kind, data, pos) == ':') {
        Py_ssize_t end = find_char(kind, data, pos, n, ' ');
        if (end < 0)
            return 0;
        pstart = pos + 1;
        pend = end;
        at = rfind_char(kind, data, pstart, pend, '@');
        bang = find_char(kind, data, pstart, at >= 0 ? at : pend, '!');
        pos = end + 1;
    }
    Py_ssize_t cmd_end = find_char(kind, data, pos, n, ' ');
    if (cmd_end < 0)
        cmd_end = n;
    char upper[64];
    Py_ssize_t cmd_len = cmd_end - pos;
    if (cmd_len > (Py_ssize_t)sizeof upper)
        return 0;
    for (Py_ssize_t i = 0; i < cmd_len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, pos + i);
        if (c >= 'a' && c <= 'z')
            c -= 'a' - 'A';
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;  /* str.upper() of anything else is the reference's business */
        upper[i] = (char)c;
    }
    /* the parameters: [first_start, first_end) of the first, for the engine */
    Py_ssize_t rest = cmd_end + 1, trailing = -1;
    if (cmd_end < n && PyUnicode_READ(kind, data, rest) != ':') {
        for (Py_ssize_t i = rest; i + 1 < n; i++) {
            if (PyUnicode_READ(kind, data, i) == ' ' && PyUnicode_READ(kind, data, i + 1) == ':') {
                trailing = i;
                break;
            }
        }
    }

    Py_ssize_t receiver_len = PyBytes_GET_SIZE(receiver);
    Py_ssize_t cap = 12 * n + receiver_len + 256 + 10 * (ntags > 0 ? ntags : 0);
    char stack[16384];
    char *buf = cap <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc(cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char *p = buf;
    p = put_lit(p, "{\"command\":\"");
    memcpy(p, upper, cmd_len);
    p += cmd_len;
    p = put_lit(p, "\",\"host\":");
    if (at >= 0)
        p = put_str(p, kind, data, at + 1, pend);
    else
        p = put_lit(p, "null");
    p = put_lit(p, ",\"params\":[");
    Py_ssize_t first_start = -1, first_end = -1;
    if (cmd_end < n) {
        if (PyUnicode_READ(kind, data, rest) == ':') {
            first_start = rest + 1;
            first_end = n;
            p = put_str(p, kind, data, first_start, first_end);
        } else {
            Py_ssize_t middle_end = trailing < 0 ? n : trailing;
            Py_ssize_t word = rest;
            for (;;) {
                Py_ssize_t stop = find_char(kind, data, word, middle_end, ' ');
                if (stop < 0)
                    stop = middle_end;
                if (first_start < 0) {
                    first_start = word;
                    first_end = stop;
                } else {
                    *p++ = ',';
                }
                p = put_str(p, kind, data, word, stop);
                if (stop >= middle_end)
                    break;
                word = stop + 1;
            }
            if (trailing >= 0) {
                *p++ = ',';
                p = put_str(p, kind, data, trailing + 2, n);
            }
        }
    }
    p = put_lit(p, "],\"receivers\":{");
    memcpy(p, PyBytes_AS_STRING(receiver), receiver_len);
    p += receiver_len;
    Py_ssize_t rn = put_double(p, now);
    if (rn < 0) {
        if (buf != stack)
            PyMem_Free(buf);
        return -1;
    }
    p += rn;
    p = put_lit(p, "},\"sender\":");
    if (pstart >= 0) {
        Py_ssize_t send = bang >= 0 ? bang : (at >= 0 ? at : pend);
        p = put_str(p, kind, data, pstart, send);
    } else {
        p = put_lit(p, "null");
    }
    p = put_lit(p, ",\"tags\":");
    if (ntags < 0) {
        p = put_lit(p, "null");
    } else {
        *p++ = '{';
        for (Py_ssize_t k = 0; k < ntags; k++) {
            Tag *t = &tags[k];
            if (k)
                *p++ = ',';
            p = put_str(p, kind, data, t->key, t->key_end);
            *p++ = ':';
            if (t->value < 0)
                p = put_lit(p, "true");
            else
                p = put_tag_value(p, kind, data, t->value, t->value_end);
        }
        *p++ = '}';
    }
    p = put_lit(p, ",\"time\":");
    char *tail = p;
    p = put_lit(p, ",\"user\":");
    if (bang >= 0)
        p = put_str(p, kind, data, bang + 1, at >= 0 ? at : pend);
    else
        p = put_lit(p, "null");
    *p++ = '}';

    PyObject *head_b = PyBytes_FromStringAndSize(buf, tail - buf);
    PyObject *tail_b = PyBytes_FromStringAndSize(tail, p - tail);
    if (buf != stack)
        PyMem_Free(buf);
    PyObject *command = cached_ascii(&last_command, upper, cmd_len);
    if (head_b == NULL || tail_b == NULL || command == NULL) {
        Py_XDECREF(head_b);
        Py_XDECREF(tail_b);
        Py_XDECREF(command);
        return -1;
    }
    out->command = command;
    out->head = head_b;
    out->tail = tail_b;
    out->first_start = first_start;
    out->first_end = first_end;
    out->server_time = server_time;
    return 1;
}

/* `clean`: 1 when `line` is known to hold no CR, LF or NUL (the scans for them are skipped) */
static int
read_line(PyObject *line, PyObject *receiver, double now, int clean, Parsed *out)
{
    if (!isfinite(now))
        return 0;
    switch (PyUnicode_KIND(line)) {
    case PyUnicode_1BYTE_KIND: return twitch_line_kind(line, PyUnicode_1BYTE_KIND, receiver, now, clean, out);
    case PyUnicode_2BYTE_KIND: return twitch_line_kind(line, PyUnicode_2BYTE_KIND, receiver, now, clean, out);
    default: return twitch_line_kind(line, PyUnicode_4BYTE_KIND, receiver, now, clean, out);
    }
}


/* ---- the lane: the common received line, from its raw bytes to its record in its open batch ----
 *
 * lane(block, offset, last_seq, conns, twitch, kept, channels, safe) -> (stop, last_seq, taken, lines)
 *
 * Takes the raw lines of `block` (bytes, lines each ending with a newline) from byte `offset` on,
 * one after another, as long as each is
 * the common case, and does for each exactly what formats.rawfile (decode, skip a repeated seq)
 * and replay.engine.StreamReplayer.feed do with it: a `recv` event written as the recorder writes
 * it, on an open Twitch connection, due to close no batch, whose line the step above reads, of a
 * kept command on an initialised, safe (and selected) channel, with an exact server time, going to
 * a batch that is already open. It stops at the first line that is anything else and returns its
 * offset: the caller hands that line to the reference path, then calls again. `taken` counts the
 * events taken (each one received line and one record), `lines` the lines passed (those, and
 * the repeated ones skipped), for the line numbers of later problems. `conns` is the engine's connections
 * (replay/engine.py `_Connection`), `twitch` the Twitch dialect, `kept` its archived commands,
 * `channels` the selection or None, `safe` the engine's channel-name check. */

/* The names the lane reads and writes on the engine's objects and records: its contract with Python,
 * declared there too (replay/compact.py LANE_CONTRACT; `lane_names` below lets a test hold the two
 * equal and every name present on its class). */
static PyObject *s_dialect, *s_batches, *s_clock, *s_ready, *s_receiver, *s_receiver_key, *s_next_deadline,
    *s_by_channel, *s_records, *s_ends, *s_cut, *s_last_server_time, *s_last_received, *s_time, *s_time_range,
    *s_parts, *s_ranged;
static PyObject *lane_names_tuple;

static int
intern_names(void)
{
#define NAME(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1;
    NAME(s_dialect, "dialect") NAME(s_batches, "batches") NAME(s_clock, "clock") NAME(s_ready, "ready")
    NAME(s_receiver, "receiver") NAME(s_receiver_key, "receiver_key") NAME(s_next_deadline, "next_deadline")
    NAME(s_by_channel, "_by_channel") NAME(s_records, "records") NAME(s_ends, "ends") NAME(s_cut, "cut")
    NAME(s_last_server_time, "last_server_time") NAME(s_last_received, "last_received")
    NAME(s_time, "time") NAME(s_time_range, "time_range") NAME(s_parts, "parts")
    NAME(s_ranged, "ranged")
#undef NAME
    lane_names_tuple = PyTuple_Pack(17, s_dialect, s_batches, s_clock, s_ready, s_receiver, s_receiver_key,
                                    s_next_deadline, s_by_channel, s_records, s_ends, s_cut, s_last_server_time,
                                    s_last_received, s_time, s_time_range, s_parts, s_ranged);
    return lane_names_tuple == NULL ? -1 : 0;
}

static PyObject *
lane_names(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    return Py_NewRef(lane_names_tuple);
}

static int
expect(const char **pp, const char *end, const char *lit, Py_ssize_t n)
{
    if (end - *pp < n || memcmp(*pp, lit, n) != 0)
        return 0;
    *pp += n;
    return 1;
}
#define EXPECT(pp, end, lit) expect(pp, end, lit, (Py_ssize_t)sizeof(lit) - 1)

/* a JSON non-negative integer as JSON writes it (no leading zero), at most 18 digits */
static int
digits(const char **pp, const char *end, long long *out)
{
    const char *p = *pp;
    if (p >= end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
        return 0;
    long long v = 0;
    int n = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (++n > 18)
            return 0;
        v = v * 10 + (*p - '0');
        p++;
    }
    *pp = p;
    *out = v;
    return 1;
}

/* 1: a recv event in the recorder's own shape, its line decoded into *line (new reference), *clean
 * set when the text held no escape (so no CR, LF or NUL: json_plain refuses control bytes);
 * 0: anything else (the reference decides) */
static int
raw_recv(const char *p, const char *end, long long *seq, long long *at, long long *conn, PyObject **line,
         int *clean)
{
    if (!EXPECT(&p, end, "{\"kind\":\"recv\",\"seq\":") || !digits(&p, end, seq)
        || !EXPECT(&p, end, ",\"at\":") || !digits(&p, end, at)
        || !EXPECT(&p, end, ",\"conn\":") || !digits(&p, end, conn)
        || !EXPECT(&p, end, ",\"line\":\""))
        return 0;
    /* the common string, with no escape in it, is decoded where it lies */
    const char *text = p;
    p = (const char *)jc_plain_run((const unsigned char *)p, (const unsigned char *)end, 0);
    *clean = 0;
    if (p < end && *p == '"') {
        *clean = 1;
        if (!(p + 2 == end && p[1] == '}'))
            return 0;
        *line = PyUnicode_DecodeUTF8(text, p - text, NULL);
        if (*line == NULL)
            PyErr_Clear();  /* not UTF-8: the reference reports it */
        return *line != NULL;
    }
    char stack[8192];
    Py_ssize_t room = end - text;
    char *buf = room <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc(room);
    if (buf == NULL)
        return 0;
    memcpy(buf, text, p - text);
    char *o = buf + (p - text);
    int ok = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            ok = 1;
            break;
        }
        if (c < 0x20)
            break;  /* not JSON */
        if (c == '\\') {
            if (++p >= end)
                break;
            switch (*p) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 't': *o++ = '\t'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            default: ok = -1;  /* \u and the rest: the reference */
            }
            if (ok < 0)
                break;
            p++;
            continue;
        }
        *o++ = (char)c;
        p++;
    }
    if (ok == 1)
        ok = p + 2 == end && p[1] == '}';
    if (ok == 1) {
        *line = PyUnicode_DecodeUTF8(buf, o - buf, NULL);
        if (*line == NULL) {
            PyErr_Clear();  /* not UTF-8: the reference reports it */
            ok = 0;
        }
    }
    if (buf != stack)
        PyMem_Free(buf);
    return ok == 1;
}

static PyObject *last_name = NULL;
static PyObject *last_safe = NULL;  /* the last name `safe` accepted */

/* `#Chan` -> `chan` for an ASCII name (new reference); NULL without error: the reference decides */
static PyObject *
folder_name(PyObject *line, Py_ssize_t start, Py_ssize_t end)
{
    char name[256];
    Py_ssize_t n = end - start - 1;
    if (start < 0 || n < 1 || n > (Py_ssize_t)sizeof name || PyUnicode_READ_CHAR(line, start) != '#')
        return NULL;
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, start + 1 + i);
        if (c >= 0x80)
            return NULL;
        name[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    return cached_ascii(&last_name, name, n);
}

/* What the lane reads of one connection, kept for one call (nothing the lane does changes it: it
 * stops before a batch opens or closes, and a range cut changes a batch's lists, not which). */
typedef struct {
    long long number;  /* -1: none cached */
    PyObject *c, *receiver, *receiver_key, *ready, *batches, *clock, *by_channel;
    double deadline;   /* batches.next_deadline */
    int deadline_ok;   /* 0: not a number a double holds exactly: every line goes to the reference */
    /* the last batch taken: its channel and time, the batch, its records and ranges, and the ranges
     * of the batch a minute before (NULL: none) */
    PyObject *b_name, *b_batch, *b_records, *b_ends, *b_prev, *b_prev_ends;
    long long b_time;
} ConnCache;

static void
batch_cache_clear(ConnCache *k)
{
    Py_CLEAR(k->b_name);
    Py_CLEAR(k->b_batch);
    Py_CLEAR(k->b_records);
    Py_CLEAR(k->b_ends);
    Py_CLEAR(k->b_prev);
    Py_CLEAR(k->b_prev_ends);
}

static void
conn_cache_clear(ConnCache *k)
{
    Py_CLEAR(k->c);
    Py_CLEAR(k->receiver);
    Py_CLEAR(k->receiver_key);
    Py_CLEAR(k->ready);
    Py_CLEAR(k->batches);
    Py_CLEAR(k->clock);
    Py_CLEAR(k->by_channel);
    batch_cache_clear(k);
    k->number = -1;
}

static int exact_double(PyObject *v, double *out);

/* 1: the connection's parts in *k; 0: not open, or not Twitch; -1: error */
static int
conn_lookup(ConnCache *k, PyObject *conns, PyObject *twitch, long long number)
{
    if (k->number == number)
        return 1;
    conn_cache_clear(k);
    PyObject *key = PyLong_FromLongLong(number);
    if (key == NULL)
        return -1;
    PyObject *c = PyDict_GetItemWithError(conns, key);  /* borrowed */
    Py_DECREF(key);
    if (c == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *dialect = PyObject_GetAttr(c, s_dialect);
    if (dialect == NULL)
        return -1;
    Py_DECREF(dialect);
    if (dialect != twitch)
        return 0;
    k->c = Py_NewRef(c);
    PyObject *deadline = NULL;
    if ((k->receiver = PyObject_GetAttr(c, s_receiver)) == NULL
        || (k->receiver_key = PyObject_GetAttr(c, s_receiver_key)) == NULL
        || (k->ready = PyObject_GetAttr(c, s_ready)) == NULL
        || (k->batches = PyObject_GetAttr(c, s_batches)) == NULL
        || (k->clock = PyObject_GetAttr(c, s_clock)) == NULL
        || (k->by_channel = PyObject_GetAttr(k->batches, s_by_channel)) == NULL
        || (deadline = PyObject_GetAttr(k->batches, s_next_deadline)) == NULL) {
        conn_cache_clear(k);
        return -1;
    }
    k->deadline_ok = exact_double(deadline, &k->deadline);
    Py_DECREF(deadline);
    if (!PyBytes_CheckExact(k->receiver_key) || !PyDict_CheckExact(k->by_channel) || !PySet_Check(k->ready)) {
        conn_cache_clear(k);
        return 0;
    }
    k->number = number;
    return 1;
}

/* the batch of `batches` (a dict by batch time) at `batch_time`, borrowed; NULL if none or error */
static PyObject *
batch_at(PyObject *batches, long long batch_time)
{
    PyObject *key = PyLong_FromLongLong(batch_time);
    if (key == NULL)
        return NULL;
    PyObject *batch = PyDict_GetItemWithError(batches, key);
    Py_DECREF(key);
    return batch;
}

/* 1: the ranges `ends` (a batch's, ascending) reach past `reach` (it must be cut); 0: not; -1: error */
static int
reaches_past(PyObject *ends, double reach)
{
    Py_ssize_t n = PyList_GET_SIZE(ends);
    if (n == 0)
        return 0;
    PyObject *last = PyList_GET_ITEM(ends, n - 1);
    if (PyFloat_CheckExact(last))
        return PyFloat_AS_DOUBLE(last) > reach;
    PyObject *r = PyFloat_FromDouble(reach);
    int rc = r == NULL ? -1 : PyObject_RichCompareBool(last, r, Py_GT);
    Py_XDECREF(r);
    return rc;
}

/* 1: the open batch of channel `name` at `batch_time` is in k->b_*; 0: none open; -1: error */
static int
batch_lookup(ConnCache *k, PyObject *name, long long batch_time)
{
    if (k->b_name == name && k->b_time == batch_time)
        return 1;
    batch_cache_clear(k);
    PyObject *batches = PyDict_GetItemWithError(k->by_channel, name);  /* borrowed */
    if (batches == NULL || !PyDict_CheckExact(batches))
        return PyErr_Occurred() ? -1 : 0;
    PyObject *batch = batch_at(batches, batch_time);
    if (batch == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *prev = batch_at(batches, batch_time - 60);
    if (prev == NULL && PyErr_Occurred())
        return -1;
    k->b_batch = Py_NewRef(batch);
    k->b_prev = Py_XNewRef(prev);
    if ((k->b_records = PyObject_GetAttr(batch, s_records)) == NULL
        || (k->b_ends = PyObject_GetAttr(batch, s_ends)) == NULL
        || (prev != NULL && (k->b_prev_ends = PyObject_GetAttr(prev, s_ends)) == NULL)) {
        batch_cache_clear(k);
        return -1;
    }
    if (!PyList_CheckExact(k->b_records) || !PyList_CheckExact(k->b_ends)
        || (prev != NULL && !PyList_CheckExact(k->b_prev_ends))) {
        batch_cache_clear(k);
        return 0;
    }
    k->b_name = Py_NewRef(name);
    k->b_time = batch_time;
    return 1;
}

/* 1: `v` (a float, or an int that a double holds exactly) as a double in *out; 0: anything else */
static int
exact_double(PyObject *v, double *out)
{
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred()) || x >= (1LL << 53) || x <= -(1LL << 53)) {
            PyErr_Clear();
            return 0;
        }
        *out = (double)x;
        return 1;
    }
    return 0;
}

#define BATCH_INTERVAL 60
#define END_SLACK 1e-3  /* replay/batches.py _END_SLACK */
#define MAX_CLOCK_DISTANCE 86400.0  /* replay/timestamps.py MAX_CLOCK_DISTANCE */

/* _Batch.cut(server_time) (replay/batches.py) done here, with the same floating-point operations in
 * the same order: the ranged records whose range ends past `server_time - END_SLACK` (found by the
 * same bisection) and holds `server_time` strictly inside are cut there, and the suffix of `ends`
 * and `ranged` is re-sorted by (end, cut ones first, then kept ones, each in their order).
 * 1: done; 0: a value it does not handle (not a float or an int a double holds exactly, an end not
 * finite, not a dict), nothing changed:
 * the caller calls the Python method; -1: error. */
typedef struct {
    double end, between;
    Py_ssize_t index;
    PyObject *record, *end_obj;  /* borrowed */
} Ranged;

static int
ranged_cmp(const void *a, const void *b)
{
    const Ranged *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int
cut_c(PyObject *batch, PyObject *ends, double server_time)
{
    Py_ssize_t n = PyList_GET_SIZE(ends);
    double x = server_time - END_SLACK;
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {  /* bisect.bisect_right(ends, x) */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        PyObject *e = PyList_GET_ITEM(ends, mid);
        if (!PyFloat_CheckExact(e))
            return 0;
        if (x < PyFloat_AS_DOUBLE(e))
            hi = mid;
        else
            lo = mid + 1;
    }
    Py_ssize_t start = lo;
    if (start == n)
        return 1;
    PyObject *ranged = PyObject_GetAttr(batch, s_ranged);
    if (ranged == NULL)
        return -1;
    int result = 0;
    Ranged stack[64];
    Py_ssize_t m = n - start;
    Ranged *items = stack;
    if (!PyList_CheckExact(ranged) || PyList_GET_SIZE(ranged) != n)
        goto done;
    if (m > 64 && (items = PyMem_Malloc(m * sizeof *items)) == NULL) {
        items = stack;
        PyErr_NoMemory();
        result = -1;
        goto done;
    }
    /* first every value checked, then the changes: a value not handled changes nothing */
    Py_ssize_t ncut = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *rec = PyList_GET_ITEM(ranged, start + i), *e = PyList_GET_ITEM(ends, start + i);
        if (!PyDict_CheckExact(rec) || !PyFloat_CheckExact(e) || !isfinite(PyFloat_AS_DOUBLE(e)))
            goto done;
        PyObject *t = PyDict_GetItemWithError(rec, s_time), *tr = PyDict_GetItemWithError(rec, s_time_range);
        if (t == NULL || tr == NULL) {
            result = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
        /* a float, or an int a double holds exactly (float - int, float < int, int + float: as Python) */
        double tv, trv;
        if (!exact_double(t, &tv) || !exact_double(tr, &trv))
            goto done;
        double b = server_time - tv;
        int is_cut = 0 < b && b < trv;
        double end = is_cut ? tv + b : PyFloat_AS_DOUBLE(e);
        if (is_cut && !isfinite(end))
            goto done;
        items[i].between = b;
        items[i].record = rec;
        items[i].end = end;
        items[i].end_obj = is_cut ? NULL : e;
        items[i].index = is_cut ? ncut++ : -1;
    }
    if (ncut == 0) {
        result = 1;
        goto done;
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < m; i++)
        if (items[i].index < 0)
            items[i].index = ncut + kept++;
    /* the new numbers first (all allocated before anything changes) */
    PyObject *new_ranged = PyList_New(m), *new_ends = PyList_New(m);
    if (new_ranged == NULL || new_ends == NULL) {
        Py_XDECREF(new_ranged);
        Py_XDECREF(new_ends);
        result = -1;
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (items[i].end_obj != NULL)
            continue;
        PyObject *b = PyFloat_FromDouble(items[i].between);
        if (b == NULL || PyDict_SetItem(items[i].record, s_time_range, b) < 0) {
            Py_XDECREF(b);
            Py_DECREF(new_ranged);
            Py_DECREF(new_ends);
            result = -1;
            goto done;
        }
        Py_DECREF(b);
    }
    qsort(items, m, sizeof *items, ranged_cmp);
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *e = items[i].end_obj != NULL ? Py_NewRef(items[i].end_obj) : PyFloat_FromDouble(items[i].end);
        if (e == NULL) {
            Py_DECREF(new_ranged);
            Py_DECREF(new_ends);
            result = -1;
            goto done;
        }
        PyList_SET_ITEM(new_ends, i, e);
        PyList_SET_ITEM(new_ranged, i, Py_NewRef(items[i].record));
    }
    result = PyList_SetSlice(ends, start, n, new_ends) < 0 || PyList_SetSlice(ranged, start, n, new_ranged) < 0
        ? -1 : 1;
    Py_DECREF(new_ranged);
    Py_DECREF(new_ends);
done:
    if (items != stack)
        PyMem_Free(items);
    Py_DECREF(ranged);
    return result;
}

/* One line: 1 taken, 0 stop here (nothing changed), -1 error. */
static int
lane_one(const char *raw, const char *raw_end, long long *last_seq, ConnCache *k, PyObject *conns,
         PyObject *twitch, PyObject *kept, PyObject *channels, PyObject *safe)
{
    long long seq, at, conn;
    PyObject *line = NULL;
    int clean;
    if (!raw_recv(raw, raw_end, &seq, &at, &conn, &line, &clean))
        return 0;
    if (seq <= *last_seq) {  /* read already (the same hour given twice): skipped, as the reader does */
        Py_DECREF(line);
        return 1;
    }
    int rc = conn_lookup(k, conns, twitch, conn);
    if (rc <= 0 || at >= (1LL << 53)) {
        Py_DECREF(line);
        return rc < 0 ? -1 : 0;
    }
    double now = (double)at / 1e6;  /* at / 1_000_000: both exact, so correctly rounded as in Python */
    if (!k->deadline_ok || now >= k->deadline) {  /* a batch closes: the reference */
        Py_DECREF(line);
        return 0;
    }
    Parsed got;
    rc = read_line(line, k->receiver_key, now, clean, &got);
    if (rc <= 0) {
        Py_DECREF(line);
        return rc;
    }
    PyObject *name = NULL, *st = NULL, *now_obj = NULL, *record = NULL, *parts = NULL;
    int result = 0;
    if (got.server_time < 0 || !(fabs(got.server_time - now) <= MAX_CLOCK_DISTANCE))
        goto done;  /* an estimated time, or one too far from now to believe: the reference */
    rc = PySet_Contains(kept, got.command);
    if (rc <= 0) {
        result = rc;
        goto done;
    }
    name = folder_name(line, got.first_start, got.first_end);
    if (name == NULL)
        goto done;
    rc = PySet_Contains(k->ready, name);
    if (rc <= 0) {
        result = rc;
        goto done;
    }
    if (name != last_safe) {
        PyObject *ok = PyObject_CallOneArg(safe, name);
        if (ok == NULL) {
            result = -1;
            goto done;
        }
        rc = PyObject_IsTrue(ok);
        Py_DECREF(ok);
        if (rc <= 0) {
            result = rc;
            goto done;
        }
        Py_XSETREF(last_safe, Py_NewRef(name));
    }
    if (channels != Py_None) {
        rc = PySequence_Contains(channels, name);
        if (rc <= 0) {
            result = rc;
            goto done;
        }
    }
    double server_time = got.server_time;
    long long batch_time = (long long)(server_time / BATCH_INTERVAL) * BATCH_INTERVAL;
    rc = batch_lookup(k, name, batch_time);
    if (rc <= 0) {
        result = rc;  /* 0: a new batch, which the reference opens */
        goto done;
    }
    /* Taken: from here on, what the engine does. clock.observe(server_time, now): */
    if ((st = PyFloat_FromDouble(server_time)) == NULL || (now_obj = PyFloat_FromDouble(now)) == NULL
        || PyObject_SetAttr(k->clock, s_last_server_time, st) < 0
        || PyObject_SetAttr(k->clock, s_last_received, now_obj) < 0) {
        result = -1;
        goto done;
    }
    /* batches.shrink(name, server_time): this batch and the one before */
    double reach = server_time - END_SLACK;
    for (int back = 0; back < 2; back++) {
        PyObject *b = back ? k->b_prev : k->b_batch, *ends = back ? k->b_prev_ends : k->b_ends;
        if (b == NULL)
            continue;
        rc = reaches_past(ends, reach);
        if (rc < 0) {
            result = -1;
            goto done;
        }
        if (!rc)
            continue;
        rc = cut_c(b, ends, server_time);
        if (rc < 0) {
            result = -1;
            goto done;
        }
        if (rc == 0) {  /* a value cut_c does not handle: the batch's own method */
            PyObject *r = PyObject_CallMethodOneArg(b, s_cut, st);
            if (r == NULL) {
                result = -1;
                goto done;
            }
            Py_DECREF(r);
        }
    }
    PyObject *records = k->b_records;
    /* batches.add(name, {"time": .., "time_range": 0, "parts": (head, tail, line, receiver, now)}) */
    parts = PyTuple_Pack(5, got.head, got.tail, line, k->receiver, now_obj);
    record = PyDict_New();
    PyObject *zero = PyLong_FromLong(0);
    if (parts == NULL || record == NULL || zero == NULL || PyDict_SetItem(record, s_time, st) < 0
        || PyDict_SetItem(record, s_time_range, zero) < 0 || PyDict_SetItem(record, s_parts, parts) < 0
        || PyList_Append(records, record) < 0) {
        Py_XDECREF(zero);
        result = -1;
        goto done;
    }
    Py_DECREF(zero);
    *last_seq = seq;
    result = 1;
done:
    Py_XDECREF(name);
    Py_XDECREF(st);
    Py_XDECREF(now_obj);
    Py_XDECREF(record);
    Py_XDECREF(parts);
    Py_DECREF(got.command);
    Py_DECREF(got.head);
    Py_DECREF(got.tail);
    Py_DECREF(line);
    return result;
}

static PyObject *
lane(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) || !PyLong_CheckExact(args[2])
        || !PyDict_CheckExact(args[3]) || !PyAnySet_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "lane(block: bytes, offset: int, last_seq: int, conns: dict, twitch, kept: frozenset, "
                        "channels, safe)");
        return NULL;
    }
    const char *block = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    if (off < 0 || off > n) {
        PyErr_SetString(PyExc_ValueError, "offset outside the block");
        return NULL;
    }
    int overflow = 0;
    long long last_seq = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (last_seq == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)  /* a seq beyond 64 bits was read (the reference's): the lane takes nothing */
        return Py_BuildValue("(nOnn)", off, args[2], (Py_ssize_t)0, (Py_ssize_t)0);
    ConnCache k;
    memset(&k, 0, sizeof k);
    k.number = -1;
    Py_ssize_t taken = 0, lines = 0;
    int rc = 1;
    while (off < n) {
        const char *nl = memchr(block + off, '\n', n - off);
        if (nl == NULL)
            break;  /* not a line (a block ends with a newline): the reference's */
        long long before = last_seq;
        rc = lane_one(block + off, nl, &last_seq, &k, args[3], args[4], args[5], args[6], args[7]);
        if (rc <= 0)
            break;
        taken += last_seq != before;
        lines++;
        off = nl - block + 1;
    }
    conn_cache_clear(&k);
    if (rc < 0)
        return NULL;
    return Py_BuildValue("(nLnn)", off, last_seq, taken, lines);
}

/* batch(records, encode) -> bytes or None: the batch file of a closing batch, twin of
 * formats.canonical.format_batch(records, replay.compact.record_bytes): every record's canonical
 * line (a compact record's joined from its parts and its two numbers, printed as json.dumps prints
 * them; any other record's from `encode`), sorted by (time, time_range, line) as Python sorts those
 * tuples, joined with newlines. None when a record's time or time range is not a finite float or
 * an int a double holds exactly (the caller then takes the reference path), so the order here is
 * always Python's. */

typedef struct {
    double time, time_range;
    Py_ssize_t off, len;  /* the line in the arena */
} Keyed;

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Arena;

static char *
arena_room(Arena *a, Py_ssize_t n)
{
    if (a->len + n > a->cap) {
        Py_ssize_t cap = a->cap ? a->cap : 1 << 16;
        while (cap < a->len + n)
            cap *= 2;
        char *buf = PyMem_Realloc(a->buf, cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        a->buf = buf;
        a->cap = cap;
    }
    return a->buf + a->len;
}

static int
keyed_cmp(const void *x, const void *y, void *arena)
{
    const Keyed *a = x, *b = y;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->time_range != b->time_range)
        return a->time_range < b->time_range ? -1 : 1;
    const char *buf = arena;
    Py_ssize_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(buf + a->off, buf + b->off, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : (a->len > b->len ? 1 : 0);
}

/* 1: the record's line is in the arena and *k filled; 0: the reference's; -1: error */
static int
batch_line(PyObject *r, PyObject *encode, Arena *arena, Keyed *k)
{
    if (!PyDict_CheckExact(r))
        return 0;
    PyObject *time = PyDict_GetItemWithError(r, s_time);
    PyObject *time_range = time == NULL ? NULL : PyDict_GetItemWithError(r, s_time_range);
    if (time_range == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!exact_double(time, &k->time) || !exact_double(time_range, &k->time_range)
        || !isfinite(k->time) || !isfinite(k->time_range))
        return 0;
    k->off = arena->len;
    PyObject *parts = PyDict_GetItemWithError(r, s_parts);
    if (parts == NULL && PyErr_Occurred())
        return -1;
    if (parts != NULL) {
        if (!PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 5)
            return 0;
        PyObject *head = PyTuple_GET_ITEM(parts, 0), *tail = PyTuple_GET_ITEM(parts, 1);
        if (!PyBytes_CheckExact(head) || !PyBytes_CheckExact(tail))
            return 0;
        static const char mid[] = ",\"time_range\":";
        Py_ssize_t hn = PyBytes_GET_SIZE(head), ln = PyBytes_GET_SIZE(tail), mn = sizeof mid - 1;
        char *p = arena_room(arena, hn + 64 + mn + 64 + ln);
        if (p == NULL)
            return -1;
        char *start = p;
        Py_ssize_t w;
        memcpy(p, PyBytes_AS_STRING(head), hn);
        p += hn;
        int rc = put_number(p, time, &w);
        if (rc != 1)
            return rc;
        p += w;
        memcpy(p, mid, mn);
        p += mn;
        rc = put_number(p, time_range, &w);
        if (rc != 1)
            return rc;
        p += w;
        memcpy(p, PyBytes_AS_STRING(tail), ln);
        p += ln;
        k->len = p - start;
        arena->len += k->len;
        return 1;
    }
    PyObject *line = PyObject_CallOneArg(encode, r);
    if (line == NULL)
        return -1;
    if (!PyBytes_Check(line)) {
        Py_DECREF(line);
        return 0;
    }
    k->len = PyBytes_GET_SIZE(line);
    char *p = arena_room(arena, k->len);
    if (p != NULL) {
        memcpy(p, PyBytes_AS_STRING(line), k->len);
        arena->len += k->len;
    }
    Py_DECREF(line);
    return p == NULL ? -1 : 1;
}

static PyObject *
batch(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "batch(records: list, encode)");
        return NULL;
    }
    PyObject *records = args[0];
    Py_ssize_t n = PyList_GET_SIZE(records);
    if (n == 0)
        return PyBytes_FromStringAndSize("", 0);
    Keyed *keyed = PyMem_Malloc(n * sizeof(Keyed));
    if (keyed == NULL)
        return PyErr_NoMemory();
    Arena arena = {NULL, 0, 0};
    PyObject *result = NULL;
    int rc = 1;
    for (Py_ssize_t i = 0; rc == 1 && i < n; i++) {
        if (i >= PyList_GET_SIZE(records)) {  /* `encode` changed the list: the reference decides */
            rc = 0;
            break;
        }
        PyObject *r = Py_NewRef(PyList_GET_ITEM(records, i));  /* held while `encode` runs */
        rc = batch_line(r, args[1], &arena, &keyed[i]);
        Py_DECREF(r);
    }
    if (rc == 0)
        result = Py_NewRef(Py_None);
    if (rc == 1) {
        qsort_r(keyed, n, sizeof(Keyed), keyed_cmp, arena.buf);
        result = PyBytes_FromStringAndSize(NULL, arena.len + n);
        if (result != NULL) {
            char *p = PyBytes_AS_STRING(result);
            for (Py_ssize_t i = 0; i < n; i++) {
                memcpy(p, arena.buf + keyed[i].off, keyed[i].len);
                p += keyed[i].len;
                *p++ = '\n';
            }
        }
    }
    PyMem_Free(arena.buf);
    PyMem_Free(keyed);
    return result;
}

/* twitch_line(line, receiver, now) -> (command, first_param, server_time, head, tail) or None.
 * `receiver` is the receiver's name as JSON followed by ':' (bytes), `now` the receive time. */
static PyObject *
twitch_line(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyUnicode_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])
        || !PyFloat_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "twitch_line(line: str, receiver: bytes, now: float)");
        return NULL;
    }
    double now = PyFloat_AS_DOUBLE(args[2]);
    Parsed got;
    int rc = read_line(args[0], args[1], now, 0, &got);
    if (rc <= 0) {
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *line = args[0];
    PyObject *first = got.first_start >= 0 ? PyUnicode_Substring(line, got.first_start, got.first_end)
                                           : Py_NewRef(Py_None);
    PyObject *st = got.server_time >= 0 ? PyFloat_FromDouble(got.server_time) : Py_NewRef(Py_None);
    if (first == NULL || st == NULL) {
        Py_XDECREF(first);
        Py_XDECREF(st);
        Py_DECREF(got.command);
        Py_DECREF(got.head);
        Py_DECREF(got.tail);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(5, got.command, first, st, got.head, got.tail);
    Py_DECREF(got.command);
    Py_DECREF(first);
    Py_DECREF(st);
    Py_DECREF(got.head);
    Py_DECREF(got.tail);
    return result;
}

static PyMethodDef methods[] = {
    {"twitch_line", (PyCFunction)(void (*)(void))twitch_line, METH_FASTCALL,
     "twitch_line(line, receiver, now): (command, first_param, server_time, head, tail), or None "
     "for a line the reference must read."},
    {"lane_names", lane_names, METH_NOARGS,
     "lane_names(): every attribute and record key the lane reads or writes by name (for tests)."},
    {"float_repr", float_repr, METH_O, "repr() of a finite float, as the encoders here print it (for tests)."},
    {"replay_batch", (PyCFunction)(void (*)(void))batch, METH_FASTCALL,
     "replay_batch(records, encode): the batch file's bytes, or None for the reference path."},
    {"lane", (PyCFunction)(void (*)(void))lane, METH_FASTCALL,
     "lane(block, offset, last_seq, conns, twitch, kept, channels, safe): (stop, last_seq, taken, lines)."},
    {NULL, NULL, 0, NULL},
};

int
native_add_replay(PyObject *m)
{
    if (intern_names() < 0)
        return -1;
    init_plain();
    return PyModule_AddFunctions(m, methods);
}
