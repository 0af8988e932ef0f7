using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using PretrainedKit.Backbones;
using PretrainedKit.Serialization;

namespace PretrainedKit.Tests.Serialization;

/// <summary>
/// Model files outlive the library that wrote them: a file saved by 0.1.0 (format version 1) is kept in the repository,
/// and every later version must load it and predict what it predicted then.
/// </summary>
public partial class FormatCompatibilityTests
{
    private static string Fixture(string name) => Path.Combine(TestPaths.RepositoryRoot, "tests", "PretrainedKit.Tests", "Fixtures", name);

    /// <summary>Copies a model file, rewriting its manifest text with <paramref name="edit"/>.</summary>
    private static void CopyWithManifestEdit(string source, string target, Func<string, string> edit)
    {
        File.Copy(source, target);
        ModelManifestEdit.InPlace(target, edit);
    }

    [TestCase("format-v1-fashion3", 1)]
    [TestCase("format-v2-fashion3", 2)]
    [TestCase("format-v3-fashion3", 3)]
    [TestCase("format-v4-fashion3", 4)]
    [TestCase("format-v5-fashion3", 5)]
    public void Load_OlderFormatFile_PredictsWhatItPredictedWhenSaved(string fixture, int version)
    {
        var expected = JsonDocument.Parse(File.ReadAllText(Fixture($"{fixture}.expected.json"))).RootElement.GetProperty("predictions").EnumerateArray().ToList();
        using var model = ImageClassifierModel.Load(Fixture($"{fixture}.pkmodel"));
        Assert.That(model.Classes, Is.EqualTo(new[] { "Bag", "Sneaker", "Trouser" }));
        Assert.That(model.Precision, Is.EqualTo(version == 4 ? Precision.Int8 : Precision.Float32)); // Files from before int8 existed are float.
        Assert.That(expected, Has.Count.EqualTo(12));
        Assert.Multiple(() =>
        {
            foreach (var row in expected)
            {
                var image = Path.Combine(TestPaths.RepositoryRoot, row.GetProperty("image").GetString()!);
                var prediction = model.Predict(image, topK: 1);
                Assert.That(prediction.Label, Is.EqualTo(row.GetProperty("label").GetString()), image);
                Assert.That(prediction.Probability, Is.EqualTo(row.GetProperty("probability").GetDouble()).Within(1e-3), image);
            }
        });
        if (version == 2)
        {
            Assert.That(model.FeatureLayout, Is.EqualTo(FeatureLayout.MultiStageGrid));
            Assert.That(model.Normalization, Is.EqualTo(PretrainedKit.Models.FeatureNormalization.L2ThenStandardize));
            Assert.That(model.TestTimeAugmentation, Is.EqualTo(PretrainedKit.Models.TestTimeAugmentation.Mirror));
        }

        if (version is 3 or 5)
        {
            Assert.That(model.HeadKind, Is.EqualTo(PretrainedKit.Models.HeadKind.Kernel));
            Assert.That(model.FeatureLayout, Is.EqualTo(FeatureLayout.Pooled));
        }
    }

    [Test]
    public void Save_WritesVersion2OnlyForSettingsAVersion1ReaderWouldGetWrong()
    {
        using var v2 = ImageClassifierModel.Load(Fixture("format-v2-fashion3.pkmodel"));
        using var v1 = ImageClassifierModel.Load(Fixture("format-v1-fashion3.pkmodel"));
        using var v3 = ImageClassifierModel.Load(Fixture("format-v3-fashion3.pkmodel"));
        using var v4 = ImageClassifierModel.Load(Fixture("format-v4-fashion3.pkmodel"));
        using var v5 = ImageClassifierModel.Load(Fixture("format-v5-fashion3.pkmodel"));
        var folder = TestPaths.NewTempFolder();
        int Written(ImageClassifierModel model, string name)
        {
            var path = Path.Combine(folder, name);
            model.Save(path);
            using var zip = ZipFile.OpenRead(path);
            using var manifest = JsonDocument.Parse(zip.GetEntry("manifest.json")!.Open());
            return manifest.RootElement.GetProperty("formatVersion").GetInt32();
        }

        Assert.That(Written(v1, "v1.pkmodel"), Is.EqualTo(1));
        Assert.That(Written(v2, "v2.pkmodel"), Is.EqualTo(2));
        Assert.That(Written(v3, "v3.pkmodel"), Is.EqualTo(3));
        Assert.That(Written(v4, "v4.pkmodel"), Is.EqualTo(4));
        Assert.That(Written(v5, "v5.pkmodel"), Is.EqualTo(5));
    }

