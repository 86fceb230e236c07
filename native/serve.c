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

#include <stdint.h>
#include <string.h>

#include "parts.h"

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define PLAIN_BLOCKS 1
#endif

#ifdef PLAIN_BLOCKS
/* The masks of 64 bytes at p, a bit a byte: quotes, the bytes a block stops at (a backslash, or
 * below 3), and the separators (',' and ':'). */
static inline void
masks64(const unsigned char *p, uint64_t *quotes, uint64_t *stops, uint64_t *separators)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), two = _mm_set1_epi8(2);
    const __m128i comma = _mm_set1_epi8(','), colon = _mm_set1_epi8(':');
    uint64_t q = 0, st = 0, sep = 0;
    for (int i = 0; i < 4; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * i));
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(x, backslash), _mm_cmpeq_epi8(_mm_min_epu8(x, two), x));
        __m128i separator = _mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, colon));
        q |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, quote)) << (16 * i);
        st |= (uint64_t)(uint16_t)_mm_movemask_epi8(stop) << (16 * i);
        sep |= (uint64_t)(uint16_t)_mm_movemask_epi8(separator) << (16 * i);
    }
    *quotes = q;
    *stops = st;
    *separators = sep;
}

/* Bit i: the xor of bits 0 to i (a byte after an odd number of quotes, or on the one that opens). */
static inline uint64_t
prefix_xor(uint64_t m)
{
    m ^= m << 1;
    m ^= m << 2;
    m ^= m << 4;
    m ^= m << 8;
    m ^= m << 16;
    m ^= m << 32;
    return m;
}

/* The walk below over the bytes at p up to the first backslash or byte below 3 among the next 64
 * (all 64 if none): where a string starts and ends is the parity of the quotes before a byte (no
 * escape in between), and a separator outside a string gets its space. Writes at *o, advances it
 * and *in_string; returns the bytes read. The output has room for two bytes of every byte still to
 * read, so it always fits. */
static inline Py_ssize_t
block64(const unsigned char *p, unsigned char **o, int *in_string)
{
    uint64_t quotes, stops, separators;
    masks64(p, &quotes, &stops, &separators);
    int n = stops ? __builtin_ctzll(stops) : 64;
    uint64_t valid = n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    quotes &= valid;
    uint64_t inside = prefix_xor(quotes) ^ (*in_string ? ~(uint64_t)0 : 0);
    uint64_t spaced = separators & ~inside & valid;
    unsigned char *out = *o;
    const unsigned char *from = p;
    while (spaced) {
        const unsigned char *at = p + __builtin_ctzll(spaced) + 1;
        memcpy(out, from, (size_t)(at - from));
        out += at - from;
        *out++ = ' ';
        from = at;
        spaced &= spaced - 1;
    }
    memcpy(out, from, (size_t)(p + n - from));
    *o = out + (p + n - from);
    *in_string ^= __builtin_parityll(quotes);
    return n;
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
            if (end - p >= 64) {
                Py_ssize_t n = block64(p, &o, &in_string);
                p += n;
                if (n == 64)
                    continue;
            }
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
