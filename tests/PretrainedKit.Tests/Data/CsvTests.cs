using System.Text;
using PretrainedKit.Data;

namespace PretrainedKit.Tests.Data;

/// <summary>LabeledImage.ReadCsv: the format (RFC 4180 quoting, header, BOM, blank lines, relative paths) and its problems, all at once.</summary>
public class CsvTests
{
    private string _folder = null!;

    [SetUp]
    public void CreateImages()
    {
        _folder = TestPaths.NewTempFolder("csv");
        Directory.CreateDirectory(Path.Combine(_folder, "img"));
        foreach (var name in new[] { "a.png", "b.png", "with, comma.png", "with \"quote\".png" })
        {
            File.WriteAllBytes(Path.Combine(_folder, "img", name), [1, 2, 3]);
        }
    }

    [Test]
    public void ReadCsv_QuotedFieldsBomBlankLinesAndRelativePaths_AreRead()
    {
        var absolute = Path.Combine(_folder, "img", "b.png");
        var csv = Write(
            "Path,LABEL\r\n" +
            "img/a.png,cat\r\n" +
            "\r\n" +
            $"{absolute},dog\n" +
            "\"img/with, comma.png\",\"big, cat\"\n" +
            "\"img/with \"\"quote\"\".png\",\"two\nlines\"\n" +
            "   \n",
            bom: true);

        var images = LabeledImage.ReadCsv(csv);

        Assert.That(images, Is.EqualTo(new[]
        {
            new LabeledImage(Path.Combine(_folder, "img", "a.png"), "cat"),
            new LabeledImage(absolute, "dog"),
            new LabeledImage(Path.Combine(_folder, "img", "with, comma.png"), "big, cat"),
            new LabeledImage(Path.Combine(_folder, "img", "with \"quote\".png"), "two\nlines"),
        }));
    }

    [Test]
    public void ReadCsv_ColumnsInAnyOrderWithExtras_AreFoundByName()
    {
        var csv = Write("label,notes,path\ncat,first,img/a.png\n");
        Assert.That(LabeledImage.ReadCsv(csv), Is.EqualTo(new[] { new LabeledImage(Path.Combine(_folder, "img", "a.png"), "cat") }));
    }

    [Test]
    public void ReadCsv_EveryBadRow_IsListedOnceWithItsLineNumber()
    {
        var csv = Write(
            "path,label\n" +          // 1
            "img/a.png,cat\n" +       // 2
            "img/b.png\n" +           // 3: missing column
            "img/b.png,\n" +          // 4: empty label
            "img/missing.png,cat\n" + // 5: missing file
            "img/a.png,dog\n" +       // 6: duplicate of line 2
            "img/with, comma.png,cat\n" + // 7: an unquoted comma: three fields
            ",cat\n" +                // 8: empty path
            "img/b\"x.png,cat\n");    // 9: a quote in an unquoted field

        var ex = Assert.Throws<InvalidDatasetException>(() => LabeledImage.ReadCsv(csv))!;

        Assert.That(ex.Problems.Select(p => p.Line), Is.EquivalentTo(new int?[] { 3, 4, 5, 6, 7, 8, 9 }), ex.Message);
        Assert.Multiple(() =>
        {
            Assert.That(ex.Problems.Single(p => p.Line == 3).Message, Does.Contain(csv).And.Contain("line 3").And.Contain("'label' column is missing"));
            Assert.That(ex.Problems.Single(p => p.Line == 4).Kind, Is.EqualTo(DatasetProblemKind.InvalidLabel));
            Assert.That(ex.Problems.Single(p => p.Line == 5).Kind, Is.EqualTo(DatasetProblemKind.MissingFile));
            Assert.That(ex.Problems.Single(p => p.Line == 5).Path, Is.EqualTo(Path.Combine(_folder, "img", "missing.png")));
            Assert.That(ex.Problems.Single(p => p.Line == 6).Kind, Is.EqualTo(DatasetProblemKind.DuplicateImage));
            Assert.That(ex.Problems.Single(p => p.Line == 6).Message, Does.Contain("already listed on line 2"));
            Assert.That(ex.Problems.Single(p => p.Line == 7).Message, Does.Contain("3 fields").And.Contain("double quotes"));
            Assert.That(ex.Problems.Single(p => p.Line == 8).Message, Does.Contain("path is empty"));
            Assert.That(ex.Problems.Single(p => p.Line == 9).Message, Does.Contain("double quote inside an unquoted field"));
            Assert.That(ex.Message, Does.Contain("7 problems"));
        });
    }

    [Test]
    public void ReadCsv_HeaderProblems_AreNamed()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => LabeledImage.ReadCsv(Write("file,class\nimg/a.png,cat\n")), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("line 1").And.Message.Contains("no 'path' and 'label' column"));
            Assert.That(() => LabeledImage.ReadCsv(Write("img/a.png,cat\n")), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("no 'path' and 'label' column"));
            Assert.That(() => LabeledImage.ReadCsv(Write("\n\n")), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("holds no header"));
            Assert.That(() => LabeledImage.ReadCsv(Write("path,label\n\"img/a.png,cat\n")), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("line 2: a quoted field is never closed"));
            Assert.That(() => LabeledImage.ReadCsv(Path.Combine(_folder, "none.csv")), Throws.TypeOf<FileNotFoundException>().With.Message.Contains(Path.Combine(_folder, "none.csv")));
        });
    }

    [Test]
    public void ReadCsv_NotUtf8_SaysSo()
    {
        var csv = Path.Combine(_folder, "latin1.csv");
        File.WriteAllBytes(csv, [.. "path,label\nimg/a.png,caf"u8, 0xE9, (byte)'\n']);
        Assert.That(() => LabeledImage.ReadCsv(csv), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("not valid UTF-8"));
    }

    [Test]
    [Platform("Linux")]
    public void ReadCsv_NamedPipe_IsRefusedWithoutBeingOpened()
    {
        var fifo = Path.Combine(_folder, "labels.csv");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
        {
            mkfifo.WaitForExit();
        }

        Assert.That(() => LabeledImage.ReadCsv(fifo), Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("named pipe").And.Message.Contains(fifo));
    }

    [Test]
    public void FromCsv_BadRows_TrainAsyncThrowsBeforeAnyImageIsRead()
    {
        var csv = Write("path,label\nimg/a.png,cat\nimg/missing.png,dog\n");
        Assert.That(
            () => ImageClassifier.Create().FromCsv(csv).TrainAsync(),
            Throws.TypeOf<InvalidDatasetException>().With.Message.Contains("line 3").And.Message.Contains("missing.png"));
    }

    [Test]
    public void FromFolder_GivenACsvFile_PointsToFromCsv()
    {
        var csv = Write("path,label\nimg/a.png,cat\n");
        Assert.That(() => ImageClassifier.Create().FromFolder(csv).TrainAsync(), Throws.TypeOf<DirectoryNotFoundException>().With.Message.Contains(csv).And.Message.Contains("FromCsv"));
    }

    private string Write(string text, bool bom = false)
    {
        var path = Path.Combine(_folder, $"list-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, text, new UTF8Encoding(bom));
        return path;
    }
}
