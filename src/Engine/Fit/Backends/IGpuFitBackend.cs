using MaLiang.Engine.Fit.Backends.Gpu;

namespace MaLiang.Engine.Fit.Backends;

/// <summary>
/// A GPU fit backend (OpenCL, CUDA) that can also run the detection on its device and fit the ROIs detected there
/// without copying them through the host. The pipeline (<see cref="Pipeline.Localizer"/>) uses it to run a whole chunk
/// of frames on the device.
/// </summary>
public interface IGpuFitBackend : IFitBackend
{
    /// <summary>The device's name as its driver reports it (e.g. "NVIDIA H100 80GB HBM3", "cpu-haswell-AMD EPYC ...").</summary>
    string DeviceName { get; }

    /// <summary>A detector on this backend's device and context, so that <see cref="FitDetected"/> can fit its ROIs in place.
    /// Dispose it before the backend.</summary>
    GpuDetector CreateDetector();

    /// <summary>
    /// Fits the ROIs that <paramref name="detector"/>'s last <see cref="GpuDetector.DetectOnDevice"/> (or Detect) left on
    /// the device, in its order, into <paramref name="results"/> (at least <see cref="GpuDetector.DetectedCount"/> long).
    /// Same results as <see cref="IFitBackend.Fit"/> on those ROIs. Sets <see cref="LastKernelSeconds"/>.
    /// </summary>
    void FitDetected(GpuDetector detector, in FitOptions options, Span<FitResult> results);

    /// <summary>Uploads the batch, then fits it with the kernels timed alone (<see cref="LastKernelSeconds"/>), for benchmarks.</summary>
    void FitTimed(RoiBatch batch, in FitOptions options, Span<FitResult> results);

    /// <summary>Wall seconds of the transpose + fit kernels of the last <see cref="FitDetected"/> or <see cref="FitTimed"/>
    /// call, from a device-idle point to the kernels' end: no host-device transfers.</summary>
    double LastKernelSeconds { get; }

    /// <summary>
    /// Page-locks a host array that frames are uploaded from (it must not move: allocate it pinned, e.g.
    /// <c>GC.AllocateUninitializedArray&lt;float&gt;(n, pinned: true)</c>), so uploads from it run at full bus speed (CUDA
    /// copies from pageable memory go through a bounce buffer at about half the speed). Dispose the handle before the
    /// array is dropped and before the backend. Null where the API has nothing to gain or the driver refuses: uploads
    /// then work as before.
    /// </summary>
    IDisposable? PinHost(float[] pinnedArray) => null;

    /// <summary>A fitter that runs batches of joint multi-emitter fits on this device (Kernels/group_fit.cl; the CPU's
    /// results, see <see cref="CpuGroupFitter"/>). The backend disposes it with itself.</summary>
    MaLiang.Engine.Fit.MultiEmitter.IGroupFitter CreateGroupFitter(float sigmaPx, int maxIterations, float tolerance);

    /// <summary>Device memory free now, in bytes (CUDA: cuMemGetInfo; OpenCL has no such query: the device's global
    /// memory). The pipeline sizes its chunks from it.</summary>
    long FreeMemoryBytes { get; }
}
