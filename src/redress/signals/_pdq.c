/*
 * PDQ (Meta's 256-bit perceptual hash) in C, bit for bit equal to the
 * `pdqhash` package that Hasher-Matcher-Actioner and `threatexchange` use.
 *
 * Why a second implementation: `pdqhash.compute` spends most of its time in
 * NumPy (a float64 luma built in five passes over the picture) and in
 * box filters that walk the full-resolution picture four times, one pixel
 * at a time, while holding the GIL. This file computes the same floats in
 * the same order, so every hash and quality is identical, but:
 *
 * - luma comes from three 256-entry tables of the same float64 products;
 * - the filters along rows run eight rows side by side (independent running
 *   sums, so the compiler vectorises them), the filters along columns run
 *   across the whole row at once;
 * - the second filter pass only computes what PDQ's 64x64 decimation reads
 *   (every column's running sum, but divisions and writes only at the 64
 *   sampled positions);
 * - the GIL is released for all of it.
 *
 * The arithmetic that decides the bits is kept exactly as PDQ defines it:
 * luma = (float)(R*0.299 + G*0.587 + B*0.114) in double (what pdqhash's NumPy
 * computes); each one-dimensional box filter adds the entering value and
 * then subtracts the leaving one, in float, and divides the running sum by
 * the current window length; windows shrink at both ends; two passes of
 * rows-then-columns; decimation samples (int)((i + 0.5) * n / 64); the
 * quality metric and the 16x16 DCT sum in PDQ's order; the threshold is the
 * 128th smallest of the 256 coefficients. Built with -ffp-contract=off so
 * no multiply-add is ever fused, whatever -march a packager adds.
 *
 * Hash layout returned: 32 bytes, most significant first, as `pdqhash`'s bit
 * vector packed by NumPy (coefficient k = 16 * row + column is bit k of the
 * 256-bit number; byte 31 - k / 8, bit k % 8).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
#define MIN_HASHABLE_DIM 5

static double luma_r[256], luma_g[256], luma_b[256];
static float dct16x64[16][64];

static void init_tables(void) {
    for (int v = 0; v < 256; v++) {
        luma_r[v] = (double)v * 0.299;
        luma_g[v] = (double)v * 0.587;
        luma_b[v] = (double)v * 0.114;
    }
    /* The scale factor is rounded to float first, as PDQ declares it. */
    const float scale = (float)sqrt(2.0 / 64.0);
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 64; j++)
            dct16x64[i][j] = (float)((double)scale * cos((pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1)));
}

static int window_for(int length) { return (length + 2 * 64 - 1) / (2 * 64); }

static int sample_index(int i, int length) { return (int)(((i + 0.5) * length) / 64); }

/* ------------------------------------------------------------------ */
/* One-dimensional box filter on LANES interleaved signals.            */
/*                                                                     */
/* in[t * LANES + k] is element t of signal k; out likewise. Element t  */
/* of the output averages the window around t that PDQ defines (it      */
/* shrinks at both ends). With `keep` non-NULL only the outputs whose   */
/* keep[t] is set are divided and written.                              */

static void box_lanes(const float *in, float *out, int length, int window, const uint8_t *keep) {
    const int half = (window + 2) / 2;
    const int n1 = half - 1, n2 = window - half + 1, n3 = length - window, n4 = half - 1;
    float sum[LANES] = {0};
    int ri = 0, li = 0, oi = 0, count = 0;
    for (int t = 0; t < n1; t++, ri++, count++)
        for (int k = 0; k < LANES; k++) sum[k] += in[ri * LANES + k];
    for (int t = 0; t < n2; t++, ri++, oi++) {
        count++;
        for (int k = 0; k < LANES; k++) sum[k] += in[ri * LANES + k];
        if (!keep || keep[oi]) {
            const float c = (float)count;
            for (int k = 0; k < LANES; k++) out[oi * LANES + k] = sum[k] / c;
        }
    }
    const float full = (float)count;
    for (int t = 0; t < n3; t++, ri++, li++, oi++) {
        for (int k = 0; k < LANES; k++) {
            sum[k] += in[ri * LANES + k];
            sum[k] -= in[li * LANES + k];
        }
        if (!keep || keep[oi])
            for (int k = 0; k < LANES; k++) out[oi * LANES + k] = sum[k] / full;
    }
    for (int t = 0; t < n4; t++, li++, oi++) {
        count--;
        for (int k = 0; k < LANES; k++) sum[k] -= in[li * LANES + k];
        if (!keep || keep[oi]) {
            const float c = (float)count;
            for (int k = 0; k < LANES; k++) out[oi * LANES + k] = sum[k] / c;
        }
    }
}

