/* MaLiang 3D astigmatic PSF model: the MLE fit of (x, y, N, b, z) with widths sigma_x(z), sigma_y(z) from a z calibration
   (common source for OpenCL and CUDA, after fit.cl, whose ml_axis, ml_exp, ml_log, ml_cholesky, ml_solve,
   ml_inverse_diagonal and ml_small it uses). A line-by-line port of src/Engine/Fit/Models/AstigmaticGaussian.cs
   (FitGroup, Iterate, Evaluate with p = 5, Width, Lookup): the same float operations in the same order, so that on a
   device with fp64 the results equal the CPU backend's bit for bit (tested on PoCL). Change both together.
   One thread per molecule, pixels pixel-major (ml_transpose), as ml_fit.
   cal[]: S0x Ax Bx Cx InvDx S0y Ay By Cy InvDy ZMin ZMax (z in um, as the CPU backend's Prepared), then the z-start
   table of ML_ZLOOKUP ln(Mxx / Myy) values over [ZMin, ZMax]. */

#define ML_ZLOOKUP 241
#define ML_ZMARGIN 0.1f
#define ML_ZSTEP 0.1f
/* Per molecule: x y N b z sigma sigma_y, 5 sqrt(CRLB) (z's in nm), logL, LLR, iterations, status. */
#define ML_ASTIG_OUT 16

/* sigma(z) and d sigma / dz (z in um): s0 sqrt(q), q = 1 + u^2 + A u^3 + B u^4 (floored), u = (z - c) invD. */
DEVFN void ml_width(float z, float s0, float a, float b, float c, float invD, float* s, float* dsdz)
{
    float u = (z - c) * invD;
    float u2 = u * u;
    float q = ml_max(1.0f + u2 + u2 * u * a + u2 * u2 * b, 1e-6f);
    float root = F_SQRT(q);
    *s = s0 * root;
    float dq = 2.0f * u + (3.0f * a) * u2 + (4.0f * b) * u2 * u;
    *dsdz = (0.5f * s0 * invD) * dq / root;
}

/* Fisher information (upper triangle of 5x5 into f) and gradient g at the parameters; with want, L and LLR. */
DEVFN void ml_astig_evaluate(GLOBAL const float* pix, GLOBAL const float* gam, int scmos, int count, int m, int n, float x, float y,
                             float nPh, float b, float sx, float sy, float dsx, float dsy, int want, float* f, float* g,
                             float* logLOut, float* llrOut)
{
    float Ex[ML_MAX_ROI], Ey[ML_MAX_ROI], DxEx[ML_MAX_ROI], DyEy[ML_MAX_ROI], DsEx[ML_MAX_ROI], DsEy[ML_MAX_ROI];
    ml_axis(n, x, sx, Ex, DxEx, DsEx);
    ml_axis(n, y, sy, Ey, DyEy, DsEy);
    for (int k = 0; k < 25; k++) f[k] = 0.0f;
    for (int k = 0; k < 5; k++) g[k] = 0.0f;
    float logL = 0.0f, llr = 0.0f;
    float d[5];
    for (int j = 0; j < n; j++)
    {
        float ey = Ey[j];
        float nEy = nPh * ey;
        float nDyEy = nPh * DyEy[j];
        float nDsEy = nPh * DsEy[j];
        for (int i = 0; i < n; i++)
        {
            float ex = Ex[i];
            float e = ex * ey;
            float mu = b + nPh * e;
            if (scmos) mu += gam[(long)(j * n + i) * count + m];
            d[0] = nEy * DxEx[i];
            d[1] = nDyEy * ex;
            d[2] = e;
            d[3] = 1.0f;
            float dSx = nEy * DsEx[i];
            float dSy = nDsEy * ex;
            d[4] = dSx * dsx + dSy * dsy;
            float inv = 1.0f / mu;
            float dd = pix[(long)(j * n + i) * count + m];
            if (scmos) dd += gam[(long)(j * n + i) * count + m];
            float r = dd * inv - 1.0f;
            for (int a = 0; a < 5; a++)
            {
                g[a] += r * d[a];
                float wa = d[a] * inv;
                for (int c = a; c < 5; c++) f[a * 5 + c] += wa * d[c];
            }
            if (want)
            {
                float lnMu = ml_log(mu);
                logL += dd * lnMu - mu;
                float dLn = dd * (ml_log(ml_max(dd, 1e-30f)) - lnMu);
                llr += mu - dd + (dd > 0.0f ? dLn : 0.0f);
            }
        }
    }
    *logLOut = logL;
    *llrOut = llr * 2.0f;
}

