using System.Text.RegularExpressions;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace PretrainedKit.Tests;

/// <summary>
/// Reads the compiled library and checks every reference between its namespaces against the "May use" column of
/// docs/ARCHITECTURE.md: dependencies point one way, and no namespace depends on one that depends back on it.
/// </summary>
public sealed partial class ArchitectureTests
{
    private const string Root = "PretrainedKit";

    [Test]
    public void Assembly_EveryNamespaceReference_IsAllowedByTheArchitectureTable()
    {
        var allowed = ReadTable();
        var actual = ReadReferences();
        var violations = actual
            .SelectMany(kv => kv.Value.Where(to => to != kv.Key && !(allowed.TryGetValue(kv.Key, out var may) && may.Contains(to))).Select(to => $"{kv.Key} -> {to}"))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Multiple(() =>
        {
            Assert.That(actual.Keys.Where(n => !allowed.ContainsKey(n)), Is.Empty, "every namespace of the assembly has a row in docs/ARCHITECTURE.md");
            Assert.That(violations, Is.Empty, "references against the table (namespace -> namespace it uses)");
        });
    }

    [Test]
    public void ArchitectureTable_HasNoLoop()
    {
        var allowed = ReadTable();
        var loops = new List<string>();
        foreach (var start in allowed.Keys)
        {
            var seen = new HashSet<string>();
            var stack = new Stack<string>(allowed[start]);
            while (stack.Count > 0)
            {
                var next = stack.Pop();
                if (next == start)
                {
                    loops.Add(start);
                    break;
                }

                if (seen.Add(next) && allowed.TryGetValue(next, out var further))
                {
                    foreach (var f in further)
                    {
                        stack.Push(f);
                    }
                }
            }
        }

        Assert.That(loops, Is.Empty, "namespaces that can reach themselves through the table");
        Assert.That(allowed, Has.Count.GreaterThanOrEqualTo(10), "the table was read");
    }

    [Test]
    public void Assembly_ReferenceReader_SeesKnownReferences()
    {
        // Guards the reader itself: references that exist must be found, or the main test could never fail.
        var actual = ReadReferences();
        Assert.Multiple(() =>
        {
            Assert.That(actual[Root], Does.Contain("Featurization"), "ImageClassifierModel holds a FeatureExtractor");
            Assert.That(actual["Featurization"], Does.Contain("Backbones").And.Contain("Caching").And.Contain("Imaging"));
            Assert.That(actual["Serialization"], Does.Contain("Models"));
        });
    }

    private static Dictionary<string, HashSet<string>> ReadTable()
    {
        var path = Path.Combine(TestPaths.RepositoryRoot, "docs", "ARCHITECTURE.md");
        var table = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(path))
        {
            var cells = line.Split('|');
            if (cells.Length < 5 || NamespaceCell().Match(cells[1]) is not { Success: true } name)
            {
                continue;
            }

            var uses = cells[3].Trim();
            table[name.Groups[1].Value] = uses == "nothing"
                ? []
                : uses.Split(',').Select(u => u.Trim()).Where(u => u.Length > 0).Select(u => u == "root" ? Root : u).ToHashSet(StringComparer.Ordinal);
        }

        return table;
    }

    private static Dictionary<string, HashSet<string>> ReadReferences()
    {
        var assemblyPath = typeof(ImageClassifier).Assembly.Location;
        using var module = ModuleDefinition.ReadModule(assemblyPath);
        var result = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in module.GetTypes())
        {
            var from = LayerOf(type);
            if (from is null)
            {
                continue;
            }

            var uses = result.TryGetValue(from, out var set) ? set : result[from] = new HashSet<string>(StringComparer.Ordinal);
            void Add(TypeReference? reference)
            {
                while (reference is TypeSpecification spec)
                {
                    if (spec is GenericInstanceType generic)
                    {
                        foreach (var argument in generic.GenericArguments)
                        {
                            Add(argument);
                        }
                    }

                    reference = spec.ElementType;
                }

                if (reference is null || reference is GenericParameter || reference.Scope is not ModuleDefinition)
                {
                    return;
                }

                if (LayerOf(reference) is { } to)
                {
                    uses.Add(to);
                }
            }

            Add(type.BaseType);
            foreach (var i in type.Interfaces)
            {
                Add(i.InterfaceType);
            }

            foreach (var field in type.Fields)
            {
                Add(field.FieldType);
            }

            foreach (var property in type.Properties)
            {
                Add(property.PropertyType);
            }

            foreach (var method in type.Methods)
            {
                Add(method.ReturnType);
                foreach (var p in method.Parameters)
                {
                    Add(p.ParameterType);
                }

                if (!method.HasBody)
                {
                    continue;
                }

                foreach (var variable in method.Body.Variables)
                {
                    Add(variable.VariableType);
                }

                foreach (var instruction in method.Body.Instructions)
                {
                    switch (instruction.Operand)
                    {
                        case TypeReference t:
                            Add(t);
                            break;
                        case MethodReference m:
                            Add(m.DeclaringType);
                            Add(m.ReturnType);
                            foreach (var p in m.Parameters)
                            {
                                Add(p.ParameterType);
                            }

                            if (m is GenericInstanceMethod gm)
                            {
                                foreach (var a in gm.GenericArguments)
                                {
                                    Add(a);
                                }
                            }

                            break;
                        case FieldReference f:
                            Add(f.DeclaringType);
                            Add(f.FieldType);
                            break;
                    }
                }
            }
        }

        return result;
    }

    /// <summary>The layer of a type: the first namespace segment below PretrainedKit (nested types take their outer type's), or the root.</summary>
    private static string? LayerOf(TypeReference type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        var ns = type.Namespace;
        if (ns == Root)
        {
            return Root;
        }

        return ns.StartsWith(Root + ".", StringComparison.Ordinal) ? ns[(Root.Length + 1)..].Split('.')[0] : null;
    }

    [GeneratedRegex(@"^\s*`(?:PretrainedKit\.)?([A-Za-z]+)`")]
    private static partial Regex NamespaceCell();
}
