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

/* (a) The paper's filter, F = S_a / a^2 - (S_{a+4} - S_a) / ((a+4)^2 - a^2), borders replicated (coordinates clamped),
   computed exactly as MaLiang.Engine.Denoise.MaliangFilter does, so the results are bit-identical:
   ml_box_cols (one thread per frame column; to be measured on a GPU against a tiled version): vertical running sums
   Va (a rows) and Vb (a+4 rows), restarted every 32 rows, D = Va*ca - Vb*cb, stored with Vb;
   ml_box_rows (one thread per pixel): F = sum of a taps of D - cb * (the 4 outer taps of Vb). The CPU groups these sums
   differently in its SIMD body (x < vc * floor(w / vc), vc = Vector<float>.Count, unrolled when a = 3) and its scalar
   tail, so the host passes vc and the kernel follows the same grouping per pixel. */
KERNEL void ml_box_cols(GLOBAL const float* in, GLOBAL float* dOut, GLOBAL float* vbOut, int w, int h, int nf, int a,
                        float ca, float cb)
{
    int gid = THREAD_ID;
    if (gid >= w * nf) return;
    int f = gid / w, x = gid - f * w;
    long base = (long)f * w * h + x;
    int ra = a / 2, rb = ra + 2;
    float va = 0.0f, vb = 0.0f;
    for (int y = 0; y < h; y++)
    {
        if (y % 32 == 0)
        {
            va = 0.0f; vb = 0.0f;
            for (int k = -ra; k <= ra; k++) va += in[base + (long)ml_clampi(y + k, 0, h - 1) * w];
            for (int k = -rb; k <= rb; k++) vb += in[base + (long)ml_clampi(y + k, 0, h - 1) * w];
        }
        else
        {
            int yAdd = y + ra < h - 1 ? y + ra : h - 1, ySub = y - ra - 1 > 0 ? y - ra - 1 : 0;
            va += in[base + (long)yAdd * w] - in[base + (long)ySub * w];
            yAdd = y + rb < h - 1 ? y + rb : h - 1; ySub = y - rb - 1 > 0 ? y - rb - 1 : 0;
            vb += in[base + (long)yAdd * w] - in[base + (long)ySub * w];
        }
        dOut[base + (long)y * w] = va * ca - vb * cb;
        vbOut[base + (long)y * w] = vb;
    }
}

KERNEL void ml_box_rows(GLOBAL const float* dIn, GLOBAL const float* vbIn, GLOBAL float* out, int w, int h, int nf, int a,
                        float cb, int vc)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int p = gid % fp, y = p / w, x = p - y * w;
    GLOBAL const float* d = dIn + (long)(gid - p) + (long)y * w;
    GLOBAL const float* v = vbIn + (long)(gid - p) + (long)y * w;
    int ra = a / 2, rb = ra + 2, wm = w - 1;
    float t = v[ml_clampi(x - rb, 0, wm)] + v[ml_clampi(x - rb + 1, 0, wm)];
    float s;
    if (x < (w / vc) * vc)
    {
        if (a == 3)
        {
            s = d[ml_clampi(x - 1, 0, wm)] + d[ml_clampi(x, 0, wm)] + d[ml_clampi(x + 1, 0, wm)];
            t = t + (v[ml_clampi(x + 2, 0, wm)] + v[ml_clampi(x + 3, 0, wm)]);
        }
        else
        {
            s = d[ml_clampi(x - ra, 0, wm)];
            for (int k = 1; k < a; k++) s += d[ml_clampi(x - ra + k, 0, wm)];
            t = t + v[ml_clampi(x + ra + 1, 0, wm)] + v[ml_clampi(x + ra + 2, 0, wm)];
        }
        out[gid] = s - t * cb;
    }
    else
    {
        s = 0.0f;
        for (int k = 0; k < a; k++) s += d[ml_clampi(x - ra + k, 0, wm)];
        t = t + v[ml_clampi(x + ra + 1, 0, wm)] + v[ml_clampi(x + ra + 2, 0, wm)];
        out[gid] = s - cb * t;
    }
}

