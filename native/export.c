/* Compiled twin of export.scan.scan_batch_py (the pure-Python reference).
 *
 * One source of truth: the reference decodes each line of a batch file with the one reader, refuses
 * the file unless every line is exactly its record's canonical bytes (of the shape this scanner
 * reads), and splits the lines into lone candidates, (time, 0, line, message id), the records that
 * pass through export untouched once their id is unique in a chunk, and the rest, which export
 * decodes and merges. This reads each line with the one canonical-line scanner (native/canonline.h,
 * which says why a line can be judged canonical from its bytes) and must give exactly the same;
 * tests/test_export_scan.py holds the two equal over random, damaged and real lines. A file refused
 * here is read by the reference path (export.stream.decode_batch), so damage is always reported by
 * the pure code.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "canonline.h"
#include "parts.h"

#define EXACT_LIMIT 9007199254740992LL /* merge.core.EXACT_LIMIT, 2**53 */
#define REST_FIRST (1 << 16)             /* bytes first set aside for the lines that are not candidates */

/* export.scan.kept_as_is: a non-zero float (every float of a canonical line is finite), or an int
 * within 2**53 (ints of the scanner have at most 15 digits: always) */
static inline int
kept_as_is(const CanonNum *n)
{
    if (n->is_float)
        return n->value != 0.0;
    return n->ival >= -EXACT_LIMIT && n->ival <= EXACT_LIMIT;
}

/* 1 if the line is a lone candidate (see export/scan.py) */
static int
is_candidate(const CanonLine *r)
{
    if (r->id.s == NULL || memchr(r->id.s, '\\', (size_t)r->id.n) != NULL)
        return 0;
    if (!kept_as_is(&r->time))
        return 0;
    /* merge.core.alone_as_is: the int 0 with one receiver, or 0.0 (a combined record) with a float
     * time and two or more */
    if (r->time_range.is_float) {
        if (r->time_range.value != 0.0 || signbit(r->time_range.value) || !r->time.is_float || r->n_recv < 2)
            return 0;
    }
    else if (r->time_range.ival != 0 || r->n_recv != 1)
        return 0;
    if (r->n_recv > CL_MAX_RECV || r->lone_surrogate)
        return 0;
    for (int i = 0; i < r->n_recv; i++)
        if (!kept_as_is(&r->recv_values[i]))
            return 0;
    return 1;
}

/* (time, 0, line, mid) of a candidate line. New reference, NULL on a memory error. */
static PyObject *
candidate(const unsigned char *line, Py_ssize_t len, const CanonLine *r)
{
    PyObject *time = r->time.is_float ? PyFloat_FromDouble(r->time.value) : PyLong_FromLongLong(r->time.ival);
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)line, len);
    /* the id's bytes are printable ASCII without escapes: the string itself */
    PyObject *mid = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, r->id.s, r->id.n);
    PyObject *zero = PyLong_FromLong(0);
    if (time == NULL || bytes == NULL || mid == NULL || zero == NULL) {
        Py_XDECREF(time);
        Py_XDECREF(bytes);
        Py_XDECREF(mid);
        Py_XDECREF(zero);
        return NULL;
    }
    PyObject *item = PyTuple_New(4);
    if (item == NULL) {
        Py_DECREF(time);
        Py_DECREF(bytes);
        Py_DECREF(mid);
        Py_DECREF(zero);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, time);
    PyTuple_SET_ITEM(item, 1, zero);
    PyTuple_SET_ITEM(item, 2, bytes);
    PyTuple_SET_ITEM(item, 3, mid);
    /* it holds no container, so it can be in no cycle: untracked now, as the collector would untrack
     * it at its first pass (a window read holds thousands; each pass would visit them all) */
    PyObject_GC_UnTrack(item);
    return item;
}

/* ([candidates], rest bytes) of a batch file, or the number (from 1) of the first line refused (0:
 * the file is empty or does not end with a newline). */
