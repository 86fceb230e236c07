/* The one scanner of a canonical archive line, shared by the compiled twins that read batch files
 * from their bytes (native/verify.c: scan_clean; native/merge.c: scan_line, scan_batch). Static inline
 * functions only, included by each, so each extension builds on its own. It reads the grammar and
 * fills a plain CanonLine of spans and values; what a module makes of them (verify's counters,
 * merge's Python values) and any stricter shape a module wants are that module's own.
 *
 * Why a line can be judged canonical without re-encoding it: a line is canonical when it is what
 * json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")) prints (ensure_ascii). For the
 * fixed record schema (formats/canonical.py; the archive format spec) that is a grammar: the nine
 * keys in sorted order (command, host, params, receivers, sender, tags, time, time_range, user),
 * object keys strictly increasing, no whitespace, strings of printable ASCII with exactly json.dumps's
 * escapes (\" \\ \n \r \t \b \f, and \u with four lowercase hex digits for other controls and every
 * code point from U+007F), ints without a leading zero (and never -0), and floats as repr() prints
 * them. A float with at most 15 significant digits in fixed notation, no trailing zero in its
 * fraction (but "X.0"), and 1e-4 <= |x| < 1e15 (or zero) is exactly repr() of the double it reads as:
 * decimals of at most 15 digits map to distinct doubles (DBL_DIG), so the shortest round-tripping
 * decimal is that one; and its value is one correctly rounded division (Clinger's fast path: the
 * digits are below 2**53 and the power of ten at most 1e22). A positional float of exactly 17
 * significant digits (most receive times) is decided in exact 128-bit integers (cl_float17). Other
 * floats, and the rare cases those leave open, go through repr itself (put_double,
 * native/jsonchars.h), so the scanner calls into Python's float routines: hold the GIL.
 *
 * This reads the canonical grammar only; the caller decides what a refusal means (both twins return
 * "not vouched for", and the pure reference then judges the line).
 */
#ifndef CHAT_ARCHIVER_CANONLINE_H
#define CHAT_ARCHIVER_CANONLINE_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "jsonchars.h"

typedef struct {
    const unsigned char *s;
    Py_ssize_t n;
} Span;

/* The bytes of a whole batch file given to a scanner: 1 with `data` and `n` set; 0 when the file is
 * empty or does not end with a newline (no line of it can be vouched for); -1 with a TypeError
 * naming `fname` when `arg` is not bytes. */
static inline int
cl_batch_bytes(PyObject *arg, const char *fname, const unsigned char **data, Py_ssize_t *n)
{
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s takes bytes", fname);
        return -1;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    *n = PyBytes_GET_SIZE(arg);
    return *n > 0 && (*data)[*n - 1] == '\n';
}

/* byte order, which for names without escapes (all ASCII) is the code point order json sorts by */
static inline int
span_cmp(Span a, Span b)
{
    Py_ssize_t n = a.n < b.n ? a.n : b.n;
    for (Py_ssize_t i = 0; i < n; i++) /* short names, which differ early: no call to memcmp */
        if (a.s[i] != b.s[i])
            return a.s[i] < b.s[i] ? -1 : 1;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

/* A number of the line: the double it reads as, and for an int (at most 15 digits) its exact value. */
typedef struct {
    double value;
    long long ival;
    int is_float;
} CanonNum;

#define CL_MAX_RECV 16 /* receivers of one line kept in CanonLine (more are counted, not kept) */

typedef struct {
    Span receivers; /* the receivers object, braces included */
    int n_recv;     /* how many receivers; the first min(n_recv, CL_MAX_RECV) are below */
    Span recv_names[CL_MAX_RECV];
    CanonNum recv_values[CL_MAX_RECV];
    Span id;                        /* tags' "id", else "msgid" (raw canonical bytes); s == NULL if none */
    CanonNum time, time_range;
    const unsigned char *time_at;   /* where the time's number starts */
    const unsigned char *range_end; /* where the time_range's number ends */
    int lone_surrogate; /* some string holds a \ud800-\udfff escape that is not half of a pair */
} CanonLine;

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} CanonCur;

static inline int
cl_lit(CanonCur *c, const char *s, Py_ssize_t n)
{
    if (c->end - c->p < n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) /* a short literal: no call to memcmp */
        if (c->p[i] != (unsigned char)s[i])
            return 0;
    c->p += n;
    return 1;
}

#define CL_LIT(c, s) cl_lit((c), (s), (Py_ssize_t)(sizeof(s) - 1))

