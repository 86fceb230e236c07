/* Compiled twin of export.scan.scan_batch_py (the pure-Python reference).
 *
 * One source of truth: the reference decodes each line of a batch file with the one reader, refuses
 * the file unless every line is exactly its record's canonical bytes (of the shape this scanner
 * reads), and splits the lines into lone candidates, (time, 0, line, message id), the records that
 * pass through export untouched once their id is unique in a chunk, and the rest, which export
 * decodes as before. This reads each line with the one canonical-line scanner (native/canonline.h,
 * which says why a line can be judged canonical from its bytes) and must give exactly the same;
 * tests/test_export_scan.py holds the two equal over random, damaged and real lines. A file refused
 * here is read by the reference path (export.stream.decode_batch), so damage is always reported by
 * the pure code.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "canonline.h"
#include "parts.h"

#define EXACT_LIMIT 9007199254740992LL /* merge.core.EXACT_LIMIT, 2**53 */

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
    char *rest = PyMem_Malloc((size_t)n); /* the other lines, each with its newline: at most the file */
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
            memcpy(rest + used, data + start, (size_t)(end + 1 - start));
            used += end + 1 - start;
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

static PyMethodDef methods[] = {
    {"export_scan_batch", scan_batch, METH_O, "Twin of export.scan.scan_batch_py."},
    {NULL, NULL, 0, NULL},
};

int
native_add_export(PyObject *m)
{
    return PyModule_AddFunctions(m, methods);
}