/* Box filter along every row of a rows x cols row-major plane, LANES rows at
 * a time through a transposed scratch. Either writes the whole output plane
 * (`out`, rows x cols) or only the 64 sampled columns (`out64`, rows x 64). */
static void box_along_rows(const float *in, float *out, float *out64, int rows, int cols,
                           int window, const uint8_t *keep, const int *sampled_cols,
                           float *scratch_in, float *scratch_out) {
    for (int r0 = 0; r0 < rows; r0 += LANES) {
        const int n = rows - r0 < LANES ? rows - r0 : LANES;
        for (int k = 0; k < n; k++) {
            const float *row = in + (size_t)(r0 + k) * cols;
            for (int c = 0; c < cols; c++) scratch_in[c * LANES + k] = row[c];
        }
        for (int k = n; k < LANES; k++)
            for (int c = 0; c < cols; c++) scratch_in[c * LANES + k] = 0.0f;
        box_lanes(scratch_in, scratch_out, cols, window, out64 ? keep : NULL);
        for (int k = 0; k < n; k++) {
            if (out64) {
                float *row = out64 + (size_t)(r0 + k) * 64;
                for (int j = 0; j < 64; j++) row[j] = scratch_out[sampled_cols[j] * LANES + k];
            } else {
                float *row = out + (size_t)(r0 + k) * cols;
                for (int c = 0; c < cols; c++) row[c] = scratch_out[c * LANES + k];
            }
        }
    }
}

/* Box filter along every column of a rows x cols row-major plane: the running
 * sums of all columns advance together, one row at a time. */
static void box_along_cols(const float *in, float *out, int rows, int cols, int window,
                           float *sum) {
    const int half = (window + 2) / 2;
    const int n1 = half - 1, n2 = window - half + 1, n3 = rows - window, n4 = half - 1;
    int ri = 0, li = 0, oi = 0, count = 0;
    for (int c = 0; c < cols; c++) sum[c] = 0.0f;
    for (int t = 0; t < n1; t++, ri++, count++) {
        const float *a = in + (size_t)ri * cols;
        for (int c = 0; c < cols; c++) sum[c] += a[c];
    }
    for (int t = 0; t < n2; t++, ri++, oi++) {
        count++;
        const float *a = in + (size_t)ri * cols;
        float *o = out + (size_t)oi * cols;
        const float d = (float)count;
        for (int c = 0; c < cols; c++) {
            sum[c] += a[c];
            o[c] = sum[c] / d;
        }
    }
    const float full = (float)count;
    for (int t = 0; t < n3; t++, ri++, li++, oi++) {
        const float *a = in + (size_t)ri * cols;
        const float *b = in + (size_t)li * cols;
        float *o = out + (size_t)oi * cols;
        for (int c = 0; c < cols; c++) {
            sum[c] += a[c];
            sum[c] -= b[c];
            o[c] = sum[c] / full;
        }
    }
    for (int t = 0; t < n4; t++, li++, oi++) {
        count--;
        const float *b = in + (size_t)li * cols;
        float *o = out + (size_t)oi * cols;
        const float d = (float)count;
        for (int c = 0; c < cols; c++) {
            sum[c] -= b[c];
            o[c] = sum[c] / d;
        }
    }
}

/* ------------------------------------------------------------------ */
/* 64x64 -> quality, 16x16 DCT, bits                                    */

