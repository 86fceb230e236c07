/* Compiled twin of index.extract.privmsg_row_py: a PRIVMSG's index row read from its stored line.
 *
 * The reference reads the decoded record; the index build reads millions of them, and the Python
 * per record (the tags, the SHA-256 key, the word cut) is most of its time. The caller passes the
 * record together with its stored line (read_batch: line i of the file is record i), so this walks
 * the line's bytes instead: the canonical line (native/canonline.h's grammar: keys in order,
 * json.dumps's escapes, repr's floats) of a PRIVMSG whose message id, user-id and sender are
 * strings without escapes, and which has an id (an id-less record's key hashes its whole content).
 * Its text is decoded from its JSON string and cut into words as index.text.text_words cuts it: a
 * word is a run of characters other than white space (Py_UNICODE_ISSPACE, what the regex's \s
 * matches), controls, U+007F, surrogates and . , ! ? "; an ASCII word is lowered, any other is
 * casefolded by str.casefold and cut again. The key is the first 8 bytes of SHA-256(id_scope + id),
 * signed big-endian (index.identity.id_key). Everything else (another shape, an escaped id, a lone
 * surrogate, a line that is not ASCII) goes to the reference, handed over with MessageRow by
 * configure_index_privmsg_row; tests/test_index.py holds the two equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "canonline.h"
#include "parts.h"

/* ---- SHA-256 (FIPS 180-4), for the short messages the keys hash ---- */

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha_block(uint32_t h[8], const unsigned char *b)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = bb;
        bb = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

/* The first 8 bytes of SHA-256(a + b), as a signed big-endian integer. */
static long long
sha_key(const unsigned char *a, Py_ssize_t na, const unsigned char *b, Py_ssize_t nb)
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char block[64];
    Py_ssize_t fill = 0;
    uint64_t total = (uint64_t)(na + nb);
    for (int part = 0; part < 2; part++) {
        const unsigned char *p = part ? b : a;
        Py_ssize_t n = part ? nb : na;
        while (n > 0) {
            Py_ssize_t take = 64 - fill < n ? 64 - fill : n;
            memcpy(block + fill, p, (size_t)take);
            fill += take;
            p += take;
            n -= take;
            if (fill == 64) {
                sha_block(h, block);
                fill = 0;
            }
        }
    }
    block[fill++] = 0x80;
    if (fill > 56) {
        memset(block + fill, 0, (size_t)(64 - fill));
        sha_block(h, block);
        fill = 0;
    }
    memset(block + fill, 0, (size_t)(56 - fill));
    uint64_t bits = total * 8;
    for (int i = 0; i < 8; i++)
        block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_block(h, block);
    uint64_t top = (uint64_t)h[0] << 32 | h[1];
    return (long long)top; /* two's complement: int.from_bytes(..., signed=True) */
}

/* ---- the word cut (index.text._folded_words) ---- */

static PyObject *casefold; /* str.casefold, looked up once (configure_index_privmsg_row) */

static inline int
ix_sep(Py_UCS4 ch)
{
    if (ch < 0x80)
        return ch <= 0x20 || ch == 0x7F || ch == '.' || ch == ',' || ch == '!' || ch == '?' || ch == '"';
    return Py_UNICODE_ISSPACE(ch) || (ch >= 0xD800 && ch <= 0xDFFF);
}

/* Where the words of a text go, in one of three forms (IX_WORDS_*): a list of str (the words, as
 * index.text.text_words gives them), or the bytes of what a build stores for them, made here without
 * a str per word: index.text.fts_document's text (each word as its FTS token, joined by spaces) or
 * index.text.pg_words's binary text[] (its 20-byte head written at the end, when the count is known). */
enum { IX_WORDS_LIST = 0, IX_WORDS_FTS = 1, IX_WORDS_PG = 2 };

typedef struct {
    int form;
    PyObject *list;      /* IX_WORDS_LIST */
    unsigned char *buf;  /* the others: PyMem */
    Py_ssize_t len, cap;
    Py_ssize_t count;    /* words so far */
} IxSink;

