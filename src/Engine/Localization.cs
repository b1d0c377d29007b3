using System.Runtime.InteropServices;

namespace MaLiang.Engine;

/// <summary>
/// One fitted molecule, in engine units: pixels (origin at the top-left corner of the top-left pixel,
/// pixel column c spans [c, c+1)), photons, photons/px. Frame is 0-based. The layout is the C ABI's
/// <c>ml_localization</c> (src/Native/maliang.h): keep them in step.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct Localization
{
    public int Frame;
    public float X, Y;
    public float Photons, Background, Sigma;
    public float UncertaintyX, UncertaintyY, UncertaintyPhotons, UncertaintyBackground, UncertaintySigma;
    /// <summary>Poisson log-likelihood sum(d ln mu - mu) at the estimate (without the data-only term ln d!).</summary>
    public float LogLikelihood;
    /// <summary>Log-likelihood ratio 2 sum(mu - d + d ln(d/mu)): goodness of fit, ~chi2 with n^2 - p dof.</summary>
    public float Llr;
    public int Iterations;
    /// <summary>Consecutive-frame detections merged into this one (1 for a raw fit).</summary>
    public int Detections;
    /// <summary>Bit 0: converged before the iteration limit. Bit 1 (<see cref="FlagHasZ"/>): a 3D localization, z is measured.</summary>
    public int Flags;
    /// <summary>3D (astigmatic) fits: z in nm (the calibration's refractive-index factor applied) and the square root of its
    /// CRLB; 0 in 2D results (flag bit 1, <see cref="FlagHasZ"/>, clear).</summary>
    public float Z, UncertaintyZ;
    /// <summary>Emitters fitted together with this one in one joint MLE, itself included (1: a single-emitter fit).</summary>
    public int FittedTogether;

    public const int FlagConverged = 1;
    /// <summary>z and its uncertainty are measured (3D fit, or read from a CSV's z column); CSV writers add the z columns
    /// when a localization has it, so zero-filled records stay 2D.</summary>
    public const int FlagHasZ = 2;
    public readonly bool Converged => (Flags & FlagConverged) != 0;
}
