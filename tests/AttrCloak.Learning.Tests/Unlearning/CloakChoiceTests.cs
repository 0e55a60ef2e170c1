using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Unlearning;

namespace AttrCloak.Learning.Tests.Unlearning;

public sealed class CloakChoiceTests
{
    /// <summary>
    /// A cloak that removes <paramref name="effect"/>[j] x t_j of attribute j's leak (row 0) at a utility cost of
    /// <paramref name="cost"/>[j] x t_j (row 1), on top of what its input already carries: stages add up.
    /// </summary>
    private sealed class EffectCloak(EmbeddingMatrix input, double[] effect, double[] cost) : IStrengthCloak
    {
        public int Runs { get; private set; }

        public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct)
        {
            Runs++;
            var copy = input.Clone();
            for (var j = 0; j < strengths.Count; j++)
            {
                copy.Row(0)[j] += (float)(effect[j] * strengths[j].Mean);
                copy.Row(1)[j] += (float)(cost[j] * strengths[j].Mean);
            }
            return new StrengthCloakResult(copy);
        }
    }

    /// <summary>Attribute j leaks leak[j] x (1 - removed_j), removed_j written by <see cref="EffectCloak"/> into row 0.</summary>
    private sealed class RemovedProbe(double[] leak) : IPrivacyProbe
    {
        public int Audits { get; private set; }

        public PrivacyReading Measure(EmbeddingMatrix embeddings, CancellationToken ct)
        {
            Audits++;
            return new(leak.Select((l, j) => l * Math.Max(0, 1 - embeddings.Row(0)[j])).ToArray(), leak.Select(_ => 0.0).ToArray(), leak.Select(_ => "removed").ToArray());
        }
    }

    /// <summary>1 - the costs <see cref="EffectCloak"/> wrote into row 1.</summary>
    private sealed class CostUtility : IUtilityProbe
    {
        public string Name => "cost";

        public PairedRatio Measure(EmbeddingMatrix cloaked) => new(1 - Enumerable.Range(0, cloaked.Cols).Sum(j => (double)cloaked.Row(1)[j]), 0, cloaked.Rows);
    }

    private static EmbeddingMatrix Zeros(int attributes) => new(4, attributes, new float[4 * attributes]);

    // Cloak A removes attr0 cheaply and barely touches attr1; cloak B the reverse (DF's class means and the maps on ML-100K MF).
    private static EffectCloak A(EmbeddingMatrix x) => new(x, [1.0, 0.3, 1.0], [0.01, 0.05, 0.01]);

    private static EffectCloak B(EmbeddingMatrix x) => new(x, [0.3, 1.0, 1.0], [0.05, 0.01, 0.01]);

    [Fact]
    public void Each_attribute_goes_to_the_cloak_that_removes_more_of_its_leak_per_unit_of_utility()
    {
        var x = Zeros(3);
        var probe = new RemovedProbe([0.2, 0.2, 0.01]);
        var choice = CloakChoice.Choose(x, ["gender", "age", "occupation"], ("A", A(x)), ("B", B(x)), new PrivacyGoal(0.03), probe, new CostUtility(),
            ct: TestContext.Current.CancellationToken);
        choice.Second.ShouldBe([false, true, false]);
        choice.Describe().ShouldBe("gender: A, age: B, occupation: A");
        // occupation is within the target on the original: not piloted. Two pilots per leaking attribute, one audit each, plus the original's.
        choice.Pilots.Select(p => (p.Attribute, p.Cloak)).ShouldBe([("gender", "A"), ("gender", "B"), ("age", "A"), ("age", "B")]);
        probe.Audits.ShouldBe(5);
        var pilot = choice.Pilots[0];
        pilot.After.ShouldBe(0.2 * (1 - CloakChoice.PilotStrength), 1e-6);
        pilot.Efficiency.ShouldBe(pilot.Removed * pilot.Removed / (0.01 * CloakChoice.PilotStrength), 1e-3);
    }

    [Fact]
    public void The_staged_cloak_gives_each_stage_its_attributes_and_runs_the_second_on_the_first_ones_output()
    {
        var x = Zeros(2);
        var first = A(x);
        EffectCloak? second = null;
        var staged = new StagedCloak(x, first, input => second = B(input), [false, true]);
        var ct = TestContext.Current.CancellationToken;
        var out1 = staged.Run([new AttributeStrength(0.5, 0), new AttributeStrength(1, 0)], ct).Embeddings;
        // attr0 at 0.5 through A (0.5), attr1 at 1 through B alone (1; A, which would add 0.3, never saw attr1's strength).
        out1.Row(0)[0].ShouldBe(0.5f, 1e-6f);
        out1.Row(0)[1].ShouldBe(1f, 1e-6f);
        out1.Row(1)[0].ShouldBe(0.005f, 1e-6f);
        // The second stage's strengths change, the first's do not: the first stage is not run again.
        staged.Run([new AttributeStrength(0.5, 0), new AttributeStrength(0.2, 0)], ct).Embeddings.Row(0)[1].ShouldBe(0.2f, 1e-6f);
        first.Runs.ShouldBe(1);
        // Nothing for the second stage: the first stage's output as it is.
        var out3 = staged.Run([new AttributeStrength(1, 0), AttributeStrength.None], ct).Embeddings;
        out3.Row(0)[0].ShouldBe(1f, 1e-6f);
        out3.Row(0)[1].ShouldBe(0f);
        Should.Throw<ArgumentException>(() => staged.Run([AttributeStrength.None], ct));
        second.ShouldNotBeNull();
    }

    [Fact]
    public void The_loop_over_the_chosen_stages_meets_a_target_that_neither_cloak_meets_alone_above_the_floor()
    {
        var x = Zeros(2);
        var goal = new PrivacyGoal(0.03, UtilityFloor: 0.97);
        var ct = TestContext.Current.CancellationToken;
        var alone = new TargetedCloaker().Cloak(x, ["gender", "age"], A(x), goal, new RemovedProbe([0.2, 0.2]), new CostUtility(), ct: ct);
        alone.Outcome.ShouldNotBe(TargetOutcome.Met);

        var choice = CloakChoice.Choose(x, ["gender", "age"], ("A", A(x)), ("B", B(x)), goal, new RemovedProbe([0.2, 0.2]), new CostUtility(), ct: ct);
        var mixed = new TargetedCloaker().Cloak(x, ["gender", "age"], new StagedCloak(x, A(x), B, choice.Second), goal, new RemovedProbe([0.2, 0.2]),
            new CostUtility(), ct: ct);
        mixed.Outcome.ShouldBe(TargetOutcome.Met, string.Join(Environment.NewLine, mixed.Steps.Select(s => $"{s.Name}: {string.Join(",", s.Strengths)} {string.Join(",", s.WorstAbsAdvantage)} {s.UtilityRatio}")));
        mixed.Steps[^1].UtilityRatio!.Value.ShouldBeGreaterThanOrEqualTo(0.97);
    }
}
