/* MaLiang MLE fit kernel (common source for OpenCL and CUDA; see prelude_*.cl).
   A line-by-line port of src/Engine/Fit/Backends/CpuFitBackend.cs (FitGroup, Evaluate, Axis, Erf, Cholesky, Solve,
   InverseDiagonal): the same float operations in the same order, the same erf approximation (A&S 7.1.26), start values,
   step clamping, projections, stopping rule, iteration counting, CRLB and LLR. Change both together.
   FP contraction is off (OpenCL: #pragma in the prelude; NVRTC: --fmad=false) and divide/sqrt are correctly rounded,
   so every + - * / sqrt rounds as on the CPU; exp and log are ports of .NET's Vector.Exp / Vector.Log (ml_exp, ml_log),
   so on a device with fp64 the results equal the CPU backend's bit for bit (tested on PoCL).

   Layout: one thread per molecule. Each thread keeps its 5 parameters, the per-axis tables (6 x n floats) and the 5x5
   system in private memory; the pixels are read from a PIXEL-MAJOR copy (pix[p * count + m], made by ml_transpose on the
   device) so that the threads of a warp read consecutive addresses (coalesced) at every pixel of every iteration.
   Why not a work group (or warp) per molecule with a reduction over pixels: a 7x7 ROI is only 49 pixels, so most lanes
   would idle in the 20 reductions per iteration, and the iteration count differs per molecule anyway.
   The default 7x7 ROI has its own entry point (ml_fit_7x7) with the edge a compile-time constant, so the loops unroll
   and the per-axis tables need no run-time-indexed private arrays (which a GPU keeps in local memory); on PoCL that is
   +15% fits/s. Measured on no NVIDIA GPU yet: none was lent to the machines this was written on. */

#ifndef ML_MAX_ROI
#define ML_MAX_ROI 31
#endif

#define ML_INV_SQRT2 0.70710678118654752f
#define ML_INV_SQRT2PI 0.39894228040143268f
#define ML_FLT_MAX 3.402823466e+38f

