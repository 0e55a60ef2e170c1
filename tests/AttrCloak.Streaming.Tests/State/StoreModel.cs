using AttrCloak.Core.Data;
using AttrCloak.Streaming.State;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Tests.State;

/// <summary>
/// The specification the stores are checked against, written independently of their code: per-user version rules
/// (what an event does to a user) and the population's statistics as a direct two-pass float64 fit per class (mean
/// first, then centred outer products, like numpy's mean and cov(bias=True)), for the served and the original embeddings.
/// </summary>
internal sealed class StoreModel(AttributeSpec[] catalog, int d)
{
    private sealed class User
    {
        public long? Last;
        public bool LastIsForget;
        public string? LastEvent;
        public UserState? State;
    }

    private readonly Dictionary<string, User> _users = new(StringComparer.Ordinal);

    public UserState? this[string userId] => _users.GetValueOrDefault(userId)?.State;

    public IEnumerable<UserState> States => _users.Values.Where(u => u.State is not null).Select(u => u.State!);

    /// <summary>Applies one event as the specification says and returns its expected outcome.</summary>
    public ApplyOutcome Apply(UserStateChange ev)
    {
        if (!_users.TryGetValue(ev.UserId, out var m)) _users[ev.UserId] = m = new User();
        if (m.Last is { } last && ev.Version <= last)
            return ev.Version == last && (m.LastIsForget ? ev.Forget : !ev.Forget && ev.EventId == m.LastEvent)
                ? ApplyOutcome.Duplicate
                : ApplyOutcome.Stale;
        if (ev.Forget)
        {
            m.State = null;
            m.LastIsForget = true;
        }
        else
        {
            if (m.State is null && (ev.Original is null || ev.Cloaked is null)) return ApplyOutcome.Rejected;
            m.State = new UserState(ev.UserId, ev.Version, ev.EventId,
                (float[])(ev.Original ?? m.State!.Original).Clone(), (float[])(ev.Cloaked ?? m.State!.Cloaked).Clone(),
                (int[])(ev.Classes ?? m.State?.Classes ?? Enumerable.Repeat(-1, catalog.Length).ToArray()).Clone());
            m.LastIsForget = false;
        }
        m.Last = ev.Version;
        m.LastEvent = ev.EventId;
        return ApplyOutcome.Applied;
    }

    public ApplyOutcome[] Apply(IEnumerable<UserStateChange> batch) => batch.Select(Apply).ToArray();

    public (long Count, double[] Mean, double[] Covariance) Fit(StatisticsPopulation population, int attribute, int cls)
    {
        var rows = States.Where(u => cls < 0 ? u.Classes[attribute] >= 0 : u.Classes[attribute] == cls)
            .Select(u => population == StatisticsPopulation.Served ? u.Cloaked : u.Original).ToList();
        var mean = new double[d];
        var cov = new double[d * d];
        if (rows.Count == 0) return (0, mean, cov);
        foreach (var r in rows)
            for (var i = 0; i < d; i++) mean[i] += r[i];
        for (var i = 0; i < d; i++) mean[i] /= rows.Count;
        foreach (var r in rows)
            for (var i = 0; i < d; i++)
                for (var j = 0; j < d; j++)
                    cov[i * d + j] += (r[i] - mean[i]) * (r[j] - mean[j]);
        for (var i = 0; i < cov.Length; i++) cov[i] /= rows.Count;
        return (rows.Count, mean, cov);
    }

    /// <summary>Asserts that both populations' statistics in the snapshot equal the direct computation.</summary>
    public void ShouldMatch(StatisticsSnapshot snapshot, double tolerance = 1e-9)
    {
        snapshot.Dimension.ShouldBe(d);
        ShouldMatch(snapshot.Attributes, StatisticsPopulation.Served, tolerance);
        ShouldMatch(snapshot.Originals, StatisticsPopulation.Original, tolerance);
    }

    private void ShouldMatch(IReadOnlyList<ClassStatisticsSnapshot> attributes, StatisticsPopulation population, double tolerance)
    {
        attributes.Count.ShouldBe(catalog.Length, $"{population} attributes");
        for (var a = 0; a < catalog.Length; a++)
        {
            var s = attributes[a];
            var what = $"{population} {catalog[a].Name}";
            s.Attribute.ShouldBe(catalog[a].Name);
            s.ClassNames.ShouldBe(catalog[a].ClassNames);
            for (var k = 0; k < catalog[a].ClassCount; k++)
            {
                var (n, mean, cov) = Fit(population, a, k);
                s.Counts[k].ShouldBe(n, $"count of {what}={k}");
                MaxAbsDiff(s.Means[k], mean).ShouldBeLessThan(tolerance, $"mean of {what}={k}");
                MaxAbsDiff(s.Covariances[k], cov).ShouldBeLessThan(tolerance, $"covariance of {what}={k}");
            }
            var (gn, gmean, gcov) = Fit(population, a, -1);
            s.GlobalCount.ShouldBe(gn, $"global count of {what}");
            MaxAbsDiff(s.GlobalMean, gmean).ShouldBeLessThan(tolerance, $"global mean of {what}");
            MaxAbsDiff(s.GlobalCovariance, gcov).ShouldBeLessThan(tolerance, $"global covariance of {what}");
        }
    }

    public static double MaxAbsDiff(double[] a, double[] b)
    {
        a.Length.ShouldBe(b.Length);
        var m = 0.0;
        for (var i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
