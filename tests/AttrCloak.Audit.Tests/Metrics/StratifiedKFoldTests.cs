using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit.Tests.Metrics;

public sealed class StratifiedKFoldTests
{
    private static int[] Labels(params int[] countPerClass) =>
        countPerClass.SelectMany((count, c) => Enumerable.Repeat(c, count)).ToArray();

    [Fact]
    public void Every_fold_keeps_the_class_proportions()
    {
        var labels = Labels(60, 30, 10);
        var folds = StratifiedKFold.Assign(labels, 5, seed: 3);
        for (var f = 0; f < 5; f++)
        {
            var inFold = labels.Where((_, i) => folds[i] == f).ToArray();
            inFold.Count(c => c == 0).ShouldBe(12);
            inFold.Count(c => c == 1).ShouldBe(6);
            inFold.Count(c => c == 2).ShouldBe(2);
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_folds_and_another_seed_other_folds()
    {
        var labels = Labels(40, 25, 7);
        StratifiedKFold.Assign(labels, 5, 11).ShouldBe(StratifiedKFold.Assign(labels, 5, 11));
        StratifiedKFold.Assign(labels, 5, 11).ShouldNotBe(StratifiedKFold.Assign(labels, 5, 12));
    }

    [Fact]
    public void Classes_smaller_than_k_are_spread_and_fold_sizes_stay_balanced()
    {
        var labels = Labels(9, 2, 1, 1, 3);
        var folds = StratifiedKFold.Assign(labels, 5, 0);
        folds.ShouldAllBe(f => f >= 0 && f < 5);
        var sizes = Enumerable.Range(0, 5).Select(f => folds.Count(x => x == f)).ToArray();
        (sizes.Max() - sizes.Min()).ShouldBeLessThanOrEqualTo(1);
        // The two members of class 1 land in different folds.
        var class1 = folds.Where((_, i) => labels[i] == 1).ToArray();
        class1.Distinct().Count().ShouldBe(2);
    }

    [Fact]
    public void Split_gives_complementary_train_and_test_sets()
    {
        var folds = StratifiedKFold.Assign(Labels(10, 10), 4, 1);
        var (train, test) = StratifiedKFold.Split(folds, 2);
        train.Concat(test).Order().ShouldBe(Enumerable.Range(0, 20));
        test.ShouldAllBe(i => folds[i] == 2);
        train.ShouldAllBe(i => folds[i] != 2);
    }

    [Fact]
    public void Too_few_samples_or_folds_are_rejected()
    {
        Should.Throw<ArgumentException>(() => StratifiedKFold.Assign([0, 1], 5, 0));
        Should.Throw<ArgumentOutOfRangeException>(() => StratifiedKFold.Assign([0, 1, 0], 1, 0));
    }
}
