/* The compiled core of soxs_mdark: per-pixel clipping and combining of a dark
 * stack (sort.c holds the sort and selection of the frame and master
 * statistics).  It is plain C with POSIX threads, built with sort.c as the
 * extension soxs_lib.core._kernel and called through ctypes (kernel.py holds
 * the contract, the algorithm's description and the Python side of every
 * call), so a process that uses it loads it in a millisecond and no JIT runs
 * at any time.
 *
 * Floating point: every operation is IEEE, in the order written (the build
 * turns off contraction into fused multiply-adds); each median is the one a
 * sort gives.  min and max keep their first argument on ties, as Python's.
 */

#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN(a, b) ((b) < (a) ? (b) : (a))
#define MAX(a, b) ((b) > (a) ? (b) : (a))
#define BLOCK 512            /* pixels per work item */

/* The hot loops are built for each x86-64 vector unit and the host's is
 * chosen as the library loads (GCC's function clones, on ELF); elsewhere,
 * for the target the compiler builds for. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

/* The set: per-frame conversion to electrons and levels, the clipping
 * parameters and the noise model (kernel.py's _Set mirrors it). */
typedef struct {
    const double *scale, *offset, *satv, *level, *fsigma;  /* nframes each */
    int64_t nframes, iterations;
    double kframe, kstack, s_t2, lbar;
    uint8_t saturated, badinput, nodata, lowcover;         /* QUAL flags */
} soxs_set;

/* How a frame's values are stored (kernel.py's _STORED maps numpy's types
 * to these): native float32, or FITS's big-endian types. */
enum { F4, F4BE, F8BE, U1, I2BE, I4BE, I8BE };
static const int64_t ITEMSIZE[] = {4, 4, 8, 1, 2, 4, 8};

/* A block of rows of the region of all frames, in their stored type, and
 * where the master goes (kernel.py's _Block mirrors it); each output array
 * holds nrows x ncol values, contiguous. */
typedef struct {
    const char *const *rows;     /* per frame: the block's first value */
    const int64_t *stride;       /* per frame: bytes from a row to the next */
    const int32_t *type;         /* per frame: how its values are stored */
    const float *offset, *var;   /* master-bias offset and variance, e- */
    float *flux, *err;
    uint16_t *used, *rejected;
    uint8_t *qual;
    int64_t nrows, ncol;
} soxs_block;

static inline double sigma_at(double med, const soxs_set *s)
{
    return sqrt(s->s_t2 + MAX(med - s->lbar, 0.0));
}

/* Neither NaN nor infinite: those give NaN, a test without a branch. */
static inline int finite_value(float raw)
{
    return (raw - raw) == 0.0f;
}

static inline int usable(float raw, int64_t f, const soxs_set *s)
{
    return finite_value(raw) & ((double)raw < s->satv[f]);
}

/* The least and greatest of v[:m] (min and max keep the first of equals). */
static inline void extremes(const double *v, int64_t m, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    for (int64_t j = 0; j < m; j++) {
        a = MIN(a, v[j]);
        b = MAX(b, v[j]);
    }
    *lo = a;
    *hi = b;
}

static inline double electrons(float raw, int64_t f, const soxs_set *s, float off)
{
    return (double)raw * s->scale[f] + s->offset[f] - (double)off;
}

static inline int rogue(double x, int64_t f, const soxs_set *s)
{
    return fabs(x - s->level[f]) > s->kframe * s->fsigma[f];
}

/* w values stored as `type` at src into dst, as numpy converts them to
 * float32 (a byte swap, then C's conversion); on vector lanes, as scan. */
