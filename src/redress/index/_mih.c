/*
 * Hot loops of redress.index.mih: exact Hamming-radius search of 256-bit PDQ
 * hashes by multi-index hashing, plus the helpers its build and snapshots need.
 *
 * Plain CPython C API and the buffer protocol (no NumPy headers). Every
 * function that touches many bytes releases the GIL, so two threads searching
 * two halves of a batch run on two cores.
 *
 * Bit layout (shared with mih.py and docs/index.md): a hash's 32 bytes are
 * read as four little-endian 64-bit words w[0..3]; bit p is bit (p % 64) of
 * w[p / 64]. Chunk c covers bits [start_c, start_c + width_c), and its key is
 * those bits as an unsigned integer, lowest bit first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHUNKS 64
#define PREFETCH_AHEAD 32

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_DISPATCH 1
#define TARGET_FAST __attribute__((target("popcnt")))
#define TARGET_CRC __attribute__((target("sse4.2")))
#else
#define HAVE_X86_DISPATCH 0
#define TARGET_FAST
#define TARGET_CRC
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PREFETCH(p) __builtin_prefetch((p), 0, 1)
#define POPCOUNT64(x) __builtin_popcountll(x)
#else
#define ALWAYS_INLINE static inline
#define PREFETCH(p) ((void)0)
static inline int POPCOUNT64(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}
#endif

static int have_popcnt = 0;
static int have_sse42 = 0;

/* ------------------------------------------------------------------ */
/* small growable arrays (allocated without the GIL)                   */

typedef struct {
    uint32_t *q;
    int64_t *row;
    int32_t *dist;
    size_t len, cap;
} HitList;

static int hits_push(HitList *h, uint32_t q, int64_t row, int32_t dist) {
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        uint32_t *nq = realloc(h->q, cap * sizeof(uint32_t));
        if (!nq) return -1;
        h->q = nq;
        int64_t *nr = realloc(h->row, cap * sizeof(int64_t));
        if (!nr) return -1;
        h->row = nr;
        int32_t *nd = realloc(h->dist, cap * sizeof(int32_t));
        if (!nd) return -1;
        h->dist = nd;
        h->cap = cap;
    }
    h->q[h->len] = q;
    h->row[h->len] = row;
    h->dist[h->len] = dist;
    h->len++;
    return 0;
}

static void hits_free(HitList *h) {
    free(h->q);
    free(h->row);
    free(h->dist);
}

typedef struct {
    uint32_t *data;
    size_t len, cap;
} U32List;

