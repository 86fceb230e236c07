/* Compiled twin of clean_tally_py (tests/reference/verify_tally.py) (the pure-Python reference): the counters of a batch
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
 * The line itself is read by the one canonical-line scanner (native/canonline.h, which says why a
 * line can be judged canonical from its bytes); this file keeps verify's own job: the counters.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canonline.h"
#include "parts.h"

#define MAX_RECEIVERS 64       /* distinct receivers per file */
#define MAX_PER_RECORD CL_MAX_RECV /* receivers of one record */
#define FINE_LIMIT 10.0        /* verify.tally.FINE_LIMIT */
#define FINE_PER_SECOND 100.0  /* verify.tally.FINE_PER_SECOND */
#define FINE_LOW (-1000)       /* lowest fine bin: floor(-FINE_LIMIT * FINE_PER_SECOND) */
#define FINE_BINS 2000
#define MAX_FAR 64             /* distinct far-off delay bins per receiver */
#define CLAMP 86400.0
#define N_CLASSES 7            /* verify.tally.RANGE_CLASSES */

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
    Recv recv[MAX_RECEIVERS];
    int n_recv;
    Span recorders[MAX_RECEIVERS];
    long long recorder_counts[MAX_RECEIVERS];
    int n_recorders;
    Span *ids;
    Py_ssize_t n_ids, cap_ids;
} State;

static int
span_eq(Span a, Span b)
{
    return a.n == b.n && memcmp(a.s, b.s, (size_t)a.n) == 0;
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
    CanonLine line;
    Span prev_text = {NULL, 0};
    double prev_time = 0, prev_range = 0;
    if (size == 0 || data[size - 1] != '\n')
        return -1;
    while (start < end) {
        const unsigned char *nl = memchr(start, '\n', (size_t)(end - start));
        Span text = {start, nl - start};
        if (text.n == 0 || cl_line(start, text.n, &line) || line.n_recv > MAX_PER_RECORD)
            return -1;
        start = nl + 1;
        double time = line.time.value, tr = line.time_range.value;
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
            double received = line.recv_values[i].value;
            int rint = !line.recv_values[i].is_float;
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
                int err = add_delay(rt, delta, rint && !line.time.is_float);
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

/* delays[bin] = count; 0 or -1 (an exception set) */
static int
put_count(PyObject *delays, long long bin, long long count)
{
    PyObject *k = PyLong_FromLongLong(bin), *v = PyLong_FromLongLong(count);
    int r = k == NULL || v == NULL ? -1 : PyDict_SetItem(delays, k, v);
    Py_XDECREF(k);
    Py_XDECREF(v);
    return r;
}

static PyObject *
receiver_tuple(Recv *rt)
{
    PyObject *delays = PyDict_New();
    if (delays == NULL)
        return NULL;
    if (rt->fine != NULL) {
        for (int i = 0; i < FINE_BINS; i++) {
            if (rt->fine[i] && put_count(delays, i + FINE_LOW, rt->fine[i])) {
                Py_DECREF(delays);
                return NULL;
            }
        }
    }
    for (int i = 0; i < rt->n_far; i++) {
        if (put_count(delays, rt->far_bins[i], rt->far_counts[i])) {
            Py_DECREF(delays);
            return NULL;
        }
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

int
native_add_verify(PyObject *m)
{
    return PyModule_AddFunctions(m, methods);
}
