using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Reliability;

/// <summary>
/// Model files as untrusted containers: unsafe entry names, unknown entry types, zip bombs, lying headers, corrupt and
/// truncated files, a fuzzer, and a check that the library has no way to deserialise arbitrary types. Extends
/// <c>Prediction/ModelTests.cs</c> (corrupt, future-version, other-backbone and other-weights files).
/// </summary>
public class ModelFileSecurityTests
{
    /// <summary>Mutated model files tried by the fuzzer in the default run.</summary>
    public const int DefaultFuzzInputs = 1000;

    private ImageClassifierModel _model = null!;
    private byte[] _good = null!;
    private string _folder = null!;

    [OneTimeSetUp]
    public async Task TrainOnce()
    {
        _model = await ImageClassifier.Create().FromFolder(SmallDataset.Create(3)).WithSeed(8).TrainAsync();
        _folder = TestPaths.NewTempFolder("security");
        var path = Path.Combine(_folder, "good.pkmodel");
        _model.Save(path);
        _good = File.ReadAllBytes(path);
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    [TestCase("../evil.txt", "unsafe name")]
    [TestCase("../../etc/cron.d/evil", "unsafe name")]
    [TestCase("/etc/passwd", "unsafe name")]
    [TestCase("C:/Windows/evil.dll", "unsafe name")]
    [TestCase("sub\\..\\..\\evil.txt", "unsafe name")]
    [TestCase("./manifest.json", "unsafe name")]
    [TestCase("folder/", "folder entry")]
    [TestCase("extra.bin", "unexpected entry")]
    public void Load_EntryWithAnUnsafeOrUnknownName_IsRefused(string name, string expected)
    {
        var path = Write(Rebuild(extra: [(name, "x"u8.ToArray(), 0)]));
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path).And.Message.Contains(expected));
    }

    [TestCase(0xA1FF, "symbolic link")]
    [TestCase(0x41ED, "folder")]
    [TestCase(0x11B6, "special file")]
    [TestCase(0x61B6, "special file")]
    public void Load_EntryThatIsNotARegularFile_IsRefused(int unixMode, string expected)
    {
        // head.bin carries a Unix file type other than "regular file" (a link, a folder, a FIFO, a block device).
        var path = Write(Rebuild(headAttributes: unixMode << 16));
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(expected).And.Message.Contains("head.bin"));
    }

    [Test]
    public void Load_DuplicateEntry_IsRefused()
    {
        var manifest = Entry(_good, ModelFile.ManifestEntry);
        var path = Write(Rebuild(extra: [(ModelFile.ManifestEntry, manifest, 0)]));
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("twice"));
    }

    [Test]
    public void Load_EncryptedEntry_IsRefused()
    {
        var bytes = _good.ToArray();
        SetCentralField(bytes, ModelFile.HeadEntry, 8, 2, 1); // general purpose flag bit 0: encrypted
        var path = Write(bytes);
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("encrypted"));
    }

    [Test]
    public void Load_ZipBomb_IsRefusedWithoutExpandingIt()
    {
        // 64 MB of zeros deflate to about 64 KB (ratio about 1,000): refused from the sizes in the header.
        var path = Write(Rebuild(replaceHead: new byte[64 * 1024 * 1024]));
        Assert.That(new FileInfo(path).Length, Is.LessThan(1_000_000));
        var before = GC.GetTotalAllocatedBytes(precise: true);
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("over-compressed").And.Message.Contains(ModelFile.HeadEntry));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(16_000_000), "the 64 MB were never expanded");
    }

    [TestCase(0x7FFFFFFFu)]
    [TestCase(600_000_000u)]
    public void Load_EntryDeclaringAnOversizedLength_IsRefused(uint declared)
    {
        var bytes = _good.ToArray();
        SetCentralField(bytes, ModelFile.HeadEntry, 24, 4, declared); // uncompressed size
        var path = Write(bytes);
        Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("oversized"));
    }

    [Test]
    public void Load_EntryLyingAboutItsLengthOrMethod_IsRefused()
    {
        var shorter = _good.ToArray();
        var realLength = (uint)Entry(_good, ModelFile.HeadEntry).Length;
        SetCentralField(shorter, ModelFile.HeadEntry, 24, 4, realLength - 100);
        var unknownMethod = _good.ToArray();
        SetCentralField(unknownMethod, ModelFile.HeadEntry, 10, 2, 99);
        Assert.Multiple(() =>
        {
            Assert.That(() => ImageClassifier.Load(Write(shorter)), Throws.TypeOf<ModelFormatException>(), "shorter than the data");
            Assert.That(() => ImageClassifier.Load(Write(unknownMethod)), Throws.TypeOf<ModelFormatException>(), "compression method 99");
        });
    }

    [Test]
    public void Load_ManifestWithNullsOrTypeMetadata_IsRefusedOrIgnoredNeverInstantiated()
    {
        var text = System.Text.Encoding.UTF8.GetString(Entry(_good, ModelFile.ManifestEntry));
        var nullHash = text.Replace($"\"{_model.BackboneWeightsSha256}\"", "null", StringComparison.Ordinal);
        var nullBackground = text.Replace("\"#FFFFFF\"", "null", StringComparison.Ordinal);
        var typed = text.Replace("{", "{\"$type\": \"System.Diagnostics.Process, System.Diagnostics.Process\", ", StringComparison.Ordinal);
        Assert.Multiple(() =>
        {
            Assert.That(nullHash, Is.Not.EqualTo(text));
            Assert.That(nullBackground, Is.Not.EqualTo(text));
            Assert.That(() => ImageClassifier.Load(Write(Rebuild(manifest: nullHash))), Throws.TypeOf<ModelFormatException>().With.Message.Contains("weights hash"));
            Assert.That(() => ImageClassifier.Load(Write(Rebuild(manifest: nullBackground))), Throws.TypeOf<ModelFormatException>());
        });

        // "$type" means nothing to PretrainedKit: the manifest is read into fixed records and nothing is created from a name.
        using var loaded = ImageClassifier.Load(Write(Rebuild(manifest: typed)));
        Assert.That(loaded.Classes, Is.EqualTo(_model.Classes));
    }

    [TestCase(0)]
    [TestCase(-1)]
    public void Load_FormatVersionBelowOne_SaysTheFileIsCorruptNotToUpdate(int version)
    {
        var text = System.Text.Encoding.UTF8.GetString(Entry(_good, ModelFile.ManifestEntry));
        var altered = System.Text.RegularExpressions.Regex.Replace(text, "\"formatVersion\":\\s*\\d+", $"\"formatVersion\": {version}");
        Assert.That(altered, Is.Not.EqualTo(text));
        var path = Write(Rebuild(manifest: altered));

        Assert.That(
            () => ImageClassifier.Load(path),
            Throws.TypeOf<ModelFormatException>()
                .With.Message.Contains(path)
                .And.Message.Contains($"format version {version}")
                .And.Message.Contains("corrupt or was altered")
                .And.Message.Contains("Re-save or re-train")
                .And.Message.Not.Contains("Update PretrainedKit"));
    }

    [Test]
    public void Load_TruncatedAtEveryFiftiethOfItsLength_ThrowsModelFormatException()
    {
        Assert.Multiple(() =>
        {
            for (var i = 0; i < 50; i++)
            {
                var length = _good.Length * i / 50;
                var path = Write(_good[..length]);
                Assert.That(() => ImageClassifier.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains(path), $"{length} bytes");
            }
        });
    }

    [Test]
    public void Load_SeededMutations_LoadOrThrowModelFormatException()
    {
        // Byte mutations of the archive, and mutations of the manifest's JSON inside a valid archive.
        var inputs = int.TryParse(Environment.GetEnvironmentVariable("PRETRAINEDKIT_MODEL_FUZZ_INPUTS"), out var n) && n > 0 ? n : DefaultFuzzInputs;
        var random = new Random(9);
        var manifest = Entry(_good, ModelFile.ManifestEntry);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        var path = Path.Combine(_folder, "fuzz.pkmodel");
        for (var i = 0; i < inputs; i++)
        {
            byte[] bytes;
            if (i % 2 == 0)
            {
                bytes = _good.ToArray();
                for (var k = random.Next(1, 5); k > 0; k--)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }
            }
            else
            {
                var json = manifest.ToArray();
                for (var k = random.Next(1, 4); k > 0; k--)
                {
                    json[random.Next(json.Length)] = (byte)"0123456789-\"{}[],:nulltrue \\x"[random.Next(29)];
                }

                bytes = Rebuild(manifest: System.Text.Encoding.UTF8.GetString(json));
            }

            File.WriteAllBytes(path, bytes);
            string outcome;
            try
            {
                // ModelFile.Load is everything ImageClassifier.Load reads from the file; the rest opens the installed backbone.
                _ = ModelFile.Load(path);
                outcome = "loaded";
            }
            catch (ModelFormatException)
            {
                outcome = "ModelFormatException";
            }
#pragma warning disable CA1031 // The fuzzer reports every other exception.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                outcome = "UNEXPECTED";
                failures.Add($"input #{i}: {ex}");
            }

            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        TestContext.Progress.WriteLine($"[model fuzz] {inputs} mutated model files: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}");
        Assert.That(failures, Is.Empty, () => string.Join(Environment.NewLine, failures.Take(5)));
        Assert.That(outcomes.GetValueOrDefault("ModelFormatException"), Is.GreaterThan(inputs / 2));
    }

    [Test]
    public void Library_HasNoWayToDeserializeArbitraryTypes()
    {
        // Scans every type and member the library references: no formatter that creates types named in data, no
        // creation of types from names, no ML.NET model loading (which instantiates types named in the file).
        string[] banned =
        [
            "BinaryFormatter", "NetDataContractSerializer", "SoapFormatter", "LosFormatter", "ObjectStateFormatter",
            "XmlSerializer", "DataContractSerializer", "JavaScriptSerializer", "TypeNameHandling", "JsonDerivedTypeAttribute",
            "JsonPolymorphicAttribute", "ModelOperationsCatalog",
        ];
        string[] bannedMembers =
        [
            "Type.GetType(String)", "Activator.CreateInstance", "Assembly.Load", "Assembly.LoadFrom", "Assembly.LoadFile",
            "AssemblyLoadContext.LoadFromAssemblyPath", "Type.InvokeMember", "ModelOperationsCatalog.Load",
        ];
        var referenced = ReferencedNames(typeof(ImageClassifierModel).Assembly.Location);
        Assert.That(referenced.Types, Has.Count.GreaterThan(50), "the scan sees the library's references");
        Assert.Multiple(() =>
        {
            Assert.That(referenced.Types.Where(t => banned.Any(b => t.Contains(b, StringComparison.Ordinal))), Is.Empty);
            Assert.That(referenced.Members.Where(m => bannedMembers.Contains(m, StringComparer.Ordinal)), Is.Empty);
        });
    }

    private static (List<string> Types, List<string> Members) ReferencedNames(string assembly)
    {
        using var stream = File.OpenRead(assembly);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var types = md.TypeReferences.Select(h => md.GetTypeReference(h)).Select(t => $"{md.GetString(t.Namespace)}.{md.GetString(t.Name)}").ToList();
        var members = new List<string>();
        foreach (var handle in md.MemberReferences)
        {
            var member = md.GetMemberReference(handle);
            var parent = member.Parent.Kind == HandleKind.TypeReference ? md.GetString(md.GetTypeReference((TypeReferenceHandle)member.Parent).Name) : "?";
            var name = md.GetString(member.Name);
            var signature = md.GetBlobReader(member.Signature);
            var header = signature.ReadSignatureHeader();
            var oneString = header.Kind == SignatureKind.Method && signature.ReadCompressedInteger() == 1 && signature.RemainingBytes > 1 && SkipReturnAndReadFirst(ref signature) == 0x0E;
            members.Add($"{parent}.{name}{(name == "GetType" && oneString ? "(String)" : string.Empty)}");
        }

        return (types, members);
    }

    private static byte SkipReturnAndReadFirst(ref BlobReader signature)
    {
        var ret = signature.ReadByte();
        if (ret is 0x12 or 0x11)
        {
            signature.ReadCompressedInteger(); // class or value type token
        }

        return signature.RemainingBytes > 0 ? signature.ReadByte() : (byte)0;
    }

    private static byte[] Entry(byte[] model, string name)
    {
        using var zip = new ZipArchive(new MemoryStream(model), ZipArchiveMode.Read);
        using var s = zip.GetEntry(name)!.Open();
        using var buffer = new MemoryStream();
        s.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Sets a field of the central-directory record of <paramref name="entry"/> (offsets as in APPNOTE 4.3.12).</summary>
    private static void SetCentralField(byte[] zip, string entry, int offset, int width, uint value)
    {
        var name = System.Text.Encoding.ASCII.GetBytes(entry);
        for (var i = 0; i + 46 < zip.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i)) == 0x02014b50
                && BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 28)) == name.Length
                && zip.AsSpan(i + 46, name.Length).SequenceEqual(name))
            {
                if (width == 2)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(zip.AsSpan(i + offset), (ushort)value);
                }
                else
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + offset), value);
                }

                return;
            }
        }

        Assert.Fail($"no central-directory record for {entry}");
    }

    private string Write(byte[] bytes)
    {
        var path = Path.Combine(_folder, $"case-{Guid.NewGuid():N}.pkmodel");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Re-zips the good model with changes: extra entries, another head or manifest, Unix attributes on head.bin.</summary>
    private byte[] Rebuild((string Name, byte[] Content, int Attributes)[]? extra = null, byte[]? replaceHead = null, string? manifest = null, int headAttributes = 0)
    {
        using var output = new MemoryStream();
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var name in new[] { ModelFile.ManifestEntry, ModelFile.HeadEntry })
            {
                var content = name == ModelFile.HeadEntry ? replaceHead ?? Entry(_good, name) : manifest is null ? Entry(_good, name) : System.Text.Encoding.UTF8.GetBytes(manifest);
                var entry = target.CreateEntry(name, CompressionLevel.SmallestSize);
                entry.ExternalAttributes = name == ModelFile.HeadEntry ? headAttributes : 0;
                using var s = entry.Open();
                s.Write(content);
            }

            foreach (var (name, content, attributes) in extra ?? [])
            {
                var entry = target.CreateEntry(name);
                entry.ExternalAttributes = attributes;
                using var s = entry.Open();
                s.Write(content);
            }
        }

        return output.ToArray();
    }
}