/* The table z (um) nearest the ratio r. */
DEVFN float ml_zlookup(GLOBAL const float* cal, float r)
{
    float best = ML_FLT_MAX;
    int bk = ML_ZLOOKUP / 2;
    for (int k = 0; k < ML_ZLOOKUP; k++)
    {
        float dd = ml_abs(cal[12 + k] - r);
        if (dd < best) { best = dd; bk = k; }
    }
    return cal[10] + (cal[11] - cal[10]) * (float)bk / (float)(ML_ZLOOKUP - 1);
}

/* Fisher scoring from the start in p[] (x y N b z); leaves p, the widths at the end (w[]: sx sy dsx dsy) and the flags. */
DEVFN void ml_astig_iterate(GLOBAL const float* pix, GLOBAL const float* gam, int scmos, int count, int m, int n, GLOBAL const float* cal,
                            int maxIterations, int useTolerance, float tolerance, float* p, float* w, int* failedOut, int* convergedOut,
                            int* iterationsOut, float* f, float* g)
{
    float x = p[0], y = p[1], nPh = p[2], b = p[3], z = p[4];
    float sx = 0.0f, sy = 0.0f, dsx = 0.0f, dsy = 0.0f, logL, llr;
    float roiMax = (float)n, zLo = cal[10] - ML_ZMARGIN, zHi = cal[11] + ML_ZMARGIN;
    int failed = 0, converged = 0, iterations = 0;
    for (int it = 0; it < maxIterations; it++)
    {
        ml_width(z, cal[0], cal[1], cal[2], cal[3], cal[4], &sx, &dsx);
        ml_width(z, cal[5], cal[6], cal[7], cal[8], cal[9], &sy, &dsy);
        ml_astig_evaluate(pix, gam, scmos, count, m, n, x, y, nPh, b, sx, sy, dsx, dsy, 0, f, g, &logL, &llr);
        int ok = ml_cholesky(f);
        ml_solve(f, g);
        float xN = ml_min(ml_max(x + ml_min(ml_max(g[0], -1.0f), 1.0f), 0.0f), roiMax);
        float yN = ml_min(ml_max(y + ml_min(ml_max(g[1], -1.0f), 1.0f), 0.0f), roiMax);
        float nN = nPh + g[2];
        nN = nN > 0.0f ? nN : nPh * 0.5f;
        float bN = b + g[3];
        bN = bN > 0.0f ? bN : b * 0.5f;
        int small = ml_small(xN - x, xN, tolerance) && ml_small(yN - y, yN, tolerance) && ml_small(nN - nPh, nN, tolerance)
                    && ml_small(bN - b, bN, tolerance);
        int finite = xN == xN && yN == yN && nN == nN && bN == bN && ml_abs(nN) < ML_FLT_MAX && ml_abs(bN) < ML_FLT_MAX;
        float zN = ml_min(ml_max(z + ml_min(ml_max(g[4], -ML_ZSTEP), ML_ZSTEP), zLo), zHi);
        small = small && ml_small(zN - z, zN, tolerance);
        finite = finite && zN == zN;
        if (!(ok && finite)) { failed = 1; break; }
        x = xN; y = yN; nPh = nN; b = bN; z = zN;
        iterations++;
        converged = small;
        if (useTolerance && small) break;
    }
    ml_width(z, cal[0], cal[1], cal[2], cal[3], cal[4], &sx, &dsx);
    ml_width(z, cal[5], cal[6], cal[7], cal[8], cal[9], &sy, &dsy);
    p[0] = x; p[1] = y; p[2] = nPh; p[3] = b; p[4] = z;
    w[0] = sx; w[1] = sy; w[2] = dsx; w[3] = dsy;
    *failedOut = failed; *convergedOut = converged; *iterationsOut = iterations;
}

/* One thread per molecule: start values as the CPU backend (border mean, photons above it, centroid, second moments),
   two z starts (the look-up of ln(Mxx / Myy) and of its negative), the end with the higher likelihood kept, CRLB. */