VECTOR_CLONES
static void decode(const char *src, int32_t type, int64_t w, float *restrict dst)
{
#define SWAPPED(T, U, SWAP)                                                     \
    for (int64_t i = 0; i < w; i++) {                                           \
        U u;                                                                    \
        T v;                                                                    \
        memcpy(&u, src + i * (int64_t)sizeof u, sizeof u);                      \
        u = SWAP(u);                                                            \
        memcpy(&v, &u, sizeof v);                                               \
        dst[i] = (float)v;                                                      \
    }
    switch (type) {
    case F4:
        memcpy(dst, src, (size_t)w * sizeof(float));
        break;
    case F4BE:
        SWAPPED(float, uint32_t, __builtin_bswap32)
        break;
    case F8BE:
        SWAPPED(double, uint64_t, __builtin_bswap64)
        break;
    case U1:
        for (int64_t i = 0; i < w; i++)
            dst[i] = (float)(uint8_t)src[i];
        break;
    case I2BE:
        SWAPPED(int16_t, uint16_t, __builtin_bswap16)
        break;
    case I4BE:
        SWAPPED(int32_t, uint32_t, __builtin_bswap32)
        break;
    default:
        SWAPPED(int64_t, uint64_t, __builtin_bswap64)
    }
#undef SWAPPED
}

/* The valid samples of the work item's pixel i (tile: each frame's w
 * values of the item, BLOCK apart) in electrons into vals (their frames
 * into fidx), in frame order: their number. */
static int64_t gather(const float *tile, int64_t i, float off, const soxs_set *s,
                      double *vals, int64_t *fidx)
{
    int64_t n = 0;
    for (int64_t f = 0; f < s->nframes; f++) {
        float raw = tile[f * BLOCK + i];
        if (usable(raw, f, s)) {
            vals[n] = electrons(raw, f, s, off);
            fidx[n] = f;
            n++;
        }
    }
    return n;
}

/* Bisect [least, greatest] of v[:m] by counts, keeping its ranks k and u
 * between *a and *b (*below values under *a), until at most 8 values lie
 * there: 0; or 1, with *a = *b = a value that splits ranks k < u. */
static int bracket(const double *v, int64_t m, int64_t k, int64_t u, double *pa, double *pb,
                   int64_t *pbelow)
{
    double a, b;
    extremes(v, m, &a, &b);
    int64_t below = 0, above = 0;
    int split = 0;
    while (m - below - above > 8) {
        double mid = 0.5 * (a + b);
        int64_t lt = 0, gt = 0;
        for (int64_t j = 0; j < m; j++) {
            lt += v[j] < mid;
            gt += v[j] > mid;
        }
        if (mid <= a || mid >= b)
            break;                      /* no value between a and b to split on */
        if (lt <= k) {
            a = mid;
            below = lt;
        } else if (gt <= m - 1 - u) {
            b = mid;
            above = gt;
        } else {
            a = b = mid;
            below = lt;
            split = 1;
            break;
        }
    }
    *pa = a;
    *pb = b;
    *pbelow = below;
    return split;
}

/* The values of ranks k and u among band[:nb] and the below smaller values
 * elsewhere: a value's rank is the number of smaller values and of equal
 * ones before it. */
static void ranked(const double *band, int64_t nb, int64_t below, int64_t k, int64_t u,
                   double *lo, double *hi)
{
    for (int64_t i = 0; i < nb; i++) {
        double x = band[i];
        int64_t r = below;
        for (int64_t j = 0; j < nb; j++)
            r += band[j] < x;
        for (int64_t j = 0; j < i; j++)
            r += band[j] == x;
        *lo = r == k ? x : *lo;
        *hi = r == u ? x : *hi;
    }
}

/* The median of v[:m] as a sort gives it, v unchanged (band: scratch). */
double soxs_median(const double *v, int64_t m, double *band)
{
    int64_t k = (m - 1) / 2, u = m / 2, below;
    double a, b, lo = 0.0, hi = 0.0;
    if (bracket(v, m, k, u, &a, &b, &below)) {
        lo = -INFINITY;
        hi = INFINITY;
        for (int64_t j = 0; j < m; j++) {
            lo = MAX(lo, v[j] < a ? v[j] : -INFINITY);
            hi = MIN(hi, v[j] > a ? v[j] : INFINITY);
        }
    } else {
        int64_t nb = 0;
        for (int64_t j = 0; j < m; j++) {
            band[nb] = v[j];
            nb += (v[j] >= a) & (v[j] <= b);
        }
        ranked(band, nb, below, k, u, &lo, &hi);
    }
    return m % 2 == 1 ? lo : 0.5 * (lo + hi);
}

