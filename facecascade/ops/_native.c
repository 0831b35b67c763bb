/* Native CPU kernels of the MTCNN engine's glue (facecascade.ops.native loads them with ctypes).
 *
 * The convolutions stay with PyTorch (oneDNN); these are the memory-bound steps around them that
 * eager PyTorch runs as several passes over freshly allocated tensors:
 *
 *   fc_sat_*           summed-area table of an (H, W, C) uint8 image, zero first row/column;
 *   fc_resize_area_*   exact area resampling of a whole image from its table (a pyramid level),
 *                      written into a row-strided float32 destination (the P-Net canvas);
 *   fc_crop_resize_*   the same for many integer windows of many images at once (R-Net/O-Net crops);
 *   fc_prelu_maxpool   PReLU followed by ceil-mode k x k / s max pooling in one pass over a
 *                      channels-last float32 tensor; NaN inputs are skipped by the maximum.
 *
 * Each float result is computed with the same float32 operations, in the same order, as the
 * PyTorch code it replaces (facecascade/ops/resample.py, models/layers.py), so the two paths agree
 * to the last bit for the resampling kernels (tests/test_native.py). Build flags must not allow
 * contraction into FMA or fast-math (setup.py passes -ffp-contract=off).
 *
 * Plain C with no Python or PyTorch headers: the library is built by setup.py when a C compiler
 * is present; without it facecascade runs the PyTorch versions.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>


int fc_abi_version(void) { return 1; }

/* ---- summed-area tables ------------------------------------------------------------------- */

#define DEFINE_SAT(NAME, T)                                                                       \
    void NAME(const uint8_t *img, int64_t h, int64_t w, int64_t c, T *out) {            \
        int64_t row = (w + 1) * c;                                                                \
        memset(out, 0, (size_t)row * sizeof(T));                                                  \
        for (int64_t y = 0; y < h; ++y) {                                                         \
            const uint8_t *src = img + y * w * c;                                                 \
            const T *prev = out + y * row;                                                        \
            T *cur = out + (y + 1) * row;                                                         \
            for (int64_t k = 0; k < c; ++k) cur[k] = 0;                                           \
            for (int64_t i = 0; i < w * c; ++i) cur[i + c] = cur[i] + (T)src[i];                  \
            for (int64_t i = c; i < row; ++i) cur[i] += prev[i];                                  \
        }                                                                                         \
    }

DEFINE_SAT(fc_sat_i32, int32_t)
DEFINE_SAT(fc_sat_i64, int64_t)

/* ---- area resampling of a whole image ----------------------------------------------------- */

/* Adaptive-pooling bins: output cell i of n over length len covers [floor(i*len/n), ceil((i+1)*len/n)). */
static inline int64_t bin_lo(int64_t i, int64_t len, int64_t n) { return (i * len) / n; }
static inline int64_t bin_hi(int64_t i, int64_t len, int64_t n) { return ((i + 1) * len + n - 1) / n; }

/* out[i * s_row + j * s_col + k * s_chan] = ((float)sum * col_factor) * row_factor (+ shift) for
 * output rows i < oh, columns j < ow, channels k < c, where row_factor = (float)(1 / rows * scale)
 * and col_factor = (float)(1 / (cols * c) * c) in double, as resample._resize_plan computes them.
 * The strides let it write into a channels-last canvas (s_col = c, s_chan = 1) or a planar one
 * (s_col = 1, s_chan = plane size). Column bins are computed once per call, in scratch (3 * ow). */
