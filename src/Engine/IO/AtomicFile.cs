namespace MaLiang.Engine.IO;

/// <summary>
/// Writes a file all-or-nothing: the data go to a hidden temporary file in the same folder (so the final
/// rename never crosses file systems), and <see cref="Commit"/> renames it over <see cref="Path"/>.
/// Disposing without <see cref="Commit"/> (an exception, a cancelled run) deletes the temporary file, so a
/// half-written result never sits where the user expects a good one.
/// <code>
/// using var f = AtomicFile.Create(path);
/// f.Stream.Write(...);
/// f.Commit();
/// </code>
/// </summary>
public sealed class AtomicFile : IDisposable
{
    private FileStream? _stream;
    private bool _committed;

    /// <summary>The final path the file appears at on <see cref="Commit"/>.</summary>
    public string Path { get; }
    /// <summary>The temporary file being written.</summary>
    public string TempPath { get; }
    /// <summary>Write here; seekable (writers patch headers after the data).</summary>
    public FileStream Stream => _stream ?? throw new ObjectDisposedException(nameof(AtomicFile));

    private AtomicFile(string path, string tempPath, FileStream stream)
    {
        Path = path; TempPath = tempPath; _stream = stream;
    }

    /// <summary>Opens a new temporary file next to <paramref name="path"/>.</summary>
    /// <exception cref="MaLiangException">The folder does not exist or is not writable.</exception>
    public static AtomicFile Create(string path, int bufferSize = 1 << 16)
    {
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full) ?? ".";
        string temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize);
            return new AtomicFile(full, temp, fs);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MaLiangException($"cannot write {path}: {e.Message}", e);
        }
    }

    /// <summary>Flushes to disk and renames the temporary file over <see cref="Path"/> (replacing an existing file).</summary>
    public void Commit()
    {
        if (_committed) return;
        var fs = Stream;
        try
        {
            fs.Flush(flushToDisk: true);
            fs.Dispose();
            _stream = null;
            File.Move(TempPath, Path, overwrite: true);
            _committed = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new MaLiangException($"cannot write {Path}: {e.Message}", e);
        }
    }

    /// <summary>Without a prior <see cref="Commit"/>, closes and deletes the temporary file.</summary>
    public void Dispose()
    {
        if (_committed) return;
        _stream?.Dispose();
        _stream = null;
        try { File.Delete(TempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
