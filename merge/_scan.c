/* Compiled twin of merge.scan.scan_line_py / scan_batch_py (the pure-Python reference).
 *
 * One source of truth: the reference decodes a batch file line, checks it as every reader does
 * (formats.canonical.parse_batch, merge.directory.check_parsed) and vouches for it only if it is
 * exactly its canonical bytes and of the shape the merge's fast path handles; then it returns the
 * few fields a merge needs. This reads the line with the one canonical-line scanner
 * (formats/_canonline.h) and vouches for it only when the reference would (plus the merge's own
 * shape: no lone surrogate, no -0.0, a time the layout can name, no 0.0 range); anything it is unsure
 * of it refuses (None), and the caller then takes the whole file through the reference path, so
 * errors and odd files always come from the pure code. tests/test_merge_scan.py holds the two equal
 * over random, damaged and real lines.
 *
 * Built by setuptools as an optional extension (pyproject.toml); without it the merge runs the
 * pure path (formats/speedups.py says so once).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "../formats/_canonline.h"

/* 0 <= time < TIME_LIMIT: a minute the archive layout can name (years 1970 to 9999). */
#define TIME_LIMIT 253402300000.0

/* -0.0: canonical, but not a shape scan_line_py vouches for */
#define NEG_ZERO(n) ((n).is_float && (n).value == 0.0 && signbit((n).value))

/* a number as the reference holds it: int or float. New reference. */
static PyObject *
num_obj(const CanonNum *n)
{
    return n->is_float ? PyFloat_FromDouble(n->value) : PyLong_FromLongLong(n->ival);
}

static int
add_receiver(PyObject *receivers, Span name, const CanonNum *value)
{
    PyObject *k = PyBytes_FromStringAndSize((const char *)name.s, name.n), *v = num_obj(value);
    int r = k == NULL || v == NULL ? -1 : PyDict_SetItem(receivers, k, v);
    Py_XDECREF(k);
    Py_XDECREF(v);
    return r;
}

/* {name bytes: number} of a scanned line, or Py_None if some value is -0.0; NULL on a memory error */
static PyObject *
receivers_dict(const CanonLine *r)
{
    PyObject *receivers = PyDict_New();
    if (receivers == NULL)
        return NULL;
    if (r->n_recv <= CL_MAX_RECV) {
        for (int i = 0; i < r->n_recv; i++) {
            if (NEG_ZERO(r->recv_values[i])) {
                Py_DECREF(receivers);
                Py_RETURN_NONE;
            }
            if (add_receiver(receivers, r->recv_names[i], &r->recv_values[i]) < 0) {
                Py_DECREF(receivers);
                return NULL;
            }
        }
        return receivers;
    }
    /* more than the line keeps: walk the (already checked) object again */
    CanonCur cur = {r->receivers.s + 1, r->receivers.s + r->receivers.n};
    Span prev = {NULL, 0}, name;
    CanonNum value;
    int more;
    do {
        more = cl_receiver(&cur, &prev, &name, &value);
        if (more < 0 || NEG_ZERO(value)) {
            Py_DECREF(receivers);
            Py_RETURN_NONE;
        }
        if (add_receiver(receivers, name, &value) < 0) {
            Py_DECREF(receivers);
            return NULL;
        }
    } while (more);
    return receivers;
}

/* (content, a, k, mid, receivers, time, time_range, receivers_text, numbers_text) of a line the merge may handle as bytes, or
 * Py_None (not vouched for). NULL only on a memory error. */
static PyObject *
scan(const unsigned char *line, Py_ssize_t len)
{
    CanonLine r;
    if (cl_line(line, len, &r) || r.lone_surrogate || NEG_ZERO(r.time) || NEG_ZERO(r.time_range))
        Py_RETURN_NONE;
    if (!(r.time.value >= 0.0 && r.time.value < TIME_LIMIT))
        Py_RETURN_NONE;
    if (r.time_range.is_float && r.time_range.value == 0.0) /* the merge writes 0.0 as 0 */
        Py_RETURN_NONE;
    Py_ssize_t a = r.receivers.s - line, b = a + r.receivers.n;
    Py_ssize_t tc = r.time_at - line, d = r.range_end - line;
    PyObject *receivers = receivers_dict(&r);
    if (receivers == NULL || receivers == Py_None)
        return receivers;
    PyObject *mid;
    if (r.id.s != NULL)
        mid = PyBytes_FromStringAndSize((const char *)r.id.s, r.id.n);
    else
        mid = Py_NewRef(Py_None);
    Py_ssize_t k = tc - b;
    PyObject *content = PyBytes_FromStringAndSize(NULL, a + k + (len - d));
    if (content != NULL) {
        char *w = PyBytes_AS_STRING(content);
        memcpy(w, line, (size_t)a);
        memcpy(w + a, line + b, (size_t)k);
        memcpy(w + a + k, line + d, (size_t)(len - d));
    }
    PyObject *recv_seg = PyBytes_FromStringAndSize((const char *)line + a + 1, b - a - 2);
    PyObject *numbers = PyBytes_FromStringAndSize((const char *)line + tc, d - tc);
    PyObject *time = num_obj(&r.time), *range = num_obj(&r.time_range);
    if (mid == NULL || content == NULL || recv_seg == NULL || numbers == NULL || time == NULL || range == NULL) {
        Py_DECREF(receivers);
        Py_XDECREF(mid);
        Py_XDECREF(content);
        Py_XDECREF(recv_seg);
        Py_XDECREF(numbers);
        Py_XDECREF(time);
        Py_XDECREF(range);
        return NULL;
    }
    return Py_BuildValue("(NnnNNNNNN)", content, a, k, mid, receivers, time, range, recv_seg, numbers);
}

