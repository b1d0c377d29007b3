/* MaLiang joint multi-emitter fit (common source for OpenCL and CUDA; see prelude_*.cl), DESIGN.md "Crowded frames".
   An operation-for-operation port of src/Engine/Fit/Backends/CpuGroupFitter.cs (one lane = one thread here): the same
   per-axis PSF (ml_axis of fit.cl, the CPU's Axis), the same 1e-7 cut-off, the same double sums in the same order, the
   same Levenberg-Marquardt steps, projection, stopping rule, iteration count and CRLB. Change both together. The one
   difference: log() is the device's double log, not .NET's Vector.Log, so the log-likelihood can differ in its last
   bits (positions and photons do not depend on it; only the accept/stop tests and model selection read it).

   Layout: one thread per group (job). A group has 3k + 1 unknowns (k <= 12) and a box of a few hundred pixels, so the
   Fisher matrices (3 x (3k+1)^2 doubles) and the per-axis tables live in a per-job scratch slice in global memory
   (offsets from the host), not in registers. Why not a work group per group with a reduction over pixels: jobs differ
   in k, box and iteration count, and a batch holds a few thousand groups at most, so one thread each keeps the code the
   CPU's; the batch's host-side model selection decides between rounds anyway. Measured on no NVIDIA GPU yet.
   Needs fp64: where the device has none (ML_HAS_FP64 unset) the kernel is not built, ml_group_fit_fp64 says 0 and the
   host fits the groups on the CPU. */

#ifndef ML_MAX_BOX
#define ML_MAX_BOX 128
#endif
#define ML_GP_MAXP 37
#define ML_GP_JOB_INTS 5

KERNEL void ml_group_fit_fp64(GLOBAL int* out)
{
    if (THREAD_ID != 0) return;
#ifdef ML_HAS_FP64
    out[0] = 1;
#else
    out[0] = 0;
#endif
}

#ifdef ML_HAS_FP64

DEVFN double ml_dabs(double a) { return a < 0.0 ? -a : a; }
DEVFN double ml_dclamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Per-axis tables of every emitter (ml_axis in float, widened), zeroed where the PSF is below 1e-7 of the pixel. */
DEVFN void ml_gp_axes(GLOBAL const double* theta, int k, int bw, int bh, float s, GLOBAL double* ex, GLOBAL double* dex, GLOBAL double* ey, GLOBAL double* dey)
{
    float e[ML_MAX_BOX], dc[ML_MAX_BOX], ds[ML_MAX_BOX];
    for (int m = 0; m < k; m++)
    {
        ml_axis(bw, (float)theta[1 + 3 * m], s, e, dc, ds);
        for (int c = 0; c < bw; c++)
        {
            int ok = e[c] >= 1e-7f;
            ex[m * bw + c] = ok ? (double)e[c] : 0.0;
            dex[m * bw + c] = ok ? (double)dc[c] : 0.0;
        }
        ml_axis(bh, (float)theta[2 + 3 * m], s, e, dc, ds);
        for (int r = 0; r < bh; r++)
        {
            int ok = e[r] >= 1e-7f;
            ey[m * bh + r] = ok ? (double)e[r] : 0.0;
            dey[m * bh + r] = ok ? (double)dc[r] : 0.0;
        }
    }
}

/* Gradient g, Fisher information f (upper triangle, stride p), log-likelihood and LLR at theta; 0 when the model is not
   positive and finite somewhere in the box. */
