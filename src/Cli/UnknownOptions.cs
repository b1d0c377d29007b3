using System.CommandLine;
using System.CommandLine.Parsing;

namespace MaLiang.Cli;

/// <summary>
/// Finds options the verb does not have. System.CommandLine takes an unknown <c>--psf-sgma</c> for a positional
/// argument when the verb has one that can hold it (localize's input files), so the user saw "--psf-sgma: no such
/// file"; elsewhere it says "Unrecognized command or argument". Both become "unknown option --psf-sgma (did you mean
/// --psf-sigma?)". A token counts as an option when it starts with "--", or with "-" and a letter (so "-5" and "-" stay
/// values); tokens after "--" are never options, which is how a file named "-movie.tif" stays reachable (or ./-movie.tif).
/// </summary>
internal static class UnknownOptions
{
    /// <summary>One message per unknown option of the parsed verb, in command-line order; empty when there is none.</summary>
    public static List<string> Find(ParseResult parse)
    {
        var messages = new List<string>();
        var command = parse.CommandResult.Command;
        // An unknown verb ("maliang localise x.tif"): the parse stays at the root with the verb unmatched.
        if (command is RootCommand && parse.UnmatchedTokens.Count > 0 && !LooksLikeOption(parse.UnmatchedTokens[0])
            && parse.Tokens.Count > 0 && parse.Tokens[0].Value == parse.UnmatchedTokens[0])
        {
            string verb = parse.UnmatchedTokens[0];
            string? guess = Suggest(verb, command.Subcommands.Select(c => c.Name));
            return [$"unknown command {verb}" + (guess != null ? $" (did you mean {guess}?)" : " (see: maliang --help)")];
        }
        // Token instances the parser put into options' values (e.g. "--offset -5"): values, not options.
        var optionValues = new HashSet<Token>(ReferenceEqualityComparer.Instance);
        foreach (var child in parse.CommandResult.Children)
            if (child is OptionResult o) foreach (var t in o.Tokens) optionValues.Add(t);
        var unmatched = new HashSet<string>(parse.UnmatchedTokens);
        foreach (var t in parse.Tokens)
        {
            if (t.Type == TokenType.DoubleDash) break; // everything after "--" is an argument
            if (t.Type != TokenType.Argument || optionValues.Contains(t) || !LooksLikeOption(t.Value)) continue;
            // Either unmatched or taken by a positional argument: an option name the verb does not know.
            if (!unmatched.Contains(t.Value) && !TakenByArgument(parse.CommandResult, t)) continue;
            string name = t.Value.Split('=', ':')[0];
            string? guess = Suggest(name, OptionNames(command, parse.RootCommandResult.Command));
            messages.Add($"unknown option {name}" + (guess != null ? $" (did you mean {guess}?)"
                : $" (see: maliang{(command is RootCommand ? "" : " " + command.Name)} --help)"));
        }
        return messages;
    }

    private static bool TakenByArgument(CommandResult c, Token t)
    {
        foreach (var child in c.Children)
            if (child is ArgumentResult a) foreach (var at in a.Tokens) if (ReferenceEquals(at, t)) return true;
        return false;
    }

    public static bool LooksLikeOption(string v) =>
        v.Length >= 2 && v[0] == '-' && (v[1] == '-' ? v.Length > 2 : char.IsLetter(v[1]));

    /// <summary>Every name and alias of the command's options, and of the root's recursive ones (--help).</summary>
    public static IEnumerable<string> OptionNames(Command command, Command root)
    {
        foreach (var o in command.Options.Concat(command == root ? [] : root.Options.Where(o => o.Recursive)))
        {
            yield return o.Name;
            foreach (var a in o.Aliases) yield return a;
        }
    }

    /// <summary>The closest option name by edit distance (insert, delete, substitute, swap two neighbours), when it is
    /// close enough to be a typo: 1 edit for names up to 4 letters, 2 up to 8, 3 beyond. Null when none is.</summary>
    public static string? Suggest(string typed, IEnumerable<string> names)
    {
        string t = typed.TrimStart('-');
        if (t.Length == 0) return null;
        int allowed = t.Length <= 4 ? 1 : t.Length <= 8 ? 2 : 3;
        string? best = null;
        int bestD = int.MaxValue;
        foreach (var n in names)
        {
            if (n.TrimStart('-').Length <= 1) continue; // never suggest "-o" for a long name
            int d = Distance(t, n.TrimStart('-'));
            if (d < bestD || (d == bestD && best != null && n.StartsWith("--") && !best.StartsWith("--"))) { bestD = d; best = n; }
        }
        return bestD <= allowed ? best : null;
    }

    /// <summary>Optimal string alignment distance (Damerau-Levenshtein without repeated edits of one substring).</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1;
                int v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = Math.Min(v, d[i - 2, j - 2] + 1);
                d[i, j] = v;
            }
        return d[a.Length, b.Length];
    }
}
