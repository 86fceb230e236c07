/* Compiled twin of replay.compact.twitch_line_py (the pure-Python reference): one pass over a
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
 * Built by setuptools as an optional extension: without a C compiler the install goes on and the
 * replay runs the pure engine (formats/speedups.py says so once).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define MAX_TAGS 64

static const char hexdigits[] = "0123456789abcdef";

static inline char *
put_u(char *p, Py_UCS4 c)
{
    p[0] = '\\';
    p[1] = 'u';
    p[2] = hexdigits[(c >> 12) & 0xf];
    p[3] = hexdigits[(c >> 8) & 0xf];
    p[4] = hexdigits[(c >> 4) & 0xf];
    p[5] = hexdigits[c & 0xf];
    return p + 6;
}

/* one character as json.dumps(ensure_ascii=True) writes it inside a string (at most 12 bytes) */
static inline char *
put_char(char *p, Py_UCS4 c)
{
    if (c >= ' ' && c <= '~' && c != '"' && c != '\\') {
        *p++ = (char)c;
        return p;
    }
    switch (c) {
    case '"': *p++ = '\\'; *p++ = '"'; return p;
    case '\\': *p++ = '\\'; *p++ = '\\'; return p;
    case '\n': *p++ = '\\'; *p++ = 'n'; return p;
    case '\r': *p++ = '\\'; *p++ = 'r'; return p;
    case '\t': *p++ = '\\'; *p++ = 't'; return p;
    case '\b': *p++ = '\\'; *p++ = 'b'; return p;
    case '\f': *p++ = '\\'; *p++ = 'f'; return p;
    }
    if (c >= 0x10000) {
        Py_UCS4 v = c - 0x10000;
        p = put_u(p, 0xd800 | ((v >> 10) & 0x3ff));
        return put_u(p, 0xdc00 | (v & 0x3ff));
    }
    return put_u(p, c);
}