/* "No filter": out = (in - med[f]) * scale, the median of the frame's noise subsample taken on the host. */
KERNEL void ml_sub_median(GLOBAL const float* in, GLOBAL const float* med, float scale, GLOBAL float* out, int fp, int nf)
{
    int gid = THREAD_ID;
    if (gid >= fp * nf) return;
    out[gid] = (in[gid] - med[gid / fp]) * scale;
}

/* (b) Wavelet, separable B-spline [1/16 1/4 3/8 1/4 1/16] with taps step apart (1: V1, 2: V2 "with holes"), mirrored
   borders (reflect-101), grouped as MaLiang.Engine.Denoise.WaveletFilter: c*3/8 + (l1+r1)/4 + (l2+r2)/16. */
KERNEL void ml_conv_rows(GLOBAL const float* in, GLOBAL float* out, int w, int h, int nf, int step)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* row = in + (long)f * fp + y * w;
    float s = row[x] * 0.375f + (row[ml_mirror(x - step, w)] + row[ml_mirror(x + step, w)]) * 0.25f
            + (row[ml_mirror(x - 2 * step, w)] + row[ml_mirror(x + 2 * step, w)]) * 0.0625f;
    out[gid] = s;
}

KERNEL void ml_conv_cols(GLOBAL const float* in, GLOBAL float* out, int w, int h, int nf, int step)
{
    int gid = THREAD_ID;
    int fp = w * h;
    if (gid >= fp * nf) return;
    int f = gid / fp, p = gid - f * fp, y = p / w, x = p - y * w;
    GLOBAL const float* col = in + (long)f * fp + x;
    float s = col[y * w] * 0.375f + (col[ml_mirror(y - step, h) * w] + col[ml_mirror(y + step, h) * w]) * 0.25f
            + (col[ml_mirror(y - 2 * step, h) * w] + col[ml_mirror(y + 2 * step, h) * w]) * 0.0625f;
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

/* (d) Strict local maxima in the 8-neighbourhood above thr[f] (as MaLiang.Engine.Detect.Detector). Ties: a pixel must be
   > the neighbours before it in raster order and >= those after it, so a plateau yields one maximum (its first pixel in
   raster order). Neighbours outside the frame do not count. Every maximum, also those whose ROI leaves the frame (they
   still count as brighter neighbours), is appended (unordered) to cand[f * cap ...] by atomics; count[f] may exceed
   cap (the host then retries with a larger cap). */
KERNEL void ml_find_maxima(GLOBAL const float* filt, GLOBAL const float* thr, int w, int h, int nf, int cap,
                           GLOBAL int* count, GLOBAL int* cand)
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
    int i = ATOMIC_INC(&count[f]);
    if (i < cap) cand[f * cap + i] = p;
}

/* Candidates stored for frame f: count[f], at most cap (ml_find_maxima's caller retries with a larger cap when more). */
DEVFN int ml_stored(GLOBAL const int* count, int f, int cap) { int n = count[f]; return n < cap ? n : cap; }

/* Puts each frame's candidates in raster order: the rank of a pixel index is the number of smaller ones (indices are unique). */
KERNEL void ml_sort_candidates(GLOBAL const int* cand, GLOBAL const int* count, int cap, int nf, GLOBAL int* sorted)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap, n = ml_stored(count, f, cap);
    if (i >= n) return;
    GLOBAL const int* c = cand + f * cap;
    int me = c[i], rank = 0;
    for (int j = 0; j < n; j++) rank += c[j] < me ? 1 : 0;
    sorted[f * cap + rank] = me;
}

/* Edge and overlap classification (as Detector.Classify). With dropEdge, a maximum whose (2r+1)^2 ROI leaves the frame
   is dropped and counted in edge[f] (otherwise ml_emit shifts its ROI inside the frame). Any other maximum within Euclidean distance <= r of a brighter maximum (larger filtered value, or
   equal value and earlier in raster order; every maximum counts, edge ones too) is overlapping: counted in overl[f],
   and dropped when reject != 0. keep[] gets 1 for the ROIs to cut. sorted is in raster order, so only rows y-r..y+r
   are scanned. */
