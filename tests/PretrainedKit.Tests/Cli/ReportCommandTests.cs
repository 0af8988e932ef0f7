
namespace PretrainedKit.Tests.Cli;

/// <summary>Runs <c>pretrainedkit report</c> as a separate process, the way a user does.</summary>
[Category("Slow")]
public class ReportCommandTests
{
    private string _data = null!;
    private string _work = null!;
    private string _model = null!;

    [OneTimeSetUp]
    public async Task TrainAndSave()
    {
        _data = SmallDataset.Create(5);
        _work = TestPaths.NewTempFolder("cli-report");
        _model = Path.Combine(_work, "colours.pkmodel");
        using var model = await ImageClassifier.Create().FromFolder(_data).WithSeed(5).TrainAsync();
        model.Save(_model);
    }


    private static (int ExitCode, string Out, string Err) Run(params string[] args) => CliProcess.Run(null, args);

    [Test]
    public void Report_ModelAndFolder_WritesOneSelfContainedPage()
    {
        var output = Path.Combine(_work, "report.html");
        var (code, stdout, stderr) = Run("report", _model, _data, "--out", output, "--title", "Colours", "--worst", "3");
        Assert.That(code, Is.EqualTo(0), stderr);
        var html = File.ReadAllText(output);
        Assert.Multiple(() =>
        {
            Assert.That(stdout, Does.Contain($"Report written to {output}").And.Contain("15 images"));
            Assert.That(html, Does.Contain("<title>Colours</title>").And.Contain("id=\"confusion-matrix\"").And.Contain("id=\"worst-mistakes\""));
            Assert.That(html, Does.Contain(">blue<").And.Contain(">green<").And.Contain(">red<"));
            Assert.That(html, Does.Not.Contain("http://").And.Not.Contain("https://").And.Not.Contain("<script"));
        });
    }

    [Test]
    public void Report_OutputFolderMissing_ExitsWith2NamingIt()
    {
        var missing = Path.Combine(_work, "no-such-folder");
        var (code, _, stderr) = Run("report", _model, _data, "--out", Path.Combine(missing, "report.html"));
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stderr, Does.Contain(missing).And.Not.Contain("   at "));
        });
    }

    [Test]
    public void Report_NegativeWorst_ExitsWith2NamingTheOption()
    {
        var (code, _, stderr) = Run("report", _model, _data, "--worst", "-1", "--out", Path.Combine(_work, "never.html"));
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stderr, Does.Contain("--worst must be from 0 to 1000").And.Not.Contain("   at "));
            Assert.That(File.Exists(Path.Combine(_work, "never.html")), Is.False);
        });
    }
}