DEVFN int ml_gp_evaluate(GLOBAL const float* data, GLOBAL const float* fixedModel, GLOBAL const float* gamma, int scmos,
                         int bw, int bh, int k, GLOBAL const double* theta, float s, GLOBAL double* ex, GLOBAL double* dex,
                         GLOBAL double* ey, GLOBAL double* dey, GLOBAL double* g, GLOBAL double* f, GLOBAL double* jac,
                         int withLlr, double* logLOut, double* llrOut)
{
    int p = 3 * k + 1;
    int active[ML_GP_MAXP];
    ml_gp_axes(theta, k, bw, bh, s, ex, dex, ey, dey);
    for (int i = 0; i < p; i++) g[i] = 0.0;
    for (int i = 0; i < p * p; i++) f[i] = 0.0;
    double b = theta[0], logL = 0.0, llr = 0.0;
    int good = 1;
    for (int r = 0; r < bh; r++)
        for (int c = 0; c < bw; c++)
        {
            int px = r * bw + c;
            double mu = b + (double)fixedModel[px];
            int na = 1;
            active[0] = 0; jac[0] = 1.0;
            for (int m = 0; m < k; m++)
            {
                double exv = ex[m * bw + c], eyv = ey[m * bh + r];
                if (exv == 0.0 || eyv == 0.0) continue;
                double n = theta[3 + 3 * m], ee = exv * eyv;
                mu += n * ee;
                int o = 1 + 3 * m;
                active[na] = o; jac[na++] = n * dex[m * bw + c] * eyv;
                active[na] = o + 1; jac[na++] = n * exv * dey[m * bh + r];
                active[na] = o + 2; jac[na++] = ee;
            }
            double d = (double)data[px];
            if (scmos) { mu += (double)gamma[px]; d += (double)gamma[px]; }
            if (!(mu > 0.0) || !(mu - mu == 0.0)) { good = 0; continue; }   /* not positive, or infinite (inf - inf is NaN) */
            double inv = 1.0 / mu, rr = d * inv - 1.0, lnMu = log(mu);
            logL += d * lnMu - mu;
            if (withLlr) llr += (d > 0.0 ? d * log(d) : 0.0) - d;   /* the data's part: LLR = 2 (sum d ln d - sum d - logL) */
            for (int i = 0; i < na; i++)
            {
                double ji = jac[i], wi = ji * inv;
                int ai = active[i];
                g[ai] += rr * ji;
                for (int j = i; j < na; j++) f[ai * p + active[j]] += wi * jac[j];
            }
        }
    *logLOut = logL; *llrOut = 2.0 * (llr - logL);
    return good && IS_FINITE(logL);
}

/* In-place Cholesky (lower, row-major, stride p). */
DEVFN int ml_gp_cholesky(GLOBAL double* a, int p)
{
    for (int i = 0; i < p; i++)
        for (int j = 0; j <= i; j++)
        {
            double s = a[i * p + j];
            for (int q = 0; q < j; q++) s -= a[i * p + q] * a[j * p + q];
            if (i == j)
            {
                if (!(s > 1e-300)) return 0;
                a[i * p + i] = sqrt(s);
            }
            else a[i * p + j] = s / a[j * p + j];
        }
    return 1;
}

DEVFN void ml_gp_solve(GLOBAL const double* l, int p, GLOBAL const double* rhs, GLOBAL double* x)
{
    for (int i = 0; i < p; i++)
    {
        double s = rhs[i];
        for (int q = 0; q < i; q++) s -= l[i * p + q] * x[q];
        x[i] = s / l[i * p + i];
    }
    for (int i = p - 1; i >= 0; i--)
    {
        double s = x[i];
        for (int q = i + 1; q < p; q++) s -= l[q * p + i] * x[q];
        x[i] = s / l[i * p + i];
    }
}

/* Copies the upper triangle of src into the full symmetric dst. */
DEVFN void ml_gp_take(GLOBAL const double* src, GLOBAL double* dst, int p)
{
    for (int i = 0; i < p; i++)
        for (int j = i; j < p; j++) dst[i * p + j] = dst[j * p + i] = src[i * p + j];
}

/* jobs[5 * job] = pixel offset, width, height, emitters, scratch offset (doubles: 5p + 3p^2 + 2k(bw + bh)).
   theta, crlb: ML_GP_MAXP per job. stats[4 * job] = logL, LLR, iterations, status (0 failed, 1 converged,
   2 iteration limit, 3 no CRLB). */