static int
ix_reserve(IxSink *k, Py_ssize_t more)
{
    if (k->len + more <= k->cap)
        return 0;
    Py_ssize_t cap = (k->cap ? k->cap : 256);
    while (cap < k->len + more)
        cap *= 2;
    unsigned char *b = PyMem_Realloc(k->buf, (size_t)cap);
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    k->buf = b;
    k->cap = cap;
    return 0;
}

static const char IX_HEX[] = "0123456789abcdef";

/* A word as UTF-8 bytes (`plain`: only [a-z0-9], which fts_token keeps as it is) into the sink. */
static int
ix_sink_bytes(IxSink *k, const unsigned char *w, Py_ssize_t n, int plain)
{
    if (k->form == IX_WORDS_PG) {
        if (ix_reserve(k, 4 + n))
            return -1;
        unsigned char *d = k->buf + k->len;
        d[0] = (unsigned char)(n >> 24);
        d[1] = (unsigned char)(n >> 16);
        d[2] = (unsigned char)(n >> 8);
        d[3] = (unsigned char)n;
        memcpy(d + 4, w, (size_t)n);
        k->len += 4 + n;
    }
    else { /* IX_WORDS_FTS: a space between tokens; a token is the word, or `_` and its hex */
        if (ix_reserve(k, 2 + 2 * n))
            return -1;
        unsigned char *d = k->buf + k->len;
        if (k->count)
            *d++ = ' ';
        if (plain) {
            memcpy(d, w, (size_t)n);
            d += n;
        }
        else {
            *d++ = '_';
            for (Py_ssize_t i = 0; i < n; i++) {
                *d++ = (unsigned char)IX_HEX[w[i] >> 4];
                *d++ = (unsigned char)IX_HEX[w[i] & 15];
            }
        }
        k->len = d - k->buf;
    }
    k->count++;
    return 0;
}

static inline int
ix_plain(Py_UCS4 ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* An ASCII word (its folding is lowering), n code points. */
static int
ix_sink_ascii(IxSink *k, const Py_UCS4 *s, Py_ssize_t n)
{
    if (k->form == IX_WORDS_LIST) {
        PyObject *word = PyUnicode_New(n, 127);
        if (word == NULL)
            return -1;
        Py_UCS1 *d = PyUnicode_1BYTE_DATA(word);
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = (Py_UCS1)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        int bad = PyList_Append(k->list, word);
        Py_DECREF(word);
        return bad;
    }
    unsigned char stack[256];
    unsigned char *w = n <= 256 ? stack : PyMem_Malloc((size_t)n);
    if (w == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int plain = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];
        w[i] = (unsigned char)ch;
        plain = plain && ix_plain(ch);
    }
    int bad = ix_sink_bytes(k, w, n, plain);
    if (w != stack)
        PyMem_Free(w);
    return bad;
}

