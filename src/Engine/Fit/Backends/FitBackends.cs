namespace MaLiang.Engine.Fit.Backends;

/// <summary>Chooses the fitter for a <see cref="BackendKind"/>.</summary>
public static class FitBackends
{
    /// <summary>Creates the backend; <paramref name="description"/> says which one was picked and why.</summary>
    public static IFitBackend Create(BackendKind kind, int threads, out string description)
    {
        switch (kind)
        {
            case BackendKind.Auto:
            case BackendKind.Cpu:
                description = kind == BackendKind.Auto ? "cpu (auto: no GPU backend built in)" : "cpu";
                return new CpuFitBackend(threads);
            default:
                throw new MaLiangException($"backend {kind.ToString().ToLowerInvariant()} is not available in this build; available: cpu");
        }
    }
}
