/* MaLiang de-noise and detection kernels (common source for OpenCL and CUDA; see prelude_*.cl).
   Frames are a stack of nf frames, frame-major, row-major, w x h pixels each, in photons.
   Every kernel is 1-D and checks its index: the host rounds the launch up to the group size. */

DEVFN int ml_clampi(int i, int lo, int hi) { return i < lo ? lo : (i > hi ? hi : i); }

/* Mirrored border without repeating the edge pixel (... 2 1 | 0 1 2 ... n-2 n-1 | n-2 ...), periodic for any i. */
DEVFN int ml_mirror(int i, int n)
{
    if (n == 1) return 0;
    int period = 2 * n - 2;
    i = i % period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

/* (a) The paper's filter: mean over the a x a box minus the mean of the annulus between it and the (a+4) x (a+4) box.
   Borders replicate (coordinates clamped). Sums run in raster order over the big box. */
KERNEL void ml_filter_box(GLOBAL const float* in, GLOBAL float* out, int w, int h, int nf, int a)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* img = in + (long)f * fp;
    int ri = a / 2, ro = ri + 2;
    float inner = 0.0f, outer = 0.0f;
    for (int dy = -ro; dy <= ro; dy++)
    {
        int yy = ml_clampi(y + dy, 0, h - 1);
        for (int dx = -ro; dx <= ro; dx++)
        {
            int xx = ml_clampi(x + dx, 0, w - 1);
            float v = img[yy * w + xx];
            if (dx >= -ri && dx <= ri && dy >= -ri && dy <= ri) inner += v; else outer += v;
        }
    }
    int nIn = a * a, nOut = (a + 4) * (a + 4) - a * a;
    out[gid] = inner / (float)nIn - outer / (float)nOut;
}

/* (b) Wavelet, separable B-spline [1/16 1/4 3/8 1/4 1/16] with taps step apart (1: V1, 2: V2 "with holes"), mirrored borders. */
KERNEL void ml_conv_rows(GLOBAL const float* in, GLOBAL float* out, int w, int h, int nf, int step)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* row = in + (long)f * fp + y * w;
    float s = 0.0625f * row[ml_mirror(x - 2 * step, w)];
    s += 0.25f * row[ml_mirror(x - step, w)];
    s += 0.375f * row[x];
    s += 0.25f * row[ml_mirror(x + step, w)];
    s += 0.0625f * row[ml_mirror(x + 2 * step, w)];
    out[gid] = s;
}

KERNEL void ml_conv_cols(GLOBAL const float* in, GLOBAL float* out, int w, int h, int nf, int step)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* col = in + (long)f * fp + x;
    float s = 0.0625f * col[ml_mirror(y - 2 * step, h) * w];
    s += 0.25f * col[ml_mirror(y - step, h) * w];
    s += 0.375f * col[y * w];
    s += 0.25f * col[ml_mirror(y + step, h) * w];
    s += 0.0625f * col[ml_mirror(y + 2 * step, h) * w];
    out[gid] = s;
}

/* out = a - b, element-wise (F = V1 - V2). */
KERNEL void ml_subtract(GLOBAL const float* a, GLOBAL const float* b, GLOBAL float* out, int n)
{
    int gid = THREAD_ID;
    if (gid >= n) return;
    out[gid] = a[gid] - b[gid];
}

/* (c) Deterministic subsample for the robust noise: sample i of frame f is pixel i * stride (raster order). */
KERNEL void ml_gather(GLOBAL const float* in, GLOBAL float* out, int fp, int nf, int nsamples, int stride)
{
    int gid = THREAD_ID;
    if (gid >= nsamples * nf) return;
    int f = gid / nsamples, i = gid - f * nsamples;
    out[gid] = in[(long)f * fp + (long)i * stride];
}

/* (d) Strict local maxima in the 8-neighbourhood above thr[f]. Ties: a pixel must be > the neighbours before it in raster
   order and >= those after it, so a plateau yields exactly one (its first pixel in raster order).
   Neighbours outside the frame do not count. Candidates whose r-radius ROI leaves the frame are counted in border[f];
   the others are appended (unordered) to cand[f * cap ...] by atomics; count[f] may exceed cap (the host then retries). */
KERNEL void ml_find_maxima(GLOBAL const float* filt, GLOBAL const float* thr, int w, int h, int nf, int r, int cap,
                           GLOBAL int* count, GLOBAL int* cand, GLOBAL int* border)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* img = filt + (long)f * fp;
    float v = img[p];
    if (!(v > thr[f])) return;
    for (int dy = -1; dy <= 1; dy++)
    {
        int yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (int dx = -1; dx <= 1; dx++)
        {
            int xx = x + dx;
            if ((dx == 0 && dy == 0) || xx < 0 || xx >= w) continue;
            float nv = img[yy * w + xx];
            int earlier = dy < 0 || (dy == 0 && dx < 0);
            if (earlier ? !(v > nv) : !(v >= nv)) return;
        }
    }
    if (x - r < 0 || y - r < 0 || x + r >= w || y + r >= h) { ATOMIC_INC(&border[f]); return; }
    int i = ATOMIC_INC(&count[f]);
    if (i < cap) cand[f * cap + i] = p;
}