static inline char *
put_lit(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* "line[start:end]" as a JSON string */
static inline __attribute__((always_inline)) char *
put_str(char *p, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    *p++ = '"';
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

static inline __attribute__((always_inline)) Py_ssize_t
find_char(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_UCS4 ch)
{
    for (Py_ssize_t i = start; i < end; i++)
        if (PyUnicode_READ(kind, data, i) == ch)
            return i;
    return -1;
}

static inline __attribute__((always_inline)) Py_ssize_t
rfind_char(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_UCS4 ch)
{
    for (Py_ssize_t i = end - 1; i >= start; i--)
        if (PyUnicode_READ(kind, data, i) == ch)
            return i;
    return -1;
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

/* The last command, kept to hand out the same object for the same command (no allocation). */
static PyObject *last_command = NULL;

static PyObject *
command_object(const char *upper, Py_ssize_t n)
{
    if (last_command != NULL && PyUnicode_GET_LENGTH(last_command) == n
        && memcmp(PyUnicode_1BYTE_DATA(last_command), upper, n) == 0)
        return Py_NewRef(last_command);
    PyObject *command = PyUnicode_FromStringAndSize(upper, n);
    if (command != NULL)
        Py_XSETREF(last_command, Py_NewRef(command));
    return command;
}

/* The body, inlined once per string kind so that every character read is a plain load. */
static inline __attribute__((always_inline)) PyObject *
twitch_line_kind(PyObject *line, const int kind, PyObject *receiver, double now)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    const void *data = PyUnicode_DATA(line);
    /* the reference str.strip()s the line first: any whitespace at either end is its business */
    if (n == 0 || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0))
        || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, n - 1)))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r' || c == '\n' || c == '\0' || (c == ' ' && PyUnicode_READ(kind, data, i + 1) == ' '))
            Py_RETURN_NONE;
    }
    /* From here on: single spaces only, none at either end, so every word is non-empty. */
    Tag tags[MAX_TAGS];
    Py_ssize_t ntags = -1;  /* -1: no tags (null) */
    Py_ssize_t pos = 0;
    double server_time = -1.0;
    if (PyUnicode_READ(kind, data, 0) == '@') {
        Py_ssize_t end = find_char(kind, data, 0, n, ' ');
        if (end < 0)
            Py_RETURN_NONE;
        ntags = 0;
        Py_ssize_t item = 1;
        for (;;) {
            Py_ssize_t stop = find_char(kind, data, item, end, ';');
            if (stop < 0)
                stop = end;
            if (ntags == MAX_TAGS)
                Py_RETURN_NONE;
            Tag *t = &tags[ntags];
            t->key = item;
            t->value = -1;
            t->value_end = stop;
            Py_ssize_t eq = find_char(kind, data, item, stop, '=');
            t->key_end = eq < 0 ? stop : eq;
            if (eq >= 0)
                t->value = eq + 1;
            if (t->key_end == t->key)
                Py_RETURN_NONE;  /* an empty name */
            for (Py_ssize_t i = t->key; i < t->key_end; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                if (c < ' ' || c > '~' || c == '"' || c == '\\')
                    Py_RETURN_NONE;  /* a name JSON would escape, or not ASCII */
            }
            /* insertion by name (Twitch sends them sorted: usually no move at all) */
            Py_ssize_t j = ntags;
            while (j > 0) {
                int cmp = key_cmp(kind, data, &tags[j - 1], t);
                if (cmp == 0)
                    Py_RETURN_NONE;  /* a repeated name: the dict keeps the last value */
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
                Py_RETURN_NONE;  /* beyond what a double holds exactly: the reference's division */
            long long ms = 0;
            int digits = len > 0;
            for (Py_ssize_t i = t->value; i < t->value_end; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                if (c == '\\')
                    Py_RETURN_NONE;
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
            Py_RETURN_NONE;
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
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < cmd_len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, pos + i);
        if (c >= 'a' && c <= 'z')
            c -= 'a' - 'A';
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            Py_RETURN_NONE;  /* str.upper() of anything else is the reference's business */
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
    if (buf == NULL)
        return PyErr_NoMemory();
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
    char *r = PyOS_double_to_string(now, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL) {
        if (buf != stack)
            PyMem_Free(buf);
        return NULL;
    }
    p = put_lit(p, r);
    PyMem_Free(r);
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
    PyObject *command = command_object(upper, cmd_len);
    PyObject *first = first_start >= 0 ? PyUnicode_Substring(line, first_start, first_end) : Py_NewRef(Py_None);
    PyObject *st = server_time >= 0 ? PyFloat_FromDouble(server_time) : Py_NewRef(Py_None);
    if (head_b == NULL || tail_b == NULL || command == NULL || first == NULL || st == NULL) {
        Py_XDECREF(head_b);
        Py_XDECREF(tail_b);
        Py_XDECREF(command);
        Py_XDECREF(first);
        Py_XDECREF(st);
        return NULL;
    }
    PyObject *result = PyTuple_New(5);
    if (result == NULL) {
        Py_DECREF(head_b);
        Py_DECREF(tail_b);
        Py_DECREF(command);
        Py_DECREF(first);
        Py_DECREF(st);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, command);
    PyTuple_SET_ITEM(result, 1, first);
    PyTuple_SET_ITEM(result, 2, st);
    PyTuple_SET_ITEM(result, 3, head_b);
    PyTuple_SET_ITEM(result, 4, tail_b);
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
    if (!isfinite(now))
        Py_RETURN_NONE;
    switch (PyUnicode_KIND(args[0])) {
    case PyUnicode_1BYTE_KIND: return twitch_line_kind(args[0], PyUnicode_1BYTE_KIND, args[1], now);
    case PyUnicode_2BYTE_KIND: return twitch_line_kind(args[0], PyUnicode_2BYTE_KIND, args[1], now);
    default: return twitch_line_kind(args[0], PyUnicode_4BYTE_KIND, args[1], now);
    }
}

static PyMethodDef methods[] = {
    {"twitch_line", (PyCFunction)(void (*)(void))twitch_line, METH_FASTCALL,
     "twitch_line(line, receiver, now): (command, first_param, server_time, head, tail), or None "
     "for a line the reference must read."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "replay._core", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModule_Create(&module);
}