static inline int
cl_hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        if (h >= '0' && h <= '9')
            v = v * 16 + (h - '0');
        else if (h >= 'a' && h <= 'f')
            v = v * 16 + (h - 'a' + 10);
        else
            return -1; /* json.dumps writes lowercase hex only */
    }
    return v;
}

/* A JSON string exactly as json.dumps(ensure_ascii=True) writes it: 0 (past the closing quote; *inner
 * what lies between the quotes; *escaped whether it holds a backslash; *lone set to 1 if it holds a
 * surrogate escape that is not half of a pair) or -1. */
static inline int
cl_str(CanonCur *c, Span *inner, int *escaped, int *lone)
{
    const unsigned char *p = c->p, *e = c->end;
    int esc = 0;
    if (p >= e || *p != '"')
        return -1;
    const unsigned char *s0 = ++p;
    for (;;) {
        p = jc_plain_run(p, e, 1); /* the usual run of plain characters (jsonchars.h) */
        if (p >= e)
            return -1;
        unsigned char ch = *p;
        if (ch == '"')
            break;
        if (ch != '\\' || e - p < 2)
            return -1;
        esc = 1;
        unsigned char d = p[1];
        if (d == '"' || d == '\\' || d == 'n' || d == 'r' || d == 't' || d == 'b' || d == 'f') {
            p += 2;
            continue;
        }
        if (d != 'u' || e - p < 6)
            return -1;
        int code = cl_hex4(p + 2);
        if (code < 0)
            return -1;
        p += 6;
        if (code >= 0xD800 && code <= 0xDBFF) { /* a first half: with its second, a pair */
            if (e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int low = cl_hex4(p + 2);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    p += 6;
                    continue;
                }
            }
            *lone = 1;
            continue;
        }
        if (code >= 0xDC00 && code <= 0xDFFF) {
            *lone = 1; /* a second half alone */
            continue;
        }
        /* json.dumps writes printable ASCII as itself and these five as \b \t \n \f \r */
        if ((code >= 0x20 && code < 0x7F) || code == 8 || code == 9 || code == 10 || code == 12 || code == 13)
            return -1;
    }
    inner->s = s0;
    inner->n = p - s0;
    *escaped = esc;
    c->p = p + 1;
    return 0;
}

static inline int
cl_str_or_null(CanonCur *c, int *lone)
{
    Span s;
    int esc;
    if (CL_LIT(c, "null"))
        return 0;
    return cl_str(c, &s, &esc, lone);
}

static const double CL_POW10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Whether `tok` (n bytes, a JSON number with a fraction or an exponent) is exactly repr() of the
 * double it reads as, the way float.__repr__ computes it; the double in *value. The slow, general
 * check, for what the fast ones in cl_num do not cover. */
static inline int
cl_float_repr_check(const unsigned char *tok, Py_ssize_t n, double *value)
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
    char again[64]; /* repr(x), as the encoders print it */
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

#define CL_TWO53 9007199254740992ULL

/* Whether a positional decimal of exactly 17 significant digits and at least 1 (the digits as the
 * integer m, nf of them after the point) is repr() of the double it reads as, decided without
 * writing repr: 1 (yes, the double in *value), 0 (no), -1 (not decided here: a tie, the edge of a
 * binade, or beyond the exact range below; the caller then asks repr). repr prints 17 digits only
 * when no 16-digit decimal reads as the double, and then the 17-digit decimal nearest to it; so the
 * text is repr's when (1) x is the double nearest to it, (2) it is the 17-digit decimal nearest to x,
 * and (3) neither 16-digit neighbour of it (m rounded down or up to a multiple of 10; x lies
 * strictly between them) lies in x's rounding interval, half an ulp each side. Exact: everything
 * is an integer in units of 10**-nf * 2**E (E the exponent of x's last bit), in 128 bits. */
