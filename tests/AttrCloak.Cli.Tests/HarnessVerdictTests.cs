using AttrCloak.Cli.Experiments;

namespace AttrCloak.Cli.Tests;

/// <summary>The harness's pass/fail rule (<see cref="Harness.Failures"/>), on hand-made figures.</summary>
public sealed class HarnessVerdictTests
{
    private static readonly HarnessOptions Options = new() { Members = [] };

    private static MethodFigures Method(string name, double gender, double age, double ratio = 1.0, double? floor = 0.97) =>
        new(name, [new AttributeFigure("gender", gender, gender, "lr", 0.5), new AttributeFigure("age", age, -age, "lr+cal", 0.5)],
            0.3 * ratio, ratio, name == Harness.Original ? null : floor, null, 0);

    [Fact]
    public void A_member_within_the_bar_above_the_floor_and_streamed_close_to_batch_passes() =>
        Harness.Failures([Method(Harness.Original, 0.2, 0.2), Method(Harness.Df, 0.03, 0.04, 0.975), Method(Harness.Served, 0.045, 0.05, 0.98)], Options)
            .ShouldBeEmpty();

    [Fact]
    public void Each_broken_promise_is_named()
    {
        var failures = Harness.Failures(
        [
            Method(Harness.Original, 0.2, 0.2),
            Method(Harness.Df, 0.01, 0.051, 0.96),          // age over the bar (both directions count), NDCG under the floor
            Method(Harness.Served, 0.035, 0.04, 0.99),     // within the bar, but gender +0.025 over batch
        ], Options);
        failures.ShouldBe(
        [
            "AttrCloak-DF age |adv| 0.051",
            "AttrCloak-DF NDCG@10 0.960x < 0.97x",
            "Served stream (DF) gender |adv| 0.035 > batch 0.010 + 0.02",
        ]);
    }

    [Fact]
    public void The_stream_is_judged_against_batch_only_when_both_ran() =>
        Harness.Failures([Method(Harness.Original, 0.2, 0.2), Method(Harness.Served, 0.04, 0.04)], Options).ShouldBeEmpty();
}
