/* Compiled twin of tests/reference/merge_scan.py scan_line_py / scan_batch_py (the pure-Python reference).
 *
 * One source of truth: the reference decodes a batch file line, checks it as every reader does
 * (formats.canonical.parse_batch, merge.directory.check_parsed) and vouches for it only if it is
 * exactly its canonical bytes and of the shape the merge's fast path handles; then it returns the
 * few fields a merge needs. This reads the line with the one canonical-line scanner
 * (native/canonline.h) and vouches for it only when the reference would (plus the merge's own
 * shape: no lone surrogate, no -0.0, a time the layout can name, no 0.0 range); anything it is unsure
 * of it refuses (None), and the caller then takes the whole file through the reference path, so
 * errors and odd files always come from the pure code. tests/test_merge_scan.py holds the two equal
 * over random, damaged and real lines.
 *
 * What the directory merge runs is the same scan kept without Python objects: scan_file keeps a
 * file's lines as offsets and numbers (Lines), and fold_lines folds a window from them in one call
 * (twin of fold_window_py (tests/reference/merge_fold.py): the common groups spliced into output lines here, the few
 * other lines handed back scanned, as scan_line would, for the Python plan), answering also the
 * window's ids (Ids), the summary of the output as the next window's neighbour.
 *
 * Part of formats._native (native/module.c, native/parts.h), an optional extension built by setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "canonline.h"
#include "parts.h"

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

/* {name bytes: number} of a line vouch() accepted; NULL on a memory error */
static PyObject *
receivers_dict(const CanonLine *r)
{
    PyObject *receivers = PyDict_New();
    if (receivers == NULL)
        return NULL;
    if (r->n_recv <= CL_MAX_RECV) {
        for (int i = 0; i < r->n_recv; i++) {
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
        if (more < 0 || add_receiver(receivers, name, &value) < 0) {
            Py_DECREF(receivers);
            if (more < 0)
                PyErr_SetString(PyExc_SystemError, "formats._native: a checked receivers object does not read again");
            return NULL;
        }
    } while (more);
    return receivers;
}

/* (content, a, k, mid, receivers, time, time_range, receivers_text, numbers_text) of a line the merge may handle as bytes, or
 * Py_None (not vouched for). NULL only on a memory error. */
/* Whether scan_line_py vouches for the line: the canonical grammar (*r filled) and the merge's
 * shape (no lone surrogate, no -0.0 anywhere, a time the layout can name). 1 or 0. */
static int
vouch(const unsigned char *line, Py_ssize_t len, CanonLine *r)
{
    if (cl_line(line, len, r) || r->lone_surrogate || NEG_ZERO(r->time) || NEG_ZERO(r->time_range))
        return 0;
    if (!(r->time.value >= 0.0 && r->time.value < TIME_LIMIT))
        return 0;
    for (int i = 0; i < r->n_recv && i < CL_MAX_RECV; i++)
        if (NEG_ZERO(r->recv_values[i]))
            return 0;
    if (r->n_recv > CL_MAX_RECV) { /* more than the line keeps: walk the (already checked) object again */
        CanonCur cur = {r->receivers.s + 1, r->receivers.s + r->receivers.n};
        Span prev = {NULL, 0}, name;
        CanonNum value;
        int more;
        do {
            more = cl_receiver(&cur, &prev, &name, &value);
            if (more < 0 || NEG_ZERO(value))
                return 0;
        } while (more);
    }
    return 1;
}

static PyObject *
scan(const unsigned char *line, Py_ssize_t len)
{
    CanonLine r;
    if (!vouch(line, len, &r))
        Py_RETURN_NONE;
    Py_ssize_t a = r.receivers.s - line, b = a + r.receivers.n;
    Py_ssize_t tc = r.time_at - line, d = r.range_end - line;
    PyObject *receivers = receivers_dict(&r);
    if (receivers == NULL)
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
    const unsigned char *data;
    Py_ssize_t n;
    int whole = cl_batch_bytes(arg, "scan_batch", &data, &n);
    if (whole <= 0)
        return whole < 0 ? NULL : PyLong_FromLong(0);
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

/* ---- A batch file's lines scanned once and kept as offsets and numbers: no Python object per line.
 * merge.fastplan.plan_window_lines folds a window from these (fold_lines); its reference is
 * fold_window_py (tests/reference/merge_fold.py) on the scans of scan_batch_py, held equal by tests/test_merge_scan.py. */

typedef struct {
    Py_ssize_t start, len;     /* the line in the file's bytes, without its newline */
    Py_ssize_t a, b, tc, d;    /* from start: the receivers object [a, b), the time's number at tc, the range's end d */
    Py_ssize_t id, id_len;     /* from start: the id between its quotes; id_len < 0: none */
    uint64_t id_h;             /* id_hash of the id (made while the line is in the cache) */
    Py_ssize_t name, name_len; /* from start: the receiver's name, when there is one receiver */
    CanonNum time, range;
    long long minute; /* batch_time_of(time) */
    int n_recv;
} LineRec;

typedef struct {
    PyObject_HEAD
    PyObject *data; /* the file's bytes */
    Py_ssize_t n;
    LineRec *lines;
} LinesObject;

static void
lines_dealloc(LinesObject *self)
{
    Py_XDECREF(self->data);
    PyMem_Free(self->lines);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
lines_len(LinesObject *self)
{
    return self->n;
}

static PySequenceMethods lines_as_sequence = {.sq_length = (lenfunc)lines_len};

static PyTypeObject LinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "formats._native.Lines",
    .tp_doc = "A batch file's lines, every one vouched for (scan_file): offsets and numbers, no objects.",
    .tp_basicsize = sizeof(LinesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)lines_dealloc,
    .tp_as_sequence = &lines_as_sequence,
};

/* a hash of an id, eight bytes at a time */
static uint64_t
id_hash(const unsigned char *s, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, s, (size_t)n);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    }
    h ^= h >> 29;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 32);
}