static PyObject *
scan_line(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scan_line takes bytes");
        return NULL;
    }
    return scan((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
}

/* The scans of every line of a batch file's bytes, or the number (from 1) of the first line not
 * vouched for (0: the file is empty or does not end with a newline). */
static PyObject *
scan_batch(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scan_batch takes bytes");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    if (n == 0 || data[n - 1] != '\n')
        return PyLong_FromLong(0);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t start = 0, number = 0;
    while (start < n) {
        const unsigned char *nl = memchr(data + start, '\n', (size_t)(n - start));
        Py_ssize_t end = nl - data;
        number++;
        PyObject *item = scan(data + start, end - start);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        if (item == Py_None) {
            Py_DECREF(item);
            Py_DECREF(out);
            return PyLong_FromSsize_t(number);
        }
        if (PyList_Append(out, item) < 0) {
            Py_DECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        start = end + 1;
    }
    return out;
}

/* Twin of merge.fastplan.fold_common_py: the common id groups of a minute's scanned lines, folded.
 * (items, rest, mids, observations): see the reference for what each is. */
static PyObject *
fold_common(PyObject *self, PyObject *files)
{
    PyObject *groups = NULL, *items = NULL, *rest = NULL, *mids = NULL;
    Py_ssize_t observations = 0;
    if (!PyList_Check(files)) {
        PyErr_SetString(PyExc_TypeError, "fold_common takes a list of lists");
        return NULL;
    }
    groups = PyDict_New();
    items = PyList_New(0);
    rest = PyList_New(0);
    mids = PyList_New(0);
    if (groups == NULL || items == NULL || rest == NULL || mids == NULL)
        goto fail;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(files); f++) {
        PyObject *scans = PyList_GET_ITEM(files, f);
        if (!PyList_Check(scans)) {
            PyErr_SetString(PyExc_TypeError, "fold_common takes a list of lists");
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(scans); i++) {
            PyObject *s = PyList_GET_ITEM(scans, i);
            if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 9 || !PyBytes_Check(PyTuple_GET_ITEM(s, 0))
                || !PyLong_Check(PyTuple_GET_ITEM(s, 1)) || !PyLong_Check(PyTuple_GET_ITEM(s, 2))
                || !PyDict_Check(PyTuple_GET_ITEM(s, 4)) || !PyBytes_Check(PyTuple_GET_ITEM(s, 7))
                || !PyBytes_Check(PyTuple_GET_ITEM(s, 8))) {
                PyErr_SetString(PyExc_TypeError, "fold_common takes scanned lines");
                goto fail;
            }
            observations += PyDict_GET_SIZE(PyTuple_GET_ITEM(s, 4));
            if (PyTuple_GET_ITEM(s, 3) == Py_None) {
                if (PyList_Append(rest, s) < 0)
                    goto fail;
                continue;
            }
            PyObject *content = PyTuple_GET_ITEM(s, 0);
            PyObject *group = PyDict_GetItemWithError(groups, content);
            if (group == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                group = PyList_New(1);
                if (group == NULL)
                    goto fail;
                Py_INCREF(s);
                PyList_SET_ITEM(group, 0, s);
                int r = PyDict_SetItem(groups, content, group);
                Py_DECREF(group);
                if (r < 0)
                    goto fail;
            }
            else if (PyList_Append(group, s) < 0)
                goto fail;
        }
    }
    Py_ssize_t pos = 0;
    PyObject *key, *group;
    while (PyDict_Next(groups, &pos, &key, &group)) {
        Py_ssize_t n = PyList_GET_SIZE(group);
        PyObject *first = PyList_GET_ITEM(group, 0);
        PyObject *numbers = PyTuple_GET_ITEM(first, 8);
        PyObject *range = PyTuple_GET_ITEM(first, 6);
        /* common: a zero int range, every sighting with one receiver and these very numbers, no
         * receiver twice (then fold_members gives (time, 0) and the receivers are just united) */
        int overflow = 0;
        int common = n <= 16 && PyLong_CheckExact(range) && PyLong_AsLongAndOverflow(range, &overflow) == 0
            && !overflow;
        PyObject *names[16];
        Py_ssize_t order[16];
        for (Py_ssize_t j = 0; common && j < n; j++) {
            PyObject *s = PyList_GET_ITEM(group, j);
            PyObject *recv = PyTuple_GET_ITEM(s, 4);
            PyObject *nt = PyTuple_GET_ITEM(s, 8);
            if (PyDict_GET_SIZE(recv) != 1 || PyBytes_GET_SIZE(nt) != PyBytes_GET_SIZE(numbers)
                || memcmp(PyBytes_AS_STRING(nt), PyBytes_AS_STRING(numbers), (size_t)PyBytes_GET_SIZE(nt)) != 0) {
                common = 0;
                break;
            }
            Py_ssize_t p2 = 0;
            PyObject *name, *value;
            if (!PyDict_Next(recv, &p2, &name, &value) || !PyBytes_Check(name)) {
                common = 0;
                break;
            }
            /* insertion by name; a name seen before: not common */
            Py_ssize_t at = j;
            while (at > 0) {
                PyObject *other = names[order[at - 1]];
                Py_ssize_t la = PyBytes_GET_SIZE(name), lb = PyBytes_GET_SIZE(other);
                int c = memcmp(PyBytes_AS_STRING(name), PyBytes_AS_STRING(other), (size_t)(la < lb ? la : lb));
                if (c == 0 && la == lb) {
                    common = 0;
                    break;
                }
                if (c > 0 || (c == 0 && la > lb))
                    break;
                order[at] = order[at - 1];
                at--;
            }
            if (!common)
                break;
            names[j] = name;
            order[at] = j;
        }
        if (!common) {
            for (Py_ssize_t j = 0; j < n; j++)
                if (PyList_Append(rest, PyList_GET_ITEM(group, j)) < 0)
                    goto fail;
            continue;
        }
        PyObject *content = PyTuple_GET_ITEM(first, 0);
        Py_ssize_t a = PyLong_AsSsize_t(PyTuple_GET_ITEM(first, 1));
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(first, 2));
        if ((a == -1 || k == -1) && PyErr_Occurred())
            goto fail;
        Py_ssize_t clen = PyBytes_GET_SIZE(content), total = clen + 2 + (n - 1) + PyBytes_GET_SIZE(numbers);
        if (a < 0 || k < 0 || a + k > clen) {
            PyErr_SetString(PyExc_ValueError, "fold_common: offsets outside the content");
            goto fail;
        }
        for (Py_ssize_t j = 0; j < n; j++)
            total += PyBytes_GET_SIZE(PyTuple_GET_ITEM(PyList_GET_ITEM(group, j), 7));
        PyObject *line = PyBytes_FromStringAndSize(NULL, total);
        if (line == NULL)
            goto fail;
        char *w = PyBytes_AS_STRING(line);
        const char *cs = PyBytes_AS_STRING(content);
        memcpy(w, cs, (size_t)a);
        w += a;
        *w++ = '{';
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject *seg = PyTuple_GET_ITEM(PyList_GET_ITEM(group, order[j]), 7);
            if (j)
                *w++ = ',';
            memcpy(w, PyBytes_AS_STRING(seg), (size_t)PyBytes_GET_SIZE(seg));
            w += PyBytes_GET_SIZE(seg);
        }
        *w++ = '}';
        memcpy(w, cs + a, (size_t)k);
        w += k;
        memcpy(w, PyBytes_AS_STRING(numbers), (size_t)PyBytes_GET_SIZE(numbers));
        w += PyBytes_GET_SIZE(numbers);
        memcpy(w, cs + a + k, (size_t)(clen - a - k));
        PyObject *zero = PyLong_FromLong(0);
        PyObject *item = zero == NULL ? NULL : PyTuple_Pack(3, PyTuple_GET_ITEM(first, 5), zero, line);
        Py_XDECREF(zero);
        Py_DECREF(line);
        if (item == NULL)
            goto fail;
        int r = PyList_Append(items, item);
        Py_DECREF(item);
        if (r < 0 || PyList_Append(mids, PyTuple_GET_ITEM(first, 3)) < 0)
            goto fail;
    }
    Py_DECREF(groups);
    return Py_BuildValue("(NNNn)", items, rest, mids, observations);
fail:
    Py_XDECREF(groups);
    Py_XDECREF(items);
    Py_XDECREF(rest);
    Py_XDECREF(mids);
    return NULL;
}

static PyMethodDef methods[] = {
    {"fold_common", fold_common, METH_O, "Twin of merge.fastplan.fold_common_py."},
    {"scan_line", scan_line, METH_O, "Twin of merge.scan.scan_line_py."},
    {"scan_batch", scan_batch, METH_O, "Twin of merge.scan.scan_batch_py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "merge._scan", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&module);
}
