using System.Diagnostics;
using AttrCloak.Core.Data;
using AttrCloak.Learning.Backbones;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// AttrCloak (Algorithm 1 of the slides): post-training attribute unlearning of user embeddings by descending
/// alpha_u g_AU + (1 - alpha_u) g_R with the MGDA weight alpha_u recomputed at every step.
/// <para>
/// Reductions, and why they matter (docs/evaluation.md): MGDA on raw gradients weighs the losses by their gradient
/// scales. L_AU is an average (class shares, mean over attributes), so ||g_AU|| does not grow with n. L_Reg is
/// SUMMED over users as in the slides, and the DD loss is SUMMED over samples as
/// <see cref="IUserRecommendationLoss"/> requires; with a mean-reduced DD loss ||g_Rec|| would be ~1e-3 of
/// ||g_AU||, alpha_u ~1e-3, and "cloaking" would just be more training.
/// </para>
/// <para>
/// Dynamics (measured, see the tests and the df-alpha experiment): in DF g_R = 2 (em' - em) is 0 at the start, so alpha_u
/// sits at its lower clip for the first step (with the slide prose's [0, 0.1] clip that is 0, the step is 0 and
/// nothing ever moves). With Adam alpha_u then jumps to 0.99+ and the step is g_AU minus its component along -g_R,
/// until em' reaches a Pareto-stationary point where g_AU is anti-parallel to em' - em; there the MGDA direction
/// vanishes and the loop converges. How far it travels first, hence the privacy level, is set mostly by the
/// learning rate. With plain GD and the summed L_Reg, alpha_u settled at 0.17 on ML-100K-sized synthetic data and the
/// embeddings barely moved (relative change ~1e-4), as the reference run found; Adam is therefore the default. In DD with a summed loss
/// alpha_u stays ~1 from the first step.
/// </para>
/// </summary>
public sealed class Cloaker
{
    /// <summary>
    /// Cloaks <paramref name="original"/> ([n, d] user vectors) against inference of <paramref name="attributes"/>.
    /// The mode is DataFree when <paramref name="recommendationLoss"/> is null and DataDependent otherwise, unless
    /// <see cref="CloakOptions.Mode"/> says otherwise. Embeddings are float32 (what the backbones score with);
    /// the class statistics and KL are float64 inside <see cref="AttributeUnlearningLoss"/>.
    /// Throws <see cref="OperationCanceledException"/> on cancellation and <see cref="InvalidOperationException"/>
    /// if a loss becomes non-finite (fail closed: no half-cloaked matrix is returned as if it were fine).
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "An instance method by design: callers hold a cloaker (the seam the CLI and tests substitute); it keeps no state today.")]
    public CloakResult Cloak(
        EmbeddingMatrix original,
        IReadOnlyList<LabeledAttribute> attributes,
        CloakOptions options,
        IUserRecommendationLoss? recommendationLoss = null,
        IProgress<CloakIteration>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(attributes);
        ArgumentNullException.ThrowIfNull(options);
        var mode = options.Mode ?? (recommendationLoss is null ? CloakMode.DataFree : CloakMode.DataDependent);
        if (mode == CloakMode.DataDependent && recommendationLoss is null)
            throw new ArgumentException("DataDependent mode needs a recommendation loss");
        options.Validate(mode);
        var (alphaMin, alphaMax) = options.AlphaBounds(mode);

        TorchRuntime.EnsureInitialised();
        var wall = Stopwatch.StartNew();
        int n = original.Rows, d = original.Cols;

        using var auLoss = new AttributeUnlearningLoss(attributes, n, options.Ridge);
        ClassTargets[]? targets = null;
        var strengths = attributes.Select(a => options.StrengthOf(a.Name)).ToArray();
        if (options.Target != EqualisationTarget.Empirical || strengths.Any(st => st.Mean < 1 || st.Covariance < 1) || options.ClassKeepFloors is not null)
        {
            targets = attributes.Select((a, j) => ClassTargets.Build(original, a, options.Target, strengths[j].Mean,
                unchecked(options.TargetSeed * 31 + j), strengths[j].Covariance, options.KeepFloorsOf(a.Attribute.Name))).ToArray();
            auLoss.UseTargets(targets);
        }
        var equalisation = MeanEqualisation.Build(original, attributes, targets, strengths, options);
        var learningRate = options.RelativeLearningRate ? options.LearningRate * Spread(original) : options.LearningRate;
        // DF with every covariance held and the means finished exactly has a closed-form answer: the projection IS the
        // least-displacement solution of the mean targets, and gradient steps before it only add per-user moves that
        // depend on each user's combination of classes. Measured on the noise control (ML-100K labels, 4 draws, lr,
        // lr+cal, mlp, lgbm): with 80 Adam steps first the mlp sat 0.016-0.025 below chance on gender and age; with
        // the projection alone 0.007-0.012.
        var maxIterations = mode == CloakMode.DataFree && options.ExactMeans && options.Target == EqualisationTarget.NoiseMatched
            && strengths.All(st => st.Covariance == 0) ? 0 : options.MaxIterations;
        if (mode == CloakMode.DataDependent && options.ExactMeans && targets is not null && strengths.All(st => st.Covariance == 0))
            return ProjectedRetention(original, attributes, equalisation, options, learningRate, recommendationLoss!, progress, wall, ct);
        using var anchor = torch.tensor(original.Values, [n, d], float32);
        using var em = anchor.clone();
        using var adamM = torch.zeros_like(em);
        using var adamV = torch.zeros_like(em);

        var chance = options.PrivacyTarget is { ChanceMultiple: not null } t0
            ? ChanceLevels(anchor, attributes, options.Ridge, t0)
            : null;
        var trace = new List<CloakIteration>();
        var m = attributes.Count;
        double[]? initialPerAttribute = null;
        double previousAll = double.NaN;
        var calm = 0;
        CloakStopReason reason;
        // Where the time goes (CPU tensors run synchronously, so stopwatches around the calls are exact).
        var phase = Stopwatch.StartNew();
        TimeSpan inAu = default, inR = default, inMgda = default, inStep = default;
        TimeSpan Lap() { var e = phase.Elapsed; phase.Restart(); return e; }

        for (var t = 0; ; t++)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            phase.Restart();

            var x = em.detach().requires_grad_(true);
            var au = auLoss.Compute(x);
            var gAu = torch.autograd.grad([au.Total], [x])[0];
            inAu += Lap();

            Tensor lossR, gR;
            if (mode == CloakMode.DataFree)
            {
                using var noGrad = torch.no_grad();
                var diff = em.sub(anchor);
                lossR = diff.to_type(float64).Squared().sum();
                using var two = 2.0f.ToScalar();
                gR = diff.mul(two);
            }
            else
            {
                var xr = em.detach().requires_grad_(true);
                var rec = recommendationLoss!.Compute(xr);
                gR = torch.autograd.grad([rec], [xr])[0];
                lossR = rec.detach().to_type(float64);
            }
            inR += Lap();

            double[] scalars;
            using (torch.no_grad())
            {
                // Every trace scalar in one float64 vector, read back once per iteration.
                var a = gAu.to_type(float64).flatten();
                var r = gR.to_type(float64).flatten();
                var diff = a.sub(r);
                var packed = torch.cat([
                    au.PerAttribute.detach(),
                    au.MeanShiftPerAttribute,
                    torch.stack([lossR.reshape(), a.dot(a), r.dot(r), a.dot(r), diff.dot(diff), diff.dot(r).neg()]),
                ]);
                scalars = packed.data<double>().ToArray();
            }

            var perAttribute = scalars[..m];
            var meanShift = scalars[m..(2 * m)];
            double lR = scalars[2 * m], aa = scalars[2 * m + 1], rr = scalars[2 * m + 2], ar = scalars[2 * m + 3];
            double dd = scalars[2 * m + 4], numerator = scalars[2 * m + 5];
            var alpha = MgdaWeight.FromProducts(numerator, dd, alphaMin, alphaMax);
            var lAu = perAttribute.Average();
            var lAll = alpha * lAu + (1 - alpha) * lR;
            var stepSquared = alpha * alpha * aa + 2 * alpha * (1 - alpha) * ar + (1 - alpha) * (1 - alpha) * rr;
            var row = new CloakIteration(t, alpha, lAu, perAttribute, lR, lAll,
                Math.Sqrt(aa), Math.Sqrt(rr), Math.Sqrt(Math.Max(stepSquared, 0)), wall.Elapsed, meanShift);
            trace.Add(row);
            inMgda += Lap();
            progress?.Report(row);

            if (!double.IsFinite(lAll) || !double.IsFinite(aa) || !double.IsFinite(rr))
                throw new InvalidOperationException(
                    $"cloaking became non-finite at iteration {t} (L_AU={lAu}, L_R={lR}, |g_AU|^2={aa}, |g_R|^2={rr}); " +
                    "try a larger covariance ridge or a smaller learning rate");

            initialPerAttribute ??= perAttribute;
            if (options.PrivacyTarget is { } target && target.IsMet(lAu, perAttribute, initialPerAttribute, meanShift, chance))
            {
                reason = CloakStopReason.PrivacyTargetReached;
                break;
            }
            if (t > 0)
            {
                var change = Math.Abs(lAll - previousAll) / Math.Max(Math.Abs(previousAll), 1e-300);
                calm = change < options.ConvergenceTolerance ? calm + 1 : 0;
                if (calm >= options.ConvergencePatience)
                {
                    reason = CloakStopReason.Converged;
                    break;
                }
            }
            previousAll = lAll;
            if (t >= maxIterations)
            {
                reason = CloakStopReason.MaxIterations;
                break;
            }

            using (torch.no_grad())
            {
                // Explicit, held Scalars throughout (see Scalars): implicit ones can be finalised mid-call.
                using var alphaScalar = ((float)alpha).ToScalar();
                using var restScalar = ((float)(1 - alpha)).ToScalar();
                var direction = gAu.mul(alphaScalar).add_(gR, restScalar);
                Step(options, learningRate, t + 1, em, direction, adamM, adamV);
            }
            inStep += Lap();
        }

        var values = em.data<float>().ToArray();
        var cloaked = new EmbeddingMatrix(n, d, values);
        if (options.ExactMeans)
            equalisation.Apply(cloaked);
        wall.Stop();
        return new CloakResult(cloaked, mode, alphaMin, alphaMax, reason, trace.Count - 1,
            wall.Elapsed, attributes.Select(a => a.Name).ToArray(), trace)
        {
            ChanceMeanShiftPerAttribute = chance,
            Timings = new CloakTimings(inAu, inR, inMgda, inStep),
            Strata = equalisation.Decisions,
        };
    }

    /// <summary>
    /// Each attribute's mean-shift term on the original embeddings with its known labels shuffled among the
    /// labelled users (class sizes kept), averaged over the target's seeded permutations: the level of embeddings
    /// whose class means differ only by sampling noise.
    /// </summary>
    internal static double[] ChanceLevels(Tensor users, IReadOnlyList<LabeledAttribute> attributes, CovarianceRidge ridge,
        PrivacyTarget target)
    {
        var rng = new Random(target.ChanceSeed);
        var sums = new double[attributes.Count];
        for (var p = 0; p < target.ChancePermutations; p++)
        {
            var permuted = attributes.Select(a =>
            {
                var labels = (int[])a.Labels.Clone();
                var known = Enumerable.Range(0, labels.Length).Where(u => labels[u] != LabeledAttribute.Unknown).ToArray();
                var values = known.Select(u => labels[u]).ToArray();
                rng.Shuffle(values);
                for (var i = 0; i < known.Length; i++) labels[known[i]] = values[i];
                return a with { Labels = labels };
            }).ToArray();
            using var loss = new AttributeUnlearningLoss(permuted, (int)users.shape[0], ridge);
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var values = loss.Compute(users).MeanShiftPerAttribute.data<double>().ToArray();
            for (var j = 0; j < sums.Length; j++) sums[j] += values[j] / target.ChancePermutations;
        }
        return sums;
    }

    /// <summary>
    /// DD when the class means are held exactly on their targets (noise-matched, covariances untouched): the least-
    /// displacement projection first (DF's answer), then <see cref="CloakOptions.MaxIterations"/> Adam steps down the
    /// recommendation loss, each followed by the projection again: projected gradient descent on L_Rec subject to the
    /// class-mean targets. MGDA has nothing to weigh here (with the means pinned, g_AU is 0 and its min-norm point says
    /// "stationary" at once); the retention loss redistributes each class's taste among its own users, which the
    /// class-wide shift of DF cannot do.
    /// </summary>
    private static CloakResult ProjectedRetention(EmbeddingMatrix original, IReadOnlyList<LabeledAttribute> attributes,
        MeanEqualisation equalisation, CloakOptions options, double learningRate,
        IUserRecommendationLoss recommendationLoss, IProgress<CloakIteration>? progress, Stopwatch wall, CancellationToken ct)
    {
        int n = original.Rows, d = original.Cols;
        var x = original.Clone();
        equalisation.Apply(x);
        using var em = torch.tensor(x.Values, [n, d], float32);
        using var adamM = torch.zeros_like(em);
        using var adamV = torch.zeros_like(em);
        var trace = new List<CloakIteration>();
        for (var t = 0; ; t++)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var xr = em.detach().requires_grad_(true);
            var rec = recommendationLoss.Compute(xr);
            var g = torch.autograd.grad([rec], [xr])[0];
            // The means are on their targets by construction after every step and the covariances are not cloaked on
            // this path, so L_AU is reported as 0 (its covariance part, held to drifting targets, can even lose
            // positive definiteness for classes of a few users as the retention steps move the global covariance).
            var perAttribute = new double[attributes.Count];
            var meanShift = new double[attributes.Count];
            var lossR = rec.detach().to_type(float64).item<double>();
            var gradNorm = g.to_type(float64).norm().item<double>();
            var row = new CloakIteration(t, 0, perAttribute.Average(), perAttribute, lossR, lossR, 0, gradNorm, gradNorm, wall.Elapsed, meanShift);
            trace.Add(row);
            progress?.Report(row);
            if (!double.IsFinite(lossR)) throw new InvalidOperationException($"the recommendation loss became non-finite at iteration {t}");
            if (t >= options.MaxIterations) break;
            using (torch.no_grad())
            {
                Step(options, learningRate, t + 1, em, g, adamM, adamV);
                em.data<float>().CopyTo(x.Values);
                equalisation.Apply(x);
                using var projected = torch.tensor(x.Values, [n, d], float32);
                em.copy_(projected);
            }
        }
        wall.Stop();
        var (alphaMin, alphaMax) = options.AlphaBounds(CloakMode.DataDependent);
        return new CloakResult(x, CloakMode.DataDependent, alphaMin, alphaMax,
            trace.Count - 1 >= options.MaxIterations ? CloakStopReason.MaxIterations : CloakStopReason.Converged, trace.Count - 1,
            wall.Elapsed, attributes.Select(a => a.Name).ToArray(), trace) { Strata = equalisation.Decisions };
    }

    /// <summary>Root mean per-dimension standard deviation of <paramref name="x"/> (the embeddings' spread).</summary>
    public static double Spread(EmbeddingMatrix x)
    {
        ArgumentNullException.ThrowIfNull(x);
        int n = x.Rows, d = x.Cols;
        if (n < 2) return 1;
        var mean = new double[d];
        var m2 = new double[d];
        for (var i = 0; i < n; i++)
        {
            var row = x.Row(i);
            for (var j = 0; j < d; j++)
            {
                var delta = row[j] - mean[j];
                mean[j] += delta / (i + 1);
                m2[j] += delta * (row[j] - mean[j]);
            }
        }
        var spread = Math.Sqrt(m2.Sum() / n / d);
        return spread > 0 ? spread : 1;
    }

    private static void Step(CloakOptions options, double learningRate, int step, Tensor em, Tensor direction, Tensor m, Tensor v)
    {
        if (options.Optimizer == CloakOptimizer.Sgd)
        {
            using var negativeRate = (-learningRate).ToScalar();
            em.add_(direction, negativeRate);
            return;
        }
        // Adam as in torch.optim.Adam (no weight decay, no amsgrad), every Scalar explicit and held (see Scalars).
        double b1 = options.AdamBeta1, b2 = options.AdamBeta2;
        var biasCorrection1 = 1 - Math.Pow(b1, step);
        var biasCorrection2 = 1 - Math.Pow(b2, step);
        using var beta1 = b1.ToScalar();
        using var oneMinusBeta1 = (1 - b1).ToScalar();
        using var beta2 = b2.ToScalar();
        using var oneMinusBeta2 = (1 - b2).ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
        using var epsilon = options.AdamEpsilon.ToScalar();
        using var negativeStepSize = (-learningRate / biasCorrection1).ToScalar();
        m.mul_(beta1).add_(direction, oneMinusBeta1);
        v.mul_(beta2).addcmul_(direction, direction, oneMinusBeta2);
        var denominator = v.sqrt().div_(sqrtBiasCorrection2).add_(epsilon, Scalars.One);
        em.addcdiv_(m, denominator, negativeStepSize);
    }
}
