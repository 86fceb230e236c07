/* Compiled twin of merge.scan.scan_line_py / scan_batch_py (the pure-Python reference).
 *
 * One source of truth: the reference decodes a batch file line, checks it as every reader does
 * (formats.canonical.parse_batch, merge.directory.check_parsed) and vouches for it only if it is
 * exactly its canonical bytes and of the shape the merge's fast path handles; then it returns the
 * few fields a merge needs. This scanner reads the canonical grammar directly, byte by byte, and
 * vouches for a line only when the reference would; anything it is unsure of it refuses (None), and
 * the caller then takes the whole file through the reference path, so errors and odd files always
 * come from the pure code. tests/test_merge_scan.py holds the two equal over random, damaged and
 * real lines.
 *
 * Built by setuptools as an optional extension (pyproject.toml); without it the merge runs the
 * pure path (formats/speedups.py says so once).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Cur;

/* 0 <= time < TIME_LIMIT: a minute the archive layout can name (years 1970 to 9999). */
#define TIME_LIMIT 253402300000.0

static int
lit(Cur *c, const char *s, Py_ssize_t n)
{
    if (c->end - c->p < n || memcmp(c->p, s, (size_t)n) != 0)
        return 0;
    c->p += n;
    return 1;
}

#define LIT(c, s) lit((c), (s), (Py_ssize_t)(sizeof(s) - 1))

static int
hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        if (h >= '0' && h <= '9')
            v = v * 16 + (h - '0');
        else if (h >= 'a' && h <= 'f')
            v = v * 16 + (h - 'a' + 10);
        else
            return -1;  /* json.dumps writes lowercase hex only */
    }
    return v;
}

/* Bytes json.dumps(ensure_ascii=True) writes as they are inside a string: printable ASCII but the
 * quote and the backslash. */
static unsigned char PLAIN[256];

static void
init_plain(void)
{
    for (int ch = 0x20; ch < 0x7F; ch++)
        PLAIN[ch] = ch != '"' && ch != '\\';
}

/* A JSON string exactly as json.dumps(ensure_ascii=True) writes it. [*s0, *s1) is what lies between
 * the quotes; *plain is 1 when it holds no escape. */
static int
str(Cur *c, const unsigned char **s0, const unsigned char **s1, int *plain)
{
    if (c->p >= c->end || *c->p != '"')
        return 0;
    c->p++;
    *s0 = c->p;
    *plain = 1;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            *s1 = c->p;
            c->p++;
            return 1;
        }
        if (ch == '\\') {
            *plain = 0;
            if (c->end - c->p < 2)
                return 0;
            unsigned char e = c->p[1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                c->p += 2;
                continue;
            }
            if (e != 'u' || c->end - c->p < 6)
                return 0;
            int code = hex4(c->p + 2);
            if (code < 0)
                return 0;
            c->p += 6;
            if (code >= 0xD800 && code <= 0xDBFF) {  /* only as the first half of a pair */
                if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
                    return 0;
                int low = hex4(c->p + 2);
                if (low < 0xDC00 || low > 0xDFFF)
                    return 0;
                c->p += 6;
                continue;
            }
            if (code >= 0xDC00 && code <= 0xDFFF)
                return 0;  /* a lone second half */
            if ((code >= 0x20 && code <= 0x7E) || code == 8 || code == 9 || code == 10 || code == 12 || code == 13)
                return 0;  /* json.dumps writes these raw or with a short escape */
            continue;
        }
        if (!PLAIN[ch])
            return 0;
        c->p++;
        while (c->p < c->end && PLAIN[*c->p])  /* the usual run of plain characters */
            c->p++;
    }
    return 0;
}

static int
str_or_null(Cur *c)
{
    const unsigned char *s0, *s1;
    int plain;
    if (LIT(c, "null"))
        return 1;
    return str(c, &s0, &s1, &plain);
}

/* Strictly increasing names (sorted, no repeats), compared as the str json.loads makes of them:
 * for names without escapes (all ASCII), byte order is code point order. */
static int
after(const unsigned char *a0, const unsigned char *a1, const unsigned char *b0, const unsigned char *b1)
{
    Py_ssize_t la = a1 - a0, lb = b1 - b0;
    int r = memcmp(a0, b0, (size_t)(la < lb ? la : lb));
    return r < 0 || (r == 0 && la < lb);
}

/* Whether repr() of the double nearest to the positional decimal [digits, p) (a dot at `dot`) is
 * surely that very text, without writing repr: the form repr uses (positional for 1e-4 <= |v| < 1e16),
 * no trailing zero in the fraction but in "X.0", and at most 15 significant digits (such a decimal
 * reads back from its double unchanged, DBL_DIG, so no shorter text names that double either), or
 * 16 or 17 where the decimal steps are coarser than the double's (below). */
static const double POW10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
};

static const double POW10_NEG[] = {
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15,
    1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
};