static int quality_of(const float a[64][64]) {
    int gradient = 0;
    for (int i = 0; i < 63; i++)
        for (int j = 0; j < 64; j++) {
            const int d = (int)(((a[i][j] - a[i + 1][j]) * 100) / 255);
            gradient += abs(d);
        }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 63; j++) {
            const int d = (int)(((a[i][j] - a[i][j + 1]) * 100) / 255);
            gradient += abs(d);
        }
    const int quality = gradient / 90;
    return quality > 100 ? 100 : quality;
}

static void dct_16x16(const float a[64][64], float out[16][16]) {
    float t[16][64];
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 64; j++) t[i][j] = 0.0f;
        for (int k = 0; k < 64; k++) {
            const float d = dct16x64[i][k];
            for (int j = 0; j < 64; j++) t[i][j] += d * a[k][j];
        }
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float sum = 0.0f;
            for (int k = 0; k < 64; k++) sum += t[i][k] * dct16x64[j][k];
            out[i][j] = sum;
        }
}

/* The k-th smallest of n floats (0-based), found in place by quickselect: the
 * value a full sort would put at index k, without qsort's comparison callback
 * per step, which cost a fifth of a window's hash. */
static float kth_smallest(float *v, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = v[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                const float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

static void bits_of(const float dct[16][16], unsigned char out[32]) {
    float sorted[256];
    memcpy(sorted, dct, sizeof(sorted));
    const float median = kth_smallest(sorted, 256, 127);
    memset(out, 0, 32);
    for (int k = 0; k < 256; k++)
        if (dct[k / 16][k % 16] > median) out[31 - k / 8] |= (unsigned char)(1u << (k % 8));
}

/* The eight dihedral transforms of the DCT (Meta's order after the original):
 * rotate 90, 180, 270, flip X, flip Y, flip about +1 and -1 diagonals. */
static void dihedral_dct(const float a[16][16], int which, float b[16][16]) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            const float v = a[i][j];
            switch (which) {
            case 1: b[j][i] = (j & 1) ? v : -v; break;
            case 2: b[i][j] = ((i + j) & 1) ? -v : v; break;
            case 3: b[j][i] = (i & 1) ? v : -v; break;
            case 4: b[i][j] = (i & 1) ? v : -v; break;
            case 5: b[i][j] = (j & 1) ? v : -v; break;
            case 6: b[j][i] = v; break;
            default: b[j][i] = ((i + j) & 1) ? -v : v; break;
            }
        }
}

/* ------------------------------------------------------------------ */
/* Full resolution pixels -> 64x64                                      */

typedef struct {
    const unsigned char *pixels;
    Py_ssize_t row_stride, pixel_stride;
    int rows, cols, grey;
} Picture;

static void fill_luma(const Picture *p, float *luma) {
    for (int r = 0; r < p->rows; r++) {
        const unsigned char *px = p->pixels + r * p->row_stride;
        float *out = luma + (size_t)r * p->cols;
        if (p->grey) {
            for (int c = 0; c < p->cols; c++, px += p->pixel_stride)
                out[c] = (float)(luma_r[px[0]] + luma_g[px[0]] + luma_b[px[0]]);
        } else {
            for (int c = 0; c < p->cols; c++, px += p->pixel_stride)
                out[c] = (float)(luma_r[px[0]] + luma_g[px[1]] + luma_b[px[2]]);
        }
    }
}

/* Blur and decimate to 64x64; returns 0 on allocation failure. `skip_64` keeps
 * PDQ's shortcut: a picture already 64x64 is used as is (not for dihedral). */
