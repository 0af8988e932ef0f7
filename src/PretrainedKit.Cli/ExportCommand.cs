using System.CommandLine;

namespace PretrainedKit.Cli;

internal static partial class Commands
{
    public static Command Export()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by 'train'." };
        var onnx = new Option<string>("--onnx") { Description = "Write the whole model (normalisation, backbone, head, softmax) as one ONNX file.", Required = true };
        var quiet = new Option<bool>("--quiet") { Description = "Print only errors." };
        var command = new Command("export", "Export a model to another format. Example: pretrainedkit export pets.pkmodel --onnx pets.onnx")
        {
            model, onnx, quiet,
        };
        command.SetAction((parse, cancellationToken) => Run(() =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var loaded = ImageClassifier.Load(parse.GetValue(model)!);
            var target = Path.GetFullPath(parse.GetValue(onnx)!);
            loaded.ExportOnnx(target);
            if (!parse.GetValue(quiet))
            {
                Console.WriteLine($"ONNX model written to {target}");
                Console.WriteLine($"  input 'image': float32 [N,3,{loaded.Backbone.InputHeight},{loaded.Backbone.InputWidth}], RGB, values 0-255, planar (NCHW); resize: {loaded.ImageOptions.ResizeMode}");
                Console.WriteLine($"  output 'probabilities': float32 [N,{loaded.Classes.Count}]; classes: {string.Join(", ", loaded.Classes)}");
            }

            return Task.CompletedTask;
        }));
        return command;
    }
}
