using AttrCloak.Core.Data;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Tools.Benchmarks;

/// <summary>
/// The store and worker of the soak, in process: served and original statistics of a DF-seeded population, then
/// update events (each user once per <see cref="Round"/>, in random order) re-cloaked with a cloaker rebuilt every
/// <c>rebuildEvery</c> events; each event replaces the user's old state in the statistics by the new one. Shared by
/// the repeated-update test and the repeated-updates experiment (AttrCloak.Tools.Experiments).
/// </summary>
internal sealed class RepeatedUpdateRun
{
    private readonly BenchmarkPopulation _population;
    private readonly TransportCloakerFactory _factory;
    private readonly int _rebuildEvery;
    private readonly Random _rng;
    private readonly float[][] _currentOriginals;
    private readonly ClassStatisticsAccumulator _originalStats;
    private IUserCloaker? _cloaker;
    private long _events;
    private long _sequence;

    public RepeatedUpdateRun(BenchmarkPopulation population, EmbeddingMatrix seeded, TransportCloakerFactory factory, int rebuildEvery, int seed)
    {
        _population = population;
        _factory = factory;
        _rebuildEvery = rebuildEvery;
        _rng = new Random(seed);
        var d = seeded.Cols;
        var catalog = BenchmarkRig.Catalog;
        Served = seeded.Clone();
        _currentOriginals = population.Originals.Select(x => (float[])x.Clone()).ToArray();
        ServedStats = new ClassStatisticsAccumulator(d, catalog);
        _originalStats = new ClassStatisticsAccumulator(d, catalog);
        for (var u = 0; u < seeded.Rows; u++)
        {
            ServedStats.Add(Served.Row(u), population.Classes[u]);
            _originalStats.Add(_currentOriginals[u], population.Classes[u]);
        }
    }

    public EmbeddingMatrix Served { get; }
    public ClassStatisticsAccumulator ServedStats { get; }
    public int Builds { get; private set; }

    /// <summary>Rows of equal length as one row-major matrix.</summary>
    public static EmbeddingMatrix Matrix(float[][] rows, int d)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var values = new float[rows.Length * d];
        for (var i = 0; i < rows.Length; i++) rows[i].CopyTo(values, i * d);
        return new EmbeddingMatrix(rows.Length, d, values);
    }

    /// <summary>Every user once, in random order.</summary>
    public void Round()
    {
        var n = Served.Rows;
        var d = Served.Cols;
        var order = Enumerable.Range(0, n).ToArray();
        _rng.Shuffle(order);
        var cloaked = new float[d];
        foreach (var u in order)
        {
            if (_cloaker is null || _events % _rebuildEvery == 0)
            {
                _cloaker = _factory.Build(ClassStatisticsAccumulator.Combine(ServedStats, _originalStats, new StatisticsVersion("repeat", ++_sequence)));
                Builds++;
            }
            _events++;
            var classes = _population.Classes[u];
            // The soak's update: the user's embedding with one value changed by up to +-0.05 (the base does not drift).
            var original = (float[])_population.Originals[u].Clone();
            original[(int)(_events % d)] += (float)(_rng.NextDouble() - 0.5) * 0.1f;
            _cloaker.Cloak(original, classes, cloaked);
            // The store: the user's previous state leaves the statistics, the new one enters.
            ServedStats.Add(Served.Row(u), classes, -1);
            _originalStats.Add(_currentOriginals[u], classes, -1);
            cloaked.CopyTo(Served.Row(u));
            _currentOriginals[u] = original;
            ServedStats.Add(cloaked, classes);
            _originalStats.Add(original, classes);
        }
    }
}
