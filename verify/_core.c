/* Compiled twin of verify.batch.clean_tally_py (the pure-Python reference): the counters of a batch
 * file whose every line is canonical, a record, sorted, in the file's minute, with no repeated
 * message id and no negative or oversized range, read straight from the bytes without building a
 * Python object per record.
 *
 * One source of truth: this accepts only the common shape of a clean file and returns None for
 * anything else (any finding at all, and also odd but valid shapes: ints for times, floats that
 * need an exponent or more than 15 digits, backslashes in object keys, many receivers...); the
 * caller then runs the pure-Python reference, which names every fault. So findings and odd input
 * always come from the reference; tests/test_verify_core.py holds the two equal over random and
 * damaged files (hypothesis) and the fixtures.
 *
 * Why a line can be judged canonical without re-encoding it: a line is canonical when it is what
 * json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")) prints (ensure_ascii). For the
 * fixed record schema that is a grammar: the nine keys in sorted order, object keys strictly
 * increasing, no whitespace, strings of printable ASCII with exactly json.dumps's escapes (\" \\ \n
 * \r \t \b \f, and \u with four lowercase hex digits for other controls and every code point from
 * U+007F), ints without a leading zero (and never -0), and floats as repr() prints them. A float
 * with at most 15 significant digits in fixed notation, no trailing zero in its fraction (but
 * "X.0"), and 1e-4 <= |x| < 1e15 (or zero) is exactly repr() of the double it reads as: decimals of
 * at most 15 digits map to distinct doubles (DBL_DIG), so the shortest round-tripping decimal is
 * that one; and its value is one correctly rounded division (Clinger's fast path: the digits are
 * below 2**53 and the power of ten at most 1e22).
 *
 * Built by setuptools as an optional extension (formats.speedups.load says once when it is not).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/_jsonchars.h"

#define MAX_RECEIVERS 64       /* distinct receivers per file */
#define MAX_PER_RECORD 16      /* receivers of one record */
#define FINE_LIMIT 10.0        /* verify.tally.FINE_LIMIT */
#define FINE_PER_SECOND 100.0  /* verify.tally.FINE_PER_SECOND */
#define FINE_LOW (-1000)       /* lowest fine bin: floor(-FINE_LIMIT * FINE_PER_SECOND) */
#define FINE_BINS 2000
#define MAX_FAR 64             /* distinct far-off delay bins per receiver */
#define CLAMP 86400.0
#define N_CLASSES 7            /* verify.tally.RANGE_CLASSES */

typedef struct {
    const unsigned char *s;
    Py_ssize_t n;
} Span;

typedef struct {
    Span name;
    int recorder;
    long long observations, seen, sole;
    double first, last;
    int first_int, last_int; /* whether the value came from an int (the reference keeps its type) */
    long long *fine; /* FINE_BINS counts, allocated on the first delay */
    long long far_bins[MAX_FAR], far_counts[MAX_FAR];
    int n_far;
    long long delay_count;
    double delay_sum, delay_min, delay_max;
    int min_int, max_int;
} Recv;

typedef struct {
    Span recv_names[MAX_PER_RECORD];
    double recv_values[MAX_PER_RECORD];
    int recv_int[MAX_PER_RECORD];
    int n_recv;
    Span id; /* message id (raw canonical bytes), s == NULL if none */
    double time, time_range;
    int time_int;
} Line;

typedef struct {
    Recv recv[MAX_RECEIVERS];
    int n_recv;
    Span recorders[MAX_RECEIVERS];
    long long recorder_counts[MAX_RECEIVERS];
    int n_recorders;
    Span *ids;
    Py_ssize_t n_ids, cap_ids;
} State;