/* A piece of a casefolded word (any code points but surrogates), n of them. */
static int
ix_sink_ucs4(IxSink *k, const Py_UCS4 *s, Py_ssize_t n)
{
    if (k->form == IX_WORDS_LIST) {
        PyObject *piece = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s, n);
        int bad = piece == NULL || PyList_Append(k->list, piece) < 0;
        Py_XDECREF(piece);
        return bad ? -1 : 0;
    }
    unsigned char *w = PyMem_Malloc((size_t)(4 * n + 1));
    if (w == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t m = 0;
    int plain = 1;
    for (Py_ssize_t i = 0; i < n; i++) { /* UTF-8 (folded text holds no surrogate) */
        Py_UCS4 ch = s[i];
        plain = plain && ix_plain(ch);
        if (ch < 0x80)
            w[m++] = (unsigned char)ch;
        else if (ch < 0x800) {
            w[m++] = (unsigned char)(0xC0 | (ch >> 6));
            w[m++] = (unsigned char)(0x80 | (ch & 0x3F));
        }
        else if (ch < 0x10000) {
            w[m++] = (unsigned char)(0xE0 | (ch >> 12));
            w[m++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
            w[m++] = (unsigned char)(0x80 | (ch & 0x3F));
        }
        else {
            w[m++] = (unsigned char)(0xF0 | (ch >> 18));
            w[m++] = (unsigned char)(0x80 | ((ch >> 12) & 0x3F));
            w[m++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
            w[m++] = (unsigned char)(0x80 | (ch & 0x3F));
        }
    }
    int bad = ix_sink_bytes(k, w, m, plain);
    PyMem_Free(w);
    return bad;
}

/* The words of `s` (n code points) into the sink, as _folded_words cuts them: 0 or -1 (an error set). */
static int
ix_words(const Py_UCS4 *s, Py_ssize_t n, IxSink *out)
{
    Py_ssize_t i = 0;
    while (i < n) {
        while (i < n && ix_sep(s[i]))
            i++;
        if (i >= n)
            break;
        Py_ssize_t start = i;
        Py_UCS4 top = 0;
        while (i < n && !ix_sep(s[i])) {
            top |= s[i];
            i++;
        }
        Py_ssize_t len = i - start;
        if (top < 0x80) { /* ASCII: folding is lowering, and makes no separator */
            if (ix_sink_ascii(out, s + start, len))
                return -1;
            continue;
        }
        PyObject *raw = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s + start, len);
        if (raw == NULL)
            return -1;
        PyObject *folded = PyObject_CallOneArg(casefold, raw); /* str.casefold(raw) */
        Py_DECREF(raw);
        if (folded == NULL)
            return -1;
        Py_UCS4 *f = PyUnicode_AsUCS4Copy(folded);
        Py_ssize_t fn = PyUnicode_GET_LENGTH(folded);
        Py_DECREF(folded);
        if (f == NULL)
            return -1;
        /* cut again, in case folding made a separator; the pieces are folded and not ASCII-only
         * in general, so each is made as it stands */
        Py_ssize_t j = 0;
        int bad = 0;
        while (j < fn && !bad) {
            while (j < fn && ix_sep(f[j]))
                j++;
            if (j >= fn)
                break;
            Py_ssize_t s0 = j;
            while (j < fn && !ix_sep(f[j]))
                j++;
            bad = ix_sink_ucs4(out, f + s0, j - s0) < 0;
        }
        PyMem_Free(f);
        if (bad)
            return -1;
    }
    return 0;
}

/* The code points of a JSON string's inner bytes (json.dumps's escapes; pairs joined) into `out`
 * (room for n): their count, or -1 for a lone surrogate (the reference's way). */
static Py_ssize_t
ix_unescape(const unsigned char *p, Py_ssize_t n, Py_UCS4 *out)
{
    const unsigned char *e = p + n;
    Py_ssize_t k = 0;
    while (p < e) {
        unsigned char ch = *p;
        if (ch != '\\') {
            out[k++] = ch;
            p++;
            continue;
        }
        unsigned char d = p[1];
        p += 2;
        switch (d) {
        case 'n': out[k++] = '\n'; continue;
        case 'r': out[k++] = '\r'; continue;
        case 't': out[k++] = '\t'; continue;
        case 'b': out[k++] = '\b'; continue;
        case 'f': out[k++] = '\f'; continue;
        case 'u': break;
        default: out[k++] = d; continue; /* \" and \\ */
        }
        int code = cl_hex4(p);
        p += 4;
        if (code >= 0xD800 && code <= 0xDBFF) {
            if (e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int low = cl_hex4(p + 2);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    out[k++] = 0x10000 + (((Py_UCS4)code - 0xD800) << 10) + ((Py_UCS4)low - 0xDC00);
                    p += 6;
                    continue;
                }
            }
            return -1;
        }
        if (code >= 0xDC00 && code <= 0xDFFF)
            return -1;
        out[k++] = (Py_UCS4)code;
    }
    return k;
}

/* The words of the text (text_words), in `form` (IxSink): a tuple of str, or the bytes a build
 * stores (fts: str; pg: bytes). A `/me` line's words are those inside its \x01ACTION ...\x01. */
