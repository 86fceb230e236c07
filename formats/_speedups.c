/* Compiled twin of formats.irc.parse_compat_py (the pure-Python reference).
 *
 * One source of truth: this handles only the common shape of a line (no CR, LF or NUL, no run of
 * spaces, no leading or trailing space, no prefix or tags without a command) and hands every other
 * line, and every line it would reject, to the pure-Python reference, which raises the error. So
 * errors and odd lines always come from the reference; tests/test_speedups.py holds the two equal
 * over random lines (hypothesis) and the real corpus.
 *
 * Built by setuptools as an optional extension: without a C compiler the install goes on and the
 * package runs the pure path (formats/speedups.py says so once).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *unescape_fn = NULL;  /* formats.irc.unescape_tag_value_compat */
static PyObject *fallback_fn = NULL;  /* formats.irc.parse_compat_py */

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *unescape, *fallback;
    if (!PyArg_ParseTuple(args, "OO", &unescape, &fallback))
        return NULL;
    Py_INCREF(unescape);
    Py_INCREF(fallback);
    Py_XSETREF(unescape_fn, unescape);
    Py_XSETREF(fallback_fn, fallback);
    Py_RETURN_NONE;
}

static Py_ssize_t
find_char(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_UCS4 ch)
{
    for (Py_ssize_t i = start; i < end; i++)
        if (PyUnicode_READ(kind, data, i) == ch)
            return i;
    return -1;
}

static Py_ssize_t
rfind_char(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_UCS4 ch)
{
    for (Py_ssize_t i = end - 1; i >= start; i--)
        if (PyUnicode_READ(kind, data, i) == ch)
            return i;
    return -1;
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
        PyErr_SetString(PyExc_RuntimeError, "formats._speedups is not configured");
        return NULL;
    }
    if (!PyUnicode_CheckExact(line))
        return fallback(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    if (n == 0 || PyUnicode_READ(kind, data, 0) == ' ' || PyUnicode_READ(kind, data, n - 1) == ' ')
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

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(unescape, fallback): the reference functions."},
    {"parse_compat", parse_compat, METH_O, "Compiled parse_compat; odd lines go to the reference."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "formats._speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
