/* Compiled twin of formats.irc.parse_compat_py (the pure-Python reference).
 *
 * One source of truth: this handles only the common shape of a line (no CR, LF or NUL, no run of
 * spaces, no whitespace at either end, no prefix or tags without a command) and hands every other
 * line, and every line it would reject, to the pure-Python reference, which raises the error. So
 * errors and odd lines always come from the reference; tests/test_speedups.py holds the two equal
 * over random lines (hypothesis) and the real corpus.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "jsonchars.h"
#include "parts.h"

static PyObject *unescape_fn = NULL;  /* formats.irc.unescape_tag_value_compat */
static PyObject *fallback_fn = NULL;  /* formats.irc.parse_compat_py */
static PyObject *encode_fallback_fn = NULL;  /* formats.canonical.canonical_bytes_py */

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *unescape, *fallback;
    if (!PyArg_ParseTuple(args, "OO", &fallback, &unescape))
        return NULL;
    Py_INCREF(unescape);
    Py_INCREF(fallback);
    Py_XSETREF(unescape_fn, unescape);
    Py_XSETREF(fallback_fn, fallback);
    Py_RETURN_NONE;
}

static PyObject *
configure_encoder(PyObject *self, PyObject *fallback)
{
    Py_INCREF(fallback);
    Py_XSETREF(encode_fallback_fn, fallback);
    Py_RETURN_NONE;
}

/* Tag names repeat line after line in the same order (Twitch sends a fixed set), so the name
 * objects of the last line are kept by position and reused when equal: no allocation and no
 * hashing for them. Equal strings make equal dicts, so this changes no result. */
#define KEY_CACHE 64
static PyObject *key_cache[KEY_CACHE];

static PyObject *
tag_key(PyObject *line, int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_ssize_t index)
{
    Py_ssize_t len = end - start;
    if (index < KEY_CACHE) {
        PyObject *cached = key_cache[index];
        if (cached != NULL && PyUnicode_GET_LENGTH(cached) == len) {
            int ckind = PyUnicode_KIND(cached);
            const void *cdata = PyUnicode_DATA(cached);
            Py_ssize_t i = 0;
            while (i < len && PyUnicode_READ(ckind, cdata, i) == PyUnicode_READ(kind, data, start + i))
                i++;
            if (i == len)
                return Py_NewRef(cached);
        }
    }
    PyObject *key = PyUnicode_Substring(line, start, end);
    if (key != NULL && index < KEY_CACHE)
        Py_XSETREF(key_cache[index], Py_NewRef(key));
    return key;
}

/* tags from line[start:end]: items split at ';', each split at its first '=' (no '=': True);
 * values holding a backslash go through the reference unescaping. */
static PyObject *
parse_tags(PyObject *line, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *tags = PyDict_New();
    if (tags == NULL)
        return NULL;
    Py_ssize_t item = start, index = 0;
    for (;; index++) {
        Py_ssize_t stop = find_char(kind, data, item, end, ';');
        if (stop < 0)
            stop = end;
        Py_ssize_t eq = -1, backslash = 0;
        for (Py_ssize_t i = item; i < stop; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == '=' && eq < 0)
                eq = i;
            else if (c == '\\' && eq >= 0)
                backslash = 1;
        }
        PyObject *key, *value;
        if (eq < 0) {
            key = tag_key(line, kind, data, item, stop, index);
            value = Py_NewRef(Py_True);
        } else {
            key = tag_key(line, kind, data, item, eq, index);
            value = PyUnicode_Substring(line, eq + 1, stop);
            if (value != NULL && backslash) {
                PyObject *unescaped = PyObject_CallOneArg(unescape_fn, value);
                Py_SETREF(value, unescaped);
            }
        }
        if (key == NULL || value == NULL || PyDict_SetItem(tags, key, value) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(tags);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (stop >= end)
            break;
        item = stop + 1;
    }
    return tags;
}

static PyObject *
upper_command(PyObject *line, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *command = PyUnicode_Substring(line, start, end);
    if (command == NULL)
        return NULL;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            PyObject *upper = PyObject_CallMethod(command, "upper", NULL);
            Py_DECREF(command);
            return upper;
        }
    }
    return command;
}

/* list of line[start:end] split at single spaces (the caller made sure there is no run of them) */
static int
append_words(PyObject *params, PyObject *line, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t word = start;
    for (;;) {
        Py_ssize_t stop = find_char(kind, data, word, end, ' ');
        if (stop < 0)
            stop = end;
        PyObject *s = PyUnicode_Substring(line, word, stop);
        if (s == NULL || PyList_Append(params, s) < 0) {
            Py_XDECREF(s);
            return -1;
        }
        Py_DECREF(s);
        if (stop >= end)
            return 0;
        word = stop + 1;
    }
}