static PyObject *
ix_text_words(Span text, int escaped, int form)
{
    IxSink sink = {form, NULL, NULL, 0, 0, 0};
    if (form == IX_WORDS_LIST && (sink.list = PyList_New(0)) == NULL)
        return NULL;
    if (form == IX_WORDS_PG && ix_reserve(&sink, 20) == 0)
        sink.len = 20; /* the head, written below */
    Py_UCS4 stack[1024];
    Py_UCS4 *buf = text.n <= 1024 ? stack : PyMem_Malloc(sizeof(Py_UCS4) * (size_t)text.n);
    PyObject *out = NULL;
    if (buf == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n;
    if (escaped)
        n = ix_unescape(text.s, text.n, buf);
    else {
        for (Py_ssize_t i = 0; i < text.n; i++)
            buf[i] = text.s[i];
        n = text.n;
    }
    /* ix_unescape's -1 (a lone surrogate) cannot happen here: the caller hands such lines over */
    Py_UCS4 *s = buf;
    static const char action[] = "\x01" "ACTION ";
    if (n >= 9 && s[n - 1] == 1) {
        int is_action = 1;
        for (int i = 0; i < 8; i++)
            if (s[i] != (Py_UCS4)(unsigned char)action[i])
                is_action = 0;
        if (is_action) {
            s += 8;
            n -= 9;
        }
    }
    if (PyErr_Occurred() || n < 0 || ix_words(s, n, &sink) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "index_privmsg_row: a lone surrogate in the text");
        goto done;
    }
    if (form == IX_WORDS_LIST) {
        out = PyList_AsTuple(sink.list);
        if (out != NULL && PyObject_GC_IsTracked(out))
            PyObject_GC_UnTrack(out); /* strings only: no cycle through it, and no work for the collector */
    }
    else if (form == IX_WORDS_FTS)
        out = PyUnicode_DecodeASCII((const char *)sink.buf, sink.len, NULL);
    else if (sink.count == 0) { /* no dimensions, no NULLs, elements of type text (oid 25) */
        static const char empty[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25};
        out = PyBytes_FromStringAndSize(empty, 12);
    }
    else {
        uint32_t head[5] = {1, 0, 25, (uint32_t)sink.count, 1}; /* one dimension of count, from 1 */
        for (int i = 0; i < 5; i++)
            for (int b = 0; b < 4; b++)
                sink.buf[4 * i + b] = (unsigned char)(head[i] >> (24 - 8 * b));
        out = PyBytes_FromStringAndSize((const char *)sink.buf, sink.len);
    }
done:
    if (buf != NULL && buf != stack)
        PyMem_Free(buf);
    Py_XDECREF(sink.list);
    PyMem_Free(sink.buf);
    return out;
}

/* ---- the row ---- */

static PyObject *row_reference, *row_type, *privmsg_str;

static PyObject *
configure_privmsg_row(PyObject *self, PyObject *args)
{
    PyObject *reference, *type;
    if (!PyArg_ParseTuple(args, "OO:configure_index_privmsg_row", &reference, &type))
        return NULL;
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "configure_index_privmsg_row: MessageRow must be a tuple type");
        return NULL;
    }
    if (privmsg_str == NULL && (privmsg_str = PyUnicode_InternFromString("PRIVMSG")) == NULL)
        return NULL;
    if (casefold == NULL && (casefold = PyObject_GetAttrString((PyObject *)&PyUnicode_Type, "casefold")) == NULL)
        return NULL;
    Py_INCREF(reference);
    Py_XSETREF(row_reference, reference);
    Py_INCREF(type);
    Py_XSETREF(row_type, type);
    Py_RETURN_NONE;
}

/* What the row reads of the line: spans of strings without their quotes (s == NULL: null, absent,
 * or a tag's `true`) and whether each holds an escape. */
typedef struct {
    Span text, sender, id, msgid, user_id, room_id;
    int text_esc, sender_esc, id_esc, msgid_esc, user_id_esc, room_id_esc, ntags;
    CanonNum time, time_range;
} IxLine;

static int
ix_str_or_null(CanonCur *c, Span *s, int *esc, int *lone)
{
    s->s = NULL;
    if (CL_LIT(c, "null"))
        return 0;
    return cl_str(c, s, esc, lone);
}