/* NaN-propagating like .NET's Vector.Max / Vector.Min. */
DEVFN float ml_max(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
DEVFN float ml_min(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }
DEVFN float ml_abs(float a) { return a < 0.0f ? -a : (a == 0.0f ? 0.0f : a); }

/* exp(x) exactly as .NET's Vector.Exp(Vector<float>) computes it (System.Runtime.Intrinsics.VectorMath.ExpSingle, after
   AMD aocl-libm vrs4_expf: the argument widened to double, 2^r by a degree-5 polynomial, the exponent added to the bits),
   which the CPU backend uses: so both backends take the same steps and stop at the same iteration. Costs ~12 double
   operations per call (2(n+1) calls per iteration); where the device has no fp64 (ML_HAS_FP64 unset) the device's expf
   is used and results agree with the CPU to a few ulp only. Better, and to be done in the CPU backend: an exp written
   out in float arithmetic in C#, ported here, so that both no longer depend on the .NET runtime's implementation. */
DEVFN float ml_exp(float x)
{
#if defined(ML_HAS_FP64) && !defined(ML_NATIVE_EXP)
    double z = (double)x * 1.4426950408889634;
    double dn = z + 6755399441055744.0;
    ML_U64 nb = ML_F64_BITS(dn);
    dn -= 6755399441055744.0;
    double r = z - dn;
    double r2 = r * r;
    double r4 = r2 * r2;
    double poly = (0.05550297297702539 * r + 0.2402210737432219) * r2
                + ((0.001341000536524434 * r + 0.009676036358193323) * r4 + (0.6931472254087585 * r + 1.0000000754895704));
    float ret = (float)ML_BITS_F64(ML_F64_BITS(poly) + (nb << 52));
    if ((ML_F32_BITS(x) & 0x7FFFFFFFu) > 0x42AE0000u)
    {
        if (x > 88.72284f) ret = ML_BITS_F32(0x7F800000u);   /* +infinity */
        if (x < -103.97208f) ret = 0.0f;
    }
    return ret;
#else
    return F_EXP(x);
#endif
}

/* log(x) exactly as .NET's Vector.Log(Vector<float>) computes it (VectorMath.LogSingle, after aocl-libm vrs4_logf; float
   only): used for the log-likelihood and LLR, so that those match the CPU backend bit for bit too. */
DEVFN float ml_log(float x)
{
    unsigned int bits = ML_F32_BITS(x);
    if (bits - 0x00800000u >= 0x7F000000u)            /* zero, subnormal, negative, infinity or NaN */
    {
        if (x == 0.0f) return ML_BITS_F32(0xFF800000u); /* -infinity */
        if (x < 0.0f) return ML_BITS_F32(0x7FC00000u);  /* NaN */
        if (x != x || bits == 0x7F800000u) return x;
        x = ML_BITS_F32(ML_F32_BITS(x * 8388608.0f) - (23u << 23));   /* subnormal: scale up, take 23 off the exponent */
    }
    unsigned int vx = ML_F32_BITS(x) - 0x3F2AAAABu;
    float n = (float)((int)vx >> 23);
    vx = (vx & 0x007FFFFFu) + 0x3F2AAAABu;
    float r = ML_BITS_F32(vx) - 1.0f;
    float r2 = r * r;
    float r4 = r2 * r2;
    float r8 = r4 * r4;
    float q = (-0.13657966f * r2 + (0.14401625f * r + -0.1197452f)) * r8
            + (((0.13902695f * r + -0.16700386f) * r2 + (0.20018855f * r + -0.24999046f)) * r4
            + ((0.33332965f * r + -0.5000001f) * r2 + (1.0f * r + 0.0f)));
    return n * 0.6931472f + q;
}

/* erf(z) from exp(-z^2) already computed (Abramowitz & Stegun 7.1.26). */
DEVFN float ml_erf(float z, float expMinusZ2)
{
    float a = ml_abs(z);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = 1.061405429f;
    poly = poly * t + -1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t + -0.284496736f;
    poly = poly * t + 0.254829592f;
    float y = 1.0f - poly * t * expMinusZ2;
    return z < 0.0f ? -y : y;
}

/* Integrated PSF along one axis for all n pixels, and its derivatives by the centre and sigma. */
DEVFN void ml_axis(int n, float c, float s, float* e, float* dc, float* ds)
{
    float invS = 1.0f / s;
    float zScale = invS * ML_INV_SQRT2;
    float gScale = invS * ML_INV_SQRT2PI;
    float u = -c;
    float z = u * zScale;
    float ex = ml_exp(-(z * z));
    float erfPrev = ml_erf(z, ex);
    float gPrev = ex * gScale;
    float ugPrev = u * gPrev;
    for (int i = 0; i < n; i++)
    {
        u = (float)(i + 1) - c;
        z = u * zScale;
        ex = ml_exp(-(z * z));
        float erfNext = ml_erf(z, ex);
        float gNext = ex * gScale;
        float ugNext = u * gNext;
        e[i] = 0.5f * (erfNext - erfPrev);
        dc[i] = gPrev - gNext;
        ds[i] = (ugPrev - ugNext) * invS;
        erfPrev = erfNext; gPrev = gNext; ugPrev = ugNext;
    }
}

/* Fisher information into a[] (upper triangle, row-major 5x5) and gradient g[5]; with want, log-likelihood and LLR.
   sCMOS (scmos != 0): gam holds each pixel's read-noise variance in photons^2 (pixel-major like pix) and both the data and
   the model are shifted by it (Huang et al. 2013, DESIGN.md), as the CPU backend does. */
DEVFN void ml_evaluate(GLOBAL const float* pix, GLOBAL const float* gam, int scmos, int count, int m, int n, float x, float y,
                       float nPh, float b, float s, int want, int fixedSigma, float* a, float* g, float* logLOut, float* llrOut)
{
    float Ex[ML_MAX_ROI], Ey[ML_MAX_ROI], DxEx[ML_MAX_ROI], DyEy[ML_MAX_ROI], DsEx[ML_MAX_ROI], DsEy[ML_MAX_ROI];
    ml_axis(n, x, s, Ex, DxEx, DsEx);
    ml_axis(n, y, s, Ey, DyEy, DsEy);
    float Fxx = 0.0f, Fxy = 0.0f, FxN = 0.0f, Fxb = 0.0f, Fxs = 0.0f, Fyy = 0.0f, FyN = 0.0f, Fyb = 0.0f, Fys = 0.0f;
    float FNN = 0.0f, FNb = 0.0f, FNs = 0.0f, Fbb = 0.0f, Fbs = 0.0f, Fss = 0.0f;
    float Gx = 0.0f, Gy = 0.0f, GN = 0.0f, Gb = 0.0f, Gs = 0.0f;
    float logL = 0.0f, llr = 0.0f;
    for (int j = 0; j < n; j++)
    {
        float ey = Ey[j];
        float nEy = nPh * ey;
        float nDyEy = nPh * DyEy[j];
        float dsEy = DsEy[j];
        for (int i = 0; i < n; i++)
        {
            float ex = Ex[i];
            float e = ex * ey;
            float mu = b + nPh * e;
            if (scmos) mu += gam[(long)(j * n + i) * count + m];
            float dX = nEy * DxEx[i];
            float dY = nDyEy * ex;
            float dS = nPh * (DsEx[i] * ey + ex * dsEy);
            float d = pix[(long)(j * n + i) * count + m];
            if (scmos) d += gam[(long)(j * n + i) * count + m];
            float inv = 1.0f / mu;
            float r = d * inv - 1.0f;
            Gx += r * dX; Gy += r * dY; GN += r * e; Gb += r; Gs += r * dS;
            float wX = dX * inv, wY = dY * inv, wN = e * inv, wS = dS * inv;
            Fxx += wX * dX; Fxy += wX * dY; FxN += wX * e; Fxb += wX; Fxs += wX * dS;
            Fyy += wY * dY; FyN += wY * e; Fyb += wY; Fys += wY * dS;
            FNN += wN * e; FNb += wN; FNs += wN * dS;
            Fbb += inv; Fbs += wS;
            Fss += wS * dS;
            if (want)
            {
                float lnMu = ml_log(mu);
                logL += d * lnMu - mu;
                float dLn = d * (ml_log(ml_max(d, 1e-30f)) - lnMu);
                llr += mu - d + (d > 0.0f ? dLn : 0.0f);
            }
        }
    }
    *logLOut = logL;
    *llrOut = llr * 2.0f;
    a[0] = Fxx; a[1] = Fxy; a[2] = FxN; a[3] = Fxb; a[4] = Fxs;
    a[6] = Fyy; a[7] = FyN; a[8] = Fyb; a[9] = Fys;
    a[12] = FNN; a[13] = FNb; a[14] = FNs;
    a[18] = Fbb; a[19] = Fbs;
    a[24] = Fss;
    if (fixedSigma) { a[4] = a[9] = a[14] = a[19] = 0.0f; a[24] = 1.0f; }
    g[0] = Gx; g[1] = Gy; g[2] = GN; g[3] = Gb; g[4] = fixedSigma ? 0.0f : Gs;
}

/* In-place Cholesky (upper triangle in, L in the lower triangle); 1 when every pivot was positive. */
DEVFN int ml_cholesky(float* a)
{
    int ok = 1;
    const float tiny = 1e-30f;
    for (int p = 0; p < 5; p++)
    {
        float diag = a[p * 5 + p];
        for (int k = 0; k < p; k++) diag -= a[p * 5 + k] * a[p * 5 + k];
        ok = ok && (diag > tiny);
        float l = F_SQRT(ml_max(diag, tiny));
        a[p * 5 + p] = l;
        float invL = 1.0f / l;
        for (int q = p + 1; q < 5; q++)
        {
            float v = a[p * 5 + q];
            for (int k = 0; k < p; k++) v -= a[q * 5 + k] * a[p * 5 + k];
            a[q * 5 + p] = v * invL;
        }
    }
    return ok;
}

DEVFN void ml_solve(const float* l, float* g)
{
    for (int p = 0; p < 5; p++)
    {
        float v = g[p];
        for (int k = 0; k < p; k++) v -= l[p * 5 + k] * g[k];
        g[p] = v / l[p * 5 + p];
    }
    for (int p = 4; p >= 0; p--)
    {
        float v = g[p];
        for (int k = p + 1; k < 5; k++) v -= l[k * 5 + p] * g[k];
        g[p] = v / l[p * 5 + p];
    }
}

DEVFN void ml_inverse_diagonal(const float* l, float* diag)
{
    float inv[25];
    for (int c = 0; c < 5; c++)
    {
        for (int p = 0; p < 5; p++)
        {
            if (p < c) { inv[p * 5 + c] = 0.0f; continue; }
            float v = p == c ? 1.0f : 0.0f;
            for (int k = c; k < p; k++) v -= l[p * 5 + k] * inv[k * 5 + c];
            inv[p * 5 + c] = v / l[p * 5 + p];
        }
    }
    for (int c = 0; c < 5; c++)
    {
        float acc = 0.0f;
        for (int p = c; p < 5; p++) acc += inv[p * 5 + c] * inv[p * 5 + c];
        diag[c] = acc;
    }
}

DEVFN int ml_small(float delta, float value, float tol) { return ml_abs(delta) <= tol * ml_max(ml_abs(value), 1.0f); }

/* Molecule-major ROIs (in[m * np + p]) to pixel-major (out[p * count + m]). */
KERNEL void ml_transpose(GLOBAL const float* in, GLOBAL float* out, int np, int count)
{
    int gid = THREAD_ID;
    if (gid >= np * count) return;
    int p = gid / count, m = gid - p * count;
    out[gid] = in[(long)m * np + p];
}

/* Number of values ml_fit writes per molecule: x y N b s, 5 sqrt(CRLB), logL, LLR, iterations, status. */
#define ML_FIT_OUT 14

/* The fit of molecule m; pix is pixel-major (ml_transpose). Inlined into the kernels below, so that where n is a
   compile-time constant (ml_fit_7x7) the compiler unrolls the pixel loops and keeps the per-axis tables in registers
   instead of indexing private arrays at run time (local memory on a GPU). Same operations in the same order either way. */
DEVFN void ml_fit_one(GLOBAL const float* pix, int pk, int n, int count, int m, float psfSigma, int fixedSigma, int maxIterations,
                      int useTolerance, float tolerance, GLOBAL float* out, GLOBAL const float* gam, int scmos)
{
    /* Start values: border mean, photons above it, centroid of the excess. */
    float b = 0.0f;
    int borderCount = 4 * (n - 1);
    for (int i = 0; i < n; i++)
    {
        b += pix[(long)i * count + m] + pix[(long)((n - 1) * n + i) * count + m];
        if (i > 0 && i < n - 1) b += pix[(long)(i * n) * count + m] + pix[(long)(i * n + n - 1) * count + m];
    }
    b *= 1.0f / (float)borderCount;
    b = ml_max(b, 0.01f);
    float sum = 0.0f, sx = 0.0f, sy = 0.0f;
    for (int j = 0; j < n; j++)
    {
        float cy = (float)j + 0.5f;
        for (int i = 0; i < n; i++)
        {
            float ex = ml_max(pix[(long)(j * n + i) * count + m] - b, 0.0f);
            sum += ex; sx += ex * ((float)i + 0.5f); sy += ex * cy;
        }
    }
    float centre = (float)n * 0.5f;
    int hasExcess = sum > 0.0f;
    float safeSum = ml_max(sum, 1e-30f);
    float x = hasExcess ? sx / safeSum : centre;
    float y = hasExcess ? sy / safeSum : centre;
    float nPh = ml_max(sum, 1.0f);
    float s0 = psfSigma;
    float s = s0;
    float sMin = s0 * 0.5f, sMax = s0 * 3.0f, roiMax = (float)n;

    int failed = 0, converged = 0, iterations = 0;
    float a[25], g[5], logL, llr;
    for (int k = 0; k < 25; k++) a[k] = 0.0f;
    for (int it = 0; it < maxIterations; it++)
    {
        ml_evaluate(pix, gam, scmos, count, m, n, x, y, nPh, b, s, 0, fixedSigma, a, g, &logL, &llr);
        int ok = ml_cholesky(a);
        ml_solve(a, g);
        float dx = ml_min(ml_max(g[0], -1.0f), 1.0f);
        float dy = ml_min(ml_max(g[1], -1.0f), 1.0f);
        float dsMax = s * 0.25f;
        float ds = ml_min(ml_max(g[4], -dsMax), dsMax);
        float xN = ml_min(ml_max(x + dx, 0.0f), roiMax);
        float yN = ml_min(ml_max(y + dy, 0.0f), roiMax);
        float nN = nPh + g[2];
        nN = nN > 0.0f ? nN : nPh * 0.5f;
        float bN = b + g[3];
        bN = bN > 0.0f ? bN : b * 0.5f;
        float sN = ml_min(ml_max(s + ds, sMin), sMax);
        int finite = xN == xN && yN == yN && nN == nN && bN == bN && sN == sN
                     && ml_abs(nN) < ML_FLT_MAX && ml_abs(bN) < ML_FLT_MAX;
        if (!(ok && finite)) { failed = 1; break; }
        int small = ml_small(xN - x, xN, tolerance) && ml_small(yN - y, yN, tolerance) && ml_small(nN - nPh, nN, tolerance)
                    && ml_small(bN - b, bN, tolerance) && ml_small(sN - s, sN, tolerance);
        x = xN; y = yN; nPh = nN; b = bN; s = sN;
        iterations++;
        converged = small;
        if (useTolerance && small) break;
    }

    /* Final evaluation at the estimate: CRLB from F^-1, log-likelihood and LLR. */
    float crlb[5];
    ml_evaluate(pix, gam, scmos, count, m, n, x, y, nPh, b, s, 1, fixedSigma, a, g, &logL, &llr);
    int okF = ml_cholesky(a);
    ml_inverse_diagonal(a, crlb);
    if (!okF) failed = 1;

    GLOBAL float* o = out + (long)m * ML_FIT_OUT;
    float cx = F_SQRT(crlb[0]), cyy = F_SQRT(crlb[1]);
    o[0] = x; o[1] = y; o[2] = nPh; o[3] = b; o[4] = s;
    o[5] = cx; o[6] = cyy; o[7] = F_SQRT(crlb[2]); o[8] = F_SQRT(crlb[3]); o[9] = fixedSigma ? 0.0f : F_SQRT(crlb[4]);
    o[10] = logL; o[11] = llr;
    o[12] = (float)iterations;
    int finiteOut = IS_FINITE(cx) && IS_FINITE(cyy) && IS_FINITE(logL);
    /* Kept near the detected maximum (pixel pk = row * n + col of the ROI): [1, n - 1] shifted as the ROI was shifted
       inside the frame (as CpuFitBackend). */
    int shY = pk / n - n / 2, shX = pk - (pk / n) * n - n / 2;
    int status;
    if (failed || !finiteOut) status = 2;
    else if (x < (float)(1 + shX) || x > (float)(n - 1 + shX) || y < (float)(1 + shY) || y > (float)(n - 1 + shY)) status = 3;
    else status = converged ? 0 : 1;
    o[13] = (float)status;
}

/* One thread per molecule, any ROI edge up to ML_MAX_ROI. peak[m]: the detected maximum's pixel in ROI m (RoiBatch.Peak).
   gam: the read-noise planes, pixel-major, read only when scmos. */
KERNEL void ml_fit(GLOBAL const float* pix, GLOBAL const int* peak, int n, int count, float psfSigma, int fixedSigma, int maxIterations,
                   int useTolerance, float tolerance, GLOBAL float* out, GLOBAL const float* gam, int scmos)
{
    int m = THREAD_ID;
    if (m >= count || n > ML_MAX_ROI) return;
    ml_fit_one(pix, peak[m], n, count, m, psfSigma, fixedSigma, maxIterations, useTolerance, tolerance, out, gam, scmos);
}

/* The default 7x7 ROI (the paper's), with the edge a constant: see ml_fit_one. The host launches it when n == 7. */
KERNEL void ml_fit_7x7(GLOBAL const float* pix, GLOBAL const int* peak, int n, int count, float psfSigma, int fixedSigma, int maxIterations,
                       int useTolerance, float tolerance, GLOBAL float* out, GLOBAL const float* gam, int scmos)
{
    int m = THREAD_ID;
    if (m >= count || n != 7) return;
    ml_fit_one(pix, peak[m], 7, count, m, psfSigma, fixedSigma, maxIterations, useTolerance, tolerance, out, gam, scmos);
}