    [Test]
    public void Load_Version2SettingsInAVersion1File_IsRefusedAsAltered()
    {
        var path = Path.Combine(TestPaths.NewTempFolder(), "altered.pkmodel");
        CopyWithManifestEdit(Fixture("format-v2-fashion3.pkmodel"), path, text => text.Replace("\"formatVersion\": 2", "\"formatVersion\": 1", StringComparison.Ordinal));
        Assert.That(() => ImageClassifierModel.Load(path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("altered"));
    }

    [Test]
    public void Load_FormatVersion1FileFrom010_IsUncalibratedAndNeverUnknown()
    {
        using var model = ImageClassifierModel.Load(Fixture("format-v1-fashion3.pkmodel"));
        var image = Directory.EnumerateFiles(Path.Combine(TestPaths.FashionTest, "Bag"), "*.png").Order(StringComparer.Ordinal).First();
        var prediction = model.Predict(image);
        Assert.Multiple(() =>
        {
            Assert.That(model.Temperature, Is.EqualTo(1));
            Assert.That(model.UnknownThreshold, Is.Null);
            Assert.That(prediction.UnknownThreshold, Is.Null);
            Assert.That(prediction.IsUnknown, Is.False);
        });
    }

    [Test]
    public void Load_Format4Int8File_BuildsTheSameInt8GraphAsTheVersionThatWroteIt()
    {
        // Percentile clipping changed how new calibrations choose their ranges, not how a graph is built from ranges: a
        // format-4 file (plain min/max) keeps its graph byte for byte (and its digest, so its cached features: see
        // ActivationHistogramTests). The hash
        // was computed with the library as it was before clipping existed (commit eddbe24) and again after.
        using var model = ImageClassifierModel.Load(Fixture("format-v4-fashion3.pkmodel"));
        var graph = PretrainedKit.Onnx.OnnxModelEditor.ToBytes(model.Extractor.Runtime.Int8Graph!);
        Assert.That(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(graph)), Is.EqualTo("4B4552E7EB190B922C7088F33265BBCFE85BF30F8DA0A5ADDD40741BB2F64579"));
    }

    [Test]
    public void Load_Format4Int8File_IsAPlainMinMaxCalibration()
    {
        using var model = ImageClassifierModel.Load(Fixture("format-v4-fashion3.pkmodel"));
        Assert.That(model.Extractor.Runtime.Int8!.Percentile, Is.EqualTo(100), "files without the field are plain min/max");
    }

    [TestCase("format-v1-fashion3", 1)]
    [TestCase("format-v2-fashion3", 2)]
    [TestCase("format-v3-fashion3", 3)]
    [TestCase("format-v4-fashion3", 4)]
    [TestCase("format-v5-fashion3", 5)]
    public void Fixture_KeepsItsFormatVersion(string fixture, int version)
    {
        using var zip = ZipFile.OpenRead(Fixture($"{fixture}.pkmodel"));
        using var manifest = JsonDocument.Parse(zip.GetEntry("manifest.json")!.Open());
        Assert.That(manifest.RootElement.GetProperty("formatVersion").GetInt32(), Is.EqualTo(version), "a fixture must keep its format version; add a new fixture for a new version");
    }

    [Test]
    public void Load_NewerFormatVersion_ThrowsNamingFileAndTheFix()
    {
        var folder = TestPaths.NewTempFolder("format");
        try
        {
            var path = Path.Combine(folder, "future.pkmodel");
            CopyWithManifestEdit(Fixture("format-v1-fashion3.pkmodel"), path, text => text.Replace("\"formatVersion\": 1", $"\"formatVersion\": {ModelManifest.CurrentFormatVersion + 1}", StringComparison.Ordinal));

            Assert.That(
                () => ImageClassifierModel.Load(path),
                Throws.TypeOf<ModelFormatException>().With.Message.Contains(path).And.Message.Contains($"format version {ModelManifest.CurrentFormatVersion + 1}").And.Message.Contains("Update PretrainedKit"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void Versions_ComeFromOnePlace()
    {
        var root = TestPaths.RepositoryRoot;
        var prefix = VersionPrefix().Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props"))).Groups[1].Value;
        var resnet = ResNetVersion().Match(File.ReadAllText(Path.Combine(root, "Directory.Packages.props"))).Groups[1].Value;
        var transitiveProps = File.ReadAllText(Path.Combine(root, "src", "PretrainedKit", "buildTransitive", "PretrainedKit.props"));
        var informational = typeof(ImageClassifierModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        Assert.Multiple(() =>
        {
            Assert.That(prefix, Does.Match(@"^\d+\.\d+\.\d+$"));
            Assert.That(informational, Does.StartWith(prefix), "the assembly version comes from VersionPrefix");
            Assert.That(File.ReadAllText(Path.Combine(root, "CHANGELOG.md")), Does.Contain($"## [{prefix}]"), "CHANGELOG.md has a section for the current version");
            Assert.That(KnownBackbones.ResNet18.PackageVersion, Is.EqualTo(resnet), "KnownBackbones agrees with Directory.Packages.props");
            Assert.That(transitiveProps, Does.Contain($">{resnet}</PretrainedKitResNet18PackageVersion>"), "buildTransitive/PretrainedKit.props agrees with Directory.Packages.props");
        });
    }

    [GeneratedRegex("<VersionPrefix>([^<]+)</VersionPrefix>")]
    private static partial Regex VersionPrefix();

    [GeneratedRegex("<ResNet18PackageVersion>([^<]+)</ResNet18PackageVersion>")]
    private static partial Regex ResNetVersion();
}