/* The line walked: 0 (*r filled) or -1, the line goes the reference way. */
static int
ix_walk(const unsigned char *line, Py_ssize_t len, IxLine *r)
{
    CanonCur cur = {line, line + len}, *c = &cur;
    Span s, prev = {NULL, 0}, key;
    int esc, lone = 0, more, nparams = 0;
    memset(r, 0, sizeof(*r));
    if (!CL_LIT(c, "{\"command\":\"PRIVMSG\",\"host\":") || ix_str_or_null(c, &s, &esc, &lone)
        || !CL_LIT(c, ",\"params\":["))
        return -1;
    if (!CL_LIT(c, "]")) {
        do {
            if (cl_str(c, &r->text, &r->text_esc, &lone))
                return -1;
            nparams++;
        } while ((more = cl_next(c, ']')) > 0);
        if (more < 0)
            return -1;
    }
    if (nparams < 2) { /* the text is "" */
        r->text.s = (const unsigned char *)"";
        r->text.n = 0;
        r->text_esc = 0;
    }
    if (!CL_LIT(c, ",\"receivers\":{"))
        return -1;
    do {
        Span name;
        CanonNum value;
        more = cl_receiver(c, &prev, &name, &value);
        if (more < 0)
            return -1;
    } while (more);
    if (!CL_LIT(c, ",\"sender\":") || ix_str_or_null(c, &r->sender, &r->sender_esc, &lone) || !CL_LIT(c, ",\"tags\":"))
        return -1;
    if (!CL_LIT(c, "null")) {
        prev.s = NULL;
        if (!CL_LIT(c, "{"))
            return -1;
        if (!CL_LIT(c, "}")) {
            do {
                if (cl_key(c, &prev, &key))
                    return -1;
                r->ntags++;
                if (CL_LIT(c, "true"))
                    continue; /* not a string: as absent */
                Span value;
                if (cl_str(c, &value, &esc, &lone))
                    return -1;
                if (key.n == 2 && memcmp(key.s, "id", 2) == 0) {
                    r->id = value;
                    r->id_esc = esc;
                }
                else if (key.n == 5 && memcmp(key.s, "msgid", 5) == 0) {
                    r->msgid = value;
                    r->msgid_esc = esc;
                }
                else if (key.n == 7 && memcmp(key.s, "user-id", 7) == 0) {
                    r->user_id = value;
                    r->user_id_esc = esc;
                }
                else if (key.n == 7 && memcmp(key.s, "room-id", 7) == 0) {
                    r->room_id = value;
                    r->room_id_esc = esc;
                }
            } while ((more = cl_next(c, '}')) > 0);
            if (more < 0)
                return -1;
        }
    }
    if (!CL_LIT(c, ",\"time\":") || cl_num(c, &r->time) || !CL_LIT(c, ",\"time_range\":")
        || cl_num(c, &r->time_range) || !CL_LIT(c, ",\"user\":") || ix_str_or_null(c, &s, &esc, &lone)
        || !CL_LIT(c, "}") || c->p != c->end)
        return -1;
    return lone ? -1 : 0;
}

static PyObject *
ix_ascii(Span s, int lower)
{
    PyObject *out = PyUnicode_New(s.n, 127);
    if (out == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < s.n; i++) {
        unsigned char ch = s.s[i];
        d[i] = lower && ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
    }
    return out;
}

/* The row of a walked line (`line` its str, or NULL: made from the bytes), or NULL: with an error
 * set, an error; without, a line the row is not read from here (no id, an escaped value). Its
 * shape: IX_WORDS_LIST, a MessageRow; else a build's row of the messages table, the plain tuple
 * index.extract.message_values(channel, row, 1, 1, words) makes, its words in that form. */
