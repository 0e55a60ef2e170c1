using System.Globalization;

namespace AttrCloak.Core.Data.Synthetic;

/// <summary>
/// A deterministic stand-in for MovieLens when the real data is not at hand (CI, demos, tests). Users carry
/// gender, age and occupation encoded exactly like the MovieLens loaders, with MovieLens-like skew, so every
/// downstream code path runs unchanged. Consumption follows a latent factor model whose user vectors are
/// personal taste plus per-class offsets, so attributes leak into the data (and into embeddings trained on
/// it) while most of what a user picks is still driven by taste and popularity.
/// </summary>
public static class SyntheticDataset
{
    public const string DatasetName = "synthetic";

    // ML-100K's gender share (F, M) and age-group distribution (docs/evaluation.md thresholds).
    private static readonly double[] GenderWeights = [0.29, 0.71];
    private static readonly double[] AgeWeights = [0.038, 0.210, 0.329, 0.206, 0.085, 0.077, 0.055];

    // ML-1M occupation codes 0-20 with ML-100K-like frequencies: one class near 0.2, a long tail of rare ones.
    private static readonly double[] OccupationWeights =
    [
        0.111, 0.101, 0.035, 0.084, 0.208, 0.010, 0.024, 0.034, 0.004, 0.007, 0.020,
        0.013, 0.070, 0.015, 0.041, 0.033, 0.022, 0.100, 0.009, 0.010, 0.049,
    ];

    private const long FirstTimestamp = 883_000_000; // Dec 1997, inside the MovieLens-100K collection period
    private const int DayInSeconds = 86_400;

    /// <summary>
    /// Generates the data set. The same options (seed included) give identical users, items, labels,
    /// interactions and timestamps.
    /// </summary>
    /// <exception cref="ArgumentException">The options are out of range.</exception>
    public static RecDataset Generate(SyntheticOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var rng = new SplitMixRandom(options.Seed);
        int n = options.Users, m = options.Items, d = options.LatentDimensions;

        var occupationWeights = OccupationWeights;
        var occupationSpec = MovieLensAttributes.Occupation1M;
        if (options.OccupationClasses != OccupationWeights.Length)
        {
            occupationWeights = Enumerable.Range(1, options.OccupationClasses).Select(r => 1.0 / r).ToArray();
            occupationSpec = new AttributeSpec("occupation",
                Enumerable.Range(0, options.OccupationClasses).Select(c => "c" + c.ToString(CultureInfo.InvariantCulture)).ToArray());
        }
        var weights = new[] { GenderWeights, AgeWeights, occupationWeights }.Select(w => Skew(w, options.ClassImbalance)).ToArray();
        var specs = new[] { MovieLensAttributes.Gender, MovieLensAttributes.Age, occupationSpec };
        var labels = new int[specs.Length][];
        for (var a = 0; a < specs.Length; a++)
        {
            labels[a] = new int[n];
            for (var u = 0; u < n; u++) labels[a][u] = rng.NextCategorical(weights[a]);
        }

        // One offset vector per (attribute, class): users of a class share a direction of taste.
        var offsets = new double[specs.Length][][];
        for (var a = 0; a < specs.Length; a++)
        {
            offsets[a] = new double[specs[a].ClassCount][];
            for (var c = 0; c < specs[a].ClassCount; c++) offsets[a][c] = Gaussians(rng, d, 1.0);
        }

        var userTaste = new double[n * d];
        for (var u = 0; u < n; u++)
        {
            var row = userTaste.AsSpan(u * d, d);
            for (var k = 0; k < d; k++) row[k] = rng.NextGaussian();
            for (var a = 0; a < specs.Length; a++)
            {
                var offset = offsets[a][labels[a][u]];
                for (var k = 0; k < d; k++) row[k] += options.AttributeStrength * offset[k];
            }
        }

        // The taste term is scaled by 1/sqrt(d) so the temperature means the same at any dimension.
        var itemTaste = new double[m * d];
        var scale = 1.0 / (Math.Sqrt(d) * options.Temperature);
        for (var i = 0; i < itemTaste.Length; i++) itemTaste[i] = rng.NextGaussian() * scale;

        // Zipf popularity over a random ranking of the items.
        var rank = Enumerable.Range(0, m).ToArray();
        Shuffle(rng, rank);
        var logPopularity = new double[m];
        for (var i = 0; i < m; i++) logPopularity[i] = -options.PopularityExponent * Math.Log(rank[i] + 1.0);

        var maxCount = Math.Min(m / 2, m - 100);
        var tail = options.MeanInteractionsPerUser - options.MinInteractionsPerUser;
        var interactions = new List<Interaction>((int)(n * options.MeanInteractionsPerUser * 1.1));
        var keys = new double[m];
        var order = new int[m];
        for (var u = 0; u < n; u++)
        {
            var count = options.MinInteractionsPerUser + (int)Math.Round(-Math.Log(rng.NextOpenDouble()) * tail);
            count = Math.Min(count, maxCount);

            // Gumbel top-k: the k largest of logit + Gumbel noise are a draw of k distinct items, each step
            // picking with probability softmax(logit) among the items not yet picked.
            var user = userTaste.AsSpan(u * d, d);
            for (var i = 0; i < m; i++)
            {
                var item = itemTaste.AsSpan(i * d, d);
                var dot = 0.0;
                for (var k = 0; k < d; k++) dot += user[k] * item[k];
                keys[i] = -(dot + logPopularity[i] - Math.Log(-Math.Log(rng.NextOpenDouble())));
                order[i] = i;
            }
            Array.Sort(keys, order); // ascending of the negated keys: the best items first
            var chosen = order.AsSpan(0, count).ToArray();
            Shuffle(rng, chosen); // consumption order is unrelated to preference rank, as in a real log

            var time = FirstTimestamp + rng.NextInt(180 * DayInSeconds);
            foreach (var item in chosen)
            {
                time += 1 + rng.NextInt(2 * DayInSeconds); // strictly increasing per user
                interactions.Add(new Interaction(u, item, time));
            }
        }

        // Ids "1".."n" like MovieLens; the numeric order of the ids is the index order, as the loaders make it.
        var userIds = Enumerable.Range(1, n).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var itemIds = Enumerable.Range(1, m).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new RecDataset(DatasetName, userIds, itemIds, interactions, specs, labels);
    }

    /// <summary>w_k^power, renormalised (power 1 returns the weights unchanged, so existing data sets stay bit-identical).</summary>
    private static double[] Skew(double[] weights, double power)
    {
        if (power == 1) return weights;
        var skewed = weights.Select(w => Math.Pow(w, power)).ToArray();
        var total = skewed.Sum();
        return skewed.Select(w => w / total).ToArray();
    }

    private static double[] Gaussians(SplitMixRandom rng, int count, double scale)
    {
        var v = new double[count];
        for (var k = 0; k < count; k++) v[k] = rng.NextGaussian() * scale;
        return v;
    }

    private static void Shuffle(SplitMixRandom rng, Span<int> values)
    {
        for (var i = values.Length - 1; i > 0; i--)
        {
            var j = rng.NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }
}
