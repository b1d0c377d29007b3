using System.CommandLine;
using System.CommandLine.Parsing;
using MaLiang.Engine;

namespace MaLiang.Cli;

/// <summary>
/// The <c>maliang</c> verbs. Exit codes: 0 success, 2 bad input (file, frame or parameter; one line on stderr),
/// 1 anything unexpected, 130 cancelled.
/// </summary>
internal static partial class Commands
{
    public const int ExitOk = 0, ExitError = 1, ExitBadInput = 2, ExitCancelled = 130;

    /// <summary>The root command with every verb.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("MaLiang: single-molecule localization by Poisson maximum likelihood (Quan, Li et al. 2010).");
        root.Subcommands.Add(LocalizeCommand.Build());
        root.Subcommands.Add(SimulateCommand.Build());
        root.Subcommands.Add(RenderCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        root.Subcommands.Add(CompareCommand.Build());
        root.Subcommands.Add(DevicesCommand.Build());
        root.Subcommands.Add(CalibrateZCommand.Build());
        AddMoreCommands(root);
        return root;
    }

    public static int Run(string[] args)
    {
        ParseResult parse = BuildRoot().Parse(args);
        // Before anything runs or is written: a mistyped option must not be taken for an input file (or a value).
        var unknown = UnknownOptions.Find(parse);
        if (unknown.Count > 0)
        {
            foreach (var m in unknown) Console.Error.WriteLine($"maliang: {m}");
            return ExitBadInput;
        }
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) Console.Error.WriteLine($"maliang: {e.Message}");
            return ExitBadInput;
        }
        // Ctrl+C: verbs that watch Commands.Cancel stop cleanly (no partial output); the others end at once as usual.
        ConsoleCancelEventHandler onCancel = (_, e) => { if (s_cancelWatched) { e.Cancel = true; s_cancel.Cancel(); } };
        Console.CancelKeyPress += onCancel;
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }) is int rc ? rc : ExitOk;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("maliang: cancelled");
            return ExitCancelled;
        }
        catch (MaLiangException e)
        {
            Console.Error.WriteLine($"maliang: {e.Message}");
            return ExitBadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"maliang: {e.Message}");
            return ExitBadInput;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"maliang: internal error: {e.GetType().Name}: {e.Message.Replace('\n', ' ')}");
            if (Environment.GetEnvironmentVariable("MALIANG_TRACE") == "1") Console.Error.WriteLine(e.StackTrace);
            return ExitError;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>Verbs contributed by other parts of the CLI (post-processing, devices).</summary>
    static partial void AddMoreCommands(RootCommand root);

    /// <summary>Cancellation shared by the verbs (Ctrl+C).</summary>
    public static CancellationToken Cancel { get { s_cancelWatched = true; return s_cancel.Token; } }
    private static readonly CancellationTokenSource s_cancel = new();
    private static volatile bool s_cancelWatched;
}