static int downsample(const Picture *p, int skip_64, float buffer64[64][64]) {
    const int rows = p->rows, cols = p->cols;
    const size_t plane = (size_t)rows * cols;
    float *a = malloc(plane * sizeof(float));
    float *b = malloc(plane * sizeof(float));
    float *scratch = malloc((size_t)cols * LANES * 2 * sizeof(float));
    float *narrow = malloc((size_t)rows * 64 * 2 * sizeof(float));
    float *sums = malloc((size_t)(cols > 64 ? cols : 64) * sizeof(float));
    uint8_t *keep = calloc((size_t)cols, 1);
    int ok = a && b && scratch && narrow && sums && keep;
    if (ok) {
        fill_luma(p, a);
        if (skip_64 && rows == 64 && cols == 64) {
            memcpy(buffer64, a, 64 * 64 * sizeof(float));
        } else {
            const int window_rows = window_for(cols), window_cols = window_for(rows);
            int sampled_rows[64], sampled_cols[64];
            for (int i = 0; i < 64; i++) {
                sampled_rows[i] = sample_index(i, rows);
                sampled_cols[i] = sample_index(i, cols);
                keep[sampled_cols[i]] = 1;
            }
            float *scratch_out = scratch + (size_t)cols * LANES;
            /* Pass one: rows, then columns, over the whole plane. */
            box_along_rows(a, b, NULL, rows, cols, window_rows, NULL, NULL, scratch, scratch_out);
            box_along_cols(b, a, rows, cols, window_cols, sums);
            /* Pass two: rows (only the 64 sampled columns are read later), then
             * those 64 columns, keeping the 64 sampled rows. */
            float *narrow_out = narrow + (size_t)rows * 64;
            box_along_rows(a, NULL, narrow, rows, cols, window_rows, keep, sampled_cols, scratch,
                           scratch_out);
            box_along_cols(narrow, narrow_out, rows, 64, window_cols, sums);
            for (int i = 0; i < 64; i++)
                memcpy(buffer64[i], narrow_out + (size_t)sampled_rows[i] * 64, 64 * sizeof(float));
        }
    }
    free(a);
    free(b);
    free(scratch);
    free(narrow);
    free(sums);
    free(keep);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Python interface                                                     */

PyDoc_STRVAR(hash_pixels_doc,
             "hash_pixels(pixels, rows, cols, row_stride, pixel_stride, grey, dihedral, /)\n"
             "--\n\n"
             "PDQ of 8-bit pixels: R, G, B at offsets 0, 1, 2 of each pixel (or one grey\n"
             "byte when grey). Returns (hashes, quality): one 32-byte hash, or eight\n"
             "(Meta's dihedral order) when dihedral. Releases the GIL.");

static PyObject *pdq_hash_pixels(PyObject *self, PyObject *args) {
    Py_buffer view;
    int rows, cols, grey, dihedral;
    Py_ssize_t row_stride, pixel_stride;
    if (!PyArg_ParseTuple(args, "y*iinnpp", &view, &rows, &cols, &row_stride, &pixel_stride,
                          &grey, &dihedral))
        return NULL;
    const Py_ssize_t channels = grey ? 1 : 3;
    if (rows < 0 || cols < 0 || pixel_stride < channels || row_stride < (Py_ssize_t)cols * pixel_stride ||
        (rows > 0 && cols > 0 &&
         (Py_ssize_t)(rows - 1) * row_stride + (Py_ssize_t)(cols - 1) * pixel_stride + channels >
             view.len)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pixel buffer smaller than rows x cols x stride");
        return NULL;
    }
    Picture picture = {view.buf, row_stride, pixel_stride, rows, cols, grey};
    float buffer64[64][64], dct[16][16], turned[16][16];
    unsigned char bits[8][32];
    const int count = dihedral ? 8 : 1;
    int quality = 0, ok = 1;
    memset(bits, 0, sizeof(bits));
    Py_BEGIN_ALLOW_THREADS
    if (rows >= MIN_HASHABLE_DIM && cols >= MIN_HASHABLE_DIM) {
        ok = downsample(&picture, !dihedral, buffer64);
        if (ok) {
            quality = quality_of((const float(*)[64])buffer64);
            dct_16x16((const float(*)[64])buffer64, dct);
            bits_of((const float(*)[16])dct, bits[0]);
            for (int which = 1; which < count; which++) {
                dihedral_dct((const float(*)[16])dct, which, turned);
                bits_of((const float(*)[16])turned, bits[which]);
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (!ok) return PyErr_NoMemory();
    PyObject *hashes = PyTuple_New(count);
    if (!hashes) return NULL;
    for (int i = 0; i < count; i++) {
        PyObject *one = PyBytes_FromStringAndSize((const char *)bits[i], 32);
        if (!one) {
            Py_DECREF(hashes);
            return NULL;
        }
        PyTuple_SET_ITEM(hashes, i, one);
    }
    return Py_BuildValue("(Ni)", hashes, quality);
}

PyDoc_STRVAR(hash_buffer64_doc,
             "hash_buffer64(buffer64, /)\n"
             "--\n\n"
             "PDQ's last steps on a 64x64 float32 luma buffer (C order): quality, DCT,\n"
             "median threshold. Returns (hash, quality).");

static PyObject *pdq_hash_buffer64(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    if (view.len != (Py_ssize_t)(64 * 64 * sizeof(float))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "expected 64x64 float32 values");
        return NULL;
    }
    float buffer64[64][64], dct[16][16];
    unsigned char bits[32];
    memcpy(buffer64, view.buf, sizeof(buffer64));
    PyBuffer_Release(&view);
    const int quality = quality_of((const float(*)[64])buffer64);
    dct_16x16((const float(*)[64])buffer64, dct);
    bits_of((const float(*)[16])dct, bits);
    return Py_BuildValue("(y#i)", (const char *)bits, (Py_ssize_t)32, quality);
}

PyDoc_STRVAR(hash_banded_doc,
             "hash_banded(luma, rows, cols, row_starts, row_weights, row_band, col_starts,\n"
             "            col_weights, col_band, /)\n"
             "--\n\n"
             "PDQ of an 8-bit luma plane (rows x cols, C order) through a banded linear map\n"
             "to 64x64: sample (i, j) = sum over k, l of row_weights[i, k] *\n"
             "col_weights[j, l] * luma[row_starts[i] + k, col_starts[j] + l]. Starts are\n"
             "64 int64, weights 64 x band float32. Only the columns the map reads are\n"
             "filtered, so a window of a large plane costs its own size. Returns (hash,\n"
             "quality). Releases the GIL.");


/* The columns a column map reads: [*first, *first + width). */
static int map_span(const int64_t *col_starts, int out_cols, int col_band, int64_t *first) {
    int64_t lo = col_starts[0], hi = col_starts[0] + col_band;
    for (int j = 1; j < out_cols; j++) {
        if (col_starts[j] < lo) lo = col_starts[j];
        if (col_starts[j] + col_band > hi) hi = col_starts[j] + col_band;
    }
    *first = lo;
    return (int)(hi - lo);
}

/* out[i][j] = sum over k, l of row_weights[i, k] * col_weights[j, l] *
 * plane[row_starts[i] + k][col_starts[j] + l], rows first. Only the columns
 * the column map reads are filtered along rows, one output row at a time
 * (``row`` holds width floats), so a window of a larger plane costs its own
 * width and the buffer stays small. */
static void banded_map(const unsigned char *plane, int cols, int out_rows, const int64_t *row_starts,
                       const float *row_weights, int row_band, int out_cols,
                       const int64_t *col_starts, const float *col_weights, int col_band,
                       int64_t first_col, int width, float *row, float *out) {
    for (int i = 0; i < out_rows; i++) {
        for (int c = 0; c < width; c++) row[c] = 0.0f;
        for (int k = 0; k < row_band; k++) {
            const float w = row_weights[i * row_band + k];
            const unsigned char *in = plane + (size_t)(row_starts[i] + k) * cols + first_col;
            for (int c = 0; c < width; c++) row[c] += w * (float)in[c];
        }
        for (int j = 0; j < out_cols; j++) {
            const float *w = col_weights + j * col_band;
            const float *x = row + (col_starts[j] - first_col);
            float sum = 0.0f;
            for (int l = 0; l < col_band; l++) sum += w[l] * x[l];
            out[(size_t)i * out_cols + j] = sum;
        }
    }
}

static int band_ok(const Py_buffer *starts, const Py_buffer *weights, int count, int band,
                   int length) {
    if (count < 1 || band < 1 || starts->len != count * (Py_ssize_t)sizeof(int64_t) ||
        weights->len != count * (Py_ssize_t)band * (Py_ssize_t)sizeof(float))
        return 0;
    const int64_t *s = starts->buf;
    for (int i = 0; i < count; i++)
        if (s[i] < 0 || s[i] + band > length) return 0;
    return 1;
}

/* The buffers a banded map's arguments hold. */
static void release_map(Py_buffer *luma, Py_buffer *rs, Py_buffer *rw, Py_buffer *cs,
                        Py_buffer *cw) {
    PyBuffer_Release(luma);
    PyBuffer_Release(rs);
    PyBuffer_Release(rw);
    PyBuffer_Release(cs);
    PyBuffer_Release(cw);
}

static PyObject *pdq_hash_banded(PyObject *self, PyObject *args) {
    Py_buffer luma, rs, rw, cs, cw;
    int rows, cols, row_band, col_band;
    if (!PyArg_ParseTuple(args, "y*iiy*y*iy*y*i", &luma, &rows, &cols, &rs, &rw, &row_band, &cs,
                          &cw, &col_band))
        return NULL;
    PyObject *result = NULL;
    float *partial = NULL;
    if (rows < 1 || cols < 1 || luma.len != (Py_ssize_t)rows * cols ||
        !band_ok(&rs, &rw, 64, row_band, rows) || !band_ok(&cs, &cw, 64, col_band, cols)) {
        PyErr_SetString(PyExc_ValueError, "luma plane or band map of the wrong size");
        goto done;
    }
    int64_t first_col;
    const int width = map_span(cs.buf, 64, col_band, &first_col);
    partial = malloc((size_t)width * sizeof(float));
    if (!partial) {
        PyErr_NoMemory();
        goto done;
    }
    float buffer64[64][64], dct[16][16];
    unsigned char bits[32];
    int quality;
    Py_BEGIN_ALLOW_THREADS
    banded_map(luma.buf, cols, 64, rs.buf, rw.buf, row_band, 64, cs.buf, cw.buf, col_band,
               first_col, width, partial, &buffer64[0][0]);
    quality = quality_of((const float(*)[64])buffer64);
    dct_16x16((const float(*)[64])buffer64, dct);
    bits_of((const float(*)[16])dct, bits);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(y#i)", (const char *)bits, (Py_ssize_t)32, quality);
done:
    free(partial);
    release_map(&luma, &rs, &rw, &cs, &cw);
    return result;
}

PyDoc_STRVAR(resample_banded_doc,
             "resample_banded(luma, rows, cols, out_rows, row_starts, row_weights, row_band,\n"
             "                out_cols, col_starts, col_weights, col_band, /)\n"
             "--\n\n"
             "An 8-bit luma plane (rows x cols, C order) through a banded linear map to\n"
             "out_rows x out_cols, rounded to 8 bits: the same map as hash_banded, of any\n"
             "output size (a box-filter resize, say). Returns the plane's bytes. Releases\n"
             "the GIL.");

static PyObject *pdq_resample_banded(PyObject *self, PyObject *args) {
    Py_buffer luma, rs, rw, cs, cw;
    int rows, cols, out_rows, out_cols, row_band, col_band;
    if (!PyArg_ParseTuple(args, "y*iiiy*y*iiy*y*i", &luma, &rows, &cols, &out_rows, &rs, &rw,
                          &row_band, &out_cols, &cs, &cw, &col_band))
        return NULL;
    PyObject *result = NULL;
    float *partial = NULL, *out = NULL;
    if (rows < 1 || cols < 1 || luma.len != (Py_ssize_t)rows * cols ||
        !band_ok(&rs, &rw, out_rows, row_band, rows) ||
        !band_ok(&cs, &cw, out_cols, col_band, cols)) {
        PyErr_SetString(PyExc_ValueError, "luma plane or band map of the wrong size");
        goto done;
    }
    int64_t first_col;
    const int width = map_span(cs.buf, out_cols, col_band, &first_col);
    /* Strips of STRIP output rows: partial holds a strip's row pass (STRIP x
     * width), out the same transposed (width x STRIP), then its column pass
     * (out_cols x STRIP). Small buffers: large ones would be mapped and
     * unmapped by malloc on every call, and page faults would cost more than
     * the arithmetic. */
    enum { STRIP = 16 };
    const size_t span = (size_t)(width > out_cols ? width : out_cols);
    partial = malloc((size_t)STRIP * width * sizeof(float));
    out = malloc((size_t)STRIP * 2 * span * sizeof(float));
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)out_rows * out_cols);
    if (!partial || !out || !result) {
        Py_CLEAR(result);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    unsigned char *pixels = (unsigned char *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *plane = luma.buf;
    const int64_t *row_starts = rs.buf, *col_starts = cs.buf;
    const float *row_weights = rw.buf, *col_weights = cw.buf;
    float *turned = out, *summed = out + (size_t)STRIP * span;
    /* A resize's bands are two or three pixels wide, too short for a loop per
     * output pixel to gain anything: both passes sum whole contiguous lines,
     * the column pass over the row pass transposed. */
    for (int top = 0; top < out_rows; top += STRIP) {
        const int height = top + STRIP < out_rows ? STRIP : out_rows - top;
        for (int r = 0; r < height; r++) {
            const int i = top + r;
            float *row = partial + (size_t)r * width;
            for (int c = 0; c < width; c++) row[c] = 0.0f;
            for (int k = 0; k < row_band; k++) {
                const float w = row_weights[i * row_band + k];
                const unsigned char *in = plane + (size_t)(row_starts[i] + k) * cols + first_col;
                for (int c = 0; c < width; c++) row[c] += w * (float)in[c];
            }
        }
        for (int c = 0; c < width; c++)
            for (int r = 0; r < STRIP; r++)
                turned[(size_t)c * STRIP + r] = r < height ? partial[(size_t)r * width + c] : 0.0f;
        for (int j = 0; j < out_cols; j++) {
            float *line = summed + (size_t)j * STRIP;
            for (int r = 0; r < STRIP; r++) line[r] = 0.0f;
            for (int l = 0; l < col_band; l++) {
                const float w = col_weights[j * col_band + l];
                const float *in = turned + (size_t)(col_starts[j] - first_col + l) * STRIP;
                for (int r = 0; r < STRIP; r++) line[r] += w * in[r];
            }
        }
        for (int r = 0; r < height; r++) {
            unsigned char *target = pixels + (size_t)(top + r) * out_cols;
            for (int j = 0; j < out_cols; j++) {
                const float v = summed[(size_t)j * STRIP + r] + 0.5f;
                target[j] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (unsigned char)v;
            }
        }
    }
    Py_END_ALLOW_THREADS
done:
    free(partial);
    free(out);
    release_map(&luma, &rs, &rw, &cs, &cw);
    return result;
}

PyDoc_STRVAR(dense_rectangle_doc,
             "dense_rectangle(content, rows, cols, /)\n"
             "--\n\n"
             "(top, bottom, left, right) of the densest rectangle of a content mask\n"
             "(rows x cols bytes, C order, 0 or 1), or None: the run of rows at least half\n"
             "content across the current columns, then the run of columns at least half\n"
             "content across those rows, up to three turns, stopping early once a turn\n"
             "changes nothing. A run bridges one-line gaps; of several runs, the one with\n"
             "the most content wins (the first on ties). Edges are exclusive at the end.");

/* Whether line k is part of a run: at least half full (2 * count >= width), or
 * a lone line between two that are. */
static inline int in_run(const int32_t *count, int n, int width, int k) {
#define DENSE(j) (2 * (int64_t)count[j] >= (int64_t)width)
    const int bridged = DENSE(k) || (k > 0 && k < n - 1 && DENSE(k - 1) && DENSE(k + 1));
#undef DENSE
    return bridged;
}

/* The best run of `n` lines whose counts (out of `width`) are given: the run of
 * lines in_run with the largest summed count (the first on ties). */
static int best_run(const int32_t *count, int n, int width, int *start, int *end) {
    int found = 0;
    int64_t best = -1;
    int i = 0;
    while (i < n) {
        if (!in_run(count, n, width, i)) {
            i++;
            continue;
        }
        int64_t sum = 0;
        const int first = i;
        while (i < n && in_run(count, n, width, i)) sum += count[i++];
        if (sum > best) {
            best = sum;
            *start = first;
            *end = i;
            found = 1;
        }
    }
    return found;
}

static PyObject *pdq_dense_rectangle(PyObject *self, PyObject *args) {
    Py_buffer mask;
    int rows, cols;
    if (!PyArg_ParseTuple(args, "y*ii", &mask, &rows, &cols)) return NULL;
    if (rows < 1 || cols < 1 || mask.len != (Py_ssize_t)rows * cols) {
        PyBuffer_Release(&mask);
        PyErr_SetString(PyExc_ValueError, "content mask of the wrong size");
        return NULL;
    }
    /* Running counts along each line: a band's count is then one subtraction. */
    int32_t *along_rows = malloc((size_t)rows * (cols + 1) * sizeof(int32_t));
    int32_t *along_cols = malloc((size_t)(rows + 1) * cols * sizeof(int32_t));
    int32_t *count = malloc((size_t)(rows > cols ? rows : cols) * sizeof(int32_t));
    if (!along_rows || !along_cols || !count) {
        free(along_rows);
        free(along_cols);
        free(count);
        PyBuffer_Release(&mask);
        return PyErr_NoMemory();
    }
    int top = 0, bottom = rows, left = 0, right = cols, found = 1;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *content = mask.buf;
    for (int r = 0; r < rows; r++) {
        int32_t *line = along_rows + (size_t)r * (cols + 1);
        line[0] = 0;
        for (int c = 0; c < cols; c++) line[c + 1] = line[c] + (content[(size_t)r * cols + c] != 0);
    }
    for (int c = 0; c < cols; c++) along_cols[c] = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            along_cols[(size_t)(r + 1) * cols + c] =
                along_cols[(size_t)r * cols + c] + (content[(size_t)r * cols + c] != 0);
    for (int turn = 0; turn < 3; turn++) {
        int row_start, row_end, col_start, col_end;
        for (int r = 0; r < rows; r++)
            count[r] = along_rows[(size_t)r * (cols + 1) + right] -
                       along_rows[(size_t)r * (cols + 1) + left];
        if (!best_run(count, rows, right - left, &row_start, &row_end)) {
            found = 0;
            break;
        }
        for (int c = 0; c < cols; c++)
            count[c] = along_cols[(size_t)row_end * cols + c] - along_cols[(size_t)row_start * cols + c];
        if (!best_run(count, cols, row_end - row_start, &col_start, &col_end)) {
            found = 0;
            break;
        }
        const int settled = row_start == top && row_end == bottom && col_start == left &&
                            col_end == right;
        top = row_start, bottom = row_end, left = col_start, right = col_end;
        if (settled) break;
    }
    Py_END_ALLOW_THREADS
    free(along_rows);
    free(along_cols);
    free(count);
    PyBuffer_Release(&mask);
    if (!found) Py_RETURN_NONE;
    return Py_BuildValue("(iiii)", top, bottom, left, right);
}

static PyMethodDef methods[] = {
    {"hash_pixels", pdq_hash_pixels, METH_VARARGS, hash_pixels_doc},
    {"hash_buffer64", pdq_hash_buffer64, METH_VARARGS, hash_buffer64_doc},
    {"hash_banded", pdq_hash_banded, METH_VARARGS, hash_banded_doc},
    {"resample_banded", pdq_resample_banded, METH_VARARGS, resample_banded_doc},
    {"dense_rectangle", pdq_dense_rectangle, METH_VARARGS, dense_rectangle_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pdq",
    "PDQ hashing in C, bit for bit equal to pdqhash (and the robust sets' region search).", -1,
    methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pdq(void) {
    init_tables();
    return PyModule_Create(&module);
}
