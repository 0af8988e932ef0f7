using System.CommandLine;
using PretrainedKit.Cli;

var root = new RootCommand("pretrainedkit: train an image classifier on a folder of images (one sub-folder per class), evaluate it and predict.")
{
    Commands.Train(),
    Commands.Evaluate(),
    Commands.Predict(),
    Commands.Export(),
    ReportCommand.Create(),
};

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"error: {error.Message}");
    }

    Console.Error.WriteLine("Run 'pretrainedkit --help' or 'pretrainedkit COMMAND --help' for usage.");
    return 2;
}

return await parse.InvokeAsync();
