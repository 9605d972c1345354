/* The order statistics of the frame and master statistics, compiled beside
 * the stacking kernel (kernel.c; soxs_lib/core/kernel.py holds the
 * contract): a radix sort of float32 values, and the band of values a
 * median lies in, gathered in one pass. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN(a, b) ((b) < (a) ? (b) : (a))
#define MAX(a, b) ((b) > (a) ? (b) : (a))

/* A least-significant-digit radix sort of n float32 values into out: three
 * passes of 11 bits over keys that order as the values do (a negative
 * value's bits all flip, a positive one's sign bit).  Finite values end in
 * numpy.sort's order, -0.0 before 0.0: 0, or -1 without memory. */
#define RADIX_BITS 11
#define RADIX_BINS (1 << RADIX_BITS)

int soxs_sort_float32(const float *x, int64_t n, float *out)
{
    uint32_t *keys = malloc((size_t)MAX(n, (int64_t)1) * sizeof(uint32_t));
    uint32_t *other = (uint32_t *)out;      /* the same size: the second buffer */
    int64_t *counts = malloc(RADIX_BINS * sizeof(int64_t));
    if (!keys || !counts) {
        free(keys), free(counts);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        keys[i] = b >> 31 ? ~b : b | 0x80000000u;
    }
    uint32_t *from = keys, *to = other;
    for (int pass = 0; pass < 3; pass++) {
        int shift = pass * RADIX_BITS;
        memset(counts, 0, RADIX_BINS * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            counts[(from[i] >> shift) & (RADIX_BINS - 1)]++;
        int64_t total = 0;
        for (int d = 0; d < RADIX_BINS; d++) {
            int64_t c = counts[d];
            counts[d] = total;
            total += c;
        }
        for (int64_t i = 0; i < n; i++)
            to[counts[(from[i] >> shift) & (RADIX_BINS - 1)]++] = from[i];
        uint32_t *t = from;
        from = to;
        to = t;
    }
    /* three passes: the sorted keys are in `other`, that is out */
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = from[i], b = k >> 31 ? k & 0x7FFFFFFFu : ~k;
        memcpy(out + i, &b, sizeof b);
    }
    free(keys), free(counts);
    return 0;
}

/* The values of x[:n] within [lo, hi] into out (cap + 1 long), in their
 * order, while there are at most cap of them: how many there are; *below:
 * how many are less than lo.  One pass where numpy takes four, without a
 * branch: each value is stored, and kept by counting it. */
int64_t soxs_band_float32(const float *x, int64_t n, float lo, float hi, float *out,
                          int64_t cap, int64_t *below)
{
    int64_t less = 0, size = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        less += v < lo;
        out[MIN(size, cap)] = v;
        size += (v >= lo) & (v <= hi);
    }
    *below = less;
    return size;
}