static PyObject *
ix_row(const unsigned char *bytes, Py_ssize_t len, PyObject *line, PyObject *scope, const IxLine *r, int form,
       PyObject *channel)
{
    Span mid = r->id.s != NULL ? r->id : r->msgid;
    int mid_esc = r->id.s != NULL ? r->id_esc : r->msgid_esc;
    if (r->ntags == 0 || mid.s == NULL || mid_esc || r->user_id_esc || r->sender_esc)
        return NULL;
    long long key = sha_key((const unsigned char *)PyBytes_AS_STRING(scope), PyBytes_GET_SIZE(scope), mid.s, mid.n);
    /* where MessageRow's fields go: in a MessageRow, in its order; in a build's row, at their
     * columns of MESSAGE_VALUES, with refs, channel and tier beside them */
    static const int as_row[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int as_values[10] = {0, 5, 3, 4, 6, 7, 8, 9, 10, 11};
    const int *at = form == IX_WORDS_LIST ? as_row : as_values;
    int n = form == IX_WORDS_LIST ? 10 : 13;
    PyObject *items[13] = {NULL};
    if (form != IX_WORDS_LIST) {
        items[1] = PyLong_FromLong(1);  /* refs */
        items[2] = Py_NewRef(channel);
        items[12] = PyLong_FromLong(1); /* tier: a build writes the main tier */
    }
    items[at[0]] = PyLong_FromLongLong(key);
    items[at[1]] = Py_NewRef(privmsg_str);
    items[at[2]] = PyFloat_FromDouble(r->time.value);
    items[at[3]] = PyFloat_FromDouble(r->time_range.value);
    items[at[4]] = ix_ascii(mid, 0);
    items[at[5]] = r->user_id.s != NULL ? ix_ascii(r->user_id, 0) : Py_NewRef(Py_None);
    items[at[6]] = r->sender.s != NULL && r->sender.n > 0 ? ix_ascii(r->sender, 1) : Py_NewRef(Py_None);
    items[at[7]] = Py_NewRef(Py_None);
    items[at[8]] = ix_text_words(r->text, r->text_esc, form);
    items[at[9]] = line != NULL ? Py_NewRef(line) : ix_ascii((Span){bytes, len}, 0);
    PyObject *row = NULL;
    int ok = 1;
    for (int i = 0; i < n; i++)
        ok = ok && items[i] != NULL;
    if (ok)
        row = form == IX_WORDS_LIST ? ((PyTypeObject *)row_type)->tp_alloc((PyTypeObject *)row_type, n) : PyTuple_New(n);
    if (row == NULL) {
        for (int i = 0; i < n; i++)
            Py_XDECREF(items[i]);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return NULL;
    }
    for (int i = 0; i < n; i++)
        PyTuple_SET_ITEM(row, i, items[i]);
    return row;
}

static int
ix_configured(void)
{
    if (row_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_index_privmsg_row was not called");
        return 0;
    }
    return 1;
}

static PyObject *
privmsg_row(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "index_privmsg_row takes (record, line, channel, id_scope)");
        return NULL;
    }
    if (!ix_configured())
        return NULL;
    PyObject *line = args[1], *scope = args[3];
    IxLine r;
    if (!PyUnicode_Check(line) || !PyUnicode_IS_ASCII(line) || !PyBytes_Check(scope)
        || ix_walk(PyUnicode_1BYTE_DATA(line), PyUnicode_GET_LENGTH(line), &r))
        return PyObject_Vectorcall(row_reference, args, nargs, NULL);
    PyObject *row = ix_row(NULL, 0, line, scope, &r, IX_WORDS_LIST, NULL);
    if (row == NULL && !PyErr_Occurred())
        return PyObject_Vectorcall(row_reference, args, nargs, NULL);
    return row;
}

/* ---- index.extract.read_batch's scan: the rows of a file's PRIVMSG lines ----
 *
 * index_scan_rows(data, id_scope[, form, channel]): for a file ending with a newline, (rows, room)
 * where rows holds one item per line, the line's row or None for every line not read here, and room
 * is (line number from 0, room-id) of the first line read here that holds a room-id string, else
 * None; None for another file. A line's row is what privmsg_row gives its record and line, or with
 * a `form` (1: index.text.fts_document's words, 2: index.text.pg_words's) a build's row of the
 * messages table (ix_row) for `channel`. A line read here holds a valid record (the canonical
 * grammar is the schema), so read_batch decodes only the other lines. A line whose room-id is
 * escaped is not read here. */
