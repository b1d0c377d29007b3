namespace MaLiang.Engine.Tests.IO;

/// <summary>A fresh folder per test, deleted afterwards; lets tests assert that no temporary files are left behind.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "maliang-io-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public string[] Files() => Directory.GetFiles(Path).Select(System.IO.Path.GetFileName).Order().ToArray()!;
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