/* A batch file's bytes as Lines when every line is vouched for (as scan_batch: the same lines, the
 * same refusals), else the number (from 1) of the first line that is not (0: empty, or no final
 * newline). */
static PyObject *
scan_file(PyObject *self, PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t n;
    int whole = cl_batch_bytes(arg, "scan_file", &data, &n);
    if (whole <= 0)
        return whole < 0 ? NULL : PyLong_FromLong(0);
    Py_ssize_t cap = 64, count = 0, start = 0;
    LineRec *recs = PyMem_Malloc(sizeof(LineRec) * (size_t)cap);
    if (recs == NULL)
        return PyErr_NoMemory();
    while (start < n) {
        const unsigned char *line = data + start;
        const unsigned char *nl = memchr(line, '\n', (size_t)(n - start));
        Py_ssize_t len = nl - line;
        CanonLine r;
        if (!vouch(line, len, &r)) {
            PyMem_Free(recs);
            return PyLong_FromSsize_t(count + 1);
        }
        if (count == cap) {
            LineRec *grown = cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(LineRec) ? NULL
                : PyMem_Realloc(recs, sizeof(LineRec) * (size_t)(cap * 2));
            if (grown == NULL) {
                PyMem_Free(recs);
                return PyErr_NoMemory();
            }
            recs = grown;
            cap *= 2;
        }
        LineRec *rec = &recs[count++];
        rec->start = start;
        rec->len = len;
        rec->a = r.receivers.s - line;
        rec->b = rec->a + r.receivers.n;
        rec->tc = r.time_at - line;
        rec->d = r.range_end - line;
        rec->id = r.id.s == NULL ? 0 : r.id.s - line;
        rec->id_len = r.id.s == NULL ? -1 : r.id.n;
        rec->id_h = r.id.s == NULL ? 0 : id_hash(r.id.s, r.id.n);
        rec->n_recv = r.n_recv;
        rec->name = r.n_recv == 1 ? r.recv_names[0].s - line : 0;
        rec->name_len = r.n_recv == 1 ? r.recv_names[0].n : 0;
        rec->time = r.time;
        rec->range = r.time_range;
        /* batch_time_of: int(time / 60) * 60; an int time is below 10**15, exact as a double, and its
         * true division is the same correctly rounded quotient */
        rec->minute = (long long)(r.time.value / 60.0) * 60;
        start += len + 1;
    }
    LinesObject *out = PyObject_New(LinesObject, &LinesType);
    if (out == NULL) {
        PyMem_Free(recs);
        return NULL;
    }
    out->data = Py_NewRef(arg);
    out->n = count;
    out->lines = recs;
    return (PyObject *)out;
}

