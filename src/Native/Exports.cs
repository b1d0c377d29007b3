using System.Runtime.InteropServices;
using System.Text;
using MaLiang.Engine;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Render;

namespace MaLiang.Native;

/// <summary>ml_settings (maliang.h), field for field.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct MlSettings
{
    public int StructSize, RoiSize;
    public double PixelSizeNm, PsfSigmaPx, OffsetAdu, PhotonsPerAdu, EmGain, Threshold, Tolerance;
    public int Filter, FixedSigma, Iterations, UseTolerance, RejectOverlapping, Backend, Threads, Reserved;
    // Appended (issue 17, then residual_search at 136): older fields keep their offsets; 144 bytes in all (4 of them
    // tail padding, the struct being 8-aligned for its doubles).
    public int MultiEmitter, MaxEmitters;
    public double MultiPValue;
    public int CameraNoise, DropEdge;
    public double MinSnr;
    public int NoiseClip, EstimatePsfSigma;
    public int ResidualSearch;
}

/// <summary>ml_summary (maliang.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MlSummary
{
    public long Frames, Localizations, Candidates, DroppedEdge, DroppedOverlap, DroppedFitFailed, DroppedLeftRoi;
    public double WallSeconds, ReadSeconds, DenoiseSeconds, DetectSeconds, FitSeconds;
    public int Threads, Reserved;
    public fixed byte Backend[64];
}

internal enum Status { Ok = 0, Argument = 1, Input = 2, Cancelled = 3, Backend = 4, Internal = 5, Io = 6 }

/// <summary>A localizer behind an opaque handle, with its cancellation and progress callback.</summary>
internal sealed unsafe class Handle : IProgress<PipelineProgress>
{
    public readonly Localizer Localizer;
    /// <summary>The current cancellation; replaced (never disposed: ml_cancel may hold it) once a push has consumed it.</summary>
    public volatile CancellationTokenSource Cancel = new();
    public delegate* unmanaged<int, int, long, nint, int> Progress;
    public nint User;
    public nint LastAddress;
    /// <summary>0 idle, 1 a push is running, 2 destroyed.</summary>
    public int State;
    public Handle(Localizer l) => Localizer = l;

    public void Report(PipelineProgress p)
    {
        if (Progress != null && Progress(p.FramesDone, p.FramesTotal, p.Localizations, User) != 0) Cancel.Cancel();
    }

    /// <summary>A cancel was consumed by a push: later pushes start uncancelled.</summary>
    public void Renew(CancellationTokenSource consumed) => Interlocked.CompareExchange(ref Cancel, new CancellationTokenSource(), consumed);
}

/// <summary>The C ABI: every export checks its arguments, catches everything and reports through ml_last_error().</summary>
public static unsafe partial class Exports
{
    public const string Version = "0.1.0";
    // Strings handed to C live in native memory: the GC never moves them. The error is per thread.
    private static readonly byte* s_version = NativeUtf8(Version);
    private static readonly byte* s_empty = NativeUtf8("");
    [ThreadStatic] private static byte* t_error;

    private static byte* NativeUtf8(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
        bytes.AsSpan().CopyTo(new Span<byte>(p, bytes.Length));
        p[bytes.Length] = 0;
        return p;
    }

    private static void SetError(string? message)
    {
        if (t_error != null) NativeMemory.Free(t_error);
        t_error = message == null ? null : NativeUtf8(message.Replace('\n', ' '));
    }

    private static int Fail(Status s, string message) { SetError(message); return (int)s; }

    private static int Ok() { SetError(null); return 0; }