/* Puts each frame's candidates in raster order: the rank of a pixel index is the number of smaller ones (indices are unique). */
KERNEL void ml_sort_candidates(GLOBAL const int* cand, GLOBAL const int* count, int cap, int nf, GLOBAL int* sorted)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap;
    int n = count[f];
    if (n > cap) n = cap;
    if (i >= n) return;
    GLOBAL const int* c = cand + f * cap;
    int me = c[i], rank = 0;
    for (int j = 0; j < n; j++) rank += c[j] < me ? 1 : 0;
    sorted[f * cap + rank] = me;
}

/* Overlap rejection: drop a candidate within Euclidean distance <= r of a strictly brighter one (in the filtered image;
   every candidate counts as a neighbour, dropped or not). sorted is in raster order, so only rows y-r..y+r are scanned.
   keep[] gets 1 or 0; with reject == 0 every candidate is kept. */
KERNEL void ml_reject_overlap(GLOBAL const float* filt, GLOBAL const int* sorted, GLOBAL const int* count, int cap, int nf,
                              int w, int h, int r, int reject, GLOBAL int* keep)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap;
    int n = count[f];
    if (n > cap) n = cap;
    if (i >= n) return;
    GLOBAL const int* s = sorted + f * cap;
    GLOBAL const float* img = filt + (long)f * w * h;
    int p = s[i], y = p / w, x = p - y * w;
    float v = img[p];
    int k = 1;
    if (reject)
    {
        for (int j = i - 1; j >= 0 && k; j--)
        {
            int q = s[j], qy = q / w, qx = q - qy * w;
            if (y - qy > r) break;
            if ((qx - x) * (qx - x) + (qy - y) * (qy - y) <= r * r && img[q] > v) k = 0;
        }
        for (int j = i + 1; j < n && k; j++)
        {
            int q = s[j], qy = q / w, qx = q - qy * w;
            if (qy - y > r) break;
            if ((qx - x) * (qx - x) + (qy - y) * (qy - y) <= r * r && img[q] > v) k = 0;
        }
    }
    keep[gid] = k;
}

/* One thread per frame: pre[f*cap+i] = kept candidates before i in frame f; kept[f] = their number. */
KERNEL void ml_prefix_kept(GLOBAL const int* keep, GLOBAL const int* count, int cap, int nf, GLOBAL int* pre, GLOBAL int* kept)
{
    int f = THREAD_ID;
    if (f >= nf) return;
    int n = count[f];
    if (n > cap) n = cap;
    int run = 0;
    for (int i = 0; i < n; i++) { pre[f * cap + i] = run; run += keep[f * cap + i]; }
    kept[f] = run;
}

/* One thread: exclusive scan of kept[] into offset[0..nf], offset[nf] = total. */
KERNEL void ml_scan_frames(GLOBAL const int* kept, int nf, GLOBAL int* offset)
{
    if (THREAD_ID != 0) return;
    int run = 0;
    for (int f = 0; f < nf; f++) { offset[f] = run; run += kept[f]; }
    offset[nf] = run;
}

/* Writes kept candidates in (frame, raster) order: ROI m has top-left (left[m], top[m]) in frame roiFrame[m] (stack-local). */
KERNEL void ml_emit(GLOBAL const int* sorted, GLOBAL const int* keep, GLOBAL const int* pre, GLOBAL const int* count,
                    GLOBAL const int* offset, int cap, int nf, int w, int r,
                    GLOBAL int* roiFrame, GLOBAL int* left, GLOBAL int* top)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap;
    int n = count[f];
    if (n > cap) n = cap;
    if (i >= n || !keep[gid]) return;
    int m = offset[f] + pre[gid];
    int p = sorted[gid], y = p / w, x = p - y * w;
    roiFrame[m] = f; left[m] = x - r; top[m] = y - r;
}

/* Cuts ROIs (n x n) from the photon frames into a molecule-major buffer: out[m*n*n + row*n + col]. */
KERNEL void ml_cut_rois(GLOBAL const float* frames, int w, int h, GLOBAL const int* roiFrame, GLOBAL const int* left,
                        GLOBAL const int* top, int n, int count, GLOBAL float* out)
{
    int gid = THREAD_ID;
    int nn = n * n;
    if (gid >= count * nn) return;
    int m = gid / nn, q = gid - m * nn, row = q / n, col = q - row * n;
    out[gid] = frames[(long)roiFrame[m] * w * h + (long)(top[m] + row) * w + left[m] + col];
}
