using System.Text;
using PretrainedKit.Internal;

namespace PretrainedKit.Data;

/// <summary>
/// Reads a CSV file of labelled images: a header naming the columns <c>path</c> and <c>label</c> (any case, any order,
/// other columns ignored), then one row per image. Fields follow RFC 4180 (a field in double quotes may hold commas,
/// line breaks and doubled quotes); the file is UTF-8, with or without a byte order mark; blank lines are ignored;
/// relative paths are resolved against the CSV file's folder. Every bad row is collected, with its line number, into one
/// <see cref="InvalidDatasetException"/>.
/// </summary>
/// <threadsafety>Stateless; safe to call from many threads at once.</threadsafety>
internal static class LabeledImageCsv
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads and checks the file.</summary>
    /// <param name="path">The CSV file.</param>
    /// <returns>The images, in file order, with absolute paths.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDatasetException">The file is not a usable list; every problem is listed with its line number.</exception>
    public static IReadOnlyList<LabeledImage> Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var csv = Path.GetFullPath(path);
        if (!File.Exists(csv))
        {
            throw new FileNotFoundException(
                Directory.Exists(csv)
                    ? $"'{csv}' is a folder, not a CSV file. Give a CSV file with the header 'path,label', or use the folder form."
                    : $"The CSV file '{csv}' does not exist. Give a CSV file with the header 'path,label' and one row per image.",
                csv);
        }

        if (FileGuard.RegularFileLength(csv) is null && FileGuard.Inspect(csv) is { Kind: not FileKind.Regular } facts)
        {
            // A named pipe would block the read and a device never ends: judged before the file is opened.
            throw new InvalidDatasetException([new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' is {facts.Describe()}, not a regular file: reading it could block or never end, so it is not opened. Give a CSV file.")]);
        }

        string text;
        try
        {
            text = File.ReadAllText(csv, StrictUtf8);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDatasetException([new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' is not valid UTF-8 ({ex.Message}) Save it as UTF-8.")]);
        }

        return Parse(text, csv);
    }

    /// <summary>Parses the text of a CSV file.</summary>
    /// <param name="text">The text (a leading byte order mark is ignored).</param>
    /// <param name="csv">The absolute path of the file, for messages and relative paths.</param>
    /// <returns>The images.</returns>
    /// <exception cref="InvalidDatasetException">Any row is bad; every problem is listed.</exception>
    public static IReadOnlyList<LabeledImage> Parse(string text, string csv)
    {
        var folder = Path.GetDirectoryName(csv) ?? string.Empty;
        var problems = new List<DatasetProblem>();
        var records = Records(text.TrimStart('\uFEFF'), csv, problems);
        DatasetProblem Problem(int line, DatasetProblemKind kind, string message, string? about = null) =>
            new(about ?? csv, kind, $"'{csv}' line {line}: {message}") { Line = line };

        if (records.Count == 0)
        {
            problems.Add(new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' holds no header. Its first line must be 'path,label', then one row per image."));
            throw new InvalidDatasetException(problems);
        }

        var (headerLine, header) = records[0];
        var names = header.Select(h => h.Trim()).ToList();
        var pathColumn = names.FindIndex(h => h.Equals("path", StringComparison.OrdinalIgnoreCase));
        var labelColumn = names.FindIndex(h => h.Equals("label", StringComparison.OrdinalIgnoreCase));
        if (pathColumn < 0 || labelColumn < 0)
        {
            var missing = string.Join(" and ", new[] { pathColumn < 0 ? "'path'" : null, labelColumn < 0 ? "'label'" : null }.OfType<string>());
            problems.Add(Problem(headerLine, DatasetProblemKind.InvalidRow, $"the header ('{string.Join(",", names)}') has no {missing} column. The first line must name the columns, for example 'path,label'."));
            throw new InvalidDatasetException(problems);
        }

        var images = new List<LabeledImage>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, fields) in records.Skip(1))
        {
            if (fields.Count < names.Count)
            {
                var lacking = fields.Count <= Math.Max(pathColumn, labelColumn) ? (fields.Count <= pathColumn ? "path" : "label") : names[fields.Count];
                problems.Add(Problem(line, DatasetProblemKind.InvalidRow, $"the row has {fields.Count} field{(fields.Count == 1 ? string.Empty : "s")} but the header has {names.Count}: the '{lacking}' column is missing. Write 'path,label'."));
                continue;
            }

            if (fields.Count > names.Count)
            {
                problems.Add(Problem(line, DatasetProblemKind.InvalidRow, $"the row has {fields.Count} fields but the header has {names.Count}. Put a path or label that contains a comma in double quotes, for example \"a,b.png\",cat."));
                continue;
            }

            var raw = fields[pathColumn];
            var label = fields[labelColumn];
            if (string.IsNullOrWhiteSpace(raw))
            {
                problems.Add(Problem(line, DatasetProblemKind.InvalidRow, "the path is empty. Give the image file's path (relative paths are resolved against the CSV file's folder)."));
                continue;
            }

            string full;
            try
            {
                full = Path.GetFullPath(Path.Combine(folder, raw));
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
            {
                problems.Add(Problem(line, DatasetProblemKind.InvalidRow, $"the path '{raw}' is not a valid path ({ex.Message})."));
                continue;
            }

            if (string.IsNullOrWhiteSpace(label))
            {
                problems.Add(Problem(line, DatasetProblemKind.InvalidLabel, $"the label of '{full}' is empty. Give every image a class name.", full));
            }

            if (seen.TryGetValue(full, out var first))
            {
                problems.Add(Problem(line, DatasetProblemKind.DuplicateImage, $"'{full}' is already listed on line {first}. List each image once, with one label.", full));
                continue;
            }

            seen[full] = line;
            if (!File.Exists(full))
            {
                problems.Add(Problem(line, DatasetProblemKind.MissingFile, Directory.Exists(full)
                    ? $"'{full}' is a folder, not an image file. List image files, one per row."
                    : $"the image '{full}' does not exist. Fix the path (relative paths are resolved against '{folder}') or remove the row.", full));
                continue;
            }

            if (!string.IsNullOrWhiteSpace(label))
            {
                images.Add(new LabeledImage(full, label));
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidDatasetException(problems);
        }

        return images;
    }

    /// <summary>Splits the text into records of fields (RFC 4180), each with the line it starts on; blank lines are skipped.</summary>
    private static List<(int Line, List<string> Fields)> Records(string text, string csv, List<DatasetProblem> problems)
    {
        var records = new List<(int Line, List<string> Fields)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var recordLine = 1;
        var i = 0;
        var quoted = false; // The current field was quoted (so an empty record is not a blank line).
        var bad = false;

        void EndRecord()
        {
            fields.Add(field.ToString());
            field.Clear();
            var blank = !quoted && fields.Count == 1 && string.IsNullOrWhiteSpace(fields[0]);
            if (!blank && !bad)
            {
                records.Add((recordLine, fields));
            }

            fields = [];
            quoted = false;
            bad = false;
        }

        while (i < text.Length)
        {
            var c = text[i];
            if (c == '"' && field.Length == 0 && !quoted)
            {
                // A quoted field: up to the closing quote; "" is one quote; commas and line breaks are data.
                quoted = true;
                var start = line;
                i++;
                var closed = false;
                while (i < text.Length)
                {
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }

                        closed = true;
                        i++;
                        break;
                    }

                    if (text[i] == '\n')
                    {
                        line++;
                    }

                    field.Append(text[i]);
                    i++;
                }

                if (!closed)
                {
                    problems.Add(new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' line {start}: a quoted field is never closed. End it with a double quote, and write a quote inside it as two (\"\")." ) { Line = start });
                    return records;
                }

                if (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                {
                    if (!bad)
                    {
                        problems.Add(new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' line {line}: text follows the closing quote of a field. Put the whole field in quotes and write a quote inside it as two (\"\").") { Line = line });
                    }

                    bad = true;
                }

                continue;
            }

            switch (c)
            {
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    quoted = false;
                    i++;
                    break;
                case '\r' or '\n':
                    EndRecord();
                    i += c == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                    line++;
                    recordLine = line;
                    break;
                case '"':
                    if (!bad)
                    {
                        problems.Add(new DatasetProblem(csv, DatasetProblemKind.InvalidRow, $"'{csv}' line {line}: a double quote inside an unquoted field. Put the whole field in quotes and write the quote as two (\"\").") { Line = line });
                    }

                    bad = true;
                    field.Append(c);
                    i++;
                    break;
                default:
                    field.Append(c);
                    i++;
                    break;
            }
        }

        if (field.Length > 0 || fields.Count > 0 || quoted)
        {
            EndRecord();
        }

        return records;
    }
}