/* The limit of stacked clipping at the least sample lo, the least any
 * median of the samples gives, shaved below rounding. */
static inline double least_limit(double lo, const soxs_set *s)
{
    return s->kstack * sigma_at(lo, s) * (1.0 - 1e-9);
}

/* keeps_all's verdict on n samples, far_lo of them farther than lim below
 * the greatest and far_hi above the least: each is within lim of both ends
 * when at most (n - 1) / 2 are not. */
static inline int few_far(double lim, int64_t far_lo, int64_t far_hi, int64_t n)
{
    int64_t k = (n - 1) / 2;
    return lim >= 0.0 && far_lo <= k && far_hi <= k;
}

/* Whether stacked clipping keeps all n samples, without a median: few_far
 * at least_limit. */
static int keeps_all(const double *vals, int64_t n, const soxs_set *s)
{
    double lo, hi;
    extremes(vals, n, &lo, &hi);
    double lim = least_limit(lo, s);
    int64_t far_lo = 0, far_hi = 0;
    for (int64_t j = 0; j < n; j++) {
        far_lo += (hi - vals[j]) > lim;
        far_hi += (vals[j] - lo) > lim;
    }
    return few_far(lim, far_lo, far_hi, n);
}

/* Whether frame clipping keeps every rogue sample of the n, without the
 * median of the nclean others (clean): each rogue one is within the limit at
 * the least clean sample of both the least and the greatest.  The median
 * lies between those two, and the distance to it and the limit at it are
 * monotonic in it, rounding included: then none is rejected. */
static int keeps_rogues(const double *vals, const int64_t *fidx, int64_t n,
                        const double *clean, int64_t nclean, const soxs_set *s)
{
    double lo, hi;
    extremes(clean, nclean, &lo, &hi);
    double lim = s->kframe * sigma_at(lo, s);
    for (int64_t j = 0; j < n; j++)
        if (rogue(vals[j], fidx[j], s) && (fabs(vals[j] - lo) > lim || fabs(vals[j] - hi) > lim))
            return 0;
    return 1;
}

/* keeps_all for the n valid samples of the work item's pixel i when frame
 * clipping keeps them all (none is rogue), read from the tile as gather
 * reads them; lo and hi: their least and greatest, from the scan. */
static int tile_keeps_all(const float *tile, int64_t i, float off, const soxs_set *s,
                          double lo, double hi, int64_t n)
{
    double lim = least_limit(lo, s);
    int64_t far_lo = 0, far_hi = 0;
    for (int64_t f = 0; f < s->nframes; f++) {
        float raw = tile[f * BLOCK + i];
        double x = electrons(raw, f, s, off);
        int ok = usable(raw, f, s);
        far_lo += ok & ((hi - x) > lim);
        far_hi += ok & ((x - lo) > lim);
    }
    return few_far(lim, far_lo, far_hi, n);
}

/* Frame clipping of the n samples: the number kept, in kept in frame order
 * (all of them where it would keep none). */
static int64_t frame_clip(const double *vals, const int64_t *fidx, int64_t n,
                          const soxs_set *s, double *kept, double *band)
{
    int64_t nclean = 0;
    for (int64_t j = 0; j < n; j++) {
        kept[nclean] = vals[j];
        nclean += !rogue(vals[j], fidx[j], s);
    }
    if (nclean == n || (nclean > 0 && keeps_rogues(vals, fidx, n, kept, nclean, s))) {
        memcpy(kept, vals, (size_t)n * sizeof(double));
        return n;                       /* nothing to reject */
    }
    double med = nclean > 0 ? soxs_median(kept, nclean, band) : soxs_median(vals, n, band);
    double lim = s->kframe * sigma_at(med, s);
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++) {
        kept[m] = vals[j];
        m += !(rogue(vals[j], fidx[j], s) && fabs(vals[j] - med) > lim);
    }
    if (m == 0)
        memcpy(kept, vals, (size_t)n * sizeof(double));
    return m > 0 ? m : n;
}

