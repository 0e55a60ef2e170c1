using AttrCloak.Core.Data;
using AttrCloak.Core.Data.Synthetic;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Core.Tests;

public sealed class LeaveOneOutSplitTests
{
    /// <summary>A small synthetic data set whose interactions are listed in a scrambled order, so nothing relies on file order.</summary>
    private static RecDataset Scrambled()
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 60, Items = 300, Seed = 11 });
        var rng = new Random(5);
        var shuffled = data.Interactions.OrderBy(_ => rng.Next()).ToArray();
        return new RecDataset(data.Name, data.UserIds, data.ItemIds, shuffled, data.Attributes, data.Labels);
    }

    [Fact]
    public void The_test_item_is_the_latest_and_validation_the_second_latest()
    {
        var data = Scrambled();
        var split = LeaveOneOutSplit.Create(data);
        for (var u = 0; u < data.UserCount; u++)
        {
            var byTime = data.Interactions.Where(x => x.User == u).OrderBy(x => x.Timestamp).Select(x => x.Item).ToArray();
            split.TestItem[u].ShouldBe(byTime[^1]);
            split.ValidationItem[u].ShouldBe(byTime[^2]);
            split.TrainItems[u].ShouldBe(byTime[..^2]); // the rest, in time order
        }
    }

    [Fact]
    public void Candidates_are_the_positive_then_99_distinct_items_the_user_never_touched()
    {
        var data = Scrambled();
        var split = LeaveOneOutSplit.Create(data);
        for (var u = 0; u < data.UserCount; u++)
        {
            var touched = data.Interactions.Where(x => x.User == u).Select(x => x.Item).ToHashSet();
            foreach (var (candidates, positive) in new[] { (split.TestCandidates[u], split.TestItem[u]), (split.ValidationCandidates[u], split.ValidationItem[u]) })
            {
                candidates.Length.ShouldBe(100);
                candidates[0].ShouldBe(positive);
                var negatives = candidates[1..];
                negatives.Distinct().Count().ShouldBe(99);
                negatives.ShouldAllBe(i => !touched.Contains(i) && i >= 0 && i < data.ItemCount);
            }
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_candidates_and_another_seed_other_ones()
    {
        var data = Scrambled();
        var a = LeaveOneOutSplit.Create(data, seed: 7);
        var b = LeaveOneOutSplit.Create(data, seed: 7);
        var c = LeaveOneOutSplit.Create(data, seed: 8);
        a.TestCandidates.ShouldBe(b.TestCandidates);
        a.ValidationCandidates.ShouldBe(b.ValidationCandidates);
        a.TestCandidates.ShouldNotBe(c.TestCandidates);
        a.TestItem.ShouldBe(c.TestItem); // the seed only moves the sampled negatives
    }

    [Fact]
    public void Users_with_fewer_than_three_items_keep_everything_in_train()
    {
        var data = new RecDataset("tiny", ["a", "b"], Enumerable.Range(0, 200).Select(i => $"i{i}").ToArray(),
            [new Interaction(0, 1, 10), new Interaction(0, 2, 5), new Interaction(1, 3, 1), new Interaction(1, 4, 2), new Interaction(1, 5, 3)],
            [], []);
        var split = LeaveOneOutSplit.Create(data);
        split.TrainItems[0].ShouldBe([2, 1]);
        split.TestItem[0].ShouldBe(LeaveOneOutSplit.NoItem);
        split.TestCandidates[0].ShouldBeEmpty();
        split.TestItem[1].ShouldBe(5);
        split.ValidationItem[1].ShouldBe(4);
        split.TrainItems[1].ShouldBe([3]);
        split.TrainPairs().ShouldBe([(0, 2), (0, 1), (1, 3)]);
    }
}