KERNEL void ml_fit_astig(GLOBAL const float* pix, GLOBAL const int* peak, int n, int count, GLOBAL const float* cal, int maxIterations,
                         int useTolerance, float tolerance, GLOBAL float* out, GLOBAL const float* gam, int scmos)
{
    int m = THREAD_ID;
    if (m >= count || n > ML_MAX_ROI) return;
    float b = 0.0f;
    for (int i = 0; i < n; i++)
    {
        b += pix[(long)i * count + m] + pix[(long)((n - 1) * n + i) * count + m];
        if (i > 0 && i < n - 1) b += pix[(long)(i * n) * count + m] + pix[(long)(i * n + n - 1) * count + m];
    }
    b = ml_max(b * (1.0f / (float)(4 * (n - 1))), 0.01f);
    float sum = 0.0f, sxm = 0.0f, sym = 0.0f;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
        {
            float ex = ml_max(pix[(long)(j * n + i) * count + m] - b, 0.0f);
            sum += ex; sxm += ex * ((float)i + 0.5f); sym += ex * ((float)j + 0.5f);
        }
    float centre = (float)n * 0.5f;
    int hasExcess = sum > 0.0f;
    float safeSum = ml_max(sum, 1e-30f);
    float x = hasExcess ? sxm / safeSum : centre;
    float y = hasExcess ? sym / safeSum : centre;
    float nPh = ml_max(sum, 1.0f);
    float mxx = 0.0f, myy = 0.0f;
    for (int j = 0; j < n; j++)
    {
        float dy = ((float)j + 0.5f) - y;
        for (int i = 0; i < n; i++)
        {
            float dx = ((float)i + 0.5f) - x;
            float e = pix[(long)(j * n + i) * count + m] - b;
            mxx += e * dx * dx; myy += e * dy * dy;
        }
    }
    float floorM = 0.05f * nPh;
    mxx = ml_max(mxx, floorM); myy = ml_max(myy, floorM);
    float ratio = ml_log(mxx / myy);

    float f[25], g[5], p1[5], p2[5], w1[4], w2[4], logL, llr, l1, l2;
    int failed1, conv1, it1, failed2, conv2, it2;
    p1[0] = x; p1[1] = y; p1[2] = nPh; p1[3] = b; p1[4] = ml_zlookup(cal, ratio);
    p2[0] = x; p2[1] = y; p2[2] = nPh; p2[3] = b; p2[4] = ml_zlookup(cal, -ratio);
    ml_astig_iterate(pix, gam, scmos, count, m, n, cal, maxIterations, useTolerance, tolerance, p1, w1, &failed1, &conv1, &it1, f, g);
    ml_astig_iterate(pix, gam, scmos, count, m, n, cal, maxIterations, useTolerance, tolerance, p2, w2, &failed2, &conv2, &it2, f, g);
    ml_astig_evaluate(pix, gam, scmos, count, m, n, p1[0], p1[1], p1[2], p1[3], w1[0], w1[1], w1[2], w1[3], 1, f, g, &l1, &llr);
    ml_astig_evaluate(pix, gam, scmos, count, m, n, p2[0], p2[1], p2[2], p2[3], w2[0], w2[1], w2[2], w2[3], 1, f, g, &l2, &llr);
    float margin = ml_abs(l1) * 1e-5f + 0.05f;   /* a tie is not decided by rounding: see the CPU backend */
    int second = (l2 > l1 + margin && !failed2) || (failed1 && !failed2);
    float* p = second ? p2 : p1;
    float* w = second ? w2 : w1;
    int failed = second ? failed2 : failed1, converged = second ? conv2 : conv1, iterations = second ? it2 : it1;

    float crlb[5];
    ml_astig_evaluate(pix, gam, scmos, count, m, n, p[0], p[1], p[2], p[3], w[0], w[1], w[2], w[3], 1, f, g, &logL, &llr);
    int okF = ml_cholesky(f);
    ml_inverse_diagonal(f, crlb);
    if (!okF) failed = 1;

    GLOBAL float* o = out + (long)m * ML_ASTIG_OUT;
    float cx = F_SQRT(crlb[0]), cyy = F_SQRT(crlb[1]), cz = F_SQRT(crlb[4]) * 1000.0f;
    o[0] = p[0]; o[1] = p[1]; o[2] = p[2]; o[3] = p[3]; o[4] = p[4] * 1000.0f;
    o[5] = F_SQRT(w[0] * w[1]); o[6] = w[1];
    o[7] = cx; o[8] = cyy; o[9] = F_SQRT(crlb[2]); o[10] = F_SQRT(crlb[3]); o[11] = cz;
    o[12] = logL; o[13] = llr;
    o[14] = (float)iterations;
    int finiteOut = IS_FINITE(cx) && IS_FINITE(cyy) && IS_FINITE(logL) && IS_FINITE(cz);
    int pk = peak[m];
    int shY = pk / n - n / 2, shX = pk - (pk / n) * n - n / 2;
    int status;
    if (failed || !finiteOut) status = 2;
    else if (p[0] < (float)(1 + shX) || p[0] > (float)(n - 1 + shX) || p[1] < (float)(1 + shY) || p[1] > (float)(n - 1 + shY)) status = 3;
    else if (p[4] < cal[10] || p[4] > cal[11]) status = 4;
    else status = converged ? 0 : 1;
    o[15] = (float)status;
}
