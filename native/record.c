/* Compiled twin of formats.canonical.is_record_py (the pure-Python reference): whether a decoded
 * line has the archive record schema (ARCHIVE_FORMAT.md section 3). Every line that verify, export
 * or a merge reads goes through it.
 *
 * One source of truth: it asks exactly the reference's questions, by exact type (a str subclass is
 * not a str, bool is not an int); anything that is not a plain dict goes to the reference, so any
 * error comes from there. tests/test_readcore.py holds the two equal over random and faulty records
 * (hypothesis) and every line of the fixtures.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "parts.h"

static PyObject *fallback_fn = NULL; /* formats.canonical.is_record_py */

enum { K_COMMAND, K_HOST, K_PARAMS, K_RECEIVERS, K_SENDER, K_TAGS, K_TIME, K_TIME_RANGE, K_USER, N_KEYS };
static const char *key_names[N_KEYS] = {
    "command", "host", "params", "receivers", "sender", "tags", "time", "time_range", "user",
};
static PyObject *keys[N_KEYS];

static PyObject *
configure(PyObject *self, PyObject *fallback)
{
    (void)self;
    Py_INCREF(fallback);
    Py_XSETREF(fallback_fn, fallback);
    Py_RETURN_NONE;
}

static int
str_or_none(PyObject *v)
{
    return v == Py_None || PyUnicode_CheckExact(v);
}

static int
number(PyObject *v)
{
    return PyLong_CheckExact(v) || PyFloat_CheckExact(v);
}

/* 1 a record, 0 not, -1 an error */
static int
check(PyObject *record)
{
    PyObject *v[N_KEYS];
    if (PyDict_GET_SIZE(record) != N_KEYS)
        return 0;
    for (int i = 0; i < N_KEYS; i++) {
        v[i] = PyDict_GetItemWithError(record, keys[i]);
        if (v[i] == NULL)
            return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *tags = v[K_TAGS];
    if (tags != Py_None) {
        if (!PyDict_CheckExact(tags))
            return 0;
        Py_ssize_t pos = 0;
        PyObject *k, *value;
        while (PyDict_Next(tags, &pos, &k, &value)) {
            if (value == Py_False)
                return 0;
            if (!PyUnicode_CheckExact(value) && value != Py_True)
                return 0;
        }
    }
    PyObject *params = v[K_PARAMS];
    if (!PyList_CheckExact(params))
        return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(params); i++)
        if (!PyUnicode_CheckExact(PyList_GET_ITEM(params, i)))
            return 0;
    if (!PyUnicode_CheckExact(v[K_COMMAND]))
        return 0;
    PyObject *receivers = v[K_RECEIVERS];
    if (!PyDict_CheckExact(receivers) || PyDict_GET_SIZE(receivers) == 0)
        return 0;
    Py_ssize_t pos = 0;
    PyObject *k, *value;
    while (PyDict_Next(receivers, &pos, &k, &value))
        if (!number(value))
            return 0;
    return number(v[K_TIME]) && number(v[K_TIME_RANGE]) && str_or_none(v[K_SENDER]) && str_or_none(v[K_USER])
           && str_or_none(v[K_HOST]);
}

static PyObject *
is_record(PyObject *self, PyObject *record)
{
    (void)self;
    if (!PyDict_CheckExact(record)) {
        if (fallback_fn == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_is_record was not called");
            return NULL;
        }
        return PyObject_CallOneArg(fallback_fn, record);
    }
    int got = check(record);
    if (got < 0)
        return NULL;
    return PyBool_FromLong(got);
}

static PyMethodDef methods[] = {
    {"configure_is_record", configure, METH_O, "configure_is_record(reference): what odd records go to."},
    {"is_record", is_record, METH_O, "Compiled is_record; anything but a plain dict goes to the reference."},
    {NULL, NULL, 0, NULL},
};

int
native_add_record(PyObject *m)
{
    for (int i = 0; i < N_KEYS; i++) {
        keys[i] = PyUnicode_InternFromString(key_names[i]);
        if (keys[i] == NULL)
            return -1;
    }
    return PyModule_AddFunctions(m, methods);
}
