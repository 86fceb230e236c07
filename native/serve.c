/* Compiled twin of serve.app.upstream_joined_py (the pure-Python reference).
 *
 * chat.json is upstream's json.dumps(records): the records' canonical lines (json.dumps with "," and
 * ":") with a space after every "," and ":" outside strings, joined by ", ". The reference finds the
 * strings by the parity of their quotes once escaped backslashes and quotes are set aside; this walks
 * the joined lines once, pairing a backslash inside a string with the byte after it (JSON's escapes,
 * read left to right as the reference's replacements read them). On what a canonical line can hold
 * the two are the same; anything else (a byte the reference uses as a placeholder, below 0x03, or a
 * backslash outside a string, which no JSON line has) is handed to the reference, so odd input is
 * always the pure code's. tests/test_serve.py holds the two equal over canonical and random bytes.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "parts.h"

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define PLAIN_BLOCKS 1
#endif

#ifdef PLAIN_BLOCKS
/* The length of the run of plain bytes at p (at most end - p, in blocks of 16): bytes the walk below
 * copies without a step of its own, every byte but '"', '\\' and those below 3, and outside strings
 * ',' and ':' too. Each block is stored at o as it is read; the caller advances o by the run. The
 * output has room for two bytes of every byte still to read, so a whole block always fits. */
static inline Py_ssize_t
plain_run(const unsigned char *p, const unsigned char *end, unsigned char *o, int in_string)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), two = _mm_set1_epi8(2);
    const __m128i comma = _mm_set1_epi8(','), colon = _mm_set1_epi8(':');
    const unsigned char *start = p;
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash));
        stop = _mm_or_si128(stop, _mm_cmpeq_epi8(_mm_min_epu8(x, two), x)); /* x <= 2 */
        if (!in_string)
            stop = _mm_or_si128(stop, _mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, colon)));
        _mm_storeu_si128((__m128i *)(o + (p - start)), x);
        int mask = _mm_movemask_epi8(stop);
        if (mask != 0)
            return (p - start) + __builtin_ctz((unsigned)mask);
        p += 16;
    }
    return p - start;
}
#endif

static PyObject *reference = NULL; /* serve.app.upstream_joined_py */

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *ref;
    if (!PyArg_ParseTuple(args, "O", &ref))
        return NULL;
    Py_INCREF(ref);
    Py_XSETREF(reference, ref);
    Py_RETURN_NONE;
}

static PyObject *
to_reference(PyObject *lines)
{
    if (reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "upstream_joined: configure_upstream_joined was not called");
        return NULL;
    }
    return PyObject_CallOneArg(reference, lines);
}

static PyObject *
upstream_joined(PyObject *self, PyObject *lines)
{
    if (!PyList_CheckExact(lines))
        return to_reference(lines);
    Py_ssize_t count = PyList_GET_SIZE(lines);
    Py_ssize_t total = count; /* the joining commas and their spaces */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyBytes_CheckExact(line))
            return to_reference(lines);
        total += PyBytes_GET_SIZE(line);
    }
    if (total > PY_SSIZE_T_MAX / 2)
        return PyErr_NoMemory();
    PyObject *out = PyBytes_FromStringAndSize(NULL, 2 * total + 1); /* never the shared empty bytes */
    if (out == NULL)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *start = o;
    int in_string = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(line);
        const unsigned char *end = p + PyBytes_GET_SIZE(line);
        if (i > 0) {
            *o++ = ',';
            if (!in_string)
                *o++ = ' ';
        }
        while (p < end) {
#ifdef PLAIN_BLOCKS
            Py_ssize_t run = plain_run(p, end, o, in_string);
            p += run;
            o += run;
            if (p == end)
                break;
#endif
            unsigned char c = *p++;
            if (c < 3)
                goto odd;
            *o++ = c;
            if (in_string) {
                if (c == '"')
                    in_string = 0;
                else if (c == '\\' && p < end) {
                    if (*p < 3)
                        goto odd;
                    *o++ = *p++;
                }
            }
            else if (c == '"')
                in_string = 1;
            else if (c == ',' || c == ':')
                *o++ = ' ';
            else if (c == '\\')
                goto odd;
        }
    }
    if (_PyBytes_Resize(&out, o - start) < 0)
        return NULL;
    return out;
odd:
    Py_DECREF(out);
    return to_reference(lines);
}

static PyMethodDef methods[] = {
    {"configure_upstream_joined", configure, METH_VARARGS, "configure_upstream_joined(reference)."},
    {"upstream_joined", upstream_joined, METH_O, "Twin of serve.app.upstream_joined_py."},
    {NULL, NULL, 0, NULL},
};

int
native_add_serve(PyObject *m)
{
    return PyModule_AddFunctions(m, methods);
}