static int
surely_repr(const unsigned char *digits, const unsigned char *dot, const unsigned char *p, double v)
{
    const unsigned char *f0 = dot + 1;
    int x0 = (p - f0 == 1 && *f0 == '0');
    if (p[-1] == '0' && !x0)
        return 0;
    const unsigned char *first = NULL, *last = NULL;
    for (const unsigned char *q = digits; q < p; q++) {
        if (*q >= '1' && *q <= '9') {
            if (first == NULL)
                first = q;
            last = q;
        }
    }
    if (first == NULL)
        return dot - digits == 1 && x0;  /* "0.0" */
    Py_ssize_t sig = last - first + 1 - (first < dot && last > dot);
    if (sig > 17)
        return 0;
    if (digits[0] != '0' ? dot - digits > 16 : first - f0 > 3)
        return 0;  /* repr writes it with an exponent */
    if (sig <= 15)
        return 1;
    /* 16 or 17 digits: sure when the last digit's step (10**-F) is at least 4 steps of the double
     * (ulp) there: then every other decimal with as many digits or fewer lies a step or more away
     * and reads back as another double, so this text is the shortest that names its double. */
    Py_ssize_t places = p - f0;
    if (places > 22 || v <= 0.0)
        return 0;
    int e2;
    frexp(v, &e2);
    return POW10_NEG[places] >= ldexp(4.0, e2 - 53);
}

/* A number as repr() writes it (int: str()), within what the merge keeps unchanged: ints of at most
 * 15 digits (within 2**53), finite floats, no -0.0. New reference, or NULL without an exception. */
static PyObject *
num(Cur *c, int *is_float)
{
    const unsigned char *s = c->p, *p = c->p, *dot = NULL;
    int exp = 0;
    if (p < c->end && *p == '-')
        p++;
    const unsigned char *digits = p;
    while (p < c->end && *p >= '0' && *p <= '9')
        p++;
    Py_ssize_t nd = p - digits;
    if (nd == 0 || (nd > 1 && digits[0] == '0'))
        return NULL;
    if (p < c->end && *p == '.') {
        dot = p;
        p++;
        const unsigned char *f = p;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return NULL;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        exp = 1;
        p++;
        if (p < c->end && (*p == '+' || *p == '-'))
            p++;
        const unsigned char *f = p;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return NULL;
    }
    Py_ssize_t n = p - s;
    c->p = p;
    *is_float = dot != NULL || exp;
    if (!*is_float) {
        if (nd > 15 || (s[0] == '-' && digits[0] == '0'))
            return NULL;
        long long v = 0;
        for (const unsigned char *q = digits; q < p; q++)
            v = v * 10 + (*q - '0');
        return PyLong_FromLongLong(s[0] == '-' ? -v : v);
    }
    char buf[64];
    if (n >= (Py_ssize_t)sizeof(buf))
        return NULL;
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    double v;
    /* A positional decimal whose digits make an integer below 2**53, with at most 22 places: the
     * integer and the power of ten are exact doubles, so one correctly rounded division gives the
     * double nearest to the decimal, as strtod does (Clinger's fast path). Else strtod itself. */
    unsigned long long whole = 0;
    int fits = dot != NULL && !exp && (p - dot - 1) <= 22 && (p - digits - 1) <= 17;
    for (const unsigned char *q = digits; fits && q < p; q++)
        if (*q != '.')
            whole = whole * 10 + (unsigned long long)(*q - '0');
    if (fits && whole < (1ULL << 53)) {
        v = (double)whole / POW10[p - dot - 1];
        if (s[0] == '-')
            v = -v;
    }
    else {
        char *endp = NULL;
        v = PyOS_string_to_double(buf, &endp, NULL);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        if (endp != buf + n)
            return NULL;
    }
    if (!isfinite(v) || (v == 0.0 && (signbit(v) || s[0] == '-')))
        return NULL;
    if (!(dot != NULL && !exp && surely_repr(digits, dot, p, fabs(v)))) {
        char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (r == NULL) {
            PyErr_Clear();
            return NULL;
        }
        int same = (Py_ssize_t)strlen(r) == n && memcmp(r, buf, (size_t)n) == 0;
        PyMem_Free(r);
        if (!same)
            return NULL;
    }
    return PyFloat_FromDouble(v);
}

/* (content, a, k, mid, receivers, time, time_range, receivers_text, numbers_text) of a line the merge may handle as bytes, or
 * Py_None (not vouched for). NULL only on a memory error. */
