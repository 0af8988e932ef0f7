using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using PretrainedKit.Backbones;
using PretrainedKit.Imaging;
using PretrainedKit.Internal;
using PretrainedKit.Models;
using PretrainedKit.Onnx;
using PretrainedKit.Onnx.Proto;

namespace PretrainedKit.Serialization;

/// <summary>
/// Builds one self-contained ONNX model from a trained classifier: (with test-time mirroring, the image and its
/// left-right mirror image as one batch of 2N,) channel reorder and mean subtraction, the backbone, (with multi-stage
/// features, <see cref="MultiStagePooling"/> of the stage outputs,) the head's standardisation, its linear layer or
/// kernel layer (with the calibration temperature folded in: W / T and b / T), (the two views' logits averaged,) and a
/// softmax, so that the probabilities equal <c>Predict</c>'s. Input <c>image</c> [N,3,H,W] (RGB, 0-255, planar), output
/// <c>probabilities</c> [N,classes]. Every operator used exists in ONNX opset 7, so the backbone's own opset is kept (13 for an int8 model, whose QDQ backbone is exported).
/// </summary>
internal static class OnnxExport
{
    public const string InputName = "image";
    public const string OutputName = "probabilities";
    public const string MetadataPrefix = "pretrainedkit.";

    /// <summary>The symbolic batch dimension inside the backbone when each image runs as two views (2N).</summary>
    public const string ViewBatchDimension = "N_views";