#define DEFINE_RESIZE(NAME, T)                                                                    \
    void NAME(const T *table, int64_t hp, int64_t wp, int64_t c, float *out, int64_t oh,          \
              int64_t ow, int64_t s_row, int64_t s_col, int64_t s_chan, double scale,             \
              double shift, int64_t *scratch) {                                                   \
        int64_t h = hp - 1, w = wp - 1, row = wp * c;                                             \
        int64_t *lo = scratch, *hi = scratch + ow;                                                \
        float *cf = (float *)(scratch + 2 * ow);                                                  \
        float fshift = (float)shift;                                                              \
        for (int64_t j = 0; j < ow; ++j) {                                                        \
            lo[j] = bin_lo(j, w, ow) * c;                                                         \
            hi[j] = bin_hi(j, w, ow) * c;                                                         \
            cf[j] = (float)(1.0 / (double)(hi[j] - lo[j]) * (double)c);                           \
        }                                                                                         \
        for (int64_t i = 0; i < oh; ++i) {                                                        \
            int64_t r0 = bin_lo(i, h, oh), r1 = bin_hi(i, h, oh);                                 \
            float rf = (float)(1.0 / (double)(r1 - r0) * scale);                                  \
            const T *top = table + r0 * row, *bot = table + r1 * row;                             \
            for (int64_t k = 0; k < c; ++k) {                                                     \
                float *dst = out + i * s_row + k * s_chan;                                        \
                for (int64_t j = 0; j < ow; ++j) {                                                \
                    int64_t c0 = lo[j] + k, c1 = hi[j] + k;                                       \
                    T s = (bot[c1] - top[c1]) - (bot[c0] - top[c0]);                              \
                    float v = (float)s * cf[j];                                                   \
                    v = v * rf;                                                                   \
                    if (shift != 0.0) v = v + fshift;                                             \
                    dst[j * s_col] = v;                                                           \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

DEFINE_RESIZE(fc_resize_area_i32, int32_t)
DEFINE_RESIZE(fc_resize_area_i64, int64_t)

/* ---- area resampling of many windows ------------------------------------------------------ */

/* windows (n, 4) int64 x0, y0, x1, y1 (end exclusive) in image owner[b], whose table starts at
 * element base[owner] of flat and has row_len[owner] elements per row. out (n, size, size, c).
 * col_factor = 1 / (float)cols and row_factor = (1 / (float)rows) * (float)scale in float32, as
 * IntegralImages.crop_resize computes them. */
#define DEFINE_CROPS(NAME, T)                                                                     \
    void NAME(const T *flat, const int64_t *base, const int64_t *row_len,               \
                        const int64_t *owner, const int64_t *windows, int64_t n, int64_t size,    \
                        int64_t c, float *out, double scale, double shift) {                      \
        float fscale = (float)scale, fshift = (float)shift;                                       \
        for (int64_t b = 0; b < n; ++b) {                                                         \
            const int64_t *win = windows + 4 * b;                                                 \
            int64_t x0 = win[0], y0 = win[1], bw = win[2] - x0, bh = win[3] - y0;                 \
            const T *table = flat + base[owner[b]];                                               \
            int64_t row = row_len[owner[b]];                                                      \
            float *dst = out + b * size * size * c;                                               \
            for (int64_t i = 0; i < size; ++i) {                                                  \
                int64_t r0 = y0 + bin_lo(i, bh, size), r1 = y0 + bin_hi(i, bh, size);             \
                float rf = (1.0f / (float)(r1 - r0)) * fscale;                                    \
                const T *top = table + r0 * row, *bot = table + r1 * row;                         \
                for (int64_t j = 0; j < size; ++j) {                                              \
                    int64_t c0 = (x0 + bin_lo(j, bw, size)) * c;                                  \
                    int64_t c1 = (x0 + bin_hi(j, bw, size)) * c;                                  \
                    float cf = 1.0f / (float)((c1 - c0) / c);                                     \
                    for (int64_t k = 0; k < c; ++k) {                                             \
                        T s = bot[c1 + k] - top[c1 + k] - bot[c0 + k] + top[c0 + k];              \
                        float v = (float)s * cf;                                                  \
                        v = v * rf;                                                               \
                        if (shift != 0.0) v = v + fshift;                                         \
                        dst[(i * size + j) * c + k] = v;                                          \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

DEFINE_CROPS(fc_crop_resize_i32, int32_t)
DEFINE_CROPS(fc_crop_resize_i64, int64_t)

/* ---- PReLU + ceil-mode max pooling -------------------------------------------------------- */

/* The larger of m and v, leaving NaN out: v when m is NaN, m when v is NaN. */
static inline float max_skip_nan(float m, float v) { return (v > m || m != m) ? v : m; }

/* One output row: the maximum over input rows rows[0 .. nrows) of PReLU(x) into row (w * c,),
 * with the slopes tiled along the row (slope_row[x * c + ch] = slope[ch]). */
static void prelu_max_rows(const float *const *rows, int64_t nrows, int64_t len,
                           const float *restrict slope_row, float *restrict row) {
    const float *restrict first = rows[0];
    for (int64_t i = 0; i < len; ++i) {
        float v = first[i];
        row[i] = v > 0.0f ? v : slope_row[i] * v;
    }
    for (int64_t r = 1; r < nrows; ++r) {
        const float *restrict src = rows[r];
        for (int64_t i = 0; i < len; ++i) {
            float v = src[i];
            row[i] = max_skip_nan(row[i], v > 0.0f ? v : slope_row[i] * v);
        }
    }
}

/* dst (ow, c) = maximum over columns ox * s .. ox * s + k - 1 (clipped to w) of row (w, c). */
static void max_cols(const float *restrict row, int64_t w, int64_t c, int64_t k, int64_t s,
                     int64_t ow, float *restrict dst) {
    for (int64_t ox = 0; ox < ow; ++ox) {
        const float *restrict t = row + ox * s * c;
        float *restrict d = dst + ox * c;
        int64_t taps = w - ox * s < k ? w - ox * s : k;
        for (int64_t ch = 0; ch < c; ++ch) d[ch] = t[ch];
        for (int64_t j = 1; j < taps; ++j)
            for (int64_t ch = 0; ch < c; ++ch) d[ch] = max_skip_nan(d[ch], t[j * c + ch]);
    }
}

/* in (n, h, w, c) and out (n, oh, ow, c) float32 channels-last; oh = ceil((h - k) / s) + 1
 * (windows clipped at the far edge, as ceil-mode pooling without padding); slope (c,).
 * PReLU is x > 0 ? x : slope * x, as PyTorch's kernel. NaN inputs are left out of each maximum,
 * so callers can exclude positions by writing NaN there (an all-NaN window gives NaN).
 * scratch: 2 * w * c floats. Rows first (long contiguous loops), then columns. */
void fc_prelu_maxpool(const float *in, int64_t n, int64_t h, int64_t w, int64_t c,
                      const float *slope, int64_t k, int64_t s, float *out, float *scratch) {
    int64_t oh = (h - k + s - 1) / s + 1, ow = (w - k + s - 1) / s + 1, len = w * c;
    float *slope_row = scratch, *row = scratch + len;
    const float *rows[16];
    if (k > 16) return;
    for (int64_t i = 0; i < len; ++i) slope_row[i] = slope[i % c];
    for (int64_t b = 0; b < n; ++b) {
        for (int64_t oy = 0; oy < oh; ++oy) {
            int64_t y0 = oy * s, nrows = h - y0 < k ? h - y0 : k;
            for (int64_t r = 0; r < nrows; ++r) rows[r] = in + ((b * h + y0 + r) * w) * c;
            prelu_max_rows(rows, nrows, len, slope_row, row);
            max_cols(row, w, c, k, s, ow, out + ((b * oh + oy) * ow) * c);
        }
    }
}

/* ---- P-Net's first layer: 3x3 convolution 3 -> 10, PReLU, 2x2/2 ceil max pooling --------- */

#define STEM_CI 3
#define STEM_CO 10
#define STEM_V 16
typedef float vf __attribute__((vector_size(STEM_V * sizeof(float))));
typedef float vf_unaligned __attribute__((vector_size(STEM_V * sizeof(float)), aligned(4)));
typedef int32_t vi __attribute__((vector_size(STEM_V * sizeof(float))));

static inline vf load_v(const float *p) { return *(const vf_unaligned *)p; }

/* x > 0 ? x : slope * x per lane, as PyTorch's PReLU. */
static inline vf prelu_v(vf v, vf slope) {
    vi pos = v > 0.0f;
    return (vf)(((vi)v & pos) | ((vi)(v * slope) & ~pos));
}

/* The larger of a and b per lane (b where they are unordered). */
static inline vf max_v(vf a, vf b) {
    vi greater = a > b;
    return (vf)(((vi)a & greater) | ((vi)b & ~greater));
}

/* conv1 + PReLU of canvas row y (planar input: plane stride ps, row stride rs) for output
 * columns [0, wpad) into dst[co * wpad + x]; wpad is a multiple of STEM_V, and the input rows
 * must be readable up to column wpad + 1 (the caller pads them). */
__attribute__((optimize("fp-contract=fast")))
static void stem_row(const float *in, int64_t ps, int64_t rs, int64_t y, int64_t wpad,
                     const float *weight, const float *bias, const float *slope, float *dst) {
    for (int64_t x = 0; x < wpad; x += STEM_V) {
        vf acc[STEM_CO];
        for (int co = 0; co < STEM_CO; ++co) acc[co] = (vf){0} + bias[co];
        for (int ci = 0; ci < STEM_CI; ++ci) {
            for (int ky = 0; ky < 3; ++ky) {
                const float *row = in + ci * ps + (y + ky) * rs + x;
                vf a = load_v(row), b = load_v(row + 1), c = load_v(row + 2);
                for (int co = 0; co < STEM_CO; ++co) {
                    const float *w = weight + ((co * STEM_CI + ci) * 3 + ky) * 3;
                    acc[co] += a * w[0];
                    acc[co] += b * w[1];
                    acc[co] += c * w[2];
                }
            }
        }
        for (int co = 0; co < STEM_CO; ++co)
            *(vf_unaligned *)(dst + co * wpad + x) = prelu_v(acc[co], (vf){0} + slope[co]);
    }
}

/* P-Net's stem on a band of a planar canvas: in (3 planes, h rows, w columns; plane stride ps,
 * row stride rs >= w + STEM_V so that rows can be read past their end), conv1 (weight (10, 3, 3,
 * 3), bias, PReLU slope) then 2x2/2 ceil-mode max pooling into out (ph, pw, 10) channels-last,
 * ph = ceil((h - 2) / 2), pw = ceil((w - 2) / 2). Conv1 positions listed in row_skip (n_rows x
 * (row, x0, x1)) and col_skip (n_cols x (col, y0, y1)), in band coordinates, are left out of the
 * pooling (the rows and columns just past pyramid levels of odd size: always the second row or
 * column of a pooling window, so no window loses all its inputs); entries are clipped to the
 * band. scratch: 3 * 10 * wpad floats, wpad = w - 1 rounded up to 16. */
__attribute__((optimize("fp-contract=fast")))
void fc_pnet_stem(const float *in, int64_t h, int64_t w, int64_t ps, int64_t rs,
                  const float *weight, const float *bias, const float *slope,
                  const int64_t *row_skip, int64_t n_rows, const int64_t *col_skip, int64_t n_cols,
                  float *out, float *scratch) {
    int64_t wo = w - 2, ho = h - 2, ph = (ho + 1) / 2, pw = (wo + 1) / 2;
    int64_t wpad = (wo + STEM_V) / STEM_V * STEM_V, pwpad = wpad / 2;  /* >= 1 padding column */
    float *rows[2] = {scratch, scratch + STEM_CO * wpad}, *pooled = scratch + 2 * STEM_CO * wpad;
    for (int64_t py = 0; py < ph; ++py) {
        int64_t nr = 2 * py + 1 < ho ? 2 : 1;
        for (int64_t r = 0; r < nr; ++r) {
            int64_t y = 2 * py + r;
            stem_row(in, ps, rs, y, wpad, weight, bias, slope, rows[r]);
            for (int64_t i = 0; i < n_rows; ++i) {
                const int64_t *s = row_skip + 3 * i;
                int64_t x0 = s[1] > 0 ? s[1] : 0, x1 = s[2] < wo ? s[2] : wo;
                if (s[0] == y)
                    for (int co = 0; co < STEM_CO; ++co)
                        for (int64_t x = x0; x < x1; ++x) rows[r][co * wpad + x] = -INFINITY;
            }
            for (int64_t i = 0; i < n_cols; ++i) {
                const int64_t *s = col_skip + 3 * i;
                if (s[1] <= y && y < s[2] && 0 <= s[0] && s[0] < wo)
                    for (int co = 0; co < STEM_CO; ++co) rows[r][co * wpad + s[0]] = -INFINITY;
            }
        }
        float *restrict top = rows[0];
        const float *restrict bottom = rows[1];
        if (nr == 2)
            for (int64_t i = 0; i < STEM_CO * wpad; ++i) top[i] = bottom[i] > top[i] ? bottom[i] : top[i];
        for (int co = 0; co < STEM_CO; ++co) {  /* pairs of columns; column wo is padding */
            const float *restrict m = top + co * wpad;
            float *restrict p = pooled + co * pwpad;
            top[co * wpad + wo] = -INFINITY;
            for (int64_t px = 0; px < pw; ++px) p[px] = m[2 * px + 1] > m[2 * px] ? m[2 * px + 1] : m[2 * px];
        }
        float *restrict dst = out + py * pw * STEM_CO;
        for (int64_t px = 0; px < pw; ++px)
            for (int co = 0; co < STEM_CO; ++co) dst[px * STEM_CO + co] = pooled[co * pwpad + px];
    }
}

/* ---- R-Net's first layer: 3x3 convolution 3 -> c (c <= 32), PReLU, k x k / s ceil max pool --- */

#define WIN_CO 32  /* output channels padded to two vectors */

/* J adjacent conv1 outputs (row y, columns x .. x + J - 1) of one s x s x 3 window, PReLU'd, into
 * conv[(y * so + x + j) * WIN_CO ...]. weight: (27, WIN_CO), row (ky * 3 + kx) * 3 + ci. */
__attribute__((always_inline, optimize("fp-contract=fast")))
static inline void window_conv_block(const float *img, int64_t s, int64_t so, int64_t y, int64_t x,
                                     const int J, const float *weight, const float *bias,
                                     const float *slope, float *conv) {
    vf acc[4][2];
    for (int j = 0; j < J; ++j) {
        acc[j][0] = load_v(bias);
        acc[j][1] = load_v(bias + STEM_V);
    }
    for (int ky = 0; ky < 3; ++ky) {
        const float *row = img + ((y + ky) * s + x) * 3;
        for (int t = 0; t < 9; ++t) {  /* t = kx * 3 + ci: consecutive floats of the row */
            const float *w = weight + (ky * 9 + t) * WIN_CO;
            vf w0 = load_v(w), w1 = load_v(w + STEM_V);
            for (int j = 0; j < J; ++j) {
                float v = row[j * 3 + t];
                acc[j][0] += w0 * v;
                acc[j][1] += w1 * v;
            }
        }
    }
    vf s0 = load_v(slope), s1 = load_v(slope + STEM_V);
    for (int j = 0; j < J; ++j) {
        float *dst = conv + (y * so + x + j) * WIN_CO;
        *(vf_unaligned *)dst = prelu_v(acc[j][0], s0);
        *(vf_unaligned *)(dst + STEM_V) = prelu_v(acc[j][1], s1);
    }
}

/* in (n, s, s, 3) channels-last windows; weight (27, 32), bias (32,), slope (32,) zero-padded past
 * c; out (n, p, p, c) channels-last, p = ceil((s - 2 - k) / stride) + 1. scratch: (s-2)^2 * 32. */
__attribute__((optimize("fp-contract=fast")))
void fc_window_stem(const float *in, int64_t n, int64_t s, const float *weight, const float *bias,
                    const float *slope, int64_t c, int64_t k, int64_t stride, float *out,
                    float *scratch) {
    int64_t so = s - 2, p = (so - k + stride - 1) / stride + 1;
    for (int64_t b = 0; b < n; ++b) {
        const float *img = in + b * s * s * 3;
        for (int64_t y = 0; y < so; ++y) {
            int64_t x = 0;
            for (; x + 4 <= so; x += 4) window_conv_block(img, s, so, y, x, 4, weight, bias, slope, scratch);
            for (; x < so; ++x) window_conv_block(img, s, so, y, x, 1, weight, bias, slope, scratch);
        }
        for (int64_t oy = 0; oy < p; ++oy) {
            int64_t y0 = oy * stride, y1 = y0 + k < so ? y0 + k : so;
            for (int64_t ox = 0; ox < p; ++ox) {
                int64_t x0 = ox * stride, x1 = x0 + k < so ? x0 + k : so;
                vf m0 = load_v(scratch + (y0 * so + x0) * WIN_CO), m1 = load_v(scratch + (y0 * so + x0) * WIN_CO + STEM_V);
                for (int64_t y = y0; y < y1; ++y)
                    for (int64_t x = x0; x < x1; ++x) {
                        const float *v = scratch + (y * so + x) * WIN_CO;
                        m0 = max_v(load_v(v), m0);
                        m1 = max_v(load_v(v + STEM_V), m1);
                    }
                float tmp[WIN_CO];
                *(vf_unaligned *)tmp = m0;
                *(vf_unaligned *)(tmp + STEM_V) = m1;
                memcpy(out + ((b * p + oy) * p + ox) * c, tmp, (size_t)c * sizeof(float));
            }
        }
    }
}
