using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Tests.Pipeline;

namespace AttrCloak.Streaming.Tests.Adversarial;

/// <summary>The clean run every attack is compared with (computed once per test class).</summary>
public sealed class CleanRunFixture(RedisServerFixture redis) : IAsyncLifetime
{
    internal PoisoningScenario Scenario { get; } = new();
    internal PoisoningScenario.Result? Clean { get; private set; }
    private readonly MockKafkaFixture _kafka = new();

    internal MockKafkaFixture Kafka => _kafka;

    public async ValueTask InitializeAsync() => Clean = await Scenario.RunAsync(redis, _kafka, attack: null);

    public ValueTask DisposeAsync()
    {
        _kafka.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Hostile producers through the real worker: each attack streamed in the middle of an honest population. In every case
/// every honest user's served embedding stays in the clean run's band, the served privacy (lr, lr+cal, mlp) stays within
/// +0.02 of the clean run, no honest user's update is lost, and what is out of range never enters.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class PoisoningTests(RedisServerFixture redis, CleanRunFixture clean) : IClassFixture<CleanRunFixture>
{
    public static TheoryData<string> Attacks() => [.. AttackCatalog.All.Keys];

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task An_attack_leaves_honest_users_in_band_and_privacy_within_two_points_of_the_clean_run(string name)
    {
        var attack = AttackCatalog.All[name];
        var baseline = clean.Clean!;
        var run = await clean.Scenario.RunAsync(redis, clean.Kafka, attack);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine(baseline.Describe());
        output?.WriteLine(run.Describe());

        run.Lost.ShouldBe(0, "every honest user's latest update is served");
        run.MaxNorm.ShouldBeLessThanOrEqualTo(1.5 * baseline.MaxNorm, "an honest user was served an embedding outside the clean run's band");
        run.MaxDisplacement.ShouldBeLessThanOrEqualTo(1.5 * baseline.MaxDisplacement, "an honest user was moved outside the clean run's band");
        for (var a = 0; a < PoisoningScenario.Catalog.Length; a++)
            run.MeanWorst(a).ShouldBeLessThanOrEqualTo(baseline.MeanWorst(a) + 0.02, $"{run.AttributeName(a)}: the attack made the honest served population leak more");
        foreach (var (reason, count) in attack.ExpectedDeadLetters)
            run.DeadLetters.GetValueOrDefault(reason).ShouldBe(count, $"dead letters '{reason}'");
        run.Log.ShouldNotContain(l => l.StartsWith("Error:", StringComparison.Ordinal) && !l.Contains("dead-letter", StringComparison.Ordinal));
    }

    /// <summary>
    /// The control: with the displacement cap off and the class shift weights free to follow the statistics, the sybils
    /// drag the honest users of the class they joined far from where the clean run put them (so the test above can fail),
    /// and with the defences on those users stay where the clean run put them.
    /// </summary>
    [Fact]
    public async Task Without_the_defences_sybils_drag_the_honest_users_of_their_class()
    {
        var baseline = clean.Clean!;
        var scenario = clean.Scenario;
        var target = AttackCatalog.SmallestOccupation(scenario);
        var undefended = await scenario.RunAsync(redis, clean.Kafka, AttackCatalog.All["sybils"],
            new AttrCloak.Streaming.Poisoning.InputOptions { MaxDisplacementRatio = 1e6 }, label: "sybils-undefended",
            new AttrCloak.Streaming.Cloaking.TransportCloakerOptions { HoldShiftWeightsAtSeating = false });
        var defended = await scenario.RunAsync(redis, clean.Kafka, AttackCatalog.All["sybils"]);
        var output = TestContext.Current.TestOutputHelper;
        var (c, u, d) = (scenario.MeanDisplacementOf(baseline, target), scenario.MeanDisplacementOf(undefended, target), scenario.MeanDisplacementOf(defended, target));
        output?.WriteLine(undefended.Describe());
        output?.WriteLine(FormattableString.Invariant($"honest users of the sybils' class: mean displacement clean {c:F2}, undefended {u:F2}, defended {d:F2}"));
        baseline.Capped.ShouldBeLessThan(0.02 * PoisoningScenario.Users, "the clean run is hardly ever capped");
        undefended.Capped.ShouldBe(0);
        u.ShouldBeGreaterThan(2 * c, "without the defences the sybils move their class's honest users");
        d.ShouldBeLessThanOrEqualTo(1.25 * c + 0.05, "with the defences the sybils' class keeps its clean displacement");
    }

    /// <summary>
    /// Re-seating as the population grows (<c>ReseatGrowth</c> 2): the Sybil flood doubles the population, so the worker
    /// seats it again over the poisoned statistics. Without the defences (cap off, shift weights free) that seating's batch
    /// cloak serves honest users out of the clean run's band and makes the Sybils' class identifiable (so this test can
    /// fail); with them the re-seating holds each class's shift at the weight of the seating before and its cloaks within
    /// that seating's cap.
    /// </summary>
    [Fact]
    public async Task A_re_seating_over_poisoned_statistics_keeps_honest_users_in_band_and_privacy_within_two_points_of_the_clean_run()
    {
        var baseline = clean.Clean!;
        var scenario = clean.Scenario;
        var undefended = await scenario.RunAsync(redis, clean.Kafka, AttackCatalog.All["sybils"],
            new AttrCloak.Streaming.Poisoning.InputOptions { MaxDisplacementRatio = 1e6 }, label: "sybils-reseated-undefended",
            new AttrCloak.Streaming.Cloaking.TransportCloakerOptions { HoldShiftWeightsAtSeating = false }, reseatGrowth: 2);
        var defended = await scenario.RunAsync(redis, clean.Kafka, AttackCatalog.All["sybils"], label: "sybils-reseated", reseatGrowth: 2);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine(baseline.Describe());
        output?.WriteLine(undefended.Describe());
        output?.WriteLine(defended.Describe());
        const string Reseated = "Re-seating generation", Held = "class offsets capped at the last seating's";
        undefended.Log.ShouldContain(l => l.Contains(Reseated, StringComparison.Ordinal));
        undefended.MaxNorm.ShouldBeGreaterThan(1.5 * baseline.MaxNorm, "without the defences the re-seating serves an honest user out of the band");
        undefended.MeanWorst(2).ShouldBeGreaterThan(baseline.MeanWorst(2) + 0.02, "without the defences the re-seating makes the Sybils' class identifiable");
        defended.Log.ShouldContain(l => l.Contains(Reseated, StringComparison.Ordinal));
        defended.Log.ShouldContain(l => l.Contains(Held, StringComparison.Ordinal));
        defended.Lost.ShouldBe(0);
        defended.MaxNorm.ShouldBeLessThanOrEqualTo(1.5 * baseline.MaxNorm, "the re-seating served an honest user outside the clean run's band");
        defended.MaxDisplacement.ShouldBeLessThanOrEqualTo(1.5 * baseline.MaxDisplacement, "the re-seating moved an honest user outside the clean run's band");
        for (var a = 0; a < PoisoningScenario.Catalog.Length; a++)
            defended.MeanWorst(a).ShouldBeLessThanOrEqualTo(baseline.MeanWorst(a) + 0.02, $"{defended.AttributeName(a)}: the re-seated honest population leaks more");
    }
}
