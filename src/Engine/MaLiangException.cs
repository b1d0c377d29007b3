namespace MaLiang.Engine;

/// <summary>
/// A user-facing error: bad input file, frame or parameter. The message is one line that names what is wrong;
/// callers (CLI, C ABI, bridges) show it as it is and exit with code 2 / return an error code.
/// </summary>
public class MaLiangException : Exception
{
    public MaLiangException(string message) : base(message) { }
    public MaLiangException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A parameter is out of range or not a number.</summary>
public sealed class InvalidParameterException : MaLiangException
{
    public string Parameter { get; }
    public InvalidParameterException(string parameter, string message) : base($"parameter {parameter}: {message}")
        => Parameter = parameter;
}

/// <summary>The requested fit backend (OpenCL, CUDA) is not available on this machine; the message lists the devices found.</summary>
public sealed class BackendUnavailableException : MaLiangException
{
    public BackendUnavailableException(string message) : base(message) { }
}
