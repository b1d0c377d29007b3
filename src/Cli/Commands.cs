namespace MaLiang.Cli;

internal static class Commands
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("maliang: no commands yet");
        return 2;
    }
}