typedef struct {
    const unsigned char *line;
    const LineRec *rec;
} LineRef;

typedef struct {
    Py_ssize_t first, last, count; /* members, linked through `next` in order of appearance */
    Py_ssize_t same_id;            /* the next group of this id (another content), or -1 */
    const unsigned char *id;       /* the id's bytes (in the first member's line), and their hash */
    Py_ssize_t id_len;
    uint64_t h;
} Group;

/* The groups of a window's own lines by id: an open-addressing table (slot -> group + 1, 0: empty)
 * of `cap` slots (a power of two) over the first group of each id. */
typedef struct {
    Py_ssize_t *table, cap;
    Group *groups;
    Py_ssize_t n;
} IdTable;

/* the first group of this id, or -1; *slot: where it is, or the empty slot to put it */
static Py_ssize_t
id_find(const IdTable *t, const unsigned char *id, Py_ssize_t id_len, uint64_t h, Py_ssize_t *slot)
{
    Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(t->cap - 1)), g;
    while ((g = t->table[at] - 1) >= 0) {
        const Group *grp = &t->groups[g];
        if (grp->h == h && grp->id_len == id_len && memcmp(grp->id, id, (size_t)id_len) == 0)
            break;
        at = (at + 1) & (t->cap - 1);
    }
    *slot = at;
    return g;
}

/* How many lines ahead fold_lines asks for what it will read (the table's slot, the line's id and
 * content): those are cold, read a window after the file was scanned. */
#define PREFETCH 8

static inline void
prefetch_id(const IdTable *t, const unsigned char *base, const LineRec *rec)
{
    const unsigned char *line = base + rec->start;
    __builtin_prefetch(line);
    if (rec->id_len >= 0) {
        __builtin_prefetch(line + rec->id);
        __builtin_prefetch(&t->table[rec->id_h & (uint64_t)(t->cap - 1)]);
    }
}

/* The ids of a window's own lines and its minute, kept with the output the byte path wrote from
 * them (fold_lines' fifth answer): the output's summary as a neighbour of the next windows (its
 * records all lie in the minute, and its ids are these), so it need not be scanned for that. */
typedef struct {
    PyObject_HEAD
    PyObject *owners; /* the Lines whose bytes the ids point into */
    long long minute;
    IdTable t;
} IdsObject;

