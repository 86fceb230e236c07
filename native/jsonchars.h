/* What the compiled twins share (native/irc.c, native/replay.c): a character as
 * json.dumps(ensure_ascii=True) writes it in a string, and the scans of an IRC line (a str of any
 * kind; memchr for one-byte strings). Included by each, so each extension builds on its own. */
#ifndef CHAT_ARCHIVER_JSONCHARS_H
#define CHAT_ARCHIVER_JSONCHARS_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The plain-run loop, the one hot loop of every scan of a JSON string: the end of the run of bytes
 * from p on (before e) that stand for themselves inside a JSON string, eight bytes at a time (SWAR).
 * A byte is plain when it is not below 0x20, '"' or '\\'; with `ascii` (what json.dumps with
 * ensure_ascii=True writes as it is) also not 0x7F nor 0x80 or above, without it (a JSON string in
 * UTF-8) any byte from 0x80 is plain. A word is all plain when no byte fails a test, each test exact:
 * the borrow of `x - ONES * n` starts only at a byte below n (n <= 128), and `zero_bytes(x ^ (ONES *
 * c))` only at a byte equal to c; the byte loop that follows finds which byte ends the run. Callers
 * pass `ascii` as a constant, so each inlined copy tests only what it needs. */
#define JC_ONES 0x0101010101010101ULL
#define JC_HIGHS 0x8080808080808080ULL

static inline uint64_t
jc_zero_bytes(uint64_t x)
{
    return (x - JC_ONES) & ~x & JC_HIGHS;
}

static inline uint64_t
jc_less_bytes(uint64_t x, unsigned n)
{
    return (x - JC_ONES * n) & ~x & JC_HIGHS;
}

static inline __attribute__((always_inline)) const unsigned char *
jc_plain_run(const unsigned char *p, const unsigned char *e, const int ascii)
{
    for (; e - p >= 8; p += 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t odd = jc_less_bytes(x, 0x20) | jc_zero_bytes(x ^ (JC_ONES * '"')) | jc_zero_bytes(x ^ (JC_ONES * '\\'));
        if (ascii)
            odd |= (x & JC_HIGHS) | jc_zero_bytes(x ^ (JC_ONES * 0x7F));
        if (odd)
            break;
    }
    while (p < e && *p >= 0x20 && *p != '"' && *p != '\\' && (!ascii || *p < 0x7F))
        p++;
    return p;
}

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

static inline __attribute__((always_inline)) Py_ssize_t
find_char(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_UCS4 ch)
{
    if (kind == PyUnicode_1BYTE_KIND) {
        if (start >= end)
            return -1;
        const char *found = memchr((const char *)data + start, (int)ch, end - start);
        return found == NULL ? -1 : found - (const char *)data;
    }
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

#include <math.h>

/* repr(d) (what json.dumps prints for a float) into p, returning its length, or -1 on error.
 * A receive time (microseconds / 1e6) or a server time (milliseconds / 1000) is a double d with
 * d == v / 1e6 for an integer v; where doubles are closer together than 1e-6 (1 <= d < 2**32),
 * the decimal v / 1e6 is then the only one of at most six decimals that reads back as d, so it is
 * repr's shortest round trip: printed straight from v. Any other double goes to repr's routine.
 * (tests/test_replay_core.py holds this to repr over random doubles and times.) */
static inline Py_ssize_t
put_double(char *p, double d)
{
    if (d >= 1.0 && d < 4294967296.0) {
        long long v = llround(d * 1e6);
        if ((double)v / 1e6 == d) {
            long long whole = v / 1000000, frac = v % 1000000;
            char rev[20];
            int n = 0, k = 0;
            do {  /* the whole part's digits, as %lld prints them (whole >= 1) */
                rev[k++] = (char)('0' + whole % 10);
                whole /= 10;
            } while (whole);
            while (k)
                p[n++] = rev[--k];
            p[n++] = '.';
            if (frac == 0) {
                p[n++] = '0';
                return n;
            }
            char digits6[6];
            for (int i = 5; i >= 0; i--) {
                digits6[i] = (char)('0' + frac % 10);
                frac /= 10;
            }
            int last = 5;
            while (digits6[last] == '0')
                last--;
            memcpy(p + n, digits6, last + 1);
            return n + last + 1;
        }
    }
    char *r = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL)
        return -1;
    size_t n = strlen(r);
    memcpy(p, r, n);
    PyMem_Free(r);
    return (Py_ssize_t)n;
}

/* a record's number as json.dumps prints it, into p (64 bytes): 1 written (*len), 0 not a finite
 * float or an int within 64 bits (the reference's), -1 error */
static inline int
put_number(char *p, PyObject *v, Py_ssize_t *len)
{
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        if (!isfinite(d))
            return 0;
        Py_ssize_t n = put_double(p, d);
        if (n < 0)
            return -1;
        *len = n;
        return 1;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            return 0;
        *len = snprintf(p, 32, "%lld", x);
        return 1;
    }
    return 0;
}

#endif
