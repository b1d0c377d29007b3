using MaLiang.Engine.Fit.Backends.Gpu;
using static MaLiang.Engine.Fit.Backends.Cuda.CuNative;

namespace MaLiang.Engine.Fit.Backends.Cuda;

/// <summary>
/// The MLE fit on a CUDA device (fit.cl compiled by NVRTC for the device's own architecture, disk-cached; one thread per
/// molecule). The batch is cut into chunks sized from cuMemGetInfo's free memory, and the chunks are pipelined over
/// <see cref="StreamCount"/> streams with page-locked (cuMemHostAlloc) staging buffers, so the copies of one chunk overlap
/// the kernels of another. CUDA_ERROR_OUT_OF_MEMORY while allocating halves the chunk size and goes on (down to
/// <see cref="MinChunk"/> molecules) instead of failing. Thread-safe: concurrent Fit calls are serialized.
/// CI runs it on tests/cuda-emulator (the kernels compiled for the CPU, stream work deferred as on a GPU); speed and
/// NVRTC/PTX only show on NVIDIA hardware.
/// </summary>
public sealed unsafe class CudaFitBackend : IGpuFitBackend
{
    public const int StreamCount = 2;
    public const int MinChunk = 256;
    /// <summary>Largest chunk, in molecules (also bounded by free memory).</summary>
    public const int MaxChunk = 1 << 20;

    private readonly CudaModule _cu;
    private readonly object _lock = new();
    private readonly Slot[] _slots = new Slot[StreamCount];
    private int _chunk;
    private CudaGpuContext? _gctx;
    private readonly GpuResidentFit _resident = new();
    private readonly GpuAstigmaticFit _astig = new();

    /// <summary>The GpuContext (own stream) the detector and the resident fit share; made on first use.</summary>
    private CudaGpuContext Context => _gctx ??= new CudaGpuContext(_cu, false);

    /// <summary>Per-stream device and pinned host buffers for one chunk.</summary>
    private sealed class Slot
    {
        public nint Stream;
        public ulong Pix, PixT, Res, Peak;
        public float* HostPix, HostRes;
        public int* HostPeak;
        public ulong Gam, GamT;   // sCMOS read-noise planes (molecule-major, pixel-major); made on the first batch that has them
        public float* HostGam;
        public int Capacity;      // molecules
        public int PixelsPerRoi;
        public int First, Count;  // the chunk in flight
    }

    public string Name => "cuda:" + _cu.Device.Name;
    public CudaDevice Device => _cu.Device;
    public string DeviceName => _cu.Device.Name;
    public long FreeMemoryBytes => _cu.MemoryInfo().Free;
    public double LastKernelSeconds => _resident.LastKernelSeconds;

    /// <summary>A detector on this backend's CUDA context (its own stream, shared with <see cref="FitDetected"/>).</summary>
    public GpuDetector CreateDetector() { lock (_lock) return new GpuDetector(Context, false); }

    private readonly List<GpuGroupFit> _groupFits = new();
    public MaLiang.Engine.Fit.MultiEmitter.IGroupFitter CreateGroupFitter(float sigmaPx, int maxIterations, float tolerance)
    {
        var f = new GpuGroupFit(() => Context, _lock, sigmaPx, maxIterations, tolerance);
        lock (_lock) _groupFits.Add(f);
        return f;
    }

    public void FitDetected(GpuDetector detector, in FitOptions options, Span<FitResult> results)
    {
        ArgumentNullException.ThrowIfNull(detector);
        lock (_lock)
        {
            if (!ReferenceEquals(detector.Context, _gctx)) throw new ArgumentException("the detector is not on this backend's context (use CreateDetector)");
            int count = detector.DetectedCount;
            if (count == 0) return;
            _resident.Run(_gctx!, detector.DetectedRois!, detector.DetectedPeaks!, detector.DetectedRoiSize, count, options, results);
        }
    }