    /// <summary>The facts written to <c>metadata_props</c>, also returned so that callers can show them.</summary>
    public static IReadOnlyDictionary<string, string> Metadata(
        IReadOnlyList<string> classes,
        Backbone backbone,
        string weightsSha256,
        ImagePreprocessingOptions image,
        string? libraryVersion) => new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [MetadataPrefix + "classes"] = JsonSerializer.Serialize(classes),
            [MetadataPrefix + "input"] = $"{InputName}: float32 [N,3,{backbone.InputHeight},{backbone.InputWidth}], planar (NCHW), RGB channel order, values 0-255 (no scaling, no mean subtraction: the model does both)",
            [MetadataPrefix + "output"] = $"{OutputName}: float32 [N,{classes.Count}], softmax probabilities in the order of {MetadataPrefix}classes",
            [MetadataPrefix + "resize"] = $"{image.ResizeMode} to {backbone.InputWidth}x{backbone.InputHeight}",
            [MetadataPrefix + "background"] = image.Background.ToString(),
            [MetadataPrefix + "backbone"] = backbone.Id,
            [MetadataPrefix + "backbone_sha256"] = weightsSha256,
            [MetadataPrefix + "version"] = libraryVersion ?? string.Empty,
        };

    /// <summary>Builds the ONNX model of a definition and writes it atomically.</summary>
    /// <param name="path">The ONNX file to write.</param>
    /// <param name="definition">The model.</param>
    /// <param name="runtime">Its backbone, for the weights and the mean image.</param>
    public static void Write(string path, ModelDefinition definition, BackboneRuntime runtime) =>
        WriteAtomically(path, Build(definition, runtime, LibraryVersion.Informational));

    /// <summary>Builds the ONNX model of a definition: the backbone's graph, the preprocessing before it and the head after it.</summary>
    /// <param name="definition">The model.</param>
    /// <param name="runtime">Its backbone, for the weights and the mean image.</param>
    /// <param name="libraryVersion">The version written to the metadata.</param>
    /// <returns>The model.</returns>
    public static ModelProto Build(ModelDefinition definition, BackboneRuntime runtime, string? libraryVersion)
    {
        var head = definition.Head;
        var classes = definition.Classes;
        var image = definition.Image;
        var unknownThreshold = definition.UnknownThreshold;
        var backbone = runtime.Backbone;
        var layout = definition.FeatureLayout;
        var mirror = definition.TestTimeAugmentation switch
        {
            TestTimeAugmentation.None => false,
            TestTimeAugmentation.Mirror => true,
            var other => throw new NotSupportedException($"ONNX export does not know the test-time augmentation {other}."),
        };
        if (layout is not (FeatureLayout.Pooled or FeatureLayout.MultiStage or FeatureLayout.MultiStageGrid))
        {
            throw new NotSupportedException($"ONNX export does not know the feature layout {layout}.");
        }

        if (layout != FeatureLayout.Pooled && backbone.Stages.Count == 0)
        {
            throw new NotSupportedException($"The backbone {backbone} declares no stage outputs, so its {layout} features cannot be exported.");
        }

        // With mirroring the backbone runs 2N images for N inputs: its batch dimension gets its own symbolic name.
        // An int8 model exports its QDQ backbone (opset 13; every operator added below means the same there for the
        // shapes used: Softmax over axis 1 of a 2-D tensor, Reshape without allowzero).
        if (definition.Int8 != runtime.Int8)
        {
            throw new ArgumentException($"The model's precision ({definition.Precision}) differs from its backbone session's ({runtime.Precision}).", nameof(runtime));
        }

        var backboneGraph = runtime.Int8Graph ?? OnnxModelEditor.Read(runtime.ModelPath);
        var model = OnnxModelEditor.MakeBatchDynamic(backboneGraph, mirror ? ViewBatchDimension : OnnxModelEditor.BatchDimension);
        var graph = model.Graph;
        var names = graph.Node.SelectMany(n => n.Output).Concat(graph.Input.Select(i => i.Name)).Concat(graph.Initializer.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        string Fresh(string name)
        {
            var candidate = "pretrainedkit_" + name;
            for (var i = 2; names.Contains(candidate); i++)
            {
                candidate = $"pretrainedkit_{name}_{i}";
            }

            names.Add(candidate);
            return candidate;
        }

        if (names.Contains(InputName) || names.Contains(OutputName))
        {
            throw new InvalidOperationException($"The backbone '{runtime.ModelPath}' already uses the name '{InputName}' or '{OutputName}'.");
        }

        // 1. The backbone's own input becomes an intermediate value: image (RGB) -> BGR -> minus the mean image.
        var backboneInput = graph.Input.SingleOrDefault(i => i.Name == backbone.InputName)
            ?? throw new InvalidOperationException($"The backbone has no input named '{backbone.InputName}'.");
        graph.Input.Remove(backboneInput);
        graph.ValueInfo.Add(backboneInput);
        graph.Input.Insert(0, TensorInfo(InputName, [null, 3, backbone.InputHeight, backbone.InputWidth]));

        var order = Fresh("bgr_order");
        var negativeMean = Fresh("negative_mean");
        var bgr = Fresh("bgr");
        graph.Initializer.Add(Int64Tensor(order, [3], [2, 1, 0]));
        graph.Initializer.Add(FloatTensor(negativeMean, [1, 3, backbone.InputHeight, backbone.InputWidth], runtime.NegativeMean.ToArray()));
        var prologue = new List<NodeProto>();
        var views = InputName;
        if (mirror)
        {
            // Test-time mirroring: ImageViews.Apply(Mirror) flips the decoded RGB image left to right before the
            // preprocessing, which is a Gather of the columns in reverse order; [image; mirror image] is one batch of 2N.
            var reversed = Fresh("mirror_columns");
            var mirrored = Fresh("mirrored");
            views = Fresh("views");
            graph.Initializer.Add(Int64Tensor(reversed, [backbone.InputWidth], Enumerable.Range(0, backbone.InputWidth).Select(x => (long)(backbone.InputWidth - 1 - x)).ToArray()));
            prologue.Add(Node("Gather", [InputName, reversed], [mirrored], IntAttribute("axis", 3)));
            prologue.Add(Node("Concat", [InputName, mirrored], [views], IntAttribute("axis", 0)));
        }

        prologue.Add(Node("Gather", [views, order], [bgr], IntAttribute("axis", 1)));
        prologue.Add(Node("Add", [bgr, negativeMean], [backbone.InputName]));
        for (var i = prologue.Count - 1; i >= 0; i--)
        {
            graph.Node.Insert(0, prologue[i]);
        }

        // 2. After the backbone: flatten (or pool the stages), (L2-normalise,) standardise, (kernel values,) linear
        // layer, (average the views,) softmax.
        var d = head.FeatureSize;
        var k = head.ClassCount;
        var features = Fresh("features");
        var centred = Fresh("centred");
        var standardized = Fresh("standardized");
        var logits = Fresh("logits");
        var mean = Fresh("feature_mean");
        var scale = Fresh("feature_scale");
        var weights = Fresh("weights");
        var biases = Fresh("biases");
        graph.Initializer.Add(FloatTensor(mean, [d], head.Scaling.Mean));
        graph.Initializer.Add(FloatTensor(scale, [d], head.Scaling.Scale));
        var inverseTemperature = 1 / definition.Temperature; // softmax((W z + b) / T) = softmax((W / T) z + b / T).
        graph.Initializer.Add(FloatTensor(weights, [k, head.Weights[0].Length], head.Weights.SelectMany(w => w).Select(v => (float)(v * inverseTemperature)).ToArray()));
        graph.Initializer.Add(FloatTensor(biases, [k], head.Biases.Select(v => (float)(v * inverseTemperature)).ToArray()));
        if (layout == FeatureLayout.Pooled)
        {
            graph.Node.Add(Node("Flatten", [backbone.OutputName], [features], IntAttribute("axis", 1)));
        }
        else
        {
            AddMultiStagePooling(graph, backbone.Stages, layout, features, Fresh);
        }

        if (head.Scaling.NormalizeL2)
        {
            var normalized = Fresh("l2_normalized");
            graph.Node.Add(Node("LpNormalization", [features], [normalized], IntAttribute("axis", 1), IntAttribute("p", 2)));
            features = normalized;
        }

        graph.Node.Add(Node("Sub", [features, mean], [centred]));
        graph.Node.Add(Node("Mul", [centred, scale], [standardized]));
        var lastInputs = standardized;
        if (head is KernelHeadDefinition kernel)
        {
            // Kernel head: k = exp(-gamma |z - c|^2) = exp(2 gamma z.c - gamma |c|^2 - gamma |z|^2) against every centre c.
            var m = kernel.Centres.Length;
            var centres = Fresh("kernel_centres");
            var centreTerms = Fresh("kernel_centre_terms");
            var gamma = Fresh("kernel_gamma");
            var squared = Fresh("kernel_input_squared");
            var inputTerms = Fresh("kernel_input_terms");
            var crossTerms = Fresh("kernel_cross_terms");
            var exponent = Fresh("kernel_exponent");
            var values = Fresh("kernel_values");
            graph.Initializer.Add(FloatTensor(centres, [m, d], kernel.Centres.SelectMany(c => c).ToArray()));
            graph.Initializer.Add(FloatTensor(centreTerms, [m], kernel.SquaredNorms.Select(v => -kernel.Gamma * v).ToArray()));
            graph.Initializer.Add(FloatTensor(gamma, [1], [kernel.Gamma]));
            graph.Node.Add(Node("ReduceSumSquare", [standardized], [squared], IntsAttribute("axes", 1), IntAttribute("keepdims", 1)));
            graph.Node.Add(Node("Mul", [squared, gamma], [inputTerms]));
            graph.Node.Add(Node("Gemm", [standardized, centres, centreTerms], [crossTerms], FloatAttribute("alpha", 2 * kernel.Gamma), IntAttribute("transB", 1)));
            graph.Node.Add(Node("Sub", [crossTerms, inputTerms], [exponent]));
            graph.Node.Add(Node("Exp", [exponent], [values]));
            lastInputs = values;
        }

        graph.Node.Add(Node("Gemm", [lastInputs, weights, biases], [logits], IntAttribute("transB", 1)));
        if (mirror)
        {
            // HeadDefinition.Logits(views): the mean of the two views' logits. Rows 0..N-1 are the images, N..2N-1 their
            // mirror images: [2N,k] -> [2,N*k], times [0.5 0.5] -> [1,N*k] -> [N,k]. (MatMul rather than ReduceMean,
            // whose axes moved from an attribute to an input in opset 18.)
            var pairShape = Fresh("view_pair_shape");
            var pairs = Fresh("view_pairs");
            var half = Fresh("view_weights");
            var averaged = Fresh("view_average");
            var logitShape = Fresh("logit_shape");
            var meanLogits = Fresh("mean_logits");
            graph.Initializer.Add(Int64Tensor(pairShape, [2], [2, -1]));
            graph.Initializer.Add(FloatTensor(half, [1, 2], [0.5f, 0.5f]));
            graph.Initializer.Add(Int64Tensor(logitShape, [2], [-1, k]));
            graph.Node.Add(Node("Reshape", [logits, pairShape], [pairs]));
            graph.Node.Add(Node("MatMul", [half, pairs], [averaged]));
            graph.Node.Add(Node("Reshape", [averaged, logitShape], [meanLogits]));
            logits = meanLogits;
        }

        graph.Node.Add(Node("Softmax", [logits], [OutputName], IntAttribute("axis", 1)));

        graph.Output.Clear();
        graph.Output.Add(TensorInfo(OutputName, [null, k]));
        if (layout != FeatureLayout.Pooled)
        {
            RemoveUnusedNodes(graph); // The backbone's own pooling (and anything else only it needed) is no longer read.
        }

        graph.Name = "pretrainedkit_image_classifier";

        // Gemm with a broadcast bias, Greater on floats and Div/Mul/Sub/Add with broadcasting need opset 7; everything
        // else used here is older. The multi-stage pooling and the view average avoid Slice and the Reduce operators,
        // whose attributes became inputs in opsets 10 and 18 (the kernel head's ReduceSumSquare still holds to opset 17).
        var defaultDomain = model.OpsetImport.FirstOrDefault(o => string.IsNullOrEmpty(o.Domain) || o.Domain == "ai.onnx");
        if (defaultDomain is null)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 7 });
        }
        else if (defaultDomain.Version < 7)
        {
            throw new InvalidOperationException($"The backbone uses ONNX opset {defaultDomain.Version}; export needs 7 or later.");
        }

        model.ProducerName = "PretrainedKit";
        model.ProducerVersion = libraryVersion ?? string.Empty;
        model.DocString = $"Image classifier exported by PretrainedKit: {backbone.DisplayName} features, retrained softmax head over {k} classes. Input '{InputName}' float32 [N,3,{backbone.InputHeight},{backbone.InputWidth}] RGB 0-255 NCHW; output '{OutputName}' float32 [N,{k}].";
        if (layout != FeatureLayout.Pooled)
        {
            model.DocString += $" Features: {FeaturesDescription(backbone.Stages, layout)}.";
        }

        if (mirror)
        {
            model.DocString += $" Test-time augmentation: {MirrorDescription}.";
        }

        model.MetadataProps.Clear();
        foreach (var (key, value) in Metadata(classes, backbone, runtime.WeightsSha256, image, libraryVersion))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "temperature", Value = definition.Temperature.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
        if (unknownThreshold is { } threshold)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "unknown_threshold", Value = threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
        }

        // Written only when not the default, so that the files of pooled single-view float models stay as they were.
        if (definition.Int8 is { } int8)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "precision", Value = Int8Description(int8) });
        }

        if (layout != FeatureLayout.Pooled)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "features", Value = FeaturesDescription(backbone.Stages, layout) });
        }

        if (mirror)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + "test_time_augmentation", Value = MirrorDescription });
        }

        return model;
    }

    /// <summary>The int8 metadata: as format 4 wrote it for (min, max) calibrations, with the clipping added otherwise.</summary>
    private static string Int8Description(Int8Calibration int8)
    {
        var text = new System.Text.StringBuilder().Append(System.Globalization.CultureInfo.InvariantCulture, $"int8 ({int8.Types}, calibrated on {int8.ImageCount} images");
        if (int8.Percentile < 100)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $", ranges clipped at percentile {int8.Percentile:R}");
        }

        return text.Append(')').ToString();
    }

    private const string MirrorDescription = "Mirror: the logits of the image and of its left-right mirror image (flipped inside the model) are averaged before the softmax";

    private static string FeaturesDescription(IReadOnlyList<BackboneStage> stages, FeatureLayout layout) =>
        $"{layout}: {MultiStagePooling.FeatureSize(stages, layout)} values pooled inside the model from {string.Join(", ", stages.Select(s => s.OutputName))}";

    /// <summary>
    /// Appends <see cref="MultiStagePooling.Pool"/> as a subgraph: per stage the global average and maximum of each
    /// channel; with the grid, the average of each quadrant of the last <see cref="MultiStagePooling.GridStages"/> stages
    /// (one MatMul with a [H*W,4] matrix of 1 / cells inside the quadrant, so the overlapping middle row and column of odd
    /// sizes count in both halves); each block square-rooted and L2-normalised; concatenated in the library's order.
    /// </summary>
    /// <param name="graph">The graph, whose nodes produce the stage outputs (NCHW).</param>
    /// <param name="stages">The stages, in order.</param>
    /// <param name="layout"><see cref="FeatureLayout.MultiStage"/> or <see cref="FeatureLayout.MultiStageGrid"/>.</param>
    /// <param name="features">The name of the [M, feature size] output.</param>
    /// <param name="fresh">Makes unused value names.</param>
    internal static void AddMultiStagePooling(GraphProto graph, IReadOnlyList<BackboneStage> stages, FeatureLayout layout, string features, Func<string, string> fresh)
    {
        var produced = graph.Node.SelectMany(n => n.Output).ToHashSet(StringComparer.Ordinal);
        var missing = stages.Where(s => !produced.Contains(s.OutputName)).Select(s => s.OutputName).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"The backbone has no value named {string.Join(", ", missing)}.");
        }

        var shared = new RootAndNormalizeConstants(graph, fresh);
        var blocks = new List<string>();
        for (var s = 0; s < stages.Count; s++)
        {
            var stage = stages[s];
            var average = fresh($"stage{s}_average");
            var maximum = fresh($"stage{s}_maximum");
            var both = fresh($"stage{s}_pooled");
            var shape = fresh($"stage{s}_block_shape");
            var grouped = fresh($"stage{s}_blocks");
            graph.Initializer.Add(Int64Tensor(shape, [3], [-1, 2, stage.Channels]));
            graph.Node.Add(Node("GlobalAveragePool", [stage.OutputName], [average]));
            graph.Node.Add(Node("GlobalMaxPool", [stage.OutputName], [maximum]));
            graph.Node.Add(Node("Concat", [average, maximum], [both], IntAttribute("axis", 1))); // [M,2C,1,1]
            graph.Node.Add(Node("Reshape", [both, shape], [grouped])); // [M,2,C]: block 0 the averages, block 1 the maxima.
            blocks.Add(RootAndNormalize(graph, grouped, stage.Channels, $"stage{s}", shared, fresh));
        }

        if (layout == FeatureLayout.MultiStageGrid)
        {
            for (var s = Math.Max(0, stages.Count - MultiStagePooling.GridStages); s < stages.Count; s++)
            {
                var stage = stages[s];
                var planeShape = fresh($"grid{s}_plane_shape");
                var planes = fresh($"grid{s}_planes");
                var quadrants = fresh($"grid{s}_quadrant_weights");
                var cells = fresh($"grid{s}_cells");
                var grouped = fresh($"grid{s}_blocks");
                graph.Initializer.Add(Int64Tensor(planeShape, [3], [-1, stage.Channels, stage.Height * stage.Width]));
                graph.Initializer.Add(FloatTensor(quadrants, [stage.Height * stage.Width, 4], QuadrantWeights(stage)));
                graph.Node.Add(Node("Reshape", [stage.OutputName, planeShape], [planes])); // [M,C,H*W]
                graph.Node.Add(Node("MatMul", [planes, quadrants], [cells])); // [M,C,4]
                graph.Node.Add(Node("Transpose", [cells], [grouped], IntsAttribute("perm", 0, 2, 1))); // [M,4,C]
                blocks.Add(RootAndNormalize(graph, grouped, stage.Channels, $"grid{s}", shared, fresh));
            }
        }

        graph.Node.Add(Node("Concat", [.. blocks], [features], IntAttribute("axis", 1)));
    }

    /// <summary>
    /// The [H*W, 4] matrix whose column q averages quadrant q (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right),
    /// each spanning ceil(size / 2) rows and columns as in <see cref="MultiStagePooling"/>.
    /// </summary>
    private static float[] QuadrantWeights(BackboneStage stage)
    {
        var halfHeight = (stage.Height + 1) / 2;
        var halfWidth = (stage.Width + 1) / 2;
        var weight = (float)(1.0 / (halfHeight * halfWidth));
        var matrix = new float[stage.Height * stage.Width * 4];
        for (var cell = 0; cell < 4; cell++)
        {
            var top = cell >= 2 ? stage.Height - halfHeight : 0;
            var left = cell % 2 == 1 ? stage.Width - halfWidth : 0;
            for (var y = top; y < top + halfHeight; y++)
            {
                for (var x = left; x < left + halfWidth; x++)
                {
                    matrix[(((y * stage.Width) + x) * 4) + cell] = weight;
                }
            }
        }

        return matrix;
    }

    /// <summary>
    /// Square-roots max(0, x) and divides each block of [M,B,C] by its Euclidean length, giving 0 when the squared length
    /// is at most 1e-12 (as <see cref="MultiStagePooling"/> does): scale = mask / sqrt(sum + 1 - mask), mask = (sum &gt; 1e-12).
    /// Returns the name of the flattened [M, B*C] result.
    /// </summary>
    private static string RootAndNormalize(GraphProto graph, string grouped, int channels, string prefix, RootAndNormalizeConstants shared, Func<string, string> fresh)
    {
        var positive = fresh($"{prefix}_positive");
        var root = fresh($"{prefix}_root");
        var squares = fresh($"{prefix}_squares");
        var sums = fresh($"{prefix}_squared_norms");
        var above = fresh($"{prefix}_above_epsilon");
        var mask = fresh($"{prefix}_mask");
        var shifted = fresh($"{prefix}_norms_plus_one");
        var safe = fresh($"{prefix}_safe_squared_norms");
        var norms = fresh($"{prefix}_norms");
        var scale = fresh($"{prefix}_inverse_norms");
        var normalized = fresh($"{prefix}_normalized");
        var flat = fresh($"{prefix}_features");
        graph.Node.Add(Node("Relu", [grouped], [positive]));
        graph.Node.Add(Node("Sqrt", [positive], [root]));
        graph.Node.Add(Node("Mul", [root, root], [squares]));
        graph.Node.Add(Node("MatMul", [squares, shared.Ones(channels)], [sums])); // [M,B,1]; ReduceSumSquare's axes moved to an input in opset 18.
        graph.Node.Add(Node("Greater", [sums, shared.Epsilon], [above]));
        graph.Node.Add(Node("Cast", [above], [mask], IntAttribute("to", (long)TensorProto.Types.DataType.Float)));
        graph.Node.Add(Node("Add", [sums, shared.One], [shifted]));
        graph.Node.Add(Node("Sub", [shifted, mask], [safe]));
        graph.Node.Add(Node("Sqrt", [safe], [norms]));
        graph.Node.Add(Node("Div", [mask, norms], [scale]));
        graph.Node.Add(Node("Mul", [root, scale], [normalized]));
        graph.Node.Add(Node("Flatten", [normalized], [flat], IntAttribute("axis", 1)));
        return flat;
    }

    /// <summary>Removes the nodes whose outputs no graph output needs, and the initializers only they read.</summary>
    private static void RemoveUnusedNodes(GraphProto graph)
    {
        var needed = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var kept = new List<NodeProto>();
        for (var i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (node.Output.Any(needed.Contains))
            {
                kept.Add(node);
                foreach (var input in node.Input)
                {
                    needed.Add(input);
                }
            }
        }

        kept.Reverse();
        graph.Node.Clear();
        graph.Node.AddRange(kept);
        var unusedInitializers = graph.Initializer.Where(t => !needed.Contains(t.Name)).ToList();
        foreach (var initializer in unusedInitializers)
        {
            graph.Initializer.Remove(initializer);
        }

        var unusedInfo = graph.ValueInfo.Where(v => !needed.Contains(v.Name)).ToList();
        foreach (var info in unusedInfo)
        {
            graph.ValueInfo.Remove(info);
        }
    }

    /// <summary>Writes the model atomically (see <see cref="AtomicFile"/>).</summary>
    /// <param name="path">The ONNX file.</param>
    /// <param name="model">The model.</param>
    public static void WriteAtomically(string path, ModelProto model)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var target = Path.GetFullPath(path);
        if (Directory.Exists(target))
        {
            throw new IOException($"Cannot export the ONNX model to '{target}': it is a folder. Give a file path such as '{Path.Combine(target, "model.onnx")}'.");
        }

        var directory = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Cannot export the ONNX model to '{target}': the folder '{directory}' does not exist. Create it first.");
        }

        try
        {
            AtomicFile.Write(target, model.WriteTo);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not export the ONNX model to '{target}': {ex.Message} The previous file, if any, is unchanged.", ex);
        }
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = "pretrainedkit_" + op + "_" + outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto IntsAttribute(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static AttributeProto FloatAttribute(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static ValueInfoProto TensorInfo(string name, int?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim is { } value
                ? new TensorShapeProto.Types.Dimension { DimValue = value }
                : new TensorShapeProto.Types.Dimension { DimParam = OnnxModelEditor.BatchDimension });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX export needs a little-endian machine.");
        }

        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static TensorProto Int64Tensor(string name, long[] dims, long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.AddRange(dims);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }

    /// <summary>The initializers every <see cref="RootAndNormalize"/> block shares: 1, 1e-12 and a column of ones per width.</summary>
    private sealed class RootAndNormalizeConstants(GraphProto graph, Func<string, string> fresh)
    {
        private readonly Dictionary<int, string> _ones = [];
        private string? _one;
        private string? _epsilon;

        /// <summary>Gets the name of the scalar 1 ([1]).</summary>
        public string One => _one ??= Add("one", [1], [1f]);

        /// <summary>Gets the name of the threshold 1e-12 ([1]) below which a block's squared length counts as 0.</summary>
        public string Epsilon => _epsilon ??= Add("norm_epsilon", [1], [1e-12f]);

        /// <summary>Gets the name of a [channels,1] column of ones (a MatMul with it sums the last axis).</summary>
        /// <param name="channels">The length.</param>
        /// <returns>The initializer's name.</returns>
        public string Ones(int channels)
        {
            if (!_ones.TryGetValue(channels, out var name))
            {
                name = Add($"ones_{channels}", [channels, 1], Enumerable.Repeat(1f, channels).ToArray());
                _ones[channels] = name;
            }

            return name;
        }

        private string Add(string name, long[] dims, float[] values)
        {
            var unique = fresh(name);
            graph.Initializer.Add(FloatTensor(unique, dims, values));
            return unique;
        }
    }
}
