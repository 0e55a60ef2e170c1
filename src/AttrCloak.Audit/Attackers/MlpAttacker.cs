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
/// <para>Threads: fits and predictions run libtorch single-threaded (<c>torch.set_num_threads(1)</c> on the
/// calling thread). For matrices this small intra-op threads only add synchronisation, and on a loaded
/// machine libtorch's spinning OpenMP workers make a fit many times slower (docs/performance.md); the audit
/// parallelises over (attribute, fold) cells instead. Note that libtorch's
/// thread count is process-wide state: later libtorch work in the same process also runs single-threaded
/// unless it sets its own count.</para>
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
        UseOneIntraOpThread();

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

        var parameters = weights.Concat(biases).ToArray();
        using var adam = new SklearnAdam(parameters, settings.LearningRate);
        var batchSize = Math.Clamp(settings.BatchSize, 1, n);
        var order = Enumerable.Range(0, n).ToArray();
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
                // w * w, not w.square(): square() is pow(w, 2) with an implicit Scalar (see SklearnAdam).
                var squares = stack(weights.Select(w => w.mul(w).sum()).ToArray()).sum();
                using var l2 = (settings.Alpha / (2.0 * count)).ToScalar();
                var loss = dataLoss.add(squares, l2);
                foreach (var p in parameters) p.grad?.zero_();
                loss.backward();
                adam.Step();
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

    internal static void UseOneIntraOpThread()
    {
        TorchRuntime.EnsureInitialised();
        // get_num_threads reads the calling thread's OpenMP setting, so each worker thread is checked.
        if (get_num_threads() != 1) set_num_threads(1);
    }

    internal static Tensor Forward(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases)
    {
        // addmm (bias + x W) takes beta/alpha as plain floats; `x.matmul(w) + b` would go through
        // Tensor.add(target, 1) and its implicit temporary Scalar (see SklearnAdam for why that matters).
        var h = x;
        for (var l = 0; l < weights.Count; l++)
        {
            h = biases[l].addmm(h, weights[l]);
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

    /// <summary>
    /// Adam exactly as sklearn's MLPClassifier applies it: lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t),
    /// p -= lr_t * m / (sqrt(v) + eps). Written here rather than using torch.optim.Adam because TorchSharp's
    /// C# optimisers and operators pass implicitly converted, never-disposed Scalars to native code; the GC
    /// may finalise such a temporary while libtorch still reads it, and with fits running on several threads
    /// that happened ("Expected false to be true ... toFloat" from add_ and pow). Every Scalar here is held
    /// by a using-variable until the native calls that read it have returned, and the training loop avoids
    /// the Tensor methods that create such temporaries (operators on scalars, square, add(Tensor), add_(Scalar)).
    /// </summary>
    private sealed class SklearnAdam(Parameter[] parameters, double learningRate) : IDisposable
    {
        private const double Beta1 = 0.9;
        private const double Beta2 = 0.999;
        private const double Epsilon = 1e-8;
        private readonly Tensor[] _m = parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        private readonly Tensor[] _v = parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        private int _t;

        public void Step()
        {
            _t++;
            var stepSize = learningRate * Math.Sqrt(1 - Math.Pow(Beta2, _t)) / (1 - Math.Pow(Beta1, _t));
            using var beta1 = Beta1.ToScalar();
            using var oneMinusBeta1 = (1 - Beta1).ToScalar();
            using var beta2 = Beta2.ToScalar();
            using var oneMinusBeta2 = (1 - Beta2).ToScalar();
            using var epsilon = Epsilon.ToScalar();
            using var negativeStep = (-stepSize).ToScalar();
            using var one = 1.0.ToScalar();
            using var noGrad = no_grad();
            for (var i = 0; i < parameters.Length; i++)
            {
                using var grad = parameters[i].grad;
                if (grad is null) continue;
                _m[i].mul_(beta1).add_(grad, oneMinusBeta1);
                _v[i].mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
                using var denominator = _v[i].sqrt().add_(epsilon, one);
                parameters[i].addcdiv_(_m[i], denominator, negativeStep);
            }
        }

        public void Dispose()
        {
            foreach (var t in _m) t.Dispose();
            foreach (var t in _v) t.Dispose();
        }
    }

    private sealed class MlpModel(
        Standardizer standardizer, ClassMap classes, Tensor[] weights, Tensor[] biases, bool binary) : IAttackModel
    {
        public int ClassCount => classes.ClassCount;

        public float[] PredictProba(EmbeddingMatrix x)
        {
            var features = standardizer.Transform(x);
            UseOneIntraOpThread();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var logits = Forward(tensor(features, [x.Rows, x.Cols]), weights, biases);
            // 1 - sigmoid(z) = sigmoid(-z); avoids scalar arithmetic (see SklearnAdam).
            var proba = binary
                ? cat([logits.negative().sigmoid(), logits.sigmoid()], 1)
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