static PyObject *
fallback(PyObject *line)
{
    return PyObject_CallOneArg(fallback_fn, line);
}

static PyObject *
parse_compat(PyObject *self, PyObject *line)
{
    if (fallback_fn == NULL || unescape_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_parse_compat was not called");
        return NULL;
    }
    if (!PyUnicode_CheckExact(line))
        return fallback(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    /* the reference str.strip()s the line first: any whitespace at either end is its business */
    if (n == 0 || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0))
        || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, n - 1)))
        return fallback(line);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r' || c == '\n' || c == '\0' || (c == ' ' && PyUnicode_READ(kind, data, i + 1) == ' '))
            return fallback(line);
    }
    /* From here on: single spaces only, none at either end, so every word is non-empty. */
    PyObject *tags = NULL, *sender = NULL, *user = NULL, *host = NULL, *command = NULL, *params = NULL;
    Py_ssize_t pos = 0;
    if (PyUnicode_READ(kind, data, 0) == '@') {
        Py_ssize_t end = find_char(kind, data, 0, n, ' ');
        if (end < 0)
            return fallback(line);
        tags = parse_tags(line, kind, data, 1, end);
        if (tags == NULL)
            return NULL;
        pos = end + 1;
    }
    if (PyUnicode_READ(kind, data, pos) == ':') {
        Py_ssize_t end = find_char(kind, data, pos, n, ' ');
        if (end < 0) {
            Py_XDECREF(tags);
            return fallback(line);
        }
        Py_ssize_t pstart = pos + 1, pend = end;
        Py_ssize_t at = rfind_char(kind, data, pstart, pend, '@');
        if (at >= 0) {
            host = PyUnicode_Substring(line, at + 1, pend);
            if (host == NULL)
                goto error;
            pend = at;
        }
        Py_ssize_t bang = find_char(kind, data, pstart, pend, '!');
        if (bang >= 0) {
            user = PyUnicode_Substring(line, bang + 1, pend);
            if (user == NULL)
                goto error;
            pend = bang;
        }
        sender = PyUnicode_Substring(line, pstart, pend);
        if (sender == NULL)
            goto error;
        pos = end + 1;
    }
    params = PyList_New(0);
    if (params == NULL)
        goto error;
    Py_ssize_t end = find_char(kind, data, pos, n, ' ');
    if (end < 0) {
        command = upper_command(line, kind, data, pos, n);
        if (command == NULL)
            goto error;
    } else {
        command = upper_command(line, kind, data, pos, end);
        if (command == NULL)
            goto error;
        Py_ssize_t rest = end + 1;
        if (PyUnicode_READ(kind, data, rest) == ':') {
            PyObject *s = PyUnicode_Substring(line, rest + 1, n);
            if (s == NULL || PyList_Append(params, s) < 0) {
                Py_XDECREF(s);
                goto error;
            }
            Py_DECREF(s);
        } else {
            Py_ssize_t trailing = -1;
            for (Py_ssize_t i = rest; i + 1 < n; i++) {
                if (PyUnicode_READ(kind, data, i) == ' ' && PyUnicode_READ(kind, data, i + 1) == ':') {
                    trailing = i;
                    break;
                }
            }
            if (append_words(params, line, kind, data, rest, trailing < 0 ? n : trailing) < 0)
                goto error;
            if (trailing >= 0) {
                PyObject *s = PyUnicode_Substring(line, trailing + 2, n);
                if (s == NULL || PyList_Append(params, s) < 0) {
                    Py_XDECREF(s);
                    goto error;
                }
                Py_DECREF(s);
            }
        }
    }
    return Py_BuildValue(
        "(NNNNNN)", command, params,
        sender ? sender : Py_NewRef(Py_None), user ? user : Py_NewRef(Py_None),
        host ? host : Py_NewRef(Py_None), tags ? tags : Py_NewRef(Py_None));
error:
    Py_XDECREF(tags);
    Py_XDECREF(sender);
    Py_XDECREF(user);
    Py_XDECREF(host);
    Py_XDECREF(command);
    Py_XDECREF(params);
    return NULL;
}


