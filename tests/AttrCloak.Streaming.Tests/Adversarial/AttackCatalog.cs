using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Tests.Pipeline;

namespace AttrCloak.Streaming.Tests.Adversarial;

/// <summary>The attacks of issue 11's suite; each one is a producer that can write any well-formed event.</summary>
internal static class AttackCatalog
{
    public static readonly IReadOnlyDictionary<string, Attack> All = new Attack[]
    {
        new HugeThenForget(), new FloatMax(), new SlowDrift(), new Sybils(), new LabelStorm(),
    }.ToDictionary(a => a.Name, StringComparer.Ordinal);

    /// <summary>The smallest occupation class: the one a coalition moves most easily.</summary>
    public static int SmallestOccupation(PoisoningScenario s) =>
        Enumerable.Range(0, 21).Where(k => s.Classes.Any(c => c[2] == k)).OrderBy(k => s.Classes.Count(c => c[2] == k)).First();

    /// <summary>1 % of the population.</summary>
    public const int Coalition = PoisoningScenario.Users / 100;

    /// <summary>One user, all 64 values 1e6 (finite, valid by the schema), then forgotten: the first scenario.</summary>
    private sealed record HugeThenForget() : Attack("huge-then-forget")
    {
        public override int Produce(PoisoningScenario s, GuardHarness h, WorkerRun worker)
        {
            var embedding = Enumerable.Repeat(1e6f, PoisoningScenario.D).ToArray();
            h.Produce(PoisoningScenario.Update("atk-huge", 1, embedding, [0, 2, 18]));
            h.Produce(GuardHarness.Request("atk-huge", 2, PrivacyRequestType.Forget));
            return 2;
        }

        public override IReadOnlyDictionary<string, int> ExpectedDeadLetters { get; } = new Dictionary<string, int> { ["out_of_range"] = 1 };
    }

    /// <summary>3e38 in one value, and every value +/- float.MaxValue.</summary>
    private sealed record FloatMax() : Attack("float-max")
    {
        public override int Produce(PoisoningScenario s, GuardHarness h, WorkerRun worker)
        {
            var one = s.Originals[0].ToArray();
            one[3] = 3e38f;
            h.Produce(PoisoningScenario.Update("atk-3e38", 1, one, [1, 3, 5]));
            h.Produce(PoisoningScenario.Update("atk-max", 1, Enumerable.Repeat(float.MaxValue, PoisoningScenario.D).ToArray(), [1, 3, 5]));
            h.Produce(PoisoningScenario.Update("atk-min", 1, Enumerable.Repeat(-float.MaxValue, PoisoningScenario.D).ToArray(), [0, 2, 5]));
            return 3;
        }

        public override IReadOnlyDictionary<string, int> ExpectedDeadLetters { get; } = new Dictionary<string, int> { ["out_of_range"] = 3 };
    }

    /// <summary>
    /// 1 % of users start plausible and walk their embedding away in many small steps (half a standard deviation of one
    /// value at a time), each step within what the last one made look normal.
    /// </summary>
    private sealed record SlowDrift() : Attack("slow-drift")
    {
        public override int Produce(PoisoningScenario s, GuardHarness h, WorkerRun worker)
        {
            var rng = new Random(3);
            var target = SmallestOccupation(s);
            for (var a = 0; a < Coalition; a++)
            {
                var classes = new[] { 0, 2, target };
                var x = s.Embedding(rng, classes);
                for (var step = 1; step <= 40; step++)
                {
                    h.Produce(PoisoningScenario.Update($"atk-drift-{a}", step, x, step == 1 ? classes : null));
                    x = x.ToArray();
                    x[0] += 0.5f;
                }
            }
            return Coalition * 40;
        }
    }

    /// <summary>
    /// 1 % of users, new, all declaring the smallest occupation class, all at one crafted point as far from the population
    /// as the input domain lets them: they try to drag that class's mean (and so the map of its honest users) away.
    /// </summary>
    private sealed record Sybils() : Attack("sybils")
    {
        public override int Produce(PoisoningScenario s, GuardHarness h, WorkerRun worker)
        {
            var target = SmallestOccupation(s);
            var x = new float[PoisoningScenario.D];
            // About 11 standard deviations on two values: within 12 per value and within 4 x the median norm (~4 x 4).
            x[0] = 11f;
            x[1] = 11f;
            for (var a = 0; a < Coalition; a++)
                h.Produce(PoisoningScenario.Update($"atk-sybil-{a}", 1, x, [a % 2, 3, target]));
            return Coalition;
        }
    }

    /// <summary>1 % of users flip their own declared gender and occupation back and forth, 20 times each.</summary>
    private sealed record LabelStorm() : Attack("label-storm")
    {
        public override int Produce(PoisoningScenario s, GuardHarness h, WorkerRun worker)
        {
            var rng = new Random(5);
            for (var a = 0; a < Coalition; a++)
                h.Produce(PoisoningScenario.Update($"atk-storm-{a}", 1, s.Embedding(rng, [0, 2, 0]), [0, 2, 0]));
            h.Flush();
            // The two input topics are not ordered with each other: requests before the users exist would be refused.
            Wait.Until(() => worker.Store.GetUsersAsync(Enumerable.Range(0, Coalition).Select(a => $"atk-storm-{a}").ToList()).GetAwaiter().GetResult().All(x => x is not null),
                GuardHarness.Deadline, "the storm's users registered");
            for (var round = 0; round < 20; round++)
                for (var a = 0; a < Coalition; a++)
                    h.Produce(GuardHarness.Request($"atk-storm-{a}", 2 + round, PrivacyRequestType.UpdateAttributes, new()
                    {
                        ["gender"] = round % 2 == 0 ? "M" : "F",
                        ["occupation"] = $"occ{rng.Next(21):D2}",
                    }));
            return Coalition * 21;
        }
    }
}