static int
span_cmp(Span a, Span b)
{
    Py_ssize_t n = a.n < b.n ? a.n : b.n;
    int c = memcmp(a.s, b.s, (size_t)n);
    if (c)
        return c;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

static int
span_eq(Span a, Span b)
{
    return a.n == b.n && memcmp(a.s, b.s, (size_t)a.n) == 0;
}

/* A canonical JSON string at *pp (its opening quote); on success *pp is past the closing quote and
 * *escaped says whether it held a backslash. */
static int
scan_string(const unsigned char **pp, const unsigned char *e, int *escaped)
{
    const unsigned char *p = *pp;
    int esc = 0;
    if (p >= e || *p != '"')
        return -1;
    p++;
    for (;;) {
        if (p >= e)
            return -1;
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = 1;
            if (p + 1 >= e)
                return -1;
            unsigned char d = p[1];
            if (d == '"' || d == '\\' || d == 'n' || d == 'r' || d == 't' || d == 'b' || d == 'f') {
                p += 2;
                continue;
            }
            if (d != 'u' || e - p < 6)
                return -1;
            unsigned v = 0;
            for (int i = 2; i < 6; i++) {
                unsigned char h = p[i];
                if (h >= '0' && h <= '9')
                    v = v * 16 + (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f')
                    v = v * 16 + (unsigned)(h - 'a' + 10);
                else
                    return -1;
            }
            /* json.dumps writes printable ASCII as itself and these five as \b \t \n \f \r */
            if ((v >= 0x20 && v < 0x7f) || v == 8 || v == 9 || v == 10 || v == 12 || v == 13)
                return -1;
            p += 6;
            continue;
        }
        if (c < 0x20 || c >= 0x7f)
            return -1;
        p++;
    }
    *pp = p + 1;
    if (escaped)
        *escaped = esc;
    return 0;
}

static const double POW10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Whether `tok` (n bytes, a JSON number with a fraction or an exponent) is exactly repr() of the
 * double it reads as, the way float.__repr__ computes it; the double in *value. The slow, general
 * check, for what the fast ones below do not cover. */
static int
float_repr_check(const unsigned char *tok, Py_ssize_t n, double *value)
{
    char buf[64];
    if (n >= (Py_ssize_t)sizeof(buf))
        return -1;
    memcpy(buf, tok, (size_t)n);
    buf[n] = '\0';
    char *endp;
    double x = PyOS_string_to_double(buf, &endp, NULL);
    if (x == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (endp != buf + n || !isfinite(x))
        return -1;
    char again[64]; /* repr(x), as the encoders print it (formats/_jsonchars.h) */
    Py_ssize_t m = put_double(again, x);
    if (m < 0) {
        PyErr_Clear();
        return -1;
    }
    if (m != n || memcmp(again, buf, (size_t)n) != 0)
        return -1;
    *value = x;
    return 0;
}

#define TWO53 9007199254740992ULL

/* A canonical number at *pp: its value and whether it is a float. Ints of at most 15 digits; floats
 * as repr() prints them (see the top of the file for the fast cases). */
static int
scan_number(const unsigned char **pp, const unsigned char *e, double *value, int *is_float)
{
    const unsigned char *tok = *pp, *p = *pp;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    const unsigned char *ip = p;
    if (p >= e || *p < '0' || *p > '9')
        return -1;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9')
            return -1; /* a leading zero */
    }
    else {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    Py_ssize_t ni = p - ip;
    int int_zero = ni == 1 && *ip == '0';
    const unsigned char *fp = NULL;
    Py_ssize_t nf = 0;
    int has_exp = 0;
    if (p < e && *p == '.') {
        fp = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        nf = p - fp;
        if (nf == 0)
            return -1;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        has_exp = 1;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const unsigned char *xp = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == xp)
            return -1;
    }
    *pp = p;
    if (fp == NULL && !has_exp) { /* an int */
        if (ni > 15 || (neg && int_zero)) /* -0 reads as 0 */
            return -1;
        unsigned long long m = 0;
        for (const unsigned char *q = ip; q < ip + ni; q++)
            m = m * 10 + (unsigned long long)(*q - '0');
        *value = neg ? -(double)m : (double)m;
        *is_float = 0;
        return 0;
    }
    *is_float = 1;
    if (has_exp || ni > 15)
        return float_repr_check(tok, p - tok, value);
    unsigned long long m = 0;
    for (const unsigned char *q = ip; q < ip + ni; q++)
        m = m * 10 + (unsigned long long)(*q - '0');
    double x;
    if (nf == 1 && fp[0] == '0') {
        x = (double)m; /* integral: repr writes "X.0" */
    }
    else {
        if (fp[nf - 1] == '0')
            return -1; /* repr writes no trailing zero */
        Py_ssize_t z = 0;
        if (int_zero) {
            while (z < nf && fp[z] == '0')
                z++;
            if (z > 3)
                return float_repr_check(tok, p - tok, value); /* below 1e-4: an exponent */
        }
        int sig = (int)(int_zero ? nf - z : ni + nf);
        if (sig > 16 || nf > 22)
            return float_repr_check(tok, p - tok, value);
        for (Py_ssize_t i = z; i < nf; i++)
            m = m * 10 + (unsigned long long)(fp[i] - '0');
        if (m >= TWO53 - 10)
            return float_repr_check(tok, p - tok, value);
        x = (double)m / POW10[nf]; /* correctly rounded: both exact, one division */
        if (sig == 16) {
            /* canonical when no shorter decimal reads as x (the two 15-digit neighbours) and no other
             * 16-digit one does (x's rounding interval, one ulp wide, is narrower than their step) */
            int ex;
            frexp(x, &ex);
            if (!(ldexp(2.0, ex - 53) < 1.0 / POW10[nf]))
                return float_repr_check(tok, p - tok, value);
            unsigned long long lo = m - m % 10;
            if ((double)lo / POW10[nf] == x || (double)(lo + 10) / POW10[nf] == x)
                return -1;
        }
    }
    *value = neg ? -x : x;
    return 0;
}

static int
expect(const unsigned char **pp, const unsigned char *e, const char *lit, Py_ssize_t n)
{
    if (e - *pp < n || memcmp(*pp, lit, (size_t)n) != 0)
        return -1;
    *pp += n;
    return 0;
}

#define EXPECT(lit)                                          \
    do {                                                     \
        if (expect(&p, e, lit, (Py_ssize_t)sizeof(lit) - 1)) \
            return -1;                                       \
    } while (0)

static int
string_or_null(const unsigned char **pp, const unsigned char *e)
{
    if (e - *pp >= 4 && memcmp(*pp, "null", 4) == 0) {
        *pp += 4;
        return 0;
    }
    return scan_string(pp, e, NULL);
}

/* After an item of an array or object: 1 past a comma (another item follows), 0 past `close`. */
static int
next_item(const unsigned char **pp, const unsigned char *e, unsigned char close)
{
    if (*pp < e && (**pp == ',' || **pp == close))
        return *(*pp)++ == ',';
    return -1;
}

/* One line (without its newline) as a record of the archive schema, canonical. */
static int
parse_line(const unsigned char *p, const unsigned char *e, Line *r)
{
    int esc, is_float;
    EXPECT("{\"command\":");
    if (scan_string(&p, e, NULL))
        return -1;
    EXPECT(",\"host\":");
    if (string_or_null(&p, e))
        return -1;
    EXPECT(",\"params\":[");
    if (p < e && *p == ']')
        p++;
    else {
        for (;;) {
            if (scan_string(&p, e, NULL))
                return -1;
            int more = next_item(&p, e, ']');
            if (more < 0)
                return -1;
            if (!more)
                break;
        }
    }
    EXPECT(",\"receivers\":{");
    r->n_recv = 0;
    for (;;) {
        const unsigned char *ks = p + 1;
        if (scan_string(&p, e, &esc) || esc)
            return -1;
        Span key = {ks, p - 1 - ks};
        if (r->n_recv >= MAX_PER_RECORD || (r->n_recv && span_cmp(r->recv_names[r->n_recv - 1], key) >= 0))
            return -1;
        EXPECT(":");
        if (scan_number(&p, e, &r->recv_values[r->n_recv], &is_float))
            return -1;
        r->recv_int[r->n_recv] = !is_float;
        r->recv_names[r->n_recv++] = key;
        int more = next_item(&p, e, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    EXPECT(",\"sender\":");
    if (string_or_null(&p, e))
        return -1;
    EXPECT(",\"tags\":");
    r->id.s = NULL;
    if (e - p >= 4 && memcmp(p, "null", 4) == 0)
        p += 4;
    else {
        Span id = {NULL, 0}, msgid = {NULL, 0}, prev = {NULL, 0};
        EXPECT("{");
        if (p < e && *p == '}')
            p++;
        else {
            for (;;) {
                const unsigned char *ks = p + 1;
                if (scan_string(&p, e, &esc) || esc)
                    return -1;
                Span key = {ks, p - 1 - ks};
                if (prev.s != NULL && span_cmp(prev, key) >= 0)
                    return -1;
                prev = key;
                EXPECT(":");
                if (e - p >= 4 && memcmp(p, "true", 4) == 0)
                    p += 4;
                else {
                    const unsigned char *vs = p + 1;
                    if (scan_string(&p, e, NULL))
                        return -1;
                    Span value = {vs, p - 1 - vs};
                    if (key.n == 2 && memcmp(key.s, "id", 2) == 0)
                        id = value;
                    else if (key.n == 5 && memcmp(key.s, "msgid", 5) == 0)
                        msgid = value;
                }
                int more = next_item(&p, e, '}');
                if (more < 0)
                    return -1;
                if (!more)
                    break;
            }
        }
        r->id = id.s != NULL ? id : msgid;
    }
    EXPECT(",\"time\":");
    if (scan_number(&p, e, &r->time, &is_float))
        return -1;
    r->time_int = !is_float;
    EXPECT(",\"time_range\":");
    if (scan_number(&p, e, &r->time_range, &is_float))
        return -1;
    EXPECT(",\"user\":");
    if (string_or_null(&p, e))
        return -1;
    EXPECT("}");
    return p == e ? 0 : -1;
}

/* verify.tally.range_class, for the ranges a clean file holds (0 <= time_range <= 60) */
static int
range_class(double tr)
{
    if (tr == 0)
        return 0; /* exact */
    if (tr == 10)
        return 2; /* estimated */
    if (tr == 15)
        return 3; /* estimated-no-server-time */
    if (tr == 55 || tr == 60)
        return 4; /* delayed */
    return 1; /* narrowed */
}

/* verify.tally.recorder_of: the part before the second-last dot, else the whole name */
static Span
recorder_of(Span name)
{
    Py_ssize_t last = -1, before = -1;
    for (Py_ssize_t i = name.n - 1; i >= 0; i--) {
        if (name.s[i] == '.') {
            if (last < 0)
                last = i;
            else {
                before = i;
                break;
            }
        }
    }
    if (before < 0)
        return name;
    Span out = {name.s, before};
    return out;
}

static int
receiver_index(State *st, Span name)
{
    for (int i = 0; i < st->n_recv; i++)
        if (span_eq(st->recv[i].name, name))
            return i;
    if (st->n_recv >= MAX_RECEIVERS)
        return -1;
    Span who = recorder_of(name);
    int k;
    for (k = 0; k < st->n_recorders; k++)
        if (span_eq(st->recorders[k], who))
            break;
    if (k == st->n_recorders)
        st->recorders[st->n_recorders++] = who;
    Recv *rt = &st->recv[st->n_recv];
    memset(rt, 0, sizeof(*rt));
    rt->name = name;
    rt->recorder = k;
    rt->first = Py_HUGE_VAL;
    rt->last = -Py_HUGE_VAL;
    rt->delay_min = Py_HUGE_VAL;
    rt->delay_max = -Py_HUGE_VAL;
    return st->n_recv++;
}

/* verify.tally.delay_bin beyond the fine bins */
static long long
far_bin(double delta)
{
    double clamped = delta > CLAMP ? CLAMP : delta;
    clamped = clamped < -CLAMP ? -CLAMP : clamped;
    long long step = 1000, whole = (long long)floor(clamped);
    if (clamped >= 0)
        return step + whole - 10;
    return -step - 1 + whole + 10;
}

static int
add_delay(Recv *rt, double delta, int is_int)
{
    if (-FINE_LIMIT < delta && delta < FINE_LIMIT) {
        long long b = (long long)floor(delta * FINE_PER_SECOND);
        if (b < FINE_LOW || b >= FINE_LOW + FINE_BINS)
            return -1;
        if (rt->fine == NULL) {
            rt->fine = calloc(FINE_BINS, sizeof(long long));
            if (rt->fine == NULL)
                return -2;
        }
        rt->fine[b - FINE_LOW]++;
    }
    else {
        long long b = far_bin(delta);
        int i;
        for (i = 0; i < rt->n_far; i++)
            if (rt->far_bins[i] == b)
                break;
        if (i == rt->n_far) {
            if (rt->n_far >= MAX_FAR)
                return -1;
            rt->far_bins[i] = b;
            rt->far_counts[i] = 0;
            rt->n_far++;
        }
        rt->far_counts[i]++;
    }
    rt->delay_count++;
    rt->delay_sum += delta;
    if (delta < rt->delay_min) {
        rt->delay_min = delta;
        rt->min_int = is_int;
    }
    if (delta > rt->delay_max) {
        rt->delay_max = delta;
        rt->max_int = is_int;
    }
    return 0;
}

static int
cmp_ids(const void *a, const void *b)
{
    return span_cmp(*(const Span *)a, *(const Span *)b);
}

typedef struct {
    double value;
    int is_int;
} Num;

/* 0: clean and counted; -1: not a clean file of the common shape; -2: out of memory */
static int
scan(State *st, const unsigned char *data, Py_ssize_t size, long long batch_time, long long counts[3],
     long long classes[N_CLASSES], Num ends[2])
{
    const unsigned char *start = data, *end = data + size;
    Line line;
    Span prev_text = {NULL, 0};
    double prev_time = 0, prev_range = 0;
    if (size == 0 || data[size - 1] != '\n')
        return -1;
    while (start < end) {
        const unsigned char *nl = memchr(start, '\n', (size_t)(end - start));
        Span text = {start, nl - start};
        if (text.n == 0 || parse_line(start, nl, &line))
            return -1;
        start = nl + 1;
        double time = line.time, tr = line.time_range;
        /* sorted by (time, time_range, line text) */
        if (prev_text.s != NULL) {
            if (time < prev_time || (time == prev_time && tr < prev_range))
                return -1;
            if (time == prev_time && tr == prev_range && span_cmp(text, prev_text) < 0)
                return -1;
        }
        prev_text = text;
        prev_time = time;
        prev_range = tr;
        /* in the file's minute (verify.batch._batch_of), no conflict, no odd range; times beyond
         * 1e15 (the slow float check admits any finite one) are left to the reference */
        if (!(fabs(time) < 1e15) || (long long)(time / 60.0) * 60 != batch_time)
            return -1;
        if (tr < 0 || !(tr <= 60))
            return -1;
        int has_id = line.id.s != NULL;
        if (has_id) {
            if (st->n_ids == st->cap_ids) {
                Py_ssize_t cap = st->cap_ids ? st->cap_ids * 2 : 4096;
                Span *grown = realloc(st->ids, (size_t)cap * sizeof(Span));
                if (grown == NULL)
                    return -2;
                st->ids = grown;
                st->cap_ids = cap;
            }
            st->ids[st->n_ids++] = line.id;
        }
        /* verify.batch._count */
        classes[range_class(tr)]++;
        int alone = line.n_recv == 1, exact = tr == 0;
        int whos[MAX_PER_RECORD], n_whos = 0;
        counts[0]++;
        if (has_id) {
            counts[1]++;
            if (alone)
                counts[2]++;
        }
        for (int i = 0; i < line.n_recv; i++) {
            int k = receiver_index(st, line.recv_names[i]);
            if (k < 0)
                return -1;
            Recv *rt = &st->recv[k];
            double received = line.recv_values[i];
            int rint = line.recv_int[i];
            rt->observations++;
            if (has_id) {
                rt->seen++;
                if (alone)
                    rt->sole++;
                int j;
                for (j = 0; j < n_whos; j++)
                    if (whos[j] == rt->recorder)
                        break;
                if (j == n_whos)
                    whos[n_whos++] = rt->recorder;
            }
            if (received < rt->first) {
                rt->first = received;
                rt->first_int = rint;
            }
            if (received > rt->last) {
                rt->last = received;
                rt->last_int = rint;
            }
            if (received < ends[0].value) {
                ends[0].value = received;
                ends[0].is_int = rint;
            }
            if (received > ends[1].value) {
                ends[1].value = received;
                ends[1].is_int = rint;
            }
            if (exact) {
                double delta = received - time;
                if (!isfinite(delta))
                    return -1; /* the reference leaves it out of the sum: left to it */
                int err = add_delay(rt, delta, rint && line.time_int);
                if (err)
                    return err;
            }
        }
        for (int j = 0; j < n_whos; j++)
            st->recorder_counts[whos[j]]++;
    }
    /* no message id twice */
    if (st->n_ids > 1) {
        qsort(st->ids, (size_t)st->n_ids, sizeof(Span), cmp_ids);
        for (Py_ssize_t i = 1; i < st->n_ids; i++)
            if (span_eq(st->ids[i - 1], st->ids[i]))
                return -1;
    }
    return 0;
}

/* a number as the reference holds it: an int where the line had one (exact: at most 15 digits) */
static PyObject *
num_obj(double value, int is_int)
{
    if (is_int)
        return PyLong_FromDouble(value);
    return PyFloat_FromDouble(value);
}

static PyObject *
span_str(Span s)
{
    return PyUnicode_DecodeASCII((const char *)s.s, s.n, NULL);
}

static PyObject *
receiver_tuple(Recv *rt)
{
    PyObject *delays = PyDict_New();
    if (delays == NULL)
        return NULL;
    if (rt->fine != NULL) {
        for (int i = 0; i < FINE_BINS; i++) {
            if (!rt->fine[i])
                continue;
            PyObject *k = PyLong_FromLong(i + FINE_LOW), *v = PyLong_FromLongLong(rt->fine[i]);
            if (k == NULL || v == NULL || PyDict_SetItem(delays, k, v)) {
                Py_XDECREF(k);
                Py_XDECREF(v);
                Py_DECREF(delays);
                return NULL;
            }
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    for (int i = 0; i < rt->n_far; i++) {
        PyObject *k = PyLong_FromLongLong(rt->far_bins[i]), *v = PyLong_FromLongLong(rt->far_counts[i]);
        if (k == NULL || v == NULL || PyDict_SetItem(delays, k, v)) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(delays);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    PyObject *name = span_str(rt->name);
    if (name == NULL) {
        Py_DECREF(delays);
        return NULL;
    }
    return Py_BuildValue("(NLLLNNNLdNN)", name, rt->observations, rt->seen, rt->sole,
                         num_obj(rt->first, rt->first_int), num_obj(rt->last, rt->last_int), delays,
                         rt->delay_count, rt->delay_sum, num_obj(rt->delay_min, rt->min_int),
                         num_obj(rt->delay_max, rt->max_int));
}

static PyObject *
build_result(State *st, long long counts[3], long long classes[N_CLASSES], Num ends[2])
{
    PyObject *receivers = PyList_New(0), *recorders = PyList_New(0);
    if (receivers == NULL || recorders == NULL)
        goto fail;
    for (int i = 0; i < st->n_recv; i++) {
        PyObject *t = receiver_tuple(&st->recv[i]);
        if (t == NULL || PyList_Append(receivers, t)) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    for (int k = 0; k < st->n_recorders; k++) {
        if (!st->recorder_counts[k])
            continue;
        PyObject *t = Py_BuildValue("(NL)", span_str(st->recorders[k]), st->recorder_counts[k]);
        if (t == NULL || PyList_Append(recorders, t)) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    return Py_BuildValue("(LLL(LLLLLLL)NNNN)", counts[0], counts[1], counts[2], classes[0], classes[1],
                         classes[2], classes[3], classes[4], classes[5], classes[6], receivers, recorders,
                         num_obj(ends[0].value, ends[0].is_int), num_obj(ends[1].value, ends[1].is_int));
fail:
    Py_XDECREF(receivers);
    Py_XDECREF(recorders);
    return NULL;
}

static PyObject *
scan_clean(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    long long batch_time;
    if (!PyArg_ParseTuple(args, "y*L", &buf, &batch_time))
        return NULL;
    State *st = calloc(1, sizeof(State));
    if (st == NULL) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    long long counts[3] = {0, 0, 0}, classes[N_CLASSES] = {0};
    Num ends[2] = {{Py_HUGE_VAL, 0}, {-Py_HUGE_VAL, 0}};
    /* with the GIL: the general float check calls float.__repr__'s own functions */
    int err = scan(st, (const unsigned char *)buf.buf, buf.len, batch_time, counts, classes, ends);
    PyObject *result;
    if (err == -2)
        result = PyErr_NoMemory();
    else if (err)
        result = Py_NewRef(Py_None);
    else
        result = build_result(st, counts, classes, ends);
    for (int i = 0; i < st->n_recv; i++)
        free(st->recv[i].fine);
    free(st->ids);
    free(st);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_clean", scan_clean, METH_VARARGS,
     "scan_clean(data, batch_time): the counters of a clean batch file, or None (see verify.batch)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "verify._core", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModule_Create(&module);
}