/* ---- canonical bytes of an archive record (twin of formats.canonical.canonical_bytes_py) ----
 *
 * What json.dumps(record, separators=(",", ":"), sort_keys=True) prints, for a record of exactly
 * the archive schema (a dict of the nine keys, values of the schema's types, finite numbers within
 * 64 bits, bool only as a tag's true). Anything else goes to the pure reference. Floats are
 * printed by the same routine as float.__repr__, strings escaped as json's ensure_ascii does. */

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Out;

static int
out_reserve(Out *o, Py_ssize_t extra)
{
    if (o->len + extra <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap * 2;
    while (cap < o->len + extra)
        cap *= 2;
    char *buf = PyMem_Realloc(o->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = buf;
    o->cap = cap;
    return 0;
}

static int
out_raw(Out *o, const char *s, Py_ssize_t n)
{
    if (out_reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* 1: written; 0: not a str (caller falls back); -1: error */
static int
out_str(Out *o, PyObject *s)
{
    if (!PyUnicode_CheckExact(s))
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_ASCII(s)) {
        const Py_UCS1 *d = PyUnicode_1BYTE_DATA(s);
        Py_ssize_t i = jc_plain_run(d, d + n, 1) - d;
        if (i == n) {  /* nothing to escape: copied whole */
            if (out_reserve(o, n + 2) < 0)
                return -1;
            char *p = o->buf + o->len;
            p[0] = '"';
            memcpy(p + 1, d, n);
            p[n + 1] = '"';
            o->len += n + 2;
            return 1;
        }
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (out_reserve(o, 2 + 12 * n) < 0)  /* worst case: a surrogate pair per character */
        return -1;
    char *p = o->buf + o->len;
    *p++ = '"';
    for (Py_ssize_t i = 0; i < n; i++)
        p = put_char(p, PyUnicode_READ(kind, data, i));
    *p++ = '"';
    o->len = p - o->buf;
    return 1;
}

/* 1 written, 0 fall back, -1 error */
static int
out_number(Out *o, PyObject *v)
{
    char tmp[64];
    Py_ssize_t len;
    int rc = put_number(tmp, v, &len);
    if (rc != 1)
        return rc;
    return out_raw(o, tmp, len) < 0 ? -1 : 1;
}

static int
out_str_or_null(Out *o, PyObject *v)
{
    if (v == Py_None)
        return out_raw(o, "null", 4) < 0 ? -1 : 1;
    return out_str(o, v);
}

/* Tag maps repeat their names line after line, as the very same objects (the parser reuses them),
 * so the sorted order of the last map is kept and reused when its names are the same objects in the
 * same order. The same objects give the same order, so this changes no byte. */
#define SORT_CACHE 64
static PyObject *sort_cache_keys[SORT_CACHE];
static Py_ssize_t sort_cache_order[SORT_CACHE];
static Py_ssize_t sort_cache_n = -1;

/* a dict with str keys, in sorted key order; values by `tags` (str or True) or as numbers */
static int
out_sorted_dict(Out *o, PyObject *d, int tags)
{
    if (!PyDict_CheckExact(d))
        return 0;
    Py_ssize_t n = PyDict_GET_SIZE(d);
    if (n > SORT_CACHE)
        return 0;  /* a huge map: the pure path */
    PyObject *keys[SORT_CACHE], *values[SORT_CACHE];
    Py_ssize_t order[SORT_CACHE];
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k))
            return 0;
        keys[i] = k;
        values[i] = v;
        i++;
    }
    int cached = tags && n == sort_cache_n;
    for (i = 0; cached && i < n; i++)
        cached = keys[i] == sort_cache_keys[i];
    if (cached) {
        memcpy(order, sort_cache_order, n * sizeof(Py_ssize_t));
    } else {
        for (i = 0; i < n; i++) {  /* insertion sort of the indices by name */
            Py_ssize_t j = i;
            while (j > 0) {
                int cmp = PyUnicode_Compare(keys[order[j - 1]], keys[i]);
                if (cmp == -1 && PyErr_Occurred())
                    return -1;
                if (cmp <= 0)
                    break;
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
        if (tags) {
            for (i = 0; i < n; i++)
                Py_INCREF(keys[i]);
            for (i = 0; i < sort_cache_n; i++)
                Py_DECREF(sort_cache_keys[i]);
            memcpy(sort_cache_keys, keys, n * sizeof(PyObject *));
            memcpy(sort_cache_order, order, n * sizeof(Py_ssize_t));
            sort_cache_n = n;
        }
    }
    if (out_raw(o, "{", 1) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        int rc;
        if (i && out_raw(o, ",", 1) < 0)
            return -1;
        rc = out_str(o, keys[order[i]]);
        if (rc != 1)
            return rc;
        if (out_raw(o, ":", 1) < 0)
            return -1;
        v = values[order[i]];
        if (tags)
            rc = v == Py_True ? (out_raw(o, "true", 4) < 0 ? -1 : 1) : out_str(o, v);
        else
            rc = out_number(o, v);
        if (rc != 1)
            return rc;
    }
    return out_raw(o, "}", 1) < 0 ? -1 : 1;
}

static int
out_str_list(Out *o, PyObject *l)
{
    if (!PyList_CheckExact(l))
        return 0;
    if (out_raw(o, "[", 1) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l); i++) {
        if (i && out_raw(o, ",", 1) < 0)
            return -1;
        int rc = out_str(o, PyList_GET_ITEM(l, i));
        if (rc != 1)
            return rc;
    }
    return out_raw(o, "]", 1) < 0 ? -1 : 1;
}

/* the schema's keys in sorted order, and how each value is written */
enum { K_STR, K_STR_OR_NULL, K_STR_LIST, K_RECEIVERS, K_TAGS, K_NUMBER };
static const struct { const char *name; int how; } record_keys[] = {
    {"command", K_STR}, {"host", K_STR_OR_NULL}, {"params", K_STR_LIST}, {"receivers", K_RECEIVERS},
    {"sender", K_STR_OR_NULL}, {"tags", K_TAGS}, {"time", K_NUMBER}, {"time_range", K_NUMBER},
    {"user", K_STR_OR_NULL},
};
#define N_RECORD_KEYS 9
static PyObject *record_key_objs[N_RECORD_KEYS];

static PyObject *
encode_record(PyObject *self, PyObject *record)
{
    if (encode_fallback_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_canonical_bytes was not called");
        return NULL;
    }
    if (!PyDict_CheckExact(record) || PyDict_GET_SIZE(record) != N_RECORD_KEYS)
        return PyObject_CallOneArg(encode_fallback_fn, record);
    Out o = {PyMem_Malloc(1024), 0, 1024};
    if (o.buf == NULL)
        return PyErr_NoMemory();
    int rc = 1;
    o.buf[o.len++] = '{';
    for (int i = 0; rc == 1 && i < N_RECORD_KEYS; i++) {
        PyObject *v = PyDict_GetItemWithError(record, record_key_objs[i]);
        if (v == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            break;
        }
        if (i && out_raw(&o, ",", 1) < 0) {
            rc = -1;
            break;
        }
        /* "name": */
        rc = out_str(&o, record_key_objs[i]);
        if (rc == 1 && out_raw(&o, ":", 1) < 0)
            rc = -1;
        if (rc != 1)
            break;
        switch (record_keys[i].how) {
        case K_STR: rc = out_str(&o, v); break;
        case K_STR_OR_NULL: rc = out_str_or_null(&o, v); break;
        case K_STR_LIST: rc = out_str_list(&o, v); break;
        case K_RECEIVERS: rc = out_sorted_dict(&o, v, 0); break;
        case K_TAGS:
            rc = v == Py_None ? (out_raw(&o, "null", 4) < 0 ? -1 : 1) : out_sorted_dict(&o, v, 1);
            break;
        case K_NUMBER: rc = out_number(&o, v); break;
        }
    }
    if (rc == 1 && out_raw(&o, "}", 1) < 0)
        rc = -1;
    PyObject *result = NULL;
    if (rc == 1)
        result = PyBytes_FromStringAndSize(o.buf, o.len);
    PyMem_Free(o.buf);
    if (rc == 0)
        result = PyObject_CallOneArg(encode_fallback_fn, record);
    return result;
}

static PyMethodDef methods[] = {
    {"configure_parse_compat", configure, METH_VARARGS, "configure_parse_compat(reference, unescape): what odd lines go to."},
    {"parse_compat", parse_compat, METH_O, "Compiled parse_compat; odd lines go to the reference."},
    {"configure_canonical_bytes", configure_encoder, METH_O, "configure_canonical_bytes(reference): the reference encoder."},
    {"canonical_bytes", encode_record, METH_O, "Compiled canonical_bytes; other shapes go to the reference."},
    {NULL, NULL, 0, NULL},
};

int
native_add_irc(PyObject *m)
{
    for (int i = 0; i < N_RECORD_KEYS; i++) {
        record_key_objs[i] = PyUnicode_InternFromString(record_keys[i].name);
        if (record_key_objs[i] == NULL)
            return -1;
    }
    return PyModule_AddFunctions(m, methods);
}
