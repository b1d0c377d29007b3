using System.CommandLine;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Cli;

/// <summary><c>maliang devices</c>: the GPU devices each backend sees, or why it sees none.</summary>
internal static class DevicesCommand
{
    public static Command Build()
    {
        var cmd = new Command("devices", "List the OpenCL and CUDA devices --backend can use.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"cpu: {Environment.ProcessorCount} threads, SIMD {System.Numerics.Vector<float>.Count} floats wide");
            foreach (var d in GpuDevices.List()) Console.WriteLine(d);
            using var auto = FitBackends.Create(Engine.BackendKind.Auto, 0, out string description);
            Console.WriteLine($"auto picks: {description}");
            return Commands.ExitOk;
        });
        return cmd;
    }
}
