using AttrCloak.Core.Data;
using AttrCloak.Learning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttrCloak.Audit.Attackers;

/// <summary>
/// MLP settings with sklearn MLPClassifier semantics (the D2D-R attacker: hidden (100,), ReLU, Adam,
/// alpha 1.0, learning rate 0.01, at most 500 epochs).
/// </summary>
/// <param name="HiddenLayers">Hidden layer widths, ReLU after each.</param>
/// <param name="Alpha">L2 strength: each mini-batch loss adds Alpha / (2 * batch size) * sum of squared weights (biases free), exactly as sklearn.</param>
/// <param name="LearningRate">Adam step size (beta 0.9/0.999, eps 1e-8).</param>
/// <param name="MaxEpochs">Upper bound on passes over the training users.</param>
/// <param name="BatchSize">Mini-batch size, capped at the number of users (sklearn's "auto" = min(200, n)).</param>
/// <param name="Tolerance">An epoch "improves" when its mean loss beats the best so far by more than this.</param>
/// <param name="NoImprovementEpochs">Stop once more than this many consecutive epochs did not improve (sklearn n_iter_no_change).</param>
public sealed record MlpSettings(
    IReadOnlyList<int> HiddenLayers,
    double Alpha = 1.0,
    double LearningRate = 0.01,
    int MaxEpochs = 500,
    int BatchSize = 200,
    double Tolerance = 1e-4,
    int NoImprovementEpochs = 10);

/// <summary>
/// A multilayer perceptron attacker in TorchSharp reproducing sklearn's MLPClassifier training loop:
/// Glorot-uniform initialisation (bound sqrt(6 / (fan_in + fan_out)) for weights and biases), mini-batches
/// of min(200, n) users reshuffled every epoch, Adam, the per-batch L2 term above, and sklearn's stopping
/// rule on the training loss. Mini-batches rather than full batch because the L2 term is scaled by the
/// batch size: full batch would silently weaken the regulariser by n/200 and change the attacker.
/// Two present classes use one logistic output unit (as sklearn), more use softmax.
/// Determinism: initial weights and shuffles come from <see cref="System.Random"/> seeded per fit, never
/// from libtorch's global generator, so parallel fits do not disturb each other.
/// </summary>
public sealed class MlpAttacker(string name, MlpSettings settings) : IAttacker
{
    /// <summary>The D2D-R attacker: one hidden layer of 100.</summary>
    public static MlpAttacker Default => new("mlp", new MlpSettings([100]));

    /// <summary>A wider, deeper variant (256-128) with the same optimiser and regularisation.</summary>
    public static MlpAttacker Wide => new("mlp-wide", new MlpSettings([256, 128]));

    public string Name => name;

    public MlpSettings Settings => settings;

    /// <summary>Epochs run by the most recent fit on this thread (diagnostics and tests).</summary>
    [ThreadStatic] private static int t_lastEpochs;

    internal static int LastEpochs => t_lastEpochs;

    public IAttackModel Fit(EmbeddingMatrix x, int[] y, int classCount, int seed)
    {
        var classes = ClassMap.Build(y, classCount, x.Rows);
        if (classes.PresentCount == 1) return new ConstantModel(classCount, classes.Present[0]);
        TorchRuntime.EnsureInitialised();

        var standardizer = Standardizer.Fit(x);
        var features = standardizer.Transform(x);
        var n = x.Rows;
        var binary = classes.PresentCount == 2;
        var outputs = binary ? 1 : classes.PresentCount;
        var widths = new List<int> { x.Cols };
        widths.AddRange(settings.HiddenLayers);
        widths.Add(outputs);

        var rng = new Random(seed);
        var weights = new List<Parameter>();
        var biases = new List<Parameter>();
        using var fitScope = NewDisposeScope();
        for (var l = 0; l + 1 < widths.Count; l++)
        {
            var fanIn = widths[l];
            var fanOut = widths[l + 1];
            var bound = Math.Sqrt(6.0 / (fanIn + fanOut));
            weights.Add(new Parameter(tensor(Uniform(rng, fanIn * fanOut, bound), [fanIn, fanOut])));
            biases.Add(new Parameter(tensor(Uniform(rng, fanOut, bound), [fanOut])));
        }

        var xAll = tensor(features, [n, x.Cols]);
        var yAll = binary
            ? tensor(classes.DenseLabels.Select(c => (float)c).ToArray(), [n, 1])
            : tensor(classes.DenseLabels.Select(c => (long)c).ToArray(), [n]);

        var batchSize = Math.Clamp(settings.BatchSize, 1, n);
        var order = Enumerable.Range(0, n).ToArray();
        using var optimizer = optim.Adam(weights.Concat(biases), lr: settings.LearningRate);
        var bestLoss = double.PositiveInfinity;
        var noImprovement = 0;
        var epochs = 0;
        for (var epoch = 0; epoch < settings.MaxEpochs; epoch++)
        {
            epochs++;
            rng.Shuffle(order);
            var epochLoss = 0.0;
            for (var start = 0; start < n; start += batchSize)
            {
                var count = Math.Min(batchSize, n - start);
                using var stepScope = NewDisposeScope();
                var index = tensor(order.AsSpan(start, count).ToArray().Select(i => (long)i).ToArray(), [count]);
                var xb = xAll.index_select(0, index);
                var yb = yAll.index_select(0, index);
                var logits = Forward(xb, weights, biases);
                var dataLoss = binary
                    ? nn.functional.binary_cross_entropy_with_logits(logits, yb)
                    : nn.functional.cross_entropy(logits, yb);
                var squares = weights.Select(w => w.square().sum()).Aggregate((a, b) => a + b);
                var loss = dataLoss + squares * (settings.Alpha / (2.0 * count));
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                epochLoss += loss.item<float>() * count;
            }
            epochLoss /= n;

            // sklearn's _update_no_improvement_count with early_stopping=False.
            if (epochLoss > bestLoss - settings.Tolerance) noImprovement++;
            else noImprovement = 0;
            if (epochLoss < bestLoss) bestLoss = epochLoss;
            if (noImprovement > settings.NoImprovementEpochs) break;
        }
        t_lastEpochs = epochs;

        var finalWeights = weights.Select(w => w.detach().clone().DetachFromDisposeScope()).ToArray();
        var finalBiases = biases.Select(b => b.detach().clone().DetachFromDisposeScope()).ToArray();
        return new MlpModel(standardizer, classes, finalWeights, finalBiases, binary);
    }

    internal static Tensor Forward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases)
    {
        var h = x;
        for (var l = 0; l < weights.Count; l++)
        {
            h = h.matmul(weights[l]) + biases[l];
            if (l + 1 < weights.Count) h = nn.functional.relu(h);
        }
        return h;
    }

    private static float[] Uniform(Random rng, int count, double bound)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        return values;
    }

    private sealed class MlpModel(
        Standardizer standardizer, ClassMap classes, Tensor[] weights, Tensor[] biases, bool binary) : IAttackModel
    {
        public int ClassCount => classes.ClassCount;

        public float[] PredictProba(EmbeddingMatrix x)
        {
            var features = standardizer.Transform(x);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var logits = Forward(tensor(features, [x.Rows, x.Cols]), weights, biases);
            var proba = binary
                ? cat([1 - logits.sigmoid(), logits.sigmoid()], 1)
                : logits.softmax(1);
            var present = proba.contiguous().data<float>().ToArray();
            return classes.Expand(present, x.Rows);
        }

        public void Dispose()
        {
            foreach (var t in weights) t.Dispose();
            foreach (var t in biases) t.Dispose();
        }
    }
}