static inline int
cl_float17(unsigned long long m, Py_ssize_t nf, double *value)
{
#ifndef __SIZEOF_INT128__
    return -1; /* no 128-bit integers: repr decides */
#else
    if (nf > 19)
        return -1;
    unsigned long long p10 = 1; /* 10**nf < 2**64 */
    for (Py_ssize_t i = 0; i < nf; i++)
        p10 *= 10;
    int ex;
    double f = frexp((double)m / CL_POW10[nf], &ex); /* within an ulp or so of the decimal's value */
    int e = ex - 53;                                  /* x0 = M0 * 2**e, 2**52 <= M0 < 2**53 */
    if (e > 0 || e < -66)
        return -1;
    long long M = (long long)ldexp(f, 53);
    __int128 unit = (__int128)1 << -e;                /* 2**-e: one 17-digit step, in these units */
    __int128 p = (__int128)p10;                       /* one ulp of x */
    __int128 delta = (__int128)m * unit - (__int128)M * p; /* decimal - x0; m * 2**-e < 2**57 * 2**66 */
    for (int i = 0; i < 4 && 2 * delta > p; i++) {     /* (1) the nearest double: M moved by whole ulps */
        delta -= p;
        M++;
    }
    for (int i = 0; i < 4 && 2 * delta < -p; i++) {
        delta += p;
        M--;
    }
    if (2 * delta > p || 2 * delta < -p || 2 * delta == p || 2 * delta == -p)
        return -1; /* not found, or a tie between two doubles */
    if (M <= (1LL << 52) || M >= (1LL << 53))
        return -1; /* a binade's edge: the ulp below differs */
    __int128 twice = 2 * (delta < 0 ? -delta : delta);
    if (twice > unit)
        return 0; /* (2) another 17-digit decimal is nearer to x: repr prints that one */
    if (twice == unit)
        return -1;
    unsigned long long r = m % 10;
    __int128 lo = delta - (__int128)r * unit, hi = delta + (__int128)(10 - r) * unit;
    lo = 2 * (lo < 0 ? -lo : lo);
    hi = 2 * (hi < 0 ? -hi : hi);
    if (lo < p || hi < p)
        return 0; /* (3) a 16-digit decimal reads as x: repr prints it */
    if (lo == p || hi == p)
        return -1;
    *value = ldexp((double)M, e);
    return 1;
#endif
}

/* A canonical number: ints of at most 15 digits (str()), finite floats as repr() prints them (see
 * the top of the file for the fast cases). 0 (past it, *out filled) or -1. */
static inline int
cl_num(CanonCur *c, CanonNum *out)
{
    const unsigned char *tok = c->p, *p = c->p, *e = c->end;
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
    c->p = p;
    if (fp == NULL && !has_exp) { /* an int */
        if (ni > 15 || (neg && int_zero)) /* -0 reads as 0 */
            return -1;
        long long m = 0;
        for (const unsigned char *q = ip; q < ip + ni; q++)
            m = m * 10 + (*q - '0');
        out->ival = neg ? -m : m;
        out->value = (double)out->ival;
        out->is_float = 0;
        return 0;
    }
    out->is_float = 1;
    out->ival = 0;
    if (has_exp || ni > 15)
        return cl_float_repr_check(tok, p - tok, &out->value);
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
                return cl_float_repr_check(tok, p - tok, &out->value); /* below 1e-4: an exponent */
        }
        int sig = (int)(int_zero ? nf - z : ni + nf);
        if (sig == 17 && !int_zero) { /* most receive times from time.time(): decided in integers */
            for (Py_ssize_t i = 0; i < nf; i++)
                m = m * 10 + (unsigned long long)(fp[i] - '0');
            int canonical = cl_float17(m, nf, &x);
            if (canonical == 0)
                return -1;
            if (canonical < 0)
                return cl_float_repr_check(tok, p - tok, &out->value);
            out->value = neg ? -x : x;
            return 0;
        }
        if (sig > 16 || nf > 22)
            return cl_float_repr_check(tok, p - tok, &out->value);
        for (Py_ssize_t i = z; i < nf; i++)
            m = m * 10 + (unsigned long long)(fp[i] - '0');
        if (m >= CL_TWO53 - 10)
            return cl_float_repr_check(tok, p - tok, &out->value);
        x = (double)m / CL_POW10[nf]; /* correctly rounded: both exact, one division */
        if (sig == 16) {
            /* canonical when no shorter decimal reads as x (the two 15-digit neighbours) and no other
             * 16-digit one does (x's rounding interval, one ulp wide, is narrower than their step) */
            int ex;
            frexp(x, &ex);
            if (!(ldexp(2.0, ex - 53) < 1.0 / CL_POW10[nf]))
                return cl_float_repr_check(tok, p - tok, &out->value);
            unsigned long long lo = m - m % 10;
            if ((double)lo / CL_POW10[nf] == x || (double)(lo + 10) / CL_POW10[nf] == x)
                return -1;
        }
    }
    out->value = neg ? -x : x;
    return 0;
}