    public void FitTimed(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        GpuFit.CheckArgs(batch, options, results);
        if (batch.Count == 0) return;
        lock (_lock)
        {
            var (rois, peaks) = _resident.Upload(Context, batch);
            _resident.Run(Context, rois, peaks, batch.RoiSize, batch.Count, options, results, _resident.UploadReadNoise(Context, batch));
        }
    }
    public IDisposable? PinHost(float[] pinnedArray)
    {
        ArgumentNullException.ThrowIfNull(pinnedArray);
        if (pinnedArray.Length == 0) return null;
        // The caller promises a pinned (POH) array; its address is stable for its lifetime.
        void* p = System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(pinnedArray));
        lock (_lock) return _cu.RegisterHost(p, (long)pinnedArray.Length * sizeof(float)) ? new HostPin(this, pinnedArray, p) : null;
    }

    private sealed class HostPin(CudaFitBackend owner, float[] array, void* p) : IDisposable
    {
        private float[]? _array = array;   // keeps the array alive while registered
        public void Dispose()
        {
            if (_array is null) return;
            lock (owner._lock) owner._cu.UnregisterHost(p);
            _array = null;
        }
    }

    /// <summary>Molecules per chunk now (after any out-of-memory halving).</summary>
    public int ChunkSize => _chunk;

    /// <summary>On CUDA device <paramref name="device"/>. Compiles (or loads from the cache) the kernels now, so a missing
    /// driver, device or NVRTC, or a compile error with its log, shows here as a <see cref="MaLiangException"/>.</summary>
    public CudaFitBackend(int device = 0)
    {
        _cu = new CudaModule(device);
        try
        {
            for (int i = 0; i < StreamCount; i++) _slots[i] = new Slot { Stream = _cu.CreateStream() };
        }
        catch { Dispose(); throw; }
    }

    /// <summary>Chunk size from free device memory: a quarter of it over the streams, per-molecule bytes =
    /// 2 pixel copies (molecule-major upload and pixel-major) + the results + the peak index.</summary>
    public static int ChunkFromFreeMemory(long freeBytes, int pixelsPerRoi)
    {
        long perMolecule = (2L * pixelsPerRoi + GpuFit.OutFloats + 1) * 4;
        long budget = freeBytes / 4 / StreamCount;
        return (int)Math.Clamp(budget / perMolecule, MinChunk, MaxChunk);
    }

    public void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        GpuFit.CheckArgs(batch, options, results);
        int count = batch.Count;
        if (count == 0) return;
        if (options.ZCalibration is not null) { lock (_lock) _astig.Run(Context, batch, options, results); return; } // 3D: astigmatic.cl
        var o = options;
        lock (_lock)
        {
            if (_chunk == 0) _chunk = ChunkFromFreeMemory(_cu.MemoryInfo().Free, batch.PixelsPerRoi);
            int first = 0;
            try
            {
                while (first < count)
                {
                    // Launch up to StreamCount chunks, then collect them in order: chunk k+1's upload overlaps chunk k's kernel.
                    int launched = 0;
                    try
                    {
                        for (int s = 0; s < StreamCount && first < count; s++)
                        {
                            int n = Math.Min(_chunk, count - first);
                            var slot = _slots[s];
                            EnsureSlot(slot, n, batch.PixelsPerRoi, batch.HasReadNoise);
                            Launch(slot, batch, first, n, o);
                            first += n;
                            launched++;
                        }
                    }
                    catch (CudaException e) when (e.OutOfMemory && _chunk > MinChunk)
                    {
                        // Collect what is in flight ('first' is already past it), wait for the failing slot's queued
                        // upload, free this round's buffers, halve the chunk and go on.
                        for (int s = 0; s < launched; s++) Collect(_slots[s], results);
                        Quiesce();
                        foreach (var sl in _slots) FreeSlot(sl);
                        _chunk = Math.Max(MinChunk, _chunk / 2);
                        continue;
                    }
                    for (int s = 0; s < launched; s++) Collect(_slots[s], results);
                }
            }
            catch
            {
                Quiesce();   // nothing touches the pinned buffers while copies into or out of them are queued
                throw;
            }
        }
    }

    /// <summary>After a failure: let every stream finish before anything touches (or frees) the pinned buffers the queued
    /// copies still read and write. Errors here are ignored: the one that brought us here is reported.</summary>
    private void Quiesce()
    {
        foreach (var s in _slots) if (s is not null) _cu.TrySynchronize(s.Stream);
    }

    private void EnsureSlot(Slot s, int molecules, int np, bool scmos)
    {
        if (s.Capacity >= molecules && s.PixelsPerRoi == np)
        {
            if (scmos && s.Gam == 0) AllocReadNoise(s);
            return;
        }
        FreeSlot(s);
        // Grow in powers of two up to the chunk: a small batch does not reserve a whole chunk, a growing one does not
        // reallocate every call.
        int cap = (int)Math.Max(molecules, Math.Min(_chunk, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)molecules)));
        long pixBytes = (long)cap * np * 4, resBytes = (long)cap * GpuFit.OutFloats * 4;
        s.Pix = _cu.Alloc(pixBytes);
        s.PixT = _cu.Alloc(pixBytes);
        s.Res = _cu.Alloc(resBytes);
        s.Peak = _cu.Alloc((long)cap * 4);
        s.HostPix = (float*)_cu.AllocHost(pixBytes);
        s.HostRes = (float*)_cu.AllocHost(resBytes);
        s.HostPeak = (int*)_cu.AllocHost((long)cap * 4);
        s.Capacity = cap;
        s.PixelsPerRoi = np;
        if (scmos) AllocReadNoise(s);
    }

    private void AllocReadNoise(Slot s)
    {
        long bytes = (long)s.Capacity * s.PixelsPerRoi * 4;
        s.Gam = _cu.Alloc(bytes);
        s.GamT = _cu.Alloc(bytes);
        s.HostGam = (float*)_cu.AllocHost(bytes);
    }

    private void FreeSlot(Slot s)
    {
        _cu.Free(s.Pix); _cu.Free(s.PixT); _cu.Free(s.Res); _cu.Free(s.Peak);
        _cu.FreeHost(s.HostPix); _cu.FreeHost(s.HostRes); _cu.FreeHost(s.HostPeak);
        _cu.Free(s.Gam); _cu.Free(s.GamT); _cu.FreeHost(s.HostGam);
        s.Pix = s.PixT = s.Res = s.Peak = s.Gam = s.GamT = 0;
        s.HostPix = s.HostRes = s.HostGam = null;
        s.HostPeak = null;
        s.Capacity = 0;
    }

    private void Launch(Slot s, RoiBatch batch, int first, int n, in FitOptions o)
    {
        int np = batch.PixelsPerRoi;
        s.First = first; s.Count = n;
        // Stage into pinned memory (so the copy is a true async DMA), then queue copy -> transpose -> fit -> copy back.
        batch.Pixels.AsSpan(first * np, n * np).CopyTo(new Span<float>(s.HostPix, n * np));
        batch.Peak.AsSpan(first, n).CopyTo(new Span<int>(s.HostPeak, n));
        using var _ = _cu.Enter();
        Check(cuMemcpyHtoDAsync(s.Pix, s.HostPix, (nuint)((long)n * np * 4), s.Stream), "cuMemcpyHtoDAsync");
        Check(cuMemcpyHtoDAsync(s.Peak, s.HostPeak, (nuint)((long)n * 4), s.Stream), "cuMemcpyHtoDAsync");
        var pix = new DevicePtr(s.Pix);
        var pixT = new DevicePtr(s.PixT);
        var res = new DevicePtr(s.Res);
        var peak = new DevicePtr(s.Peak);
        _cu.Launch("ml_transpose", (long)np * n, s.Stream, [pix.Arg, pixT.Arg, np, n]);
        bool scmos = batch.HasReadNoise;
        var gamT = KArg.NullBuffer;   // without read noise the kernel gets a null plane and scmos = 0
        if (scmos)
        {
            batch.ReadNoise.AsSpan(first * np, n * np).CopyTo(new Span<float>(s.HostGam, n * np));
            Check(cuMemcpyHtoDAsync(s.Gam, s.HostGam, (nuint)((long)n * np * 4), s.Stream), "cuMemcpyHtoDAsync");
            gamT = new DevicePtr(s.GamT).Arg;
            _cu.Launch("ml_transpose", (long)np * n, s.Stream, [new DevicePtr(s.Gam).Arg, gamT, np, n]);
        }
        _cu.Launch(GpuFit.FitKernel(batch.RoiSize), n, s.Stream, [pixT.Arg, peak.Arg, batch.RoiSize, n, o.PsfSigmaPx, o.FixedSigma ? 1 : 0, o.MaxIterations,
                                            o.UseTolerance ? 1 : 0, o.Tolerance, res.Arg, gamT, scmos ? 1 : 0]);
        Check(cuMemcpyDtoHAsync(s.HostRes, s.Res, (nuint)((long)n * GpuFit.OutFloats * 4), s.Stream), "cuMemcpyDtoHAsync");
    }

    private void Collect(Slot s, Span<FitResult> results)
    {
        _cu.Synchronize(s.Stream);
        GpuFit.Unpack(new ReadOnlySpan<float>(s.HostRes, s.Count * GpuFit.OutFloats), results.Slice(s.First, s.Count));
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var s in _slots)
            {
                if (s is null) continue;
                FreeSlot(s);
                _cu.DestroyStream(s.Stream);
                s.Stream = 0;
            }
            _resident.Dispose();
            _astig.Dispose();
            foreach (var f in _groupFits) f.Dispose();
            _groupFits.Clear();
            _gctx?.Dispose();
            _gctx = null;
            _cu.Dispose();
        }
    }

    /// <summary>A raw device pointer as a kernel argument (without a <see cref="GpuBuffer"/> owning it).</summary>
    private sealed class DevicePtr : GpuBuffer, ICudaPointer
    {
        public DevicePtr(ulong p) { Pointer = p; }
        public ulong Pointer { get; }
        public KArg Arg => this;
        public override void Dispose() { }
    }
}