static PyObject *
scan_batch(PyObject *self, PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t n;
    int whole = cl_batch_bytes(arg, "scan_batch", &data, &n);
    if (whole <= 0)
        return whole < 0 ? NULL : PyLong_FromLong(0);
    PyObject *lone = PyList_New(0);
    /* the other lines, each with its newline: a few of the file's in an archive as the merge writes
     * it, so the buffer grows as they come rather than taking the file's size at once */
    Py_ssize_t room = n < REST_FIRST ? n : REST_FIRST;
    char *rest = PyMem_Malloc((size_t)room);
    if (lone == NULL || rest == NULL) {
        Py_XDECREF(lone);
        PyMem_Free(rest);
        return PyErr_NoMemory();
    }
    Py_ssize_t start = 0, number = 0, used = 0;
    while (start < n) {
        const unsigned char *nl = memchr(data + start, '\n', (size_t)(n - start));
        Py_ssize_t end = nl - data; /* the file ends with a newline: nl is never NULL */
        CanonLine r;
        number++;
        if (cl_line(data + start, end - start, &r)) {
            Py_DECREF(lone);
            PyMem_Free(rest);
            return PyLong_FromSsize_t(number);
        }
        if (is_candidate(&r)) {
            PyObject *item = candidate(data + start, end - start, &r);
            if (item == NULL || PyList_Append(lone, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(lone);
                PyMem_Free(rest);
                return NULL;
            }
            Py_DECREF(item);
        }
        else {
            Py_ssize_t len = end + 1 - start;
            if (used + len > room) {
                while (used + len > room)
                    room = room > n / 2 ? n : 2 * room; /* never past the file: every line fits in it */
                char *grown = PyMem_Realloc(rest, (size_t)room);
                if (grown == NULL) {
                    Py_DECREF(lone);
                    PyMem_Free(rest);
                    return PyErr_NoMemory();
                }
                rest = grown;
            }
            memcpy(rest + used, data + start, (size_t)len);
            used += len;
        }
        start = end + 1;
    }
    PyObject *rest_bytes = PyBytes_FromStringAndSize(rest, used);
    PyMem_Free(rest);
    if (rest_bytes == NULL) {
        Py_DECREF(lone);
        return NULL;
    }
    return Py_BuildValue("(NN)", lone, rest_bytes);
}

/* ---- Compiled twin of export.html.page_line_py: the page's fields of a canonical line ----
 *
 * The reference decodes the line (orjson) and takes the fields the html page shows of it
 * (export.html.page_fields): the command's code, the user's row and the message's fields as page
 * JSON (orjson's compact JSON, `<` written \u003c), the message id and a CLEARMSG's target. This
 * walks the line's bytes instead, for lines of the archive's schema whose strings are written as
 * json.dumps writes them (ensure_ascii: the canonical line), and writes the page JSON straight from
 * the line's string tokens: orjson writes a string as json.dumps(ensure_ascii=False) does, so a
 * token differs from the line's only in its \uXXXX escapes of U+007F and above (written as the
 * characters, in UTF-8) and in `<`. Anything else (another shape, a tag value not a string or true,
 * a lone surrogate, an escaped id, an out-of-grammar number) goes to the reference, handed over by
 * configure_export_page_line; tests/test_export_html_line.py holds the two equal. */

static PyObject *page_reference;

static PyObject *
configure_page_line(PyObject *self, PyObject *reference)
{
    Py_XINCREF(reference);
    Py_XSETREF(page_reference, reference);
    Py_RETURN_NONE;
}

/* A JSON number orjson reads (the reference decodes the line with it): -?int(.digits)?(e[+-]?d{1,2})?,
 * each run of digits at most 20 long. 0 (past it) or -1. The page never reads its value. */
static int
pl_num(CanonCur *c)
{
    const unsigned char *p = c->p, *e = c->end, *d;
    if (p < e && *p == '-')
        p++;
    if (p >= e || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else {
        for (d = p; p < e && *p >= '0' && *p <= '9'; p++)
            ;
        if (p - d > 20)
            return -1;
    }
    if (p < e && *p == '.') {
        for (d = ++p; p < e && *p >= '0' && *p <= '9'; p++)
            ;
        if (p == d || p - d > 20)
            return -1;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        for (d = p; p < e && *p >= '0' && *p <= '9'; p++)
            ;
        if (p == d || p - d > 2)
            return -1;
    }
    c->p = p;
    return 0;
}

/* A string value the page may read: its inner span (s == NULL when the value is not a string). */
typedef struct {
    Span v;
    int esc;
} PlStr;

/* `null` (v.s = NULL) or a string. 0 or -1. */
static int
pl_str_or_null(CanonCur *c, PlStr *out, int *lone)
{
    out->v.s = NULL;
    out->v.n = 0;
    out->esc = 0;
    if (CL_LIT(c, "null"))
        return 0;
    return cl_str(c, &out->v, &out->esc, lone);
}

static inline int
pl_is(Span k, const char *name, Py_ssize_t n)
{
    return k.n == n && memcmp(k.s, name, (size_t)n) == 0;
}

#define PL_IS(k, name) pl_is((k), (name), (Py_ssize_t)(sizeof(name) - 1))

enum { T_LOGIN, T_NAME, T_COLOR, T_BADGES, T_RNAME, T_RBODY, T_SYSTEM, T_MSGID, T_ID, T_TARGET, T_COUNT };

static int
pl_tag(Span k)
{
    switch (k.n) {
    case 2:
        return PL_IS(k, "id") ? T_ID : -1;
    case 5:
        return PL_IS(k, "color") ? T_COLOR : PL_IS(k, "login") ? T_LOGIN : -1;
    case 6:
        return PL_IS(k, "badges") ? T_BADGES : PL_IS(k, "msg-id") ? T_MSGID : -1;
    case 10:
        return PL_IS(k, "system-msg") ? T_SYSTEM : -1;
    case 12:
        return PL_IS(k, "display-name") ? T_NAME : -1;
    case 13:
        return PL_IS(k, "target-msg-id") ? T_TARGET : -1;
    case 21:
        return PL_IS(k, "reply-parent-msg-body") ? T_RBODY : -1;
    case 25:
        return PL_IS(k, "reply-parent-display-name") ? T_RNAME : -1;
    default:
        return -1;
    }
}

/* UTF-8 of a code point (no surrogate) at p; returns the bytes written. */
static inline int
pl_utf8(char *p, int code)
{
    if (code < 0x80) {
        p[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        p[0] = (char)(0xC0 | (code >> 6));
        p[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        p[0] = (char)(0xE0 | (code >> 12));
        p[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        p[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (code >> 18));
    p[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    p[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* The string (its inner span, as cl_str read it: json.dumps's escapes, no lone surrogate) as page
 * JSON, quotes included, at p; returns the end. At most 6 bytes a byte of the span, plus 2. */
static char *
pl_put(char *p, const PlStr *s)
{
    const unsigned char *q = s->v.s, *e = s->v.s + s->v.n;
    *p++ = '"';
    if (!s->esc && memchr(q, '<', (size_t)s->v.n) == NULL) {
        memcpy(p, q, (size_t)s->v.n);
        p += s->v.n;
        *p++ = '"';
        return p;
    }
    while (q < e) {
        unsigned char ch = *q;
        if (ch == '<') {
            memcpy(p, "\\u003c", 6);
            p += 6;
            q++;
        }
        else if (ch != '\\') {
            *p++ = (char)ch;
            q++;
        }
        else if (q[1] != 'u') {
            *p++ = '\\';
            *p++ = (char)q[1];
            q += 2;
        }
        else {
            int code = cl_hex4(q + 2);
            if (code < 0x7F) { /* a control: orjson escapes it as json.dumps does */
                memcpy(p, q, 6);
                p += 6;
                q += 6;
                continue;
            }
            q += 6;
            if (code >= 0xD800 && code <= 0xDBFF) { /* a pair (cl_str saw no lone half) */
                code = 0x10000 + ((code - 0xD800) << 10) + (cl_hex4(q + 2) - 0xDC00);
                q += 6;
            }
            p += pl_utf8(p, code);
        }
    }
    *p++ = '"';
    return p;
}

/* A string of the line as a Python str, for an id without escapes (printable ASCII). */
static PyObject *
pl_plain(const PlStr *s)
{
    if (s->v.s == NULL)
        return PyUnicode_FromStringAndSize("", 0);
    return PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, s->v.s, s->v.n);
}

/* The page JSON of an array of strings, trailing empty ones left out but the first `keep`, with or
 * without its brackets, into buf: a str. */
static PyObject *
pl_array(char *buf, const PlStr *items, int n, int keep, int brackets)
{
    while (n > keep && items[n - 1].v.n == 0)
        n--;
    char *p = buf;
    if (brackets)
        *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        if (items[i].v.s == NULL) {
            *p++ = '"';
            *p++ = '"';
        }
        else
            p = pl_put(p, &items[i]);
    }
    if (brackets)
        *p++ = ']';
    return PyUnicode_DecodeUTF8(buf, p - buf, "strict");
}

/* What the page and the ASS box read of a line: the command, the second parameter, the user and
 * sender (s == NULL: null) and the tags they read (s == NULL: absent or true). */
typedef struct {
    Span cmd;
    PlStr text, user, sender, tags[T_COUNT];
} PlRecord;

/* The line walked (see page_line's comment): 0 (*r filled) or -1, the line goes the reference way. */
static int
pl_walk(const unsigned char *line, Py_ssize_t len, PlRecord *r)
{
    CanonCur cur = {line, line + len}, *c = &cur;
    Span s, prev = {NULL, 0}, key;
    PlStr dummy;
    int esc, cmd_esc, lone = 0, more, nparams = 0;
    memset(r, 0, sizeof(*r));
    if (!CL_LIT(c, "{\"command\":") || cl_str(c, &r->cmd, &cmd_esc, &lone) || !CL_LIT(c, ",\"host\":")
        || pl_str_or_null(c, &dummy, &lone) || !CL_LIT(c, ",\"params\":["))
        return -1;
    if (!CL_LIT(c, "]")) {
        do {
            PlStr param;
            if (cl_str(c, &param.v, &param.esc, &lone))
                return -1;
            if (++nparams == 2)
                r->text = param;
        } while ((more = cl_next(c, ']')) > 0);
        if (more < 0)
            return -1;
    }
    if (!CL_LIT(c, ",\"receivers\":{"))
        return -1;
    do {
        if (cl_str(c, &s, &esc, &lone) || !CL_LIT(c, ":") || pl_num(c))
            return -1;
    } while ((more = cl_next(c, '}')) > 0);
    if (more < 0 || !CL_LIT(c, ",\"sender\":") || pl_str_or_null(c, &r->sender, &lone) || !CL_LIT(c, ",\"tags\":"))
        return -1;
    if (!CL_LIT(c, "null")) {
        if (!CL_LIT(c, "{"))
            return -1;
        if (!CL_LIT(c, "}")) {
            do {
                /* keys without escapes, strictly increasing: no key twice (orjson keeps the last) */
                if (cl_key(c, &prev, &key))
                    return -1;
                if (CL_LIT(c, "true"))
                    continue; /* not a string: as absent */
                PlStr value;
                if (cl_str(c, &value.v, &value.esc, &lone))
                    return -1;
                int t = pl_tag(key);
                if (t >= 0)
                    r->tags[t] = value;
            } while ((more = cl_next(c, '}')) > 0);
            if (more < 0)
                return -1;
        }
    }
    if (!CL_LIT(c, ",\"time\":") || pl_num(c) || !CL_LIT(c, ",\"time_range\":") || pl_num(c)
        || !CL_LIT(c, ",\"user\":") || pl_str_or_null(c, &r->user, &lone) || !CL_LIT(c, "}") || c->p != c->end)
        return -1;
    if (lone || cmd_esc)
        return -1; /* a lone surrogate (orjson refuses it), an escaped command */
    return 0;
}

static PyObject *
page_refer(PyObject *line)
{
    if (page_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_export_page_line was not called");
        return NULL;
    }
    return PyObject_CallOneArg(page_reference, line);
}

/* The page's code of a command it shows: 'P' PRIVMSG, 'U' USERNOTICE, 'M' CLEARMSG, 'C' CLEARCHAT;
 * 0 for any other (the page leaves the record out). */
static char
pl_code(Span cmd)
{
    if (cmd.n == 7 && memcmp(cmd.s, "PRIVMSG", 7) == 0)
        return 'P';
    if (cmd.n == 10 && memcmp(cmd.s, "USERNOTICE", 10) == 0)
        return 'U';
    if (cmd.n == 8 && memcmp(cmd.s, "CLEARMSG", 8) == 0)
        return 'M';
    if (cmd.n == 9 && memcmp(cmd.s, "CLEARCHAT", 9) == 0)
        return 'C';
    return 0;
}

static PyObject *
page_line(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "export_page_line takes bytes");
        return NULL;
    }
    const unsigned char *line = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t len = PyBytes_GET_SIZE(arg);
    PlRecord rec;
    if (pl_walk(line, len, &rec))
        return page_refer(arg);
    PlStr *tags = rec.tags, user = rec.user, text = rec.text;
    const char code[2] = {pl_code(rec.cmd), '\0'};
    if (!*code)
        Py_RETURN_NONE;
    /* the message id (P, U) and the target (M), as Python strings: escaped ones go the reference way */
    PlStr msg_id = {{NULL, 0}, 0}, target = {{NULL, 0}, 0};
    if (*code == 'P' || *code == 'U')
        msg_id = tags[T_ID];
    else if (*code == 'M')
        target = tags[T_TARGET];
    if (msg_id.esc || target.esc)
        return page_refer(arg);
    PlStr urow[4];
    urow[0] = user.v.s != NULL && user.v.n > 0 ? user : tags[T_LOGIN];
    urow[1] = tags[T_NAME];
    urow[2] = tags[T_COLOR];
    urow[3] = tags[T_BADGES];
    PlStr fields[3];
    int nfields = 1;
    fields[0] = text;
    if (*code == 'P') {
        fields[1] = tags[T_RNAME];
        fields[2] = tags[T_RBODY];
        nfields = 3;
    }
    else if (*code == 'U') {
        fields[1] = tags[T_SYSTEM].v.n > 0 ? tags[T_SYSTEM] : tags[T_MSGID];
        nfields = 2;
    }
    char stack[4096];
    size_t need = (size_t)len * 6 + 64;
    char *buf = need <= sizeof(stack) ? stack : PyMem_Malloc(need);
    if (buf == NULL)
        return PyErr_NoMemory();
    PyObject *user_json = pl_array(buf, urow, 4, 1, 1);
    PyObject *tail = user_json == NULL ? NULL : pl_array(buf, fields, nfields, 1, 0);
    if (buf != stack)
        PyMem_Free(buf);
    if (tail == NULL) {
        Py_XDECREF(user_json);
        return NULL;
    }
    PyObject *mid = pl_plain(&msg_id), *tgt = mid == NULL ? NULL : pl_plain(&target);
    if (tgt == NULL) {
        Py_XDECREF(mid);
        Py_DECREF(user_json);
        Py_DECREF(tail);
        return NULL;
    }
    return Py_BuildValue("(sNNNN)", code, user_json, mid, tgt, tail);
}

/* ---- Compiled twin of export.html.page_rows_py: the page's rows of export's rows ----
 *
 * The same loop as the reference, with the same Python objects (the users and ids OrderedDicts,
 * the counts list, the callback for a row of five), so the page's state is one whichever runs; a
 * stored line is read by page_line above instead of page_line_py (the same fields). */

static PyObject *str_move_to_end, *str_popitem, *str_command;

/* `od.popitem(last=False)` when len(od) > limit. 0 or -1. */
static int
pr_bound(PyObject *od, Py_ssize_t limit)
{
    Py_ssize_t n = PyObject_Size(od);
    if (n < 0)
        return -1;
    if (n <= limit)
        return 0;
    PyObject *r = PyObject_CallMethodObjArgs(od, str_popitem, Py_False, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* counts[i] as a new reference, and counts[i] += 1 */
static PyObject *
pr_count(PyObject *counts, Py_ssize_t i)
{
    PyObject *n = PyList_GET_ITEM(counts, i), *one = PyLong_FromLong(1);
    PyObject *next = one == NULL ? NULL : PyNumber_Add(n, one);
    Py_XDECREF(one);
    if (next == NULL)
        return NULL;
    Py_INCREF(n);
    PyList_SetItem(counts, i, next); /* steals next, drops the list's n */
    return n;
}

static int
pr_starts_page(PyObject *line)
{
    static const char *const commands[] = {"{\"command\":\"PRIVMSG\",", "{\"command\":\"USERNOTICE\",",
                                           "{\"command\":\"CLEARMSG\",", "{\"command\":\"CLEARCHAT\","};
    const char *s = PyBytes_AS_STRING(line);
    Py_ssize_t n = PyBytes_GET_SIZE(line);
    for (int i = 0; i < 4; i++) {
        Py_ssize_t k = (Py_ssize_t)strlen(commands[i]);
        if (n >= k && memcmp(s, commands[i], (size_t)k) == 0)
            return 1;
    }
    return 0;
}

/* counts[i] as a new reference, and counts[i] += 1 (a small int: no arithmetic object calls) */
static PyObject *
pr_next(PyObject *counts, Py_ssize_t i)
{
    PyObject *n = PyList_GET_ITEM(counts, i);
    if (!PyLong_CheckExact(n))
        return pr_count(counts, i);
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(n, &overflow);
    if (overflow || x == LLONG_MAX || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return pr_count(counts, i);
    }
    PyObject *next = PyLong_FromLongLong(x + 1);
    if (next == NULL)
        return NULL;
    Py_INCREF(n);
    PyList_SetItem(counts, i, next); /* steals next, drops the list's n */
    return n;
}

/* `od.popitem(last=False)` while len(od) > limit: a plain dict's size (an OrderedDict is one). */
static inline int
pr_bound_fast(PyObject *od, Py_ssize_t limit)
{
    if (PyDict_GET_SIZE(od) <= limit)
        return 0;
    return pr_bound(od, limit);
}

/* The page's number of the user row user_json (a new reference): the number it has, the row moved
 * to the table's end (most recently used), or the next number, the row added to the table (bounded
 * by max_users) and appended to out. NULL on error. */
static PyObject *
pr_user(PyObject *users, PyObject *user_json, PyObject *counts, Py_ssize_t max_users, PyObject *out)
{
    PyObject *user = PyDict_GetItemWithError(users, user_json);
    if (user == NULL) {
        if (PyErr_Occurred())
            return NULL;
        user = pr_next(counts, 0);
        if (user != NULL
            && (PyObject_SetItem(users, user_json, user) < 0 || pr_bound_fast(users, max_users) < 0
                || PyList_Append(out, user_json) < 0))
            Py_CLEAR(user);
        return user;
    }
    Py_INCREF(user);
    PyObject *r = PyObject_CallMethodOneArg(users, str_move_to_end, user_json);
    if (r == NULL)
        Py_CLEAR(user);
    Py_XDECREF(r);
    return user;
}

/* One stored row's texts appended to out, by page_line's tuple (the general way, for what pr_fast
 * leaves: a line the walk refuses, an escaped id, a time not a float). 0 or -1. */
static int
pr_stored_general(PyObject *row_time, PyObject *line, double start_ms, PyObject *users, PyObject *ids, PyObject *counts,
          Py_ssize_t max_users, Py_ssize_t max_ids, PyObject *out)
{
    PyObject *fields = page_line(NULL, line);
    if (fields == NULL)
        return -1;
    if (fields == Py_None) {
        Py_DECREF(fields);
        return 0;
    }
    int rc = -1;
    PyObject *ms = NULL, *text = NULL, *user = NULL;
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != 5) {
        PyErr_SetString(PyExc_TypeError, "page_line_py must return a tuple of 5");
        goto done;
    }
    PyObject *code = PyTuple_GET_ITEM(fields, 0), *user_json = PyTuple_GET_ITEM(fields, 1);
    PyObject *msg_id = PyTuple_GET_ITEM(fields, 2), *target = PyTuple_GET_ITEM(fields, 3);
    PyObject *tail = PyTuple_GET_ITEM(fields, 4);
    PyObject *as_float = PyNumber_Float(row_time); /* float(row[0]) */
    double t = as_float == NULL ? -1.0 : PyFloat_AS_DOUBLE(as_float);
    Py_XDECREF(as_float);
    if (as_float == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError)
            && !PyErr_ExceptionMatches(PyExc_OverflowError))
            goto done;
        PyErr_Clear(); /* no number: left out, as the reference leaves it */
        rc = 0;
        goto done;
    }
    volatile double x = t * 1000; /* as Python computes it: one rounding a step */
    x = x - start_ms;
    x = x + 0.5;
    if (!isfinite(x)) { /* math.floor raises: left out */
        rc = 0;
        goto done;
    }
    ms = PyLong_FromDouble(floor(x));
    if (ms == NULL)
        goto done;
    user = pr_user(users, user_json, counts, max_users, out);
    if (user == NULL)
        goto done;
    Py_UCS4 c = PyUnicode_READ_CHAR(code, 0);
    if (c == 'P' || c == 'U') {
        PyObject *line_no = pr_count(counts, 1);
        if (line_no == NULL)
            goto done;
        if (PyUnicode_GET_LENGTH(msg_id) > 0
            && (PyObject_SetItem(ids, msg_id, line_no) < 0 || pr_bound(ids, max_ids) < 0)) {
            Py_DECREF(line_no);
            goto done;
        }
        Py_DECREF(line_no);
        text = PyUnicode_FromFormat("[%S,\"%U\",%S,%U]", ms, code, user, tail);
    }
    else if (c == 'M') {
        PyObject *target_no = NULL;
        if (PyUnicode_GET_LENGTH(target) > 0) {
            target_no = PyDict_GetItemWithError(ids, target);
            if (target_no == NULL && PyErr_Occurred())
                goto done;
        }
        if (target_no == NULL)
            text = PyUnicode_FromFormat("[%S,\"M\",%S,%U,-1]", ms, user, tail);
        else
            text = PyUnicode_FromFormat("[%S,\"M\",%S,%U,%S]", ms, user, tail, target_no);
    }
    else
        text = PyUnicode_FromFormat("[%S,\"C\",%S,%U]", ms, user, tail);
    if (text == NULL || PyList_Append(out, text) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(text);
    Py_XDECREF(user);
    Py_XDECREF(ms);
    Py_DECREF(fields);
    return rc;
}

/* A growing scratch buffer for one page_rows call. */
typedef struct {
    char *s;
    size_t cap;
} PrBuf;

static char *
pr_room(PrBuf *b, size_t need)
{
    if (need > b->cap) {
        size_t cap = need < 8192 ? 8192 : need * 2;
        char *s = PyMem_Realloc(b->s, cap);
        if (s == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        b->s = s;
        b->cap = cap;
    }
    return b->s;
}

/* The str of n bytes of page JSON at s: ASCII when no string in it had an escape (a canonical
 * line's strings are ASCII, and pl_put writes them as they are, `<` as \u003c), else UTF-8. */
static PyObject *
pr_str(const char *s, Py_ssize_t n, int ascii)
{
    if (!ascii)
        return PyUnicode_DecodeUTF8(s, n, "strict");
    PyObject *str = PyUnicode_New(n, 127);
    if (str != NULL)
        memcpy(PyUnicode_1BYTE_DATA(str), s, (size_t)n);
    return str;
}

/* x's decimal digits at p; returns the end. */
static char *
pr_ll(char *p, long long x)
{
    char digits[24];
    int n = 0;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        *p++ = '-';
    while (n)
        *p++ = digits[--n];
    return p;
}

/* str(v) at p for an exact int within a long long; returns the end, or NULL for any other v. */
static char *
pr_int(char *p, PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return NULL;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return NULL;
    }
    return pr_ll(p, x);
}

/* The fields after the user number as page JSON (page_fields' tail: trailing empty ones left out
 * but the first) at p; returns the end. */
static char *
pr_tail(char *p, const PlStr *fields, int n)
{
    while (n > 1 && fields[n - 1].v.n == 0)
        n--;
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p = pl_put(p, &fields[i]);
    }
    return p;
}

/* One stored row's texts appended to out straight from the line's bytes (the same texts as
 * pr_stored_general, without page_line's tuple, the ms int or a format call): 0 or -1, or 1 when
 * the row goes the general way (nothing was done: a line the walk refuses, an escaped id, a time
 * that is not a float). */
static int
pr_fast(PyObject *row_time, PyObject *line, double start_ms, PyObject *users, PyObject *ids, PyObject *counts,
        Py_ssize_t max_users, Py_ssize_t max_ids, PyObject *out, PrBuf *scratch)
{
    if (!PyFloat_CheckExact(row_time))
        return 1;
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(line);
    Py_ssize_t len = PyBytes_GET_SIZE(line);
    PlRecord rec;
    if (pl_walk(bytes, len, &rec))
        return 1;
    PlStr *tags = rec.tags;
    char code = pl_code(rec.cmd);
    if (!code)
        return 0; /* page_line: None */
    PlStr msg_id = {{NULL, 0}, 0}, target = {{NULL, 0}, 0};
    if (code == 'P' || code == 'U')
        msg_id = tags[T_ID];
    else if (code == 'M')
        target = tags[T_TARGET];
    if (msg_id.esc || target.esc)
        return 1;
    volatile double x = PyFloat_AS_DOUBLE(row_time) * 1000; /* as Python computes it: one rounding a step */
    x = x - start_ms;
    x = x + 0.5;
    if (!isfinite(x))
        return 0; /* math.floor raises: left out */
    double ms = floor(x);
    if (!(ms > -9e18 && ms < 9e18))
        return 1; /* an int beyond a long long: the general way prints it */
    PlStr urow[4] = {rec.user.v.s != NULL && rec.user.v.n > 0 ? rec.user : tags[T_LOGIN], tags[T_NAME],
                     tags[T_COLOR], tags[T_BADGES]};
    PlStr fields[3] = {rec.text};
    int nfields = 1;
    if (code == 'P') {
        fields[1] = tags[T_RNAME];
        fields[2] = tags[T_RBODY];
        nfields = 3;
    }
    else if (code == 'U') {
        fields[1] = tags[T_SYSTEM].v.n > 0 ? tags[T_SYSTEM] : tags[T_MSGID];
        nfields = 2;
    }
    /* the user's row, then the row's own text after it in the same buffer */
    char *buf = pr_room(scratch, (size_t)len * 6 + 160);
    if (buf == NULL)
        return -1;
    int uplain = 1, fplain = 1;
    for (int i = 0; i < 4; i++)
        uplain &= !urow[i].esc;
    for (int i = 0; i < nfields; i++)
        fplain &= !fields[i].esc;
    int n = 4;
    while (n > 1 && urow[n - 1].v.n == 0)
        n--;
    char *p = buf;
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p = pl_put(p, &urow[i]); /* a null (s == NULL, n == 0) is written "" */
    }
    *p++ = ']';
    PyObject *user_json = pr_str(buf, p - buf, uplain);
    if (user_json == NULL)
        return -1;
    int rc = -1;
    PyObject *user = NULL, *text = NULL;
    user = pr_user(users, user_json, counts, max_users, out);
    if (user == NULL)
        goto done;
    PyObject *target_no = NULL; /* borrowed */
    if (code == 'P' || code == 'U') {
        PyObject *line_no = pr_next(counts, 1);
        if (line_no == NULL)
            goto done;
        if (msg_id.v.n > 0) {
            PyObject *key = pl_plain(&msg_id);
            int bad = key == NULL || PyObject_SetItem(ids, key, line_no) < 0 || pr_bound_fast(ids, max_ids) < 0;
            Py_XDECREF(key);
            if (bad) {
                Py_DECREF(line_no);
                goto done;
            }
        }
        Py_DECREF(line_no);
    }
    else if (code == 'M' && target.v.n > 0) {
        PyObject *key = pl_plain(&target);
        if (key == NULL)
            goto done;
        target_no = PyDict_GetItemWithError(ids, key);
        Py_DECREF(key);
        if (target_no == NULL && PyErr_Occurred())
            goto done;
    }
    /* `[ms,"C",user,tail]`, a CLEARMSG's with `,target number` */
    char *t = p, *q = p;
    *q++ = '[';
    q = pr_ll(q, (long long)ms); /* ms is a whole number within a long long */
    *q++ = ',';
    *q++ = '"';
    *q++ = code;
    *q++ = '"';
    *q++ = ',';
    if ((q = pr_int(q, user)) == NULL)
        goto general_text;
    *q++ = ',';
    q = pr_tail(q, fields, nfields);
    if (code == 'M') {
        *q++ = ',';
        if (target_no == NULL) {
            *q++ = '-';
            *q++ = '1';
        }
        else if ((q = pr_int(q, target_no)) == NULL)
            goto general_text;
    }
    *q++ = ']';
    text = pr_str(t, q - t, fplain);
    goto append;
general_text: { /* a number the reference's state holds that is not a small int: printed by str() */
    PyObject *ms_obj = PyLong_FromDouble(ms);
    PyObject *tail = ms_obj == NULL ? NULL : pr_str(p, pr_tail(p, fields, nfields) - p, fplain);
    if (tail != NULL) {
        if (code == 'M' && target_no != NULL)
            text = PyUnicode_FromFormat("[%S,\"M\",%S,%U,%S]", ms_obj, user, tail, target_no);
        else if (code == 'M')
            text = PyUnicode_FromFormat("[%S,\"M\",%S,%U,-1]", ms_obj, user, tail);
        else
            text = PyUnicode_FromFormat("[%S,\"%c\",%S,%U]", ms_obj, (int)code, user, tail);
    }
    Py_XDECREF(tail);
    Py_XDECREF(ms_obj);
}
append:
    if (text == NULL || PyList_Append(out, text) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(text);
    Py_XDECREF(user);
    Py_DECREF(user_json);
    return rc;
}

/* One stored row's texts appended to out. 0 or -1. */
static int
pr_stored(PyObject *row_time, PyObject *line, double start_ms, PyObject *users, PyObject *ids, PyObject *counts,
          Py_ssize_t max_users, Py_ssize_t max_ids, PyObject *out, PrBuf *scratch)
{
    int rc = pr_fast(row_time, line, start_ms, users, ids, counts, max_users, max_ids, out, scratch);
    if (rc <= 0)
        return rc;
    return pr_stored_general(row_time, line, start_ms, users, ids, counts, max_users, max_ids, out);
}

/* Whether a row of five may add rows to the page, as page_rows_py decides it (0: a dict whose
 * `command` is absent, None or a str the page does not show; texts is not asked), or -1. */
static int
pr_shown(PyObject *record)
{
    static const char *const shown[] = {"PRIVMSG", "USERNOTICE", "CLEARMSG", "CLEARCHAT"};
    if (!PyDict_CheckExact(record))
        return 1;
    PyObject *command = PyDict_GetItemWithError(record, str_command);
    if (command == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (command == Py_None)
        return 0;
    if (!PyUnicode_CheckExact(command))
        return 1;
    for (int i = 0; i < 4; i++)
        if (PyUnicode_CompareWithASCIIString(command, shown[i]) == 0)
            return 1;
    return 0;
}

static PyObject *
page_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *users, *ids, *counts, *texts;
    double start_ms;
    Py_ssize_t max_users, max_ids;
    if (!PyArg_ParseTuple(args, "OdO!O!O!O(nn):export_page_rows", &rows, &start_ms, &PyDict_Type, &users,
                          &PyDict_Type, &ids, &PyList_Type, &counts, &texts, &max_users, &max_ids))
        return NULL;
    if (PyList_GET_SIZE(counts) != 2) {
        PyErr_SetString(PyExc_TypeError, "export_page_rows: counts is a list of two ints");
        return NULL;
    }
    if (str_move_to_end == NULL) {
        str_move_to_end = PyUnicode_InternFromString("move_to_end");
        str_popitem = PyUnicode_InternFromString("popitem");
        str_command = PyUnicode_InternFromString("command");
        if (str_move_to_end == NULL || str_popitem == NULL || str_command == NULL)
            return NULL;
    }
    PyObject *seq = PySequence_Fast(rows, "export_page_rows takes a sequence of rows");
    if (seq == NULL)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    PrBuf scratch = {NULL, 0};
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(row) || (PyTuple_GET_SIZE(row) != 5 && PyTuple_GET_SIZE(row) != 4)) {
            PyErr_SetString(PyExc_TypeError, "export_page_rows: a row is a tuple of 4 or 5");
            goto fail;
        }
        if (PyTuple_GET_SIZE(row) == 5) {
            int shown = pr_shown(PyTuple_GET_ITEM(row, 4));
            if (shown < 0)
                goto fail;
            if (!shown)
                continue;
            PyObject *r = PyObject_CallFunctionObjArgs(texts, PyTuple_GET_ITEM(row, 4), out, NULL);
            if (r == NULL)
                goto fail;
            Py_DECREF(r);
            continue;
        }
        PyObject *line = PyTuple_GET_ITEM(row, 2);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "export_page_rows: a stored line is bytes");
            goto fail;
        }
        if (pr_starts_page(line)
            && pr_stored(PyTuple_GET_ITEM(row, 0), line, start_ms, users, ids, counts, max_users, max_ids, out,
                         &scratch)
                   < 0)
            goto fail;
    }
    Py_DECREF(seq);
    PyMem_Free(scratch.s);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    PyMem_Free(scratch.s);
    return NULL;
}

/* ---- Compiled twin of export.ass.message_view_py: what the ASS box shows of a stored line ----
 *
 * The reference decodes the line and renders the message (export.ass.message_view: _spans, _plain,
 * wrap, _render). This takes the usual case from the line's bytes: a PRIVMSG whose names, colour and
 * id are written without an escape (printable ASCII: nothing for display_name to make printable,
 * one character a byte, case folded as ASCII) and whose text is not a `/me` action (its escapes
 * decoded, breakers as spaces, wrapped by code points), rendered as the reference renders it;
 * anything else goes to the reference (configure_export_ass_message).
 * tests/test_export_ass_line.py holds the two equal. */

static PyObject *ass_reference;

static PyObject *
configure_ass_message(PyObject *self, PyObject *reference)
{
    Py_XINCREF(reference);
    Py_XSETREF(ass_reference, reference);
    Py_RETURN_NONE;
}

static PyObject *
ass_refer(PyObject *line)
{
    if (ass_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_export_ass_message was not called");
        return NULL;
    }
    return PyObject_CallOneArg(ass_reference, line);
}

/* export.ass.PALETTE */
static const char *const ASS_PALETTE[] = {
    "#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500", "#2E8B57",
    "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2", "#00FF7F",
};

#define ASS_WIDTH 56 /* export.ass.LINE_CHARS */

static inline int
ass_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static inline unsigned char
ass_upper(unsigned char ch)
{
    return ch >= 'a' && ch <= 'z' ? (unsigned char)(ch - 32) : ch;
}

static inline unsigned char
ass_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

static inline int
ass_nonempty(const PlStr *s)
{
    return s->v.s != NULL && s->v.n > 0;
}

static PyObject *
ass_message(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "export_ass_message takes bytes");
        return NULL;
    }
    PlRecord r;
    if (pl_walk((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), &r) || r.cmd.n != 7
        || memcmp(r.cmd.s, "PRIVMSG", 7) != 0)
        return ass_refer(arg);
    const PlStr *login_tag = &r.tags[T_LOGIN], *shown = &r.tags[T_NAME], *color = &r.tags[T_COLOR];
    const PlStr *id = &r.tags[T_ID];
    if (r.user.esc || r.sender.esc || login_tag->esc || shown->esc || color->esc || id->esc)
        return ass_refer(arg);
    /* fields.display_name: the display name, with the login when they differ beyond case */
    const PlStr *login = ass_nonempty(&r.user) ? &r.user : ass_nonempty(login_tag) ? login_tag : NULL;
    Span name_a = {(const unsigned char *)"?", 1}, name_b = {NULL, 0};
    if (login == NULL) {
        if (ass_nonempty(shown))
            name_a = shown->v;
        else if (ass_nonempty(&r.sender))
            name_a = r.sender.v;
    }
    else if (!ass_nonempty(shown))
        name_a = login->v;
    else {
        name_a = shown->v;
        int same = shown->v.n == login->v.n;
        for (Py_ssize_t i = 0; same && i < shown->v.n; i++)
            same = ass_lower(shown->v.s[i]) == ass_lower(login->v.s[i]);
        if (!same)
            name_b = login->v; /* "shown (login)" */
    }
    /* user_color: the colour tag when it is one, else the stable colour of user, login or sender */
    char rgb[8];
    if (ass_nonempty(color) && color->v.n == 7 && color->v.s[0] == '#' && ass_hex(color->v.s[1])
        && ass_hex(color->v.s[2]) && ass_hex(color->v.s[3]) && ass_hex(color->v.s[4]) && ass_hex(color->v.s[5])
        && ass_hex(color->v.s[6])) {
        for (int i = 0; i < 7; i++)
            rgb[i] = (char)ass_upper(color->v.s[i]);
    }
    else {
        const PlStr *who = ass_nonempty(&r.user) ? &r.user
                           : ass_nonempty(login_tag) ? login_tag
                           : ass_nonempty(&r.sender) ? &r.sender
                                                     : NULL;
        uint32_t h = 0x811C9DC5u;
        for (Py_ssize_t i = 0; who != NULL && i < who->v.n; i++)
            h = (h ^ who->v.s[i]) * 0x01000193u;
        memcpy(rgb, ASS_PALETTE[h % 15], 7);
    }
    rgb[7] = 0;
    /* the plain text: name, ": ", text (the text's breakers as spaces; a name holds none) */
    Py_ssize_t n_name = name_a.n + (name_b.s != NULL ? name_b.n + 3 : 0);
    Py_ssize_t n_bytes = r.text.v.s != NULL ? r.text.v.n : 0;
    Py_ssize_t room = n_name + 2 + n_bytes + 8;
    Py_UCS4 *plain = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)room);
    Py_ssize_t *cuts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(room + 2) * 2);
    /* a line: its characters, each escaped to at most two, and two overrides */
    Py_UCS4 *buf = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(2 * room + 96));
    PyObject *lines = NULL;
    if (plain == NULL || cuts == NULL || buf == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < name_a.n; i++)
        plain[total++] = name_a.s[i];
    if (name_b.s != NULL) {
        plain[total++] = ' ';
        plain[total++] = '(';
        for (Py_ssize_t i = 0; i < name_b.n; i++)
            plain[total++] = name_b.s[i];
        plain[total++] = ')';
    }
    plain[total++] = ':';
    plain[total++] = ' ';
    int special = 0;
    const unsigned char *q = r.text.v.s, *e = q + n_bytes;
    if (n_bytes >= 6 && memcmp(q, "\\u0001", 6) == 0) { /* maybe a `/me` action: the reference's */
        PyMem_Free(plain);
        PyMem_Free(cuts);
        PyMem_Free(buf);
        return ass_refer(arg);
    }
    while (q < e) {
        Py_UCS4 ch = *q;
        if (ch != '\\')
            q++;
        else if (q[1] != 'u') { /* \" \\ and the controls \n \r \t \b \f (breakers) */
            ch = q[1] == '"' ? '"' : q[1] == '\\' ? '\\' : ' ';
            q += 2;
        }
        else {
            ch = (Py_UCS4)cl_hex4(q + 2);
            q += 6;
            if (ch >= 0xD800 && ch <= 0xDBFF) { /* a pair (pl_walk saw no lone half) */
                ch = 0x10000 + ((ch - 0xD800) << 10) + ((Py_UCS4)cl_hex4(q + 2) - 0xDC00);
                q += 6;
            }
            if (ch < 0x20 || (ch >= 0x7F && ch <= 0x9F) || ch == 0x2028 || ch == 0x2029)
                ch = ' '; /* _BREAKERS */
        }
        plain[total++] = ch;
    }
    for (Py_ssize_t i = 0; i < total && !special; i++)
        special = plain[i] == '\\' || plain[i] == '{' || plain[i] == '}';
    /* wrap */
    int ncuts = 0;
    Py_ssize_t start = 0;
    while (total - start > ASS_WIDTH) {
        Py_ssize_t cut = -1;
        for (Py_ssize_t i = start + ASS_WIDTH; i >= start + 1; i--) /* rfind(" ", start + 1, start + width + 1) */
            if (plain[i] == ' ') {
                cut = i;
                break;
            }
        if (cut <= start) {
            cuts[2 * ncuts] = start;
            cuts[2 * ncuts + 1] = start + ASS_WIDTH;
            start += ASS_WIDTH;
        }
        else {
            cuts[2 * ncuts] = start;
            cuts[2 * ncuts + 1] = cut;
            start = cut + 1;
        }
        ncuts++;
    }
    cuts[2 * ncuts] = start;
    cuts[2 * ncuts + 1] = total;
    ncuts++;
    /* _render: each line opens each span's overrides; escape() of the text where it needs it */
    char over[2][40];
    int n_over[2];
    n_over[0] = snprintf(over[0], sizeof(over[0]), "{\\c&H%c%c%c%c%c%c&\\b1\\i0\\s0}", rgb[5], rgb[6], rgb[3],
                         rgb[4], rgb[1], rgb[2]);
    n_over[1] = snprintf(over[1], sizeof(over[1]), "%s", "{\\c&HFFFFFF&\\b0\\i0\\s0}");
    Py_ssize_t pieces[2][2] = {{0, n_name}, {n_name, total}};
    lines = PyList_New(0);
    if (lines == NULL)
        goto fail;
    for (int k = 0; k < ncuts; k++) {
        Py_UCS4 *o = buf;
        for (int j = 0; j < 2; j++) {
            Py_ssize_t lo = pieces[j][0] > cuts[2 * k] ? pieces[j][0] : cuts[2 * k];
            Py_ssize_t hi = pieces[j][1] < cuts[2 * k + 1] ? pieces[j][1] : cuts[2 * k + 1];
            if (lo >= hi)
                continue;
            for (int i = 0; i < n_over[j]; i++)
                *o++ = (unsigned char)over[j][i];
            for (Py_ssize_t i = lo; i < hi; i++) {
                Py_UCS4 ch = plain[i];
                if (special && (ch == '{' || ch == '}'))
                    *o++ = '\\';
                *o++ = ch;
                if (special && ch == '\\')
                    *o++ = 0x2060; /* WORD_JOINER */
            }
        }
        if (o == buf)
            continue; /* a text ending in the space it was cut at leaves an empty last line */
        PyObject *text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, o - buf);
        if (text == NULL || PyList_Append(lines, text) < 0) {
            Py_XDECREF(text);
            goto fail;
        }
        Py_DECREF(text);
    }
    if (PyList_GET_SIZE(lines) == 0) {
        PyObject *text = PyUnicode_FromString("{\\s0}");
        if (text == NULL || PyList_Append(lines, text) < 0) {
            Py_XDECREF(text);
            goto fail;
        }
        Py_DECREF(text);
    }
    /* the message id and the login a CLEARCHAT names (lowercase) */
    PyObject *mid = Py_None;
    Py_INCREF(mid);
    if (ass_nonempty(id)) {
        Py_DECREF(mid);
        mid = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, id->v.s, id->v.n);
        if (mid == NULL)
            goto fail;
    }
    Py_ssize_t n_login = login != NULL ? login->v.n : 0;
    for (Py_ssize_t i = 0; i < n_login; i++)
        buf[i] = ass_lower(login->v.s[i]);
    PyObject *lower = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n_login);
    if (lower == NULL) {
        Py_DECREF(mid);
        goto fail;
    }
    PyMem_Free(plain);
    PyMem_Free(cuts);
    PyMem_Free(buf);
    return Py_BuildValue("(iNNN)", ncuts, lines, mid, lower);
fail:
    Py_XDECREF(lines);
    PyMem_Free(plain);
    PyMem_Free(cuts);
    PyMem_Free(buf);
    return NULL;
}

static PyMethodDef methods[] = {
    {"export_scan_batch", scan_batch, METH_O, "Twin of export.scan.scan_batch_py."},
    {"export_page_line", page_line, METH_O, "Twin of export.html.page_line_py."},
    {"export_page_rows", page_rows, METH_VARARGS, "Twin of export.html.page_rows_py."},
    {"export_ass_message", ass_message, METH_O, "Twin of export.ass.message_view_py."},
    {"configure_export_ass_message", configure_ass_message, METH_O,
     "configure_export_ass_message(reference): what lines it does not read go to."},
    {"configure_export_page_line", configure_page_line, METH_O,
     "configure_export_page_line(reference): what lines it does not read go to."},
    {NULL, NULL, 0, NULL},
};

int
native_add_export(PyObject *m)
{
    return PyModule_AddFunctions(m, methods);
}