/* After an item of an array or object: 1 past a comma (another item follows), 0 past `close`, -1. */
static inline int
cl_next(CanonCur *c, unsigned char close)
{
    if (c->p < c->end && (*c->p == ',' || *c->p == close))
        return *c->p++ == ',';
    return -1;
}

/* An object's key and its colon: a string without escapes, after *prev (strictly; prev->s == NULL
 * for the first key). 0 (*key, *prev = *key) or -1. */
static inline int
cl_key(CanonCur *c, Span *prev, Span *key)
{
    int esc, lone = 0;
    if (cl_str(c, key, &esc, &lone) || esc || (prev->s != NULL && span_cmp(*prev, *key) >= 0)
        || !CL_LIT(c, ":"))
        return -1;
    *prev = *key;
    return 0;
}

/* One receivers item: its name and number, then 1 (a comma: more follow), 0 (the closing brace) or
 * -1. Also for walking CanonLine.receivers again (past its opening brace) when it held more than
 * CL_MAX_RECV. */
static inline int
cl_receiver(CanonCur *c, Span *prev, Span *name, CanonNum *value)
{
    if (cl_key(c, prev, name) || cl_num(c, value))
        return -1;
    return cl_next(c, '}');
}

/* One line (without its newline) as a record of the archive schema, exactly canonical: 0 (*r
 * filled) or -1. */
static inline int
cl_line(const unsigned char *line, Py_ssize_t len, CanonLine *r)
{
    CanonCur cur = {line, line + len}, *c = &cur;
    Span s, prev = {NULL, 0};
    int esc, more;
    r->lone_surrogate = 0;
    if (!CL_LIT(c, "{\"command\":") || cl_str(c, &s, &esc, &r->lone_surrogate) || !CL_LIT(c, ",\"host\":")
        || cl_str_or_null(c, &r->lone_surrogate) || !CL_LIT(c, ",\"params\":["))
        return -1;
    if (!CL_LIT(c, "]")) {
        do {
            if (cl_str(c, &s, &esc, &r->lone_surrogate))
                return -1;
        } while ((more = cl_next(c, ']')) > 0);
        if (more < 0)
            return -1;
    }
    if (!CL_LIT(c, ",\"receivers\":"))
        return -1;
    r->receivers.s = c->p;
    if (!CL_LIT(c, "{"))
        return -1;
    r->n_recv = 0;
    do {
        Span name;
        CanonNum value;
        more = cl_receiver(c, &prev, &name, &value);
        if (more < 0)
            return -1;
        if (r->n_recv < CL_MAX_RECV) {
            r->recv_names[r->n_recv] = name;
            r->recv_values[r->n_recv] = value;
        }
        r->n_recv++;
    } while (more);
    r->receivers.n = c->p - r->receivers.s;
    if (!CL_LIT(c, ",\"sender\":") || cl_str_or_null(c, &r->lone_surrogate) || !CL_LIT(c, ",\"tags\":"))
        return -1;
    r->id.s = NULL;
    r->id.n = 0;
    if (!CL_LIT(c, "null")) {
        Span id = {NULL, 0}, msgid = {NULL, 0}, key;
        prev.s = NULL;
        if (!CL_LIT(c, "{"))
            return -1;
        if (!CL_LIT(c, "}")) {
            do {
                if (cl_key(c, &prev, &key))
                    return -1;
                if (!CL_LIT(c, "true")) { /* else a string */
                    Span value;
                    if (cl_str(c, &value, &esc, &r->lone_surrogate))
                        return -1;
                    if (key.n == 2 && memcmp(key.s, "id", 2) == 0)
                        id = value;
                    else if (key.n == 5 && memcmp(key.s, "msgid", 5) == 0)
                        msgid = value;
                }
            } while ((more = cl_next(c, '}')) > 0);
            if (more < 0)
                return -1;
        }
        r->id = id.s != NULL ? id : msgid;
    }
    if (!CL_LIT(c, ",\"time\":"))
        return -1;
    r->time_at = c->p;
    if (cl_num(c, &r->time) || !CL_LIT(c, ",\"time_range\":") || cl_num(c, &r->time_range))
        return -1;
    r->range_end = c->p;
    if (!CL_LIT(c, ",\"user\":") || cl_str_or_null(c, &r->lone_surrogate) || !CL_LIT(c, "}"))
        return -1;
    return c->p == c->end ? 0 : -1;
}

#endif