    private static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (OperationCanceledException) { return Fail(Status.Cancelled, "cancelled"); }
        catch (InvalidParameterException e) { return Fail(Status.Argument, e.Message); }
        catch (BackendUnavailableException e) { return Fail(Status.Backend, e.Message); }
        catch (MaLiangException e) when (e.InnerException is IOException or UnauthorizedAccessException) { return Fail(Status.Io, e.Message); }
        catch (MaLiangException e) { return Fail(Status.Input, e.Message); }
        catch (IOException e) { return Fail(Status.Io, e.Message); }
        catch (UnauthorizedAccessException e) { return Fail(Status.Io, e.Message); }
        catch (Exception e) { return Fail(Status.Internal, $"{e.GetType().Name}: {e.Message}"); }
    }

    // Handles are ids into a table, never reused: a stale or foreign pointer finds nothing (ML_ERR_ARGUMENT) instead of
    // another localizer or a crash.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<nint, Handle> s_handles = new();
    private static long s_lastHandle = 0x4D4C0000;

    private static Handle? Get(nint h) => h != 0 && s_handles.TryGetValue(h, out var handle) ? handle : null;

    [UnmanagedCallersOnly(EntryPoint = "ml_version")]
    public static byte* MlVersion() => s_version;

    [UnmanagedCallersOnly(EntryPoint = "ml_abi_version")]
    public static int MlAbiVersion() => 2;

    [UnmanagedCallersOnly(EntryPoint = "ml_last_error")]
    public static byte* MlLastError() => t_error != null ? t_error : s_empty;

    [UnmanagedCallersOnly(EntryPoint = "ml_default_settings")]
    public static int MlDefaultSettings(MlSettings* s)
    {
        if (s == null) return Fail(Status.Argument, "ml_default_settings: settings is null");
        *s = ToNative(new LocalizerSettings());
        return Ok();
    }

    internal static MlSettings ToNative(LocalizerSettings d) => new()
    {
        StructSize = sizeof(MlSettings), RoiSize = d.RoiSize, PixelSizeNm = d.PixelSizeNm, PsfSigmaPx = d.PsfSigmaPx,
        OffsetAdu = d.OffsetAdu, PhotonsPerAdu = d.PhotonsPerAdu, EmGain = d.EmGain, Threshold = d.Threshold, Tolerance = d.Tolerance,
        Filter = (int)d.Filter, FixedSigma = d.FixedSigma ? 1 : 0, Iterations = d.Iterations, UseTolerance = d.UseTolerance ? 1 : 0,
        RejectOverlapping = d.RejectOverlapping ? 1 : 0, Backend = (int)d.Backend, Threads = d.Threads,
        MultiEmitter = d.MultiEmitter ? 1 : 0, MaxEmitters = d.MaxEmittersPerGroup, MultiPValue = d.MultiEmitterPValue,
        CameraNoise = d.CameraNoiseDetection ? 1 : 0, DropEdge = d.DropAtEdge ? 1 : 0, MinSnr = d.MinPhotonSnr,
        NoiseClip = d.NoiseClip ? 1 : 0, EstimatePsfSigma = d.EstimatePsfSigma ? 1 : 0,
        ResidualSearch = d.ResidualSearch ? 1 : 0,
    };

    internal static LocalizerSettings FromNative(in MlSettings n)
    {
        if (n.StructSize != sizeof(MlSettings))
            throw new InvalidParameterException("struct_size", $"is {n.StructSize}, this library's ml_settings is {sizeof(MlSettings)} bytes (header and library differ?)");
        if (n.Filter is < 0 or > 2) throw new InvalidParameterException("filter", $"{n.Filter} is not an ml_filter (0 maliang, 1 wavelet, 2 none)");
        if (n.Backend is < 0 or > 3) throw new InvalidParameterException("backend", $"{n.Backend} is not an ml_backend (0 auto, 1 cpu, 2 opencl, 3 cuda)");
        // The 0/1 fields: anything else is an uninitialized struct or a wrong layout, not a wish.
        Flag(n.MultiEmitter, "multi_emitter"); Flag(n.CameraNoise, "camera_noise"); Flag(n.DropEdge, "drop_edge");
        Flag(n.NoiseClip, "noise_clip"); Flag(n.EstimatePsfSigma, "estimate_psf_sigma");
        Flag(n.ResidualSearch, "residual_search");
        // Range checks named by the C field (Validate names the CLI option, which the C caller does not see).
        if (n.MaxEmitters is < 1 or > MaLiang.Engine.Fit.MultiEmitter.GroupFit.MaxEmitters)
            throw new InvalidParameterException("max_emitters", $"must be 1 to {MaLiang.Engine.Fit.MultiEmitter.GroupFit.MaxEmitters}, got {n.MaxEmitters}");
        if (!(n.MultiPValue > 0 && n.MultiPValue < 1)) throw new InvalidParameterException("multi_p_value", $"must be a p-value in (0, 1), got {n.MultiPValue}");
        if (!(n.MinSnr >= 0) || !double.IsFinite(n.MinSnr)) throw new InvalidParameterException("min_snr", $"must be a finite number >= 0, got {n.MinSnr}");
        var s = new LocalizerSettings
        {
            RoiSize = n.RoiSize, PixelSizeNm = n.PixelSizeNm, PsfSigmaPx = n.PsfSigmaPx, OffsetAdu = n.OffsetAdu,
            PhotonsPerAdu = n.PhotonsPerAdu, EmGain = n.EmGain, Threshold = n.Threshold, Tolerance = n.Tolerance,
            Filter = (FilterKind)n.Filter, FixedSigma = n.FixedSigma != 0, Iterations = n.Iterations, UseTolerance = n.UseTolerance != 0,
            RejectOverlapping = n.RejectOverlapping != 0, Backend = (BackendKind)n.Backend, Threads = n.Threads,
            MultiEmitter = n.MultiEmitter != 0, MaxEmittersPerGroup = n.MaxEmitters, MultiEmitterPValue = n.MultiPValue,
            CameraNoiseDetection = n.CameraNoise != 0, DropAtEdge = n.DropEdge != 0, MinPhotonSnr = n.MinSnr,
            NoiseClip = n.NoiseClip != 0, EstimatePsfSigma = n.EstimatePsfSigma != 0,
            ResidualSearch = n.ResidualSearch != 0,
        };
        s.Validate();
        return s;
    }

    private static void Flag(int v, string name)
    {
        if (v is not (0 or 1)) throw new InvalidParameterException(name, $"must be 0 or 1, got {v}");
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_create")]
    public static int MlCreate(MlSettings* settings, nint* outHandle)
    {
        if (outHandle == null) return Fail(Status.Argument, "ml_create: out is null");
        *outHandle = 0;
        if (settings == null) return Fail(Status.Argument, "ml_create: settings is null");
        var s = *settings;
        return Guard(() =>
        {
            var localizer = new Localizer(FromNative(s));
            nint id = (nint)Interlocked.Add(ref s_lastHandle, 16);
            s_handles[id] = new Handle(localizer);
            *outHandle = id;
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_destroy")]
    public static int MlDestroy(nint h)
    {
        if (h == 0) return Ok();
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_destroy: not a live localizer (destroyed already?)");
        int was = Interlocked.CompareExchange(ref handle.State, 2, 0);
        if (was == 1) return Fail(Status.Argument, "ml_destroy: a push is running on this localizer; cancel it and let ml_push_frames return first");
        if (was == 2) return Fail(Status.Argument, "ml_destroy: not a live localizer (destroyed already?)");
        return Guard(() =>
        {
            s_handles.TryRemove(h, out _);
            handle.Localizer.Dispose();
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_push_frames")]
    public static int MlPushFrames(nint h, void* pixels, int width, int height, int count, long rowStrideBytes, int pixelType)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_push_frames: localizer is null");
        if (pixels == null) return Fail(Status.Argument, "ml_push_frames: pixels is null");
        if (width <= 0 || height <= 0) return Fail(Status.Argument, $"ml_push_frames: frame size {width}x{height} is not positive");
        if (count <= 0) return Fail(Status.Argument, $"ml_push_frames: count {count} must be >= 1");
        if (pixelType is < 0 or > 5) return Fail(Status.Argument, $"ml_push_frames: pixel_type {pixelType} is not an ml_pixel_type");
        long bpp = PointerFrameSource.BytesPerPixel((PixelType)pixelType);
        if (rowStrideBytes < 0 || (rowStrideBytes != 0 && rowStrideBytes < width * bpp))
            return Fail(Status.Argument, $"ml_push_frames: row_stride_bytes {rowStrideBytes} is less than a row of {width * bpp} bytes");
        int roi = handle.Localizer.Settings.RoiSize;
        if (width < roi || height < roi) return Fail(Status.Input, $"ml_push_frames: frames of {width}x{height} px are smaller than the {roi}x{roi} ROI");
        if ((long)width * height > int.MaxValue) return Fail(Status.Argument, $"ml_push_frames: a {width}x{height} frame has more than 2^31-1 pixels");
        return Push(handle, "ml_push_frames", () =>
        {
            var src = new PointerFrameSource(pixels, width, height, count, (PixelType)pixelType, rowStrideBytes);
            handle.LastAddress = src.Address;
            return src;
        });
    }

    /// <summary>ml_push_file: the frames of a TIFF file (or Micro-Manager set) read by the engine's own reader, so
    /// Python and Java get the same TIFF support as the CLI (compressed and tiled files included).</summary>
    [UnmanagedCallersOnly(EntryPoint = "ml_push_file")]
    public static int MlPushFile(nint h, byte* path)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_push_file: localizer is null");
        string? p = Utf8(path);
        if (string.IsNullOrEmpty(p)) return Fail(Status.Argument, "ml_push_file: path is null or empty");
        return Push(handle, "ml_push_file", () => TiffStack.Open(p)); // Localizer.Push checks the frame size against the ROI
    }

    /// <summary>One push at a time per localizer; the source is opened (and its errors reported) inside the guard.</summary>
    private static int Push(Handle handle, string what, Func<IFrameSource> open)
    {
        int state = Interlocked.CompareExchange(ref handle.State, 1, 0);
        if (state != 0) return Fail(Status.Argument, state == 1 ? $"{what}: another push is running on this localizer" : $"{what}: the localizer was destroyed");
        try
        {
            return Guard(() =>
            {
                using var src = open();
                int count = src.FrameCount;
                // A cancel that arrived between pushes stops this one (maliang.h: "the push in progress (or the next one)"),
                // and one asked for by the last chunk's progress callback still makes this push return ML_ERR_CANCELLED.
                var cancel = handle.Cancel;
                try
                {
                    handle.Localizer.Push(src, 0, count, null, handle.Progress != null ? handle : null, cancel.Token);
                }
                catch (OperationCanceledException)
                {
                    handle.Renew(cancel);
                    throw;
                }
                if (cancel.IsCancellationRequested)
                {
                    handle.Renew(cancel);
                    return Fail(Status.Cancelled, "cancelled");
                }
                return Ok();
            });
        }
        finally { Volatile.Write(ref handle.State, 0); }
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_set_camera_maps")]
    public static int MlSetCameraMaps(nint h, float* offsetAdu, float* varianceAdu2, float* gainPhotonsPerAdu,
                                      int sensorWidth, int sensorHeight, int originX, int originY)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_set_camera_maps: localizer is null");
        bool none = offsetAdu == null && varianceAdu2 == null && gainPhotonsPerAdu == null;
        if (!none && (sensorWidth <= 0 || sensorHeight <= 0 || (long)sensorWidth * sensorHeight > int.MaxValue))
            return Fail(Status.Argument, $"ml_set_camera_maps: bad sensor size {sensorWidth}x{sensorHeight}");
        int state = Interlocked.CompareExchange(ref handle.State, 1, 0);
        if (state != 0) return Fail(Status.Argument, state == 1 ? "ml_set_camera_maps: a push is running on this localizer" : "ml_set_camera_maps: the localizer was destroyed");
        try
        {
            return Guard(() =>
            {
                int n = none ? 0 : sensorWidth * sensorHeight;
                float[]? Copy(float* p) => p == null ? null : new ReadOnlySpan<float>(p, n).ToArray();
                // Copied: the caller may free its arrays after this call. Checked by CameraMaps (map and pixel named).
                var maps = none ? null : new Engine.Camera.CameraMaps(sensorWidth, sensorHeight, Copy(offsetAdu), Copy(varianceAdu2), Copy(gainPhotonsPerAdu), originX, originY);
                handle.Localizer.SetCameraMaps(maps);
                return Ok();
            });
        }
        finally { Volatile.Write(ref handle.State, 0); }
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_set_camera_map_files")]
    public static int MlSetCameraMapFiles(nint h, byte* offsetPath, byte* variancePath, byte* gainPath, int originX, int originY)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_set_camera_map_files: localizer is null");
        string? o = Utf8(offsetPath), v = Utf8(variancePath), g = Utf8(gainPath);
        if (string.IsNullOrEmpty(o)) o = null;
        if (string.IsNullOrEmpty(v)) v = null;
        if (string.IsNullOrEmpty(g)) g = null;
        int state = Interlocked.CompareExchange(ref handle.State, 1, 0);
        if (state != 0) return Fail(Status.Argument, state == 1 ? "ml_set_camera_map_files: a push is running on this localizer" : "ml_set_camera_map_files: the localizer was destroyed");
        try
        {
            return Guard(() =>
            {
                foreach (var (path, name) in new[] { (o, Engine.Camera.CameraMaps.OffsetName), (v, Engine.Camera.CameraMaps.VarianceName), (g, Engine.Camera.CameraMaps.GainName) })
                    if (path is not null && !File.Exists(path)) return Fail(Status.Argument, $"parameter {name}: {path}: no such file");
                handle.Localizer.SetCameraMaps(o is null && v is null && g is null ? null : Engine.Camera.CameraMaps.Load(o, v, g, originX, originY));
                return Ok();
            });
        }
        finally { Volatile.Write(ref handle.State, 0); }
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_set_progress")]
    public static int MlSetProgress(nint h, delegate* unmanaged<int, int, long, nint, int> callback, nint user)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_set_progress: localizer is null");
        handle.Progress = callback; handle.User = user;
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_cancel")]
    public static int MlCancel(nint h)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_cancel: localizer is null");
        return Guard(() => { handle.Cancel.Cancel(); return Ok(); });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_result_count")]
    public static int MlResultCount(nint h, long* count)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_result_count: localizer is null");
        if (count == null) return Fail(Status.Argument, "ml_result_count: count is null");
        *count = handle.Localizer.Results.Count;
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_read_results")]
    public static int MlReadResults(nint h, long first, Localization* output, long capacity, long* written)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_read_results: localizer is null");
        if (written == null) return Fail(Status.Argument, "ml_read_results: written is null");
        *written = 0;
        if (capacity < 0) return Fail(Status.Argument, $"ml_read_results: capacity {capacity} is negative");
        if (capacity > 0 && output == null) return Fail(Status.Argument, "ml_read_results: out is null");
        var results = handle.Localizer.Results;
        if (first < 0 || first > results.Count) return Fail(Status.Argument, $"ml_read_results: first {first} is outside 0..{results.Count}");
        long n = Math.Min(capacity, results.Count - first);
        var list = (List<Localization>)results;
        CollectionsMarshal.AsSpan(list).Slice((int)first, (int)n).CopyTo(new Span<Localization>(output, (int)n));
        *written = n;
        return Ok();
    }

    /// <summary>ml_get_settings: what ml_create accepted, as the engine holds it, so that bindings can check that every
    /// field arrived (tests) and callers can log the settings a localizer really ran with.</summary>
    [UnmanagedCallersOnly(EntryPoint = "ml_get_settings")]
    public static int MlGetSettings(nint h, MlSettings* output)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_get_settings: localizer is null");
        if (output == null) return Fail(Status.Argument, "ml_get_settings: out is null");
        *output = ToNative(handle.Localizer.Settings);
        return Ok();
    }

    /// <summary>ml_get_groups_by_size: a function beside ml_summary rather than a field in it, because ml_summary has no
    /// struct_size and callers built against the 168-byte struct would be overrun.</summary>
    [UnmanagedCallersOnly(EntryPoint = "ml_get_groups_by_size")]
    public static int MlGetGroupsBySize(nint h, long* output, int capacity, int* count)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_get_groups_by_size: localizer is null");
        if (count == null) return Fail(Status.Argument, "ml_get_groups_by_size: count is null");
        if (capacity < 0) return Fail(Status.Argument, $"ml_get_groups_by_size: capacity {capacity} is negative");
        if (output == null && capacity > 0) return Fail(Status.Argument, "ml_get_groups_by_size: out is null with capacity > 0");
        var g = handle.Localizer.Summary.GroupsBySize;
        for (int i = 0; i < Math.Min(capacity, g.Length); i++) output[i] = g[i];
        *count = g.Length;
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_clear_results")]
    public static int MlClearResults(nint h)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_clear_results: localizer is null");
        handle.Localizer.ClearResults();
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_get_summary")]
    public static int MlGetSummary(nint h, MlSummary* output)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_get_summary: localizer is null");
        if (output == null) return Fail(Status.Argument, "ml_get_summary: out is null");
        var s = handle.Localizer.Summary;
        var o = new MlSummary
        {
            Frames = s.Frames, Localizations = s.Localizations, Candidates = s.Candidates, DroppedEdge = s.DroppedAtEdge,
            DroppedOverlap = s.DroppedOverlap, DroppedFitFailed = s.DroppedFitFailed, DroppedLeftRoi = s.DroppedLeftRoi,
            WallSeconds = s.WallSeconds, ReadSeconds = s.ReadSeconds, DenoiseSeconds = s.DenoiseSeconds, DetectSeconds = s.DetectSeconds,
            FitSeconds = s.FitSeconds, Threads = s.Threads,
        };
        var name = Encoding.UTF8.GetBytes(s.Backend);
        int len = Math.Min(name.Length, 63);
        for (int i = 0; i < len; i++) o.Backend[i] = name[i];
        o.Backend[len] = 0;
        *output = o;
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_last_push_address")]
    public static int MlLastPushAddress(nint h, nint* address)
    {
        var handle = Get(h);
        if (handle == null) return Fail(Status.Argument, "ml_last_push_address: localizer is null");
        if (address == null) return Fail(Status.Argument, "ml_last_push_address: address is null");
        *address = handle.LastAddress;
        return Ok();
    }

    private static string? Utf8(byte* p) => p == null ? null : Marshal.PtrToStringUTF8((nint)p);

    [UnmanagedCallersOnly(EntryPoint = "ml_write_csv")]
    public static int MlWriteCsv(byte* path, Localization* locs, long count, double pixelSizeNm)
    {
        string? p = Utf8(path);
        if (string.IsNullOrEmpty(p)) return Fail(Status.Argument, "ml_write_csv: path is null or empty");
        if (count < 0 || count > int.MaxValue) return Fail(Status.Argument, $"ml_write_csv: count {count} is out of range");
        if (count > 0 && locs == null) return Fail(Status.Argument, "ml_write_csv: locs is null");
        if (!(pixelSizeNm > 0) || !double.IsFinite(pixelSizeNm)) return Fail(Status.Argument, $"ml_write_csv: pixel_size_nm {pixelSizeNm} must be > 0");
        return Guard(() => { LocalizationCsv.Write(p, new ReadOnlySpan<Localization>(locs, (int)count), pixelSizeNm); return Ok(); });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_read_csv")]
    public static int MlReadCsv(byte* path, double pixelSizeNm, Localization* output, long capacity, long* count)
    {
        string? p = Utf8(path);
        if (string.IsNullOrEmpty(p)) return Fail(Status.Argument, "ml_read_csv: path is null or empty");
        if (count == null) return Fail(Status.Argument, "ml_read_csv: count is null");
        if (!(pixelSizeNm > 0) || !double.IsFinite(pixelSizeNm)) return Fail(Status.Argument, $"ml_read_csv: pixel_size_nm {pixelSizeNm} must be > 0");
        if (capacity < 0 || (capacity > 0 && output == null)) return Fail(Status.Argument, "ml_read_csv: out/capacity invalid");
        return Guard(() =>
        {
            var locs = LocalizationCsv.Read(p, pixelSizeNm).Localizations;
            *count = locs.Length;
            if (output != null)
            {
                if (capacity < locs.Length) return Fail(Status.Argument, $"ml_read_csv: capacity {capacity} < {locs.Length} localizations in {p}");
                locs.AsSpan().CopyTo(new Span<Localization>(output, locs.Length));
            }
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_render")]
    public static int MlRender(Localization* locs, long count, int width, int height, double magnification, int method, double sigmaPx,
        float* output, long outCapacity, int* outWidth, int* outHeight)
    {
        if (count < 0 || count > int.MaxValue) return Fail(Status.Argument, $"ml_render: count {count} is out of range");
        if (count > 0 && locs == null) return Fail(Status.Argument, "ml_render: locs is null");
        if (width <= 0 || height <= 0) return Fail(Status.Argument, $"ml_render: image size {width}x{height} is not positive");
        if (!(magnification > 0 && magnification <= 100)) return Fail(Status.Argument, $"ml_render: magnification {magnification} must be in (0, 100]");
        if (method is < 0 or > 1) return Fail(Status.Argument, $"ml_render: method {method} (0 gaussian, 1 histogram)");
        if (double.IsNaN(sigmaPx) || sigmaPx < 0) return Fail(Status.Argument, $"ml_render: sigma_px {sigmaPx} must be >= 0");
        if (outWidth == null || outHeight == null) return Fail(Status.Argument, "ml_render: out_width/out_height is null");
        return Guard(() =>
        {
            var rs = new RenderSettings { Width = width, Height = height, Magnification = magnification,
                Method = method == 0 ? RenderMethod.Gaussian : RenderMethod.Histogram, SigmaPx = sigmaPx };
            rs.Validate();
            *outWidth = rs.OutputWidth; *outHeight = rs.OutputHeight;
            long need = (long)rs.OutputWidth * rs.OutputHeight;
            if (output == null) return Ok(); // size query
            if (outCapacity < need) return Fail(Status.Argument, $"ml_render: out_capacity {outCapacity} < {need} pixels");
            var img = Renderer.Render(new ReadOnlySpan<Localization>(locs, (int)count), rs);
            img.Pixels.AsSpan(0, (int)need).CopyTo(new Span<float>(output, (int)need));
            return Ok();
        });
    }
}
