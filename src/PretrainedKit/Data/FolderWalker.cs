using PretrainedKit.Internal;

namespace PretrainedKit.Data;

/// <summary>
/// Walks the folders below a dataset root without ever looping or counting a folder twice, and without letting one bad
/// folder stop the scan. Each folder is known by its real path (links and <c>..</c> resolved); a folder is not entered
/// when its real path is the root or above it (a loop, such as <c>ln -s .. cats/up</c>), when it was entered before (a
/// second link to it), or when it is a link into the dataset itself (its images are scanned under their own class; a
/// link into a hidden top-level folder such as <c>.raw</c> is followed, since nothing else scans there). Folders that
/// cannot be read (permission denied, a path too long) are skipped. Every folder not entered is named, with the reason,
/// in the ignored list.
/// </summary>
/// <threadsafety>Not thread-safe: one walker per scan.</threadsafety>
internal sealed class FolderWalker
{
    private static readonly EnumerationOptions OneLevel = new() { RecurseSubdirectories = false, IgnoreInaccessible = false, AttributesToSkip = 0, MatchType = MatchType.Simple };
    private readonly string _rootReal;
    private readonly HashSet<string> _visited = new(StringComparer.Ordinal);
    private readonly List<string> _ignored;

    public FolderWalker(string root, List<string> ignored)
    {
        _rootReal = FileGuard.RealPath(root) ?? root;
        _visited.Add(_rootReal);
        _ignored = ignored;
    }

    /// <summary>Decides whether to enter <paramref name="folder"/>; if not, records why in the ignored list.</summary>
    public bool Admit(string folder)
    {
        string? linkTarget;
        try
        {
            linkTarget = new DirectoryInfo(folder).LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            linkTarget = null; // A path too long to ask; realpath below fails on it too and says why.
        }

        var isLink = linkTarget is not null;
        var real = FileGuard.RealPath(folder);
        if (real is null)
        {
            Ignore(folder, isLink
                ? $"a symbolic link to '{FileGuard.Shorten(linkTarget!)}' that does not lead to a readable folder (a loop of links, or a path too long); not followed. Fix or remove the link."
                : folder.Length >= 4096
                    ? $"the path is {folder.Length:N0} characters long, more than the file system allows; skipped. Move its images to a shorter path."
                    : "the folder's real path cannot be resolved; skipped.");
            return false;
        }

        if (real == _rootReal || _rootReal.StartsWith(WithSeparator(real), StringComparison.Ordinal))
        {
            Ignore(folder, $"leads to '{FileGuard.Shorten(real)}', the dataset folder itself or a folder above it: following it would loop. Not followed; remove the link.");
            return false;
        }

        if (isLink && real.StartsWith(WithSeparator(_rootReal), StringComparison.Ordinal)
            && !Path.GetRelativePath(_rootReal, real).StartsWith('.'))
        {
            Ignore(folder, $"a symbolic link to '{FileGuard.Shorten(real)}' inside the dataset folder, whose images are scanned under their own class; following it would label them twice. Not followed.");
            return false;
        }

        if (_visited.Contains(real))
        {
            Ignore(folder, $"leads to '{FileGuard.Shorten(real)}', a folder already scanned (a loop, or a second link to it): its images are counted once. Not followed.");
            return false;
        }

        _visited.Add(real);
        return true;
    }

    /// <summary>Every file below <paramref name="folder"/> (already admitted), entering only admitted sub-folders.</summary>
    public List<string> Files(string folder)
    {
        var files = new List<string>();
        var pending = new Stack<string>();
        pending.Push(folder);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            List<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(current).EnumerateFileSystemInfos("*", OneLevel).ToList();
            }
            catch (UnauthorizedAccessException)
            {
                Ignore(current, $"the folder cannot be read: permission denied; its images are skipped. Give the current user read access, or move them out.");
                continue;
            }
            catch (PathTooLongException)
            {
                Ignore(current, $"the path is {current.Length:N0} characters long, more than the file system allows; skipped. Move its images to a shorter path.");
                continue;
            }
            catch (IOException ex)
            {
                Ignore(current, current.Length >= 4096
                    ? $"the path is {current.Length:N0} characters long, more than the file system allows; skipped. Move its images to a shorter path."
                    : $"the folder cannot be read ({FileGuard.Shorten(ex.Message, 200)}); its images are skipped.");
                continue;
            }

            foreach (var entry in entries)
            {
                var path = Path.Join(current, entry.Name); // Not FullName: .NET leaves it empty past the path limit.
                if (entry is DirectoryInfo)
                {
                    if (Admit(path))
                    {
                        pending.Push(path);
                    }
                }
                else
                {
                    files.Add(path);
                }
            }
        }

        return files;
    }

    private static string WithSeparator(string path) => path.EndsWith(Path.DirectorySeparatorChar) ? path : path + Path.DirectorySeparatorChar;

    private void Ignore(string path, string reason) => _ignored.Add($"{FileGuard.Shorten(path, 200)}: {reason}");
}