static PyObject *
scan_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *data;
    Py_ssize_t n;
    int form = IX_WORDS_LIST;
    PyObject *channel = NULL;
    if ((nargs != 2 && nargs != 4) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "index_scan_rows takes (data, id_scope[, form, channel])");
        return NULL;
    }
    if (nargs == 4) {
        form = PyLong_Check(args[2]) ? (int)PyLong_AsLong(args[2]) : -1;
        channel = args[3];
        if ((form != IX_WORDS_FTS && form != IX_WORDS_PG) || !PyUnicode_Check(channel)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "index_scan_rows: form is 1 (fts) or 2 (pg), channel a str");
            return NULL;
        }
    }
    if (!ix_configured())
        return NULL;
    int got = cl_batch_bytes(args[0], "index_scan_rows", &data, &n);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *scope = args[1], *rows = PyList_New(0), *room = Py_NewRef(Py_None);
    if (rows == NULL)
        return NULL;
    const unsigned char *p = data, *end = data + n;
    Py_ssize_t number = 0;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        Py_ssize_t len = nl - p;
        IxLine r;
        PyObject *row = NULL;
        if (ix_walk(p, len, &r) == 0 && !r.room_id_esc) {
            row = ix_row(p, len, NULL, scope, &r, form, channel);
            if (row == NULL && PyErr_Occurred())
                goto fail;
            if (row != NULL && room == Py_None && r.room_id.s != NULL) {
                PyObject *value = ix_ascii(r.room_id, 0);
                Py_DECREF(room);
                room = value == NULL ? NULL : Py_BuildValue("(nN)", number, value);
                if (room == NULL) {
                    Py_DECREF(row);
                    goto fail;
                }
            }
        }
        if (row == NULL)
            row = Py_NewRef(Py_None);
        int bad = PyList_Append(rows, row);
        Py_DECREF(row);
        if (bad)
            goto fail;
        p = nl + 1;
        number++;
    }
    return Py_BuildValue("(NN)", rows, room);
fail:
    Py_DECREF(rows);
    Py_XDECREF(room);
    return NULL;
}

/* ---- index.pg.copy_rows: a build's rows as PostgreSQL's binary COPY data ----
 *
 * index_copy_rows(rows): the compiled twin of index.pg.copy_rows_py, for rows of the messages table
 * (index.extract.MESSAGE_VALUES tuples): per row its field count, then each field's length (-1:
 * NULL) and value, by the column's kind below (big-endian integers and doubles, UTF-8 text, the
 * words' bytes as they are). A value of another type than its column's usual one (or a text that
 * has no UTF-8, or a row of another length) hands the call to the reference, which raises or
 * writes what it does; configure_index_copy_rows gives the reference. */
enum { CP_INT8, CP_INT4, CP_FLOAT8, CP_TEXT, CP_RAW };
static const int CP_KINDS[13] = {CP_INT8, CP_INT4,  CP_TEXT, CP_FLOAT8, CP_FLOAT8, CP_TEXT, CP_TEXT,
                                 CP_TEXT, CP_TEXT,  CP_TEXT, CP_RAW,    CP_TEXT,   CP_INT4};
static PyObject *copy_reference;

static PyObject *
configure_copy_rows(PyObject *self, PyObject *reference)
{
    Py_INCREF(reference);
    Py_XSETREF(copy_reference, reference);
    Py_RETURN_NONE;
}

