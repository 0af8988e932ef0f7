using System.CommandLine;
using PretrainedKit.Cli;

var root = new RootCommand("pretrainedkit: train an image classifier on a folder of images (one sub-folder per class), evaluate it and predict.")
{
    Commands.Train(),
    Commands.Evaluate(),
    Commands.Predict(),
    Commands.Export(),
    Commands.Featurize(),
    Commands.Inspect(),
    Commands.Index(),
    Commands.Similar(),
    Commands.Suggest(),
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

// Ctrl-C and SIGTERM cancel the command (which prints "Cancelled." and exits with 130) instead of killing the process;
// System.CommandLine's own handling is off, so there is one cancellation path (see Interrupts).
using var interrupts = new Interrupts();
var code = await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, interrupts.Token);
if (interrupts.Received && code == 0)
{
    Console.Error.WriteLine("Interrupted after the work was done (a model being saved is saved completely): finished normally.");
}

return code;