KERNEL void ml_group_fit(GLOBAL const float* data, GLOBAL const float* fixedModel, GLOBAL const float* gamma, int scmos,
                         GLOBAL const int* jobs, int count, GLOBAL double* thetaAll, GLOBAL double* crlbAll, GLOBAL double* stats,
                         GLOBAL double* scratch, float s, int maxIterations, float tolerance)
{
    int job = THREAD_ID;
    if (job >= count) return;
    GLOBAL const int* jb = jobs + ML_GP_JOB_INTS * job;
    int off = jb[0], bw = jb[1], bh = jb[2], k = jb[3], p = 3 * k + 1;
    GLOBAL const float* d = data + off;
    GLOBAL const float* fm = fixedModel + off;
    GLOBAL const float* gm = scmos ? gamma + off : data;
    GLOBAL double* theta = thetaAll + (long)ML_GP_MAXP * job;
    GLOBAL double* crlb = crlbAll + (long)ML_GP_MAXP * job;
    GLOBAL double* w = scratch + jb[4];
    GLOBAL double* g = w; GLOBAL double* g1 = g + p; GLOBAL double* step = g1 + p; GLOBAL double* trial = step + p;
    GLOBAL double* jac = trial + p;
    GLOBAL double* f = jac + p; GLOBAL double* f1 = f + p * p; GLOBAL double* a = f1 + p * p;
    GLOBAL double* ex = a + p * p; GLOBAL double* dex = ex + k * bw; GLOBAL double* ey = dex + k * bw; GLOBAL double* dey = ey + k * bh;

    int status = 0, it = 0, tries = 0;
    double logL = 0.0, llr = 0.0, logL1 = 0.0, llr1 = 0.0, lambda = 1e-4;
    int good = ml_gp_evaluate(d, fm, gm, scmos, bw, bh, k, theta, s, ex, dex, ey, dey, g1, f1, jac, 0, &logL, &llr);
    int active = good;
    if (good) { for (int i = 0; i < p; i++) g[i] = g1[i]; ml_gp_take(f1, f, p); }
    if (active && maxIterations <= 0) { active = 0; status = 2; }
    while (active)
    {
        /* (F + lambda diag F) step = g, then the projection. */
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++) a[i * p + j] = f[i * p + j] * (i == j ? 1.0 + lambda : 1.0);
        if (!ml_gp_cholesky(a, p)) { status = 0; break; }
        ml_gp_solve(a, p, g, step);
        for (int i = 0; i < p; i++) trial[i] = theta[i];
        {
            double bb = trial[0] + step[0];
            trial[0] = bb > 0.0 ? bb : trial[0] * 0.5;
            for (int m = 0; m < k; m++)
            {
                int o = 1 + 3 * m;
                trial[o] = ml_dclamp(trial[o] + ml_dclamp(step[o], -1.0, 1.0), 0.0, (double)bw);
                trial[o + 1] = ml_dclamp(trial[o + 1] + ml_dclamp(step[o + 1], -1.0, 1.0), 0.0, (double)bh);
                double n = trial[o + 2] + step[o + 2];
                trial[o + 2] = n > 0.0 ? n : trial[o + 2] * 0.5;
            }
        }
        int ok = ml_gp_evaluate(d, fm, gm, scmos, bw, bh, k, trial, s, ex, dex, ey, dey, g1, f1, jac, 0, &logL1, &llr1);
        if (ok && logL1 >= logL - 1e-9 * ml_dabs(logL))
        {
            int small = 1;
            for (int i = 0; i < p; i++)
            {
                double at = ml_dabs(trial[i]);
                small &= ml_dabs(trial[i] - theta[i]) <= (double)tolerance * (at > 1.0 ? at : 1.0);
            }
            for (int i = 0; i < p; i++) theta[i] = trial[i];
            for (int i = 0; i < p; i++) g[i] = g1[i];
            ml_gp_take(f1, f, p);
            small |= logL1 - logL < 1e-4;
            logL = logL1;
            lambda = lambda * 0.1 > 1e-7 ? lambda * 0.1 : 1e-7;
            tries = 0;
            if (small) { status = 1; break; }
            if (++it >= maxIterations) { status = 2; break; }
        }
        else
        {
            lambda *= 10.0;
            if (++tries >= 12) { status = 1; break; }
        }
    }
    /* The likelihood, goodness of fit and Fisher information at the estimate; the CRLB from the last. */
    ml_gp_evaluate(d, fm, gm, scmos, bw, bh, k, theta, s, ex, dex, ey, dey, g1, f1, jac, 1, &logL, &llr);
    GLOBAL double* st = stats + 4L * job;
    st[0] = logL; st[1] = llr;
    st[2] = (double)(it + 1 < (maxIterations > 0 ? maxIterations : 0) ? it + 1 : (maxIterations > 0 ? maxIterations : 0));
    if (status != 0)
    {
        ml_gp_take(f1, a, p);
        if (!ml_gp_cholesky(a, p)) status = 3;
        else
            for (int c = 0; c < p; c++)
            {
                /* Column c of the inverse: solve with the unit vector (in trial, as scratch). */
                for (int i = 0; i < p; i++) step[i] = i == c ? 1.0 : 0.0;
                ml_gp_solve(a, p, step, trial);
                crlb[c] = trial[c] > 0.0 ? sqrt(trial[c]) : ML_BITS_F64((ML_U64)0x7FF8000000000000);
            }
    }
    st[3] = (double)status;
}

#endif