/* Stacked clipping of the m samples kept: the number kept.  Kept samples
 * move down in place, in their order; where none would be kept, none moved. */
static int64_t stack_clip(double *kept, int64_t m, const soxs_set *s, double *band)
{
    if (keeps_all(kept, m, s))
        return m;
    for (int64_t it = 0; it < s->iterations; it++) {
        double med = soxs_median(kept, m, band);
        double lim = s->kstack * sigma_at(med, s);
        int64_t m2 = 0;
        for (int64_t j = 0; j < m; j++) {
            if (fabs(kept[j] - med) <= lim) {
                kept[m2] = kept[j];
                m2++;
            }
        }
        if (m2 == m || m2 == 0)
            break;
        m = m2;
    }
    return m;
}

/* Frame f's samples of a work item into each pixel's running (valid, rogue)
 * counts, (sum, least, greatest) and flags, in electrons, as gather collects
 * them pixel by pixel.  Branch-free, so it runs on SIMD lanes; built for
 * the widest vector unit the host has. */
VECTOR_CLONES
static void scan(const float *restrict row, int64_t w, int64_t f, const soxs_set *s,
                 const float *restrict off, int32_t *restrict nvalid,
                 int32_t *restrict nrogue, double *restrict total, double *restrict lo,
                 double *restrict hi, uint8_t *restrict qq)
{
    const double scale = s->scale[f], offset = s->offset[f], satv = s->satv[f];
    const double level = s->level[f], flim = s->kframe * s->fsigma[f];
    const uint8_t sat = s->saturated, bad = s->badinput;
    for (int64_t i = 0; i < w; i++) {
        float raw = row[i];
        int fin = finite_value(raw);
        int ok = fin & ((double)raw < satv);
        double x = (double)raw * scale + offset - (double)off[i];
        nvalid[i] += ok;
        nrogue[i] += ok & (fabs(x - level) > flim);
        total[i] += ok ? x : 0.0;
        double low = ok ? x : INFINITY, high = ok ? x : -INFINITY;
        lo[i] = low < lo[i] ? low : lo[i];
        hi[i] = high > hi[i] ? high : hi[i];
        qq[i] |= ok ? 0 : (fin ? sat : bad);
    }
}

/* Store the mean of the m surviving samples of n valid ones: the QUAL flag
 * it earns (LOWCOVER if too few survive). */
static uint8_t finish(const soxs_block *b, int64_t p, double mean, int64_t m, int64_t n,
                      const soxs_set *s)
{
    b->flux[p] = (float)mean;
    b->err[p] = (float)sqrt((s->s_t2 + MAX(mean - s->lbar, 0.0)) / (double)m
                            + (double)b->var[p]);
    b->used[p] = (uint16_t)m;
    b->rejected[p] = (uint16_t)(n - m);
    return 2 * m < s->nframes ? s->lowcover : 0;
}

typedef struct {
    const soxs_set *set;
    const soxs_block *blk;
    int64_t next;                /* the next work item, taken atomically */
    int failed;
} job;