static void
ids_dealloc(IdsObject *self)
{
    Py_XDECREF(self->owners);
    PyMem_Free(self->t.table);
    PyMem_Free(self->t.groups);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* (frozenset({minute}), frozenset(ids)): merge.plan.Summary, what the reference keeps */
static PyObject *
ids_summary(IdsObject *self, PyObject *unused)
{
    PyObject *ids = PyFrozenSet_New(NULL), *minute = PyLong_FromLongLong(self->minute), *minutes = NULL;
    if (ids == NULL || minute == NULL)
        goto fail;
    for (Py_ssize_t g = 0; g < self->t.n; g++) {
        PyObject *id = PyBytes_FromStringAndSize((const char *)self->t.groups[g].id, self->t.groups[g].id_len);
        if (id == NULL || PySet_Add(ids, id) < 0) {
            Py_XDECREF(id);
            goto fail;
        }
        Py_DECREF(id);
    }
    minutes = PyFrozenSet_New(NULL);
    if (minutes == NULL || PySet_Add(minutes, minute) < 0)
        goto fail;
    Py_DECREF(minute);
    return Py_BuildValue("(NN)", minutes, ids);
fail:
    Py_XDECREF(ids);
    Py_XDECREF(minute);
    Py_XDECREF(minutes);
    return NULL;
}

static PyMethodDef ids_methods[] = {
    {"summary", (PyCFunction)ids_summary, METH_NOARGS, "(frozenset({minute}), frozenset(ids)), as merge.plan.Summary"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IdsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "formats._native.Ids",
    .tp_doc = "The ids of a window's own lines and its minute: the summary of the output written from them.",
    .tp_basicsize = sizeof(IdsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)ids_dealloc,
    .tp_methods = ids_methods,
};

static int
same_bytes(const unsigned char *x, Py_ssize_t nx, const unsigned char *y, Py_ssize_t ny)
{
    return nx == ny && memcmp(x, y, (size_t)nx) == 0;
}

/* equal content: the line less the receivers object, the time's and the range's numbers */
static int
same_content(LineRef x, LineRef y)
{
    const LineRec *p = x.rec, *q = y.rec;
    return same_bytes(x.line, p->a, y.line, q->a)
        && same_bytes(x.line + p->b, p->tc - p->b, y.line + q->b, q->tc - q->b)
        && same_bytes(x.line + p->d, p->len - p->d, y.line + q->d, q->len - q->d);
}

static int
rest_append(PyObject *rest, LineRef x)
{
    PyObject *s = scan(x.line, x.rec->len);
    if (s == Py_None) { /* vouched for by scan_file: cannot happen */
        Py_DECREF(s);
        PyErr_SetString(PyExc_SystemError, "fold_lines: a line scan_file vouched for does not scan");
        return -1;
    }
    int r = s == NULL ? -1 : PyList_Append(rest, s);
    Py_XDECREF(s);
    return r;
}

/* A common group folded (see fold_common_py): 1 (the item appended), 0 (not common) or -1. */
static int
fold_group(PyObject *items, const LineRef *refs, const Py_ssize_t *next, const Group *g)
{
    if (g->count > 16)
        return 0;
    LineRef first = refs[g->first];
    const LineRec *f = first.rec;
    if (f->range.is_float || f->range.ival != 0)
        return 0;
    /* two or more receivers combined: upstream's floats (merge.core.combined), the time's text as it
     * is when it is a float's repr and the range `0.0`; an int time is left to the reference */
    int combined = g->count >= 2;
    if (combined && !f->time.is_float)
        return 0;
    Py_ssize_t members[16], order[16], total = f->a + 2 + (f->len - f->b) + (g->count - 1) + (combined ? 2 : 0);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = g->first; i >= 0; i = next[i], j++) {
        LineRef x = refs[i];
        const LineRec *p = x.rec;
        if (p->n_recv != 1 || !same_bytes(x.line + p->tc, p->d - p->tc, first.line + f->tc, f->d - f->tc))
            return 0;
        Span name = {x.line + p->name, p->name_len};
        Py_ssize_t at = j;
        while (at > 0) { /* insertion by name; a name seen before: not common */
            LineRef o = refs[members[order[at - 1]]];
            int c = span_cmp(name, (Span){o.line + o.rec->name, o.rec->name_len});
            if (c == 0)
                return 0;
            if (c > 0)
                break;
            order[at] = order[at - 1];
            at--;
        }
        members[j] = i;
        order[at] = j;
        total += p->b - p->a - 2;
    }
    PyObject *line = PyBytes_FromStringAndSize(NULL, total);
    if (line == NULL)
        return -1;
    char *w = PyBytes_AS_STRING(line);
    memcpy(w, first.line, (size_t)f->a);
    w += f->a;
    *w++ = '{';
    for (j = 0; j < g->count; j++) {
        LineRef x = refs[members[order[j]]];
        if (j)
            *w++ = ',';
        memcpy(w, x.line + x.rec->a + 1, (size_t)(x.rec->b - x.rec->a - 2));
        w += x.rec->b - x.rec->a - 2;
    }
    *w++ = '}';
    if (combined) { /* the range's text is `0`, ending at d: written `0.0` */
        memcpy(w, first.line + f->b, (size_t)(f->d - f->b));
        w += f->d - f->b;
        *w++ = '.';
        *w++ = '0';
        memcpy(w, first.line + f->d, (size_t)(f->len - f->d));
    } else
        memcpy(w, first.line + f->b, (size_t)(f->len - f->b));
    PyObject *time = num_obj(&f->time), *zero = combined ? PyFloat_FromDouble(0.0) : PyLong_FromLong(0);
    PyObject *item = time == NULL || zero == NULL ? NULL : PyTuple_Pack(3, time, zero, line);
    Py_XDECREF(time);
    Py_XDECREF(zero);
    Py_DECREF(line);
    int r = item == NULL ? -1 : PyList_Append(items, item);
    Py_XDECREF(item);
    return r < 0 ? -1 : 1;
}

/* Whether a neighbour file meets the window over `minute` whose own ids are `own`: a record of it
 * lies in the minute, or shares an id with one of the window's. */
static int
neighbour_meets(PyObject *file, long long minute, const IdTable *own)
{
    Py_ssize_t slot;
    if (Py_IS_TYPE(file, &IdsType)) { /* an output the byte path wrote: its minute, its ids */
        const IdsObject *ids = (const IdsObject *)file;
        if (ids->minute == minute)
            return 1;
        for (Py_ssize_t g = 0; g < ids->t.n; g++) {
            const Group *grp = &ids->t.groups[g];
            if (id_find(own, grp->id, grp->id_len, grp->h, &slot) >= 0)
                return 1;
        }
        return 0;
    }
    const LinesObject *lines = (const LinesObject *)file;
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(lines->data);
    for (Py_ssize_t i = 0; i < lines->n; i++) {
        const LineRec *rec = &lines->lines[i];
        if (rec->minute == minute)
            return 1;
        if (rec->id_len < 0)
            continue;
        if (i + PREFETCH < lines->n) /* the next lines' slots and ids: the table and the bytes are cold */
            prefetch_id(own, base, &lines->lines[i + PREFETCH]);
        if (id_find(own, base + rec->start + rec->id, rec->id_len, rec->id_h, &slot) >= 0)
            return 1;
    }
    return 0;
}

/* Twin of fold_window_py (tests/reference/merge_fold.py): (items, rest, observations, id_conflicts, ids) of a window
 * whose own files are `own` (Lines) and whose neighbours' files are `neighbours` (Lines, or the Ids
 * of an output written by this path), or None when it is not a window the byte path handles. */
static PyObject *
fold_lines(PyObject *self, PyObject *args)
{
    long long minute;
    PyObject *own, *neighbours;
    if (!PyArg_ParseTuple(args, "LO!O!", &minute, &PyList_Type, &own, &PyList_Type, &neighbours))
        return NULL;
    Py_ssize_t total = 0;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(own); f++)
        if (!Py_IS_TYPE(PyList_GET_ITEM(own, f), &LinesType)) {
            PyErr_SetString(PyExc_TypeError, "fold_lines takes the own files as Lines");
            return NULL;
        }
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(neighbours); f++) {
        PyObject *file = PyList_GET_ITEM(neighbours, f);
        if (!Py_IS_TYPE(file, &LinesType) && !Py_IS_TYPE(file, &IdsType)) {
            PyErr_SetString(PyExc_TypeError, "fold_lines takes the neighbour files as Lines or Ids");
            return NULL;
        }
    }
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(own); f++) {
        LinesObject *file = (LinesObject *)PyList_GET_ITEM(own, f);
        if (file->n == 0)
            Py_RETURN_NONE; /* no minute at all: not {minute} */
        for (Py_ssize_t i = 0; i < file->n; i++)
            if (file->lines[i].minute != minute)
                Py_RETURN_NONE; /* a record that moves to another minute: the reference rewrites both */
        total += file->n;
    }
    IdTable t = {NULL, 16, NULL, 0};
    while (t.cap < 2 * total)
        t.cap *= 2;
    LineRef *refs = PyMem_Malloc(sizeof(LineRef) * (size_t)(total + 1));
    Py_ssize_t *next = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(total + 1));
    Py_ssize_t *plain = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(total + 1));
    t.groups = PyMem_Malloc(sizeof(Group) * (size_t)(total + 1));
    t.table = PyMem_Calloc((size_t)t.cap, sizeof(Py_ssize_t));
    PyObject *items = NULL, *rest = NULL, *result = NULL;
    IdsObject *ids = NULL;
    if (refs == NULL || next == NULL || plain == NULL || t.groups == NULL || t.table == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t k = 0, n_plain = 0, observations = 0, id_conflicts = 0;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(own); f++) {
        LinesObject *file = (LinesObject *)PyList_GET_ITEM(own, f);
        const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(file->data);
        for (Py_ssize_t i = 0; i < file->n; i++, k++) {
            const LineRec *rec = &file->lines[i];
            LineRef x = {base + rec->start, rec};
            refs[k] = x;
            next[k] = -1;
            observations += rec->n_recv;
            if (rec->id_len < 0) {
                plain[n_plain++] = k;
                continue;
            }
            if (i + PREFETCH < file->n)
                prefetch_id(&t, base, &file->lines[i + PREFETCH]);
            const unsigned char *id = x.line + rec->id;
            uint64_t h = rec->id_h;
            Py_ssize_t slot, g = id_find(&t, id, rec->id_len, h, &slot), last = -1;
            for (; g >= 0; last = g, g = t.groups[g].same_id) {
                if (same_content(refs[t.groups[g].first], x)) {
                    next[t.groups[g].last] = k;
                    t.groups[g].last = k;
                    t.groups[g].count++;
                    break;
                }
            }
            if (g >= 0)
                continue;
            t.groups[t.n] = (Group){k, k, 1, -1, id, rec->id_len, h};
            if (last >= 0) {
                t.groups[last].same_id = t.n; /* the id again, with another content */
                id_conflicts++;
            }
            else
                t.table[slot] = t.n + 1;
            t.n++;
        }
    }
    /* a neighbour that meets the minute takes part in the reference's window: not this path's */
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(neighbours); f++) {
        if (neighbour_meets(PyList_GET_ITEM(neighbours, f), minute, &t)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    items = PyList_New(0);
    rest = PyList_New(0);
    if (items == NULL || rest == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n_plain; i++)
        if (rest_append(rest, refs[plain[i]]) < 0)
            goto done;
    for (Py_ssize_t g = 0; g < t.n; g++) {
        int r = fold_group(items, refs, next, &t.groups[g]);
        if (r < 0)
            goto done;
        if (r == 0)
            for (Py_ssize_t i = t.groups[g].first; i >= 0; i = next[i])
                if (rest_append(rest, refs[i]) < 0)
                    goto done;
    }
    ids = PyObject_New(IdsObject, &IdsType);
    if (ids == NULL)
        goto done;
    ids->owners = PyList_GetSlice(own, 0, PyList_GET_SIZE(own));
    ids->minute = minute;
    ids->t = t; /* the table and the groups are the Ids' now */
    t.table = NULL;
    t.groups = NULL;
    if (ids->owners == NULL)
        goto done;
    result = Py_BuildValue("(OOnnO)", items, rest, observations, id_conflicts, (PyObject *)ids);
done:
    PyMem_Free(refs);
    PyMem_Free(next);
    PyMem_Free(plain);
    PyMem_Free(t.groups);
    PyMem_Free(t.table);
    Py_XDECREF(items);
    Py_XDECREF(rest);
    Py_XDECREF(ids);
    return result;
}

static PyMethodDef methods[] = {
    {"fold_lines", fold_lines, METH_VARARGS, "Twin of fold_window_py (tests/reference/merge_fold.py), on Lines."},
    {"scan_file", scan_file, METH_O, "A batch file's Lines, or the first line not vouched for (as scan_batch)."},
    {"scan_line", scan_line, METH_O, "Twin of scan_line_py (tests/reference)."},
    {"merge_scan_batch", scan_batch, METH_O, "Twin of scan_batch_py (tests/reference)."},
    {NULL, NULL, 0, NULL},
};

int
native_add_merge(PyObject *m)
{
    if (PyType_Ready(&LinesType) < 0 || PyType_Ready(&IdsType) < 0)
        return -1;
    if (PyModule_AddFunctions(m, methods) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Lines", (PyObject *)&LinesType) < 0
        || PyModule_AddObjectRef(m, "Ids", (PyObject *)&IdsType) < 0)
        return -1;
    return 0;
}