static int u32_reserve(U32List *l, size_t extra) {
    if (l->len + extra <= l->cap) return 0;
    size_t cap = l->cap ? l->cap : 1024;
    while (cap < l->len + extra) cap *= 2;
    uint32_t *nd = realloc(l->data, cap * sizeof(uint32_t));
    if (!nd) return -1;
    l->data = nd;
    l->cap = cap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* bit helpers                                                         */

ALWAYS_INLINE void load_words(const uint8_t *p, uint64_t w[4]) { memcpy(w, p, 32); }

ALWAYS_INLINE uint32_t chunk_key(const uint64_t w[4], int start, int width) {
    int k = start >> 6, off = start & 63;
    uint64_t v = w[k] >> off;
    if (off + width > 64) v |= w[k + 1] << (64 - off);
    return (uint32_t)(v & ((width >= 32) ? 0xFFFFFFFFULL : ((1ULL << width) - 1)));
}

ALWAYS_INLINE int distance32(const uint64_t q[4], const uint8_t *p) {
    uint64_t w[4];
    memcpy(w, p, 32);
    return POPCOUNT64(q[0] ^ w[0]) + POPCOUNT64(q[1] ^ w[1]) + POPCOUNT64(q[2] ^ w[2]) +
           POPCOUNT64(q[3] ^ w[3]);
}

ALWAYS_INLINE int is_dead(const uint8_t *tomb, int64_t row) {
    return tomb != NULL && ((tomb[row >> 3] >> (row & 7)) & 1);
}

/* ------------------------------------------------------------------ */
/* the search kernel                                                   */

typedef struct {
    /* main segment */
    const uint8_t *hashes;
    int64_t n;
    const uint8_t *tomb;
    int nchunks;
    const uint32_t *offsets[MAX_CHUNKS];
    const uint32_t *rows[MAX_CHUNKS];
    int start[MAX_CHUNKS];
    int width[MAX_CHUNKS];
    int radius[MAX_CHUNKS]; /* -1: chunk not probed */
    int linear;             /* 1: scan the main segment instead of probing */
    /* delta segment, scanned linearly */
    const uint8_t *dhashes;
    int64_t dn;
    const uint8_t *dtomb;
    int threshold;
} Plan;

typedef struct {
    U32List keys;  /* probe keys, grouped by chunk */
    U32List kchunk;
    U32List lo, hi, rchunk;
    U32List cand;
    HitList qhits; /* hits of the current query, before dedupe */
} Scratch;

static void scratch_free(Scratch *s) {
    free(s->keys.data);
    free(s->kchunk.data);
    free(s->lo.data);
    free(s->hi.data);
    free(s->rchunk.data);
    free(s->cand.data);
    hits_free(&s->qhits);
}

static int cmp_hit_row(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Enumerate every key within `radius` bits of `key` in a `width`-bit space. */
ALWAYS_INLINE int push_neighbours(Scratch *s, uint32_t key, int width, int radius, uint32_t chunk) {
    for (int wgt = 0; wgt <= radius && wgt <= width; wgt++) {
        if (wgt == 0) {
            if (u32_reserve(&s->keys, 1) || u32_reserve(&s->kchunk, 1)) return -1;
            s->keys.data[s->keys.len++] = key;
            s->kchunk.data[s->kchunk.len++] = chunk;
            continue;
        }
        uint64_t m = (1ULL << wgt) - 1, limit = 1ULL << width;
        while (m < limit) {
            if (u32_reserve(&s->keys, 1) || u32_reserve(&s->kchunk, 1)) return -1;
            s->keys.data[s->keys.len++] = key ^ (uint32_t)m;
            s->kchunk.data[s->kchunk.len++] = chunk;
            /* next integer with the same number of set bits (Gosper) */
            uint64_t c = m & (~m + 1), r = m + c;
            m = (((r ^ m) >> 2) >> __builtin_ctzll(c)) | r;
        }
    }
    return 0;
}

ALWAYS_INLINE int search_one(const Plan *p, Scratch *s, const uint8_t *query, uint32_t qi,
                             HitList *out) {
    uint64_t q[4];
    load_words(query, q);
    const int T = p->threshold;
    s->qhits.len = 0;

    if (p->n > 0 && p->linear) {
        for (int64_t r = 0; r < p->n; r++) {
            int d = distance32(q, p->hashes + 32 * r);
            if (d <= T && !is_dead(p->tomb, r)) {
                if (hits_push(out, qi, r, d)) return -1;
            }
        }
    } else if (p->n > 0) {
        s->keys.len = s->kchunk.len = 0;
        for (int c = 0; c < p->nchunks; c++) {
            if (p->radius[c] < 0) continue;
            uint32_t key = chunk_key(q, p->start[c], p->width[c]);
            if (push_neighbours(s, key, p->width[c], p->radius[c], (uint32_t)c)) return -1;
        }
        /* pass 1: bucket ranges (offsets are random reads: prefetch ahead) */
        size_t nk = s->keys.len;
        s->lo.len = s->hi.len = s->rchunk.len = 0;
        if (u32_reserve(&s->lo, nk) || u32_reserve(&s->hi, nk) || u32_reserve(&s->rchunk, nk))
            return -1;
        size_t ncand = 0;
        for (size_t j = 0; j < nk; j++) {
            if (j + PREFETCH_AHEAD < nk) {
                size_t a = j + PREFETCH_AHEAD;
                PREFETCH(p->offsets[s->kchunk.data[a]] + s->keys.data[a]);
            }
            const uint32_t *off = p->offsets[s->kchunk.data[j]] + s->keys.data[j];
            uint32_t lo = off[0], hi = off[1];
            if (hi > lo) {
                s->lo.data[s->lo.len++] = lo;
                s->hi.data[s->hi.len++] = hi;
                s->rchunk.data[s->rchunk.len++] = s->kchunk.data[j];
                ncand += hi - lo;
            }
        }
        /* pass 2: gather candidate rows */
        s->cand.len = 0;
        if (u32_reserve(&s->cand, ncand)) return -1;
        size_t nr = s->lo.len;
        for (size_t j = 0; j < nr; j++) {
            if (j + PREFETCH_AHEAD < nr) {
                size_t a = j + PREFETCH_AHEAD;
                PREFETCH(p->rows[s->rchunk.data[a]] + s->lo.data[a]);
            }
            const uint32_t *rows = p->rows[s->rchunk.data[j]];
            for (uint32_t k = s->lo.data[j]; k < s->hi.data[j]; k++)
                s->cand.data[s->cand.len++] = rows[k];
        }
        /* pass 3: verify each candidate with the full 256-bit distance */
        size_t nc = s->cand.len;
        const uint32_t *cand = s->cand.data;
        for (size_t j = 0; j < nc; j++) {
            if (j + PREFETCH_AHEAD < nc) PREFETCH(p->hashes + 32 * (size_t)cand[j + PREFETCH_AHEAD]);
            int d = distance32(q, p->hashes + 32 * (size_t)cand[j]);
            if (d <= T && !is_dead(p->tomb, cand[j])) {
                if (hits_push(&s->qhits, qi, (int64_t)cand[j], d)) return -1;
            }
        }
        /* a row close to the query can sit in several probed buckets: keep it once */
        if (s->qhits.len > 1) {
            int64_t *rows = s->qhits.row;
            size_t n = s->qhits.len;
            /* a row's distance is a function of the row: sort rows alone, recompute */
            qsort(rows, n, sizeof(int64_t), cmp_hit_row);
            for (size_t j = 0; j < n; j++) {
                if (j > 0 && rows[j] == rows[j - 1]) continue;
                int d = distance32(q, p->hashes + 32 * (size_t)rows[j]);
                if (hits_push(out, qi, rows[j], d)) return -1;
            }
        } else if (s->qhits.len == 1) {
            if (hits_push(out, qi, s->qhits.row[0], s->qhits.dist[0])) return -1;
        }
    }
    for (int64_t r = 0; r < p->dn; r++) {
        int d = distance32(q, p->dhashes + 32 * r);
        if (d <= T && !is_dead(p->dtomb, r)) {
            if (hits_push(out, qi, p->n + r, d)) return -1;
        }
    }
    return 0;
}

static int search_batch_generic(const Plan *p, const uint8_t *queries, Py_ssize_t nq,
                                HitList *out) {
    Scratch s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    for (Py_ssize_t i = 0; i < nq && rc == 0; i++)
        rc = search_one(p, &s, queries + 32 * i, (uint32_t)i, out);
    scratch_free(&s);
    return rc;
}

#if HAVE_X86_DISPATCH
TARGET_FAST static int search_batch_fast(const Plan *p, const uint8_t *queries, Py_ssize_t nq,
                                         HitList *out) {
    Scratch s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    for (Py_ssize_t i = 0; i < nq && rc == 0; i++)
        rc = search_one(p, &s, queries + 32 * i, (uint32_t)i, out);
    scratch_free(&s);
    return rc;
}
#endif

/* ------------------------------------------------------------------ */
/* Python glue                                                         */

typedef struct {
    Py_buffer views[2 * MAX_CHUNKS + 8];
    int n;
} Views;

static void views_release(Views *v) {
    for (int i = 0; i < v->n; i++) PyBuffer_Release(&v->views[i]);
    v->n = 0;
}

/* Borrow a contiguous buffer; NULL pointer for None. */
static int view_get(Views *v, PyObject *obj, int writable, const void **ptr, Py_ssize_t *len) {
    if (obj == Py_None) {
        *ptr = NULL;
        *len = 0;
        return 0;
    }
    Py_buffer *b = &v->views[v->n];
    if (PyObject_GetBuffer(obj, b, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    v->n++;
    *ptr = b->buf;
    *len = b->len;
    return 0;
}

static PyObject *bytes_from(const void *data, size_t len) {
    return PyBytes_FromStringAndSize(len ? (const char *)data : "", (Py_ssize_t)len);
}

PyDoc_STRVAR(search_doc,
             "search(hashes, tomb, offsets, rows, starts, widths, radii, dhashes, dtomb, "
             "queries, threshold)\n--\n\n"
             "Rows within `threshold` of each query. `radii` None scans the main segment.\n"
             "Returns (query_index uint32, row int64, distance int32) as three bytes objects;\n"
             "delta rows are numbered after the main segment's rows.");

static PyObject *mih_search(PyObject *self, PyObject *args) {
    PyObject *hashes, *tomb, *offsets, *rows, *starts, *widths, *radii, *dhashes, *dtomb, *queries;
    int threshold;
    if (!PyArg_ParseTuple(args, "OOO!O!O!O!OOOOi", &hashes, &tomb, &PyTuple_Type, &offsets,
                          &PyTuple_Type, &rows, &PyTuple_Type, &starts, &PyTuple_Type, &widths,
                          &radii, &dhashes, &dtomb, &queries, &threshold))
        return NULL;
    if (threshold < 0 || threshold > 256) {
        PyErr_SetString(PyExc_ValueError, "threshold must be 0-256");
        return NULL;
    }
    Plan p;
    memset(&p, 0, sizeof p);
    Views v;
    v.n = 0;
    const void *ptr;
    Py_ssize_t len;
    PyObject *result = NULL;
    HitList out;
    memset(&out, 0, sizeof out);

    Py_ssize_t nch = PyTuple_GET_SIZE(offsets);
    if (nch > MAX_CHUNKS || PyTuple_GET_SIZE(rows) != nch || PyTuple_GET_SIZE(starts) != nch ||
        PyTuple_GET_SIZE(widths) != nch) {
        PyErr_SetString(PyExc_ValueError, "chunk tuples disagree");
        return NULL;
    }
    if (view_get(&v, hashes, 0, &ptr, &len)) goto done;
    p.hashes = ptr;
    p.n = len / 32;
    if (view_get(&v, tomb, 0, &ptr, &len)) goto done;
    p.tomb = ptr;
    if (p.tomb && len * 8 < p.n) {
        PyErr_SetString(PyExc_ValueError, "tombstone bitmap too short");
        goto done;
    }
    p.nchunks = (int)nch;
    for (Py_ssize_t c = 0; c < nch; c++) {
        long st = PyLong_AsLong(PyTuple_GET_ITEM(starts, c));
        long wd = PyLong_AsLong(PyTuple_GET_ITEM(widths, c));
        if (PyErr_Occurred()) goto done;
        if (wd < 1 || wd > 31 || st < 0 || st + wd > 256) {
            PyErr_SetString(PyExc_ValueError, "bad chunk geometry");
            goto done;
        }
        p.start[c] = (int)st;
        p.width[c] = (int)wd;
        if (view_get(&v, PyTuple_GET_ITEM(offsets, c), 0, &ptr, &len)) goto done;
        if (len != (Py_ssize_t)(((size_t)1 << wd) + 1) * 4) {
            PyErr_SetString(PyExc_ValueError, "offsets length does not match chunk width");
            goto done;
        }
        p.offsets[c] = ptr;
        if (view_get(&v, PyTuple_GET_ITEM(rows, c), 0, &ptr, &len)) goto done;
        if (len != p.n * 4) {
            PyErr_SetString(PyExc_ValueError, "rows length does not match hash count");
            goto done;
        }
        p.rows[c] = ptr;
    }
    if (radii == Py_None) {
        p.linear = 1;
    } else {
        if (!PyTuple_Check(radii) || PyTuple_GET_SIZE(radii) != nch) {
            PyErr_SetString(PyExc_ValueError, "radii must be a tuple, one per chunk");
            goto done;
        }
        for (Py_ssize_t c = 0; c < nch; c++) {
            long r = PyLong_AsLong(PyTuple_GET_ITEM(radii, c));
            if (PyErr_Occurred()) goto done;
            if (r < -1 || r > p.width[c]) {
                PyErr_SetString(PyExc_ValueError, "bad chunk radius");
                goto done;
            }
            p.radius[c] = (int)r;
        }
        if (p.n > 0 && nch == 0) p.linear = 1;
    }
    if (view_get(&v, dhashes, 0, &ptr, &len)) goto done;
    p.dhashes = ptr;
    p.dn = len / 32;
    if (view_get(&v, dtomb, 0, &ptr, &len)) goto done;
    p.dtomb = ptr;
    if (p.dtomb && len * 8 < p.dn) {
        PyErr_SetString(PyExc_ValueError, "delta tombstone bitmap too short");
        goto done;
    }
    p.threshold = threshold;
    const uint8_t *qptr;
    Py_ssize_t qlen;
    if (view_get(&v, queries, 0, (const void **)&qptr, &qlen)) goto done;
    if (qlen % 32) {
        PyErr_SetString(PyExc_ValueError, "queries must be whole 32-byte hashes");
        goto done;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86_DISPATCH
    if (have_popcnt)
        rc = search_batch_fast(&p, qptr, qlen / 32, &out);
    else
#endif
        rc = search_batch_generic(&p, qptr, qlen / 32, &out);
    Py_END_ALLOW_THREADS
    if (rc) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(NNN)", bytes_from(out.q, out.len * 4), bytes_from(out.row, out.len * 8),
                           bytes_from(out.dist, out.len * 4));
done:
    hits_free(&out);
    views_release(&v);
    return result;
}

PyDoc_STRVAR(build_chunk_doc,
             "build_chunk(hashes, start, width, offsets_out, rows_out)\n--\n\n"
             "Counting-sort the rows of `hashes` by one chunk's key into CSR form:\n"
             "offsets_out (uint32, 2**width + 1) and rows_out (uint32, one per hash).");

static PyObject *mih_build_chunk(PyObject *self, PyObject *args) {
    PyObject *hashes, *offsets, *rows;
    int start, width;
    if (!PyArg_ParseTuple(args, "OiiOO", &hashes, &start, &width, &offsets, &rows)) return NULL;
    if (width < 1 || width > 31 || start < 0 || start + width > 256) {
        PyErr_SetString(PyExc_ValueError, "bad chunk geometry");
        return NULL;
    }
    Views v;
    v.n = 0;
    const void *hp, *op, *rp;
    Py_ssize_t hl, ol, rl;
    if (view_get(&v, hashes, 0, &hp, &hl) || view_get(&v, offsets, 1, &op, &ol) ||
        view_get(&v, rows, 1, &rp, &rl)) {
        views_release(&v);
        return NULL;
    }
    size_t n = (size_t)hl / 32, nb = (size_t)1 << width;
    if ((size_t)ol != (nb + 1) * 4 || (size_t)rl != n * 4 || n > 0xFFFFFFFFULL) {
        views_release(&v);
        PyErr_SetString(PyExc_ValueError, "output buffers have the wrong size");
        return NULL;
    }
    uint32_t *off = (uint32_t *)op, *out = (uint32_t *)rp;
    const uint8_t *h = hp;
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    uint32_t *keys = malloc(n ? n * sizeof(uint32_t) : 1);
    if (!keys) {
        oom = 1;
    } else {
        memset(off, 0, (nb + 1) * 4);
        for (size_t i = 0; i < n; i++) {
            uint64_t w[4];
            load_words(h + 32 * i, w);
            keys[i] = chunk_key(w, start, width);
            off[keys[i] + 1]++;
        }
        for (size_t k = 0; k < nb; k++) off[k + 1] += off[k];
        /* scatter; use off[k] as the running cursor, then shift back */
        for (size_t i = 0; i < n; i++) out[off[keys[i]]++] = (uint32_t)i;
        for (size_t k = nb; k > 0; k--) off[k] = off[k - 1];
        off[0] = 0;
        free(keys);
    }
    Py_END_ALLOW_THREADS
    views_release(&v);
    if (oom) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* CRC-32C (Castagnoli), the checksum of snapshot sections. */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78U & (0U - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = crc_table[7][w & 0xFF] ^ crc_table[6][(w >> 8) & 0xFF] ^
              crc_table[5][(w >> 16) & 0xFF] ^ crc_table[4][(w >> 24) & 0xFF] ^
              crc_table[3][(w >> 32) & 0xFF] ^ crc_table[2][(w >> 40) & 0xFF] ^
              crc_table[1][(w >> 48) & 0xFF] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

#if HAVE_X86_DISPATCH
TARGET_CRC static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

PyDoc_STRVAR(crc32c_doc, "crc32c(data, crc=0)\n--\n\nCRC-32C of a buffer, continuing from `crc`.");

static PyObject *mih_crc32c(PyObject *self, PyObject *args) {
    PyObject *obj;
    unsigned int crc = 0;
    if (!PyArg_ParseTuple(args, "O|I", &obj, &crc)) return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    uint32_t r;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86_DISPATCH
    if (have_sse42)
        r = crc32c_hw(crc, b.buf, (size_t)b.len);
    else
#endif
        r = crc32c_soft(crc, b.buf, (size_t)b.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(r);
}

static PyMethodDef methods[] = {
    {"search", mih_search, METH_VARARGS, search_doc},
    {"build_chunk", mih_build_chunk, METH_VARARGS, build_chunk_doc},
    {"crc32c", mih_crc32c, METH_VARARGS, crc32c_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mih", "Hot loops of redress.index.mih (C).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mih(void) {
    crc_init();
#if HAVE_X86_DISPATCH
    __builtin_cpu_init();
    have_popcnt = __builtin_cpu_supports("popcnt");
    have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
    return PyModule_Create(&module);
}