/* One thread's share: work items taken in turn until none is left. */
static void *work(void *arg)
{
    job *jb = arg;
    const soxs_set *s = jb->set;
    const soxs_block *b = jb->blk;
    int64_t nfr = s->nframes;
    double spread = s->kstack * sqrt(s->s_t2);
    /* a pixel's samples and scratch; the work item's values of every frame,
     * counts, sums and flags */
    double *vals = malloc((size_t)(3 * nfr + 3 * BLOCK) * sizeof(double));
    int64_t *fidx = malloc((size_t)nfr * sizeof(int64_t));
    float *tile = malloc((size_t)(nfr * BLOCK) * sizeof(float));
    int32_t *ns = malloc(2 * BLOCK * sizeof(int32_t));
    uint8_t *qq = malloc(BLOCK);
    if (!vals || !fidx || !tile || !ns || !qq) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        free(vals), free(fidx), free(tile), free(ns), free(qq);
        return NULL;
    }
    double *kept = vals + nfr, *band = kept + nfr, *acc = band + nfr;
    int64_t per_row = (b->ncol + BLOCK - 1) / BLOCK, item;
    while ((item = __atomic_fetch_add(&jb->next, 1, __ATOMIC_RELAXED)) < per_row * b->nrows) {
        /* a work item: up to BLOCK pixels of one row */
        int64_t r = item / per_row, c = (item % per_row) * BLOCK;
        int64_t p0 = r * b->ncol + c, w = MIN(b->ncol - c, BLOCK);
        for (int64_t f = 0; f < nfr; f++) {
            decode(b->rows[f] + r * b->stride[f] + c * ITEMSIZE[b->type[f]], b->type[f], w,
                   tile + f * BLOCK);
        }
        for (int64_t i = 0; i < w; i++) {
            ns[i] = ns[BLOCK + i] = 0;
            acc[i] = 0.0;
            acc[BLOCK + i] = INFINITY;
            acc[2 * BLOCK + i] = -INFINITY;
            qq[i] = 0;
        }
        for (int64_t f = 0; f < nfr; f++)
            scan(tile + f * BLOCK, w, f, s, b->offset + p0, ns, ns + BLOCK, acc, acc + BLOCK,
                 acc + 2 * BLOCK, qq);
        for (int64_t i = 0; i < w; i++) {
            int64_t p = p0 + i, n = ns[i];
            if (n == 0) {
                b->flux[p] = b->err[p] = NAN;
                b->used[p] = b->rejected[p] = 0;
                b->qual[p] = qq[i] | s->nodata | s->lowcover;
                continue;
            }
            int64_t m = n;
            double total = acc[i], lo = acc[BLOCK + i], hi = acc[2 * BLOCK + i];
            if (ns[BLOCK + i] > 0
                || (hi - lo > spread && !tile_keeps_all(tile, i, b->offset[p], s, lo, hi, n))) {
                /* unless nothing can be clipped: no rogue sample, and all
                 * within kstack * s_t (the least limit of any pixel) of each
                 * other, or kept whole by keeps_all: most pixels */
                n = gather(tile, i, b->offset[p], s, vals, fidx);
                m = stack_clip(kept, frame_clip(vals, fidx, n, s, kept, band), s, band);
                total = 0.0;
                for (int64_t j = 0; j < m; j++)
                    total += kept[j];       /* in frame order, as the scan */
            }
            b->qual[p] = qq[i] | finish(b, p, total / (double)m, m, n, s);
        }
    }
    free(vals), free(fidx), free(tile), free(ns), free(qq);
    return NULL;
}

/* Clip and combine one block of pixels on `threads` threads (this one among
 * them): 0, or -1 where memory or a thread could not be had. */
int soxs_clip_and_combine(const soxs_set *set, const soxs_block *blk, int threads)
{
    job jb = {set, blk, 0, 0};
    int64_t items = (blk->ncol + BLOCK - 1) / BLOCK * blk->nrows;
    int extra = (int)MIN((int64_t)MAX(threads, 1), MAX(items, (int64_t)1)) - 1;
    pthread_t tids[extra > 0 ? extra : 1];
    int started = 0;
    while (started < extra && pthread_create(&tids[started], NULL, work, &jb) == 0)
        started++;
    work(&jb);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    return jb.failed ? -1 : 0;
}

/* The module itself holds nothing: kernel.py loads this file with ctypes. */
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernel",
    "soxs_mdark's compiled kernel and sort, called through ctypes (soxs_lib.core.kernel).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernel(void)
{
    return PyModule_Create(&module);
}