static inline void
cp_be(unsigned char *d, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

/* One field into the sink: 0, 1 (a value this does not write: the reference's), -1 (an error). */
static int
cp_field(IxSink *k, int kind, PyObject *v)
{
    if (v == Py_None) {
        if (ix_reserve(k, 4))
            return -1;
        memset(k->buf + k->len, 0xff, 4);
        k->len += 4;
        return 0;
    }
    const char *data = NULL;
    Py_ssize_t n = 0;
    unsigned char fixed[8];
    if (kind == CP_INT8 || kind == CP_INT4) {
        if (!PyLong_CheckExact(v))
            return 1;
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred()) || (kind == CP_INT4 && (x < INT32_MIN || x > INT32_MAX))) {
            PyErr_Clear();
            return 1;
        }
        n = kind == CP_INT8 ? 8 : 4;
        cp_be(fixed, (uint64_t)x, (int)n);
        data = (const char *)fixed;
    }
    else if (kind == CP_FLOAT8) {
        if (!PyFloat_CheckExact(v))
            return 1;
        double x = PyFloat_AS_DOUBLE(v);
        uint64_t bits;
        memcpy(&bits, &x, 8);
        cp_be(fixed, bits, 8);
        data = (const char *)fixed;
        n = 8;
    }
    else if (kind == CP_TEXT) {
        if (!PyUnicode_CheckExact(v))
            return 1;
        data = PyUnicode_AsUTF8AndSize(v, &n);
        if (data == NULL) { /* no UTF-8 (a lone surrogate): the reference raises its error */
            PyErr_Clear();
            return 1;
        }
    }
    else {
        if (!PyBytes_CheckExact(v))
            return 1;
        data = PyBytes_AS_STRING(v);
        n = PyBytes_GET_SIZE(v);
    }
    if (n > INT32_MAX)
        return 1;
    if (ix_reserve(k, 4 + n))
        return -1;
    cp_be(k->buf + k->len, (uint64_t)n, 4);
    memcpy(k->buf + k->len + 4, data, (size_t)n);
    k->len += 4 + n;
    return 0;
}

static PyObject *
copy_rows(PyObject *self, PyObject *rows)
{
    if (copy_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "formats._native.configure_index_copy_rows was not called");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(rows, "index_copy_rows: rows must be a sequence");
    if (seq == NULL)
        return NULL;
    IxSink sink = {IX_WORDS_PG, NULL, NULL, 0, 0, 0};
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    int other = 0; /* 1: the reference's call; -1: an error */
    for (Py_ssize_t r = 0; r < count && !other; r++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, r);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 13) {
            other = 1;
            break;
        }
        if (ix_reserve(&sink, 2)) {
            other = -1;
            break;
        }
        sink.buf[sink.len++] = 0;
        sink.buf[sink.len++] = 13;
        for (int c = 0; c < 13 && !other; c++)
            other = cp_field(&sink, CP_KINDS[c], PyTuple_GET_ITEM(row, c));
    }
    Py_DECREF(seq);
    PyObject *out = NULL;
    if (other == 0)
        out = PyBytes_FromStringAndSize(sink.len ? (const char *)sink.buf : "", sink.len);
    else if (other > 0)
        out = PyObject_CallOneArg(copy_reference, rows);
    PyMem_Free(sink.buf);
    return out;
}

static PyMethodDef index_methods[] = {
    {"configure_index_privmsg_row", (PyCFunction)configure_privmsg_row, METH_VARARGS,
     "configure_index_privmsg_row(reference, MessageRow): what index_privmsg_row hands odd lines to, and the row type."},
    {"index_privmsg_row", (PyCFunction)(void (*)(void))privmsg_row, METH_FASTCALL,
     "index_privmsg_row(record, line, channel, id_scope): the compiled twin of index.extract.privmsg_row_py."},
    {"index_scan_rows", (PyCFunction)(void (*)(void))scan_rows, METH_FASTCALL,
     "index_scan_rows(data, id_scope[, form, channel]): the rows of a batch file's PRIVMSG lines read here"
     " (read_batch, read_build)."},
    {"configure_index_copy_rows", (PyCFunction)configure_copy_rows, METH_O,
     "configure_index_copy_rows(reference): what index_copy_rows hands other values to."},
    {"index_copy_rows", (PyCFunction)copy_rows, METH_O,
     "index_copy_rows(rows): the compiled twin of index.pg.copy_rows_py."},
    {NULL, NULL, 0, NULL},
};

int
native_add_index(PyObject *m)
{
    return PyModule_AddFunctions(m, index_methods);
}