static PyObject *
scan(const unsigned char *line, Py_ssize_t len)
{
    Cur cur = {line, line + len};
    Cur *c = &cur;
    const unsigned char *s0, *s1, *p0 = NULL, *p1 = NULL;
    const unsigned char *id0 = NULL, *id1 = NULL, *msgid0 = NULL, *msgid1 = NULL;
    int plain, fl;
    PyObject *receivers = NULL, *time = NULL, *range = NULL, *mid = NULL, *content = NULL, *out = NULL;

    if (!LIT(c, "{\"command\":") || !str(c, &s0, &s1, &plain) || !LIT(c, ",\"host\":") || !str_or_null(c)
        || !LIT(c, ",\"params\":["))
        goto refuse;
    if (!LIT(c, "]")) {
        for (;;) {
            if (!str(c, &s0, &s1, &plain))
                goto refuse;
            if (LIT(c, "]"))
                break;
            if (!LIT(c, ","))
                goto refuse;
        }
    }
    if (!LIT(c, ",\"receivers\":{"))
        goto refuse;
    Py_ssize_t a = c->p - 1 - line;
    receivers = PyDict_New();
    if (receivers == NULL)
        return NULL;
    for (;;) {
        if (!str(c, &s0, &s1, &plain) || !plain || (p0 != NULL && !after(p0, p1, s0, s1)) || !LIT(c, ":"))
            goto refuse;
        p0 = s0;
        p1 = s1;
        PyObject *v = num(c, &fl);
        if (v == NULL)
            goto refuse;
        PyObject *name = PyBytes_FromStringAndSize((const char *)s0, s1 - s0);
        if (name == NULL || PyDict_SetItem(receivers, name, v) < 0) {
            Py_XDECREF(name);
            Py_DECREF(v);
            goto fail;
        }
        Py_DECREF(name);
        Py_DECREF(v);
        if (LIT(c, "}"))
            break;
        if (!LIT(c, ","))
            goto refuse;
    }
    Py_ssize_t b = c->p - line;
    if (!LIT(c, ",\"sender\":") || !str_or_null(c) || !LIT(c, ",\"tags\":"))
        goto refuse;
    if (!LIT(c, "null")) {
        if (!LIT(c, "{"))
            goto refuse;
        if (!LIT(c, "}")) {
            p0 = NULL;
            for (;;) {
                if (!str(c, &s0, &s1, &plain) || !plain || (p0 != NULL && !after(p0, p1, s0, s1)) || !LIT(c, ":"))
                    goto refuse;
                p0 = s0;
                p1 = s1;
                const unsigned char *v0, *v1;
                if (LIT(c, "true")) {
                    /* not a string: not an id */
                }
                else if (str(c, &v0, &v1, &plain)) {
                    if (s1 - s0 == 2 && memcmp(s0, "id", 2) == 0) {
                        id0 = v0;
                        id1 = v1;
                    }
                    else if (s1 - s0 == 5 && memcmp(s0, "msgid", 5) == 0) {
                        msgid0 = v0;
                        msgid1 = v1;
                    }
                }
                else
                    goto refuse;
                if (LIT(c, "}"))
                    break;
                if (!LIT(c, ","))
                    goto refuse;
            }
        }
    }
    if (!LIT(c, ",\"time\":"))
        goto refuse;
    Py_ssize_t tc = c->p - line;
    time = num(c, &fl);
    if (time == NULL)
        goto refuse;
    double t = PyFloat_Check(time) ? PyFloat_AS_DOUBLE(time) : (double)PyLong_AsLongLong(time);
    if (!(t >= 0.0 && t < TIME_LIMIT) || !LIT(c, ",\"time_range\":"))
        goto refuse;
    range = num(c, &fl);
    if (range == NULL || (fl && PyFloat_AS_DOUBLE(range) == 0.0))  /* the merge writes 0.0 as 0 */
        goto refuse;
    Py_ssize_t d = c->p - line;
    if (!LIT(c, ",\"user\":") || !str_or_null(c) || !LIT(c, "}") || c->p != c->end)
        goto refuse;

    if (id0 != NULL)
        mid = PyBytes_FromStringAndSize((const char *)id0, id1 - id0);
    else if (msgid0 != NULL)
        mid = PyBytes_FromStringAndSize((const char *)msgid0, msgid1 - msgid0);
    else {
        mid = Py_None;
        Py_INCREF(mid);
    }
    if (mid == NULL)
        goto fail;
    Py_ssize_t k = tc - b;
    content = PyBytes_FromStringAndSize(NULL, a + k + (len - d));
    if (content == NULL)
        goto fail;
    char *w = PyBytes_AS_STRING(content);
    memcpy(w, line, (size_t)a);
    memcpy(w + a, line + b, (size_t)k);
    memcpy(w + a + k, line + d, (size_t)(len - d));
    PyObject *recv_seg = PyBytes_FromStringAndSize((const char *)line + a + 1, b - a - 2);
    if (recv_seg == NULL) {
        Py_DECREF(content);
        goto fail;
    }
    PyObject *numbers = PyBytes_FromStringAndSize((const char *)line + tc, d - tc);
    if (numbers == NULL) {
        Py_DECREF(content);
        Py_DECREF(recv_seg);
        goto fail;
    }
    out = Py_BuildValue("(NnnNNNNNN)", content, a, k, mid, receivers, time, range, recv_seg, numbers);
    return out;

refuse:
    Py_XDECREF(receivers);
    Py_XDECREF(time);
    Py_XDECREF(range);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(receivers);
    Py_XDECREF(time);
    Py_XDECREF(range);
    Py_XDECREF(mid);
    return NULL;
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
    init_plain();
    return PyModule_Create(&module);
}