KERNEL void ml_classify(GLOBAL const float* filt, GLOBAL const int* sorted, GLOBAL const int* count, int cap, int nf,
                        int w, int h, int r, int reject, int dropEdge, GLOBAL int* keep, GLOBAL int* edge, GLOBAL int* overl)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap, n = ml_stored(count, f, cap);
    if (i >= n) return;
    GLOBAL const int* s = sorted + f * cap;
    GLOBAL const float* img = filt + (long)f * w * h;
    int p = s[i], y = p / w, x = p - y * w;
    if (dropEdge && (x - r < 0 || x + r >= w || y - r < 0 || y + r >= h)) { keep[gid] = 0; ATOMIC_INC(&edge[f]); return; }
    float v = img[p];
    int o = 0;
    for (int j = i - 1; j >= 0 && !o; j--)
    {
        int q = s[j], qy = q / w, qx = q - qy * w;
        if (y - qy > r) break;
        if ((qx - x) * (qx - x) + (qy - y) * (qy - y) <= r * r && img[q] >= v) o = 1;   /* earlier: equal wins too */
    }
    for (int j = i + 1; j < n && !o; j++)
    {
        int q = s[j], qy = q / w, qx = q - qy * w;
        if (qy - y > r) break;
        if ((qx - x) * (qx - x) + (qy - y) * (qy - y) <= r * r && img[q] > v) o = 1;
    }
    if (o) ATOMIC_INC(&overl[f]);
    keep[gid] = (o && reject) ? 0 : 1;
}

/* One thread per frame: pre[f*cap+i] = kept candidates before i in frame f; kept[f] = their number. */
KERNEL void ml_prefix_kept(GLOBAL const int* keep, GLOBAL const int* count, int cap, int nf, GLOBAL int* pre, GLOBAL int* kept)
{
    int f = THREAD_ID;
    if (f >= nf) return;
    int n = ml_stored(count, f, cap);
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

/* Writes kept candidates in (frame, raster) order: ROI m has top-left (left[m], top[m]) in frame roiFrame[m] (stack-local),
   centred on the maximum and shifted just enough to lie inside the frame (as RoiBatch.Place); peak[m] = the maximum's
   pixel in the ROI (row * n + col, n = 2r + 1). */
KERNEL void ml_emit(GLOBAL const int* sorted, GLOBAL const int* keep, GLOBAL const int* pre, GLOBAL const int* count,
                    GLOBAL const int* offset, int cap, int nf, int w, int h, int r,
                    GLOBAL int* roiFrame, GLOBAL int* left, GLOBAL int* top, GLOBAL int* peak)
{
    int gid = THREAD_ID;
    if (gid >= cap * nf) return;
    int f = gid / cap, i = gid - f * cap, n = ml_stored(count, f, cap);
    if (i >= n || !keep[gid]) return;
    int m = offset[f] + pre[gid];
    int p = sorted[gid], y = p / w, x = p - y * w, nr = 2 * r + 1;
    int l = ml_clampi(x - r, 0, w - nr), t = ml_clampi(y - r, 0, h - nr);
    roiFrame[m] = f; left[m] = l; top[m] = t; peak[m] = (y - t) * nr + (x - l);
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

/* (i) The filtered value at each emitted ROI's detected maximum, for the host's camera-noise test of the candidates
   (MaLiang.Engine.Detect.CameraNoiseThreshold): one float per ROI comes back instead of the filtered frames. */
KERNEL void ml_peak_values(GLOBAL const float* filt, int w, int h, GLOBAL const int* roiFrame, GLOBAL const int* left,
                           GLOBAL const int* top, GLOBAL const int* peak, int n, int total, GLOBAL float* out)
{
    int i = THREAD_ID;
    if (i >= total) return;
    int p = peak[i];
    out[i] = filt[(long)roiFrame[i] * w * h + (long)(top[i] + p / n) * w + left[i] + p % n];
}
