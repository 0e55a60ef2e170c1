using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;

namespace AttrCloak.Audit.Tests.Attackers;

public sealed class AttackerTests
{
    public static TheoryData<string> AllAttackers => new() { "lr", "mlp", "mlp-wide", "lgbm", "lr+cal", "lgbm+cal" };

    public static TheoryData<string> BaseAttackers => new() { "lr", "mlp", "mlp-wide", "lgbm" };

    private static double HeldOutBalancedAccuracy(IAttacker attacker, EmbeddingMatrix x, int[] y, int k, int trainCount)
    {
        var (xTrain, yTrain) = SyntheticEmbeddings.Take(x, y, 0, trainCount);
        var (xTest, yTest) = SyntheticEmbeddings.Take(x, y, trainCount, y.Length - trainCount);
        using var model = attacker.Fit(xTrain, yTrain, k, seed: 5);
        var proba = model.PredictProba(xTest);
        proba.Length.ShouldBe(yTest.Length * k);
        for (var i = 0; i < yTest.Length; i++)
            proba.AsSpan(i * k, k).ToArray().Sum().ShouldBe(1f, 1e-4f);
        return ClassificationMetrics.BalancedAccuracy(yTest, ClassificationMetrics.ArgMax(proba, k));
    }

    [Theory]
    [MemberData(nameof(AllAttackers))]
    public void Separable_gaussian_classes_are_recovered(string name)
    {
        const int k = 3;
        var y = SyntheticEmbeddings.BalancedLabels(360, k);
        var x = SyntheticEmbeddings.Gaussian(8, seed: 1, separation: 4.0, (y, k));
        HeldOutBalancedAccuracy(AttackerCatalog.Create(name), x, y, k, 240).ShouldBeGreaterThan(0.9);
    }

    [Theory]
    [MemberData(nameof(AllAttackers))]
    public void Random_labels_give_about_chance(string name)
    {
        const int k = 2;
        var y = SyntheticEmbeddings.RandomLabels(600, k, seed: 2);
        var x = SyntheticEmbeddings.Gaussian(8, seed: 3, separation: 0.0, (y, k));
        var balanced = HeldOutBalancedAccuracy(AttackerCatalog.Create(name), x, y, k, 300);
        Math.Abs(balanced - ClassificationMetrics.Chance(k)).ShouldBeLessThan(0.1);
    }

    [Theory]
    [MemberData(nameof(BaseAttackers))]
    public void A_class_missing_from_training_gets_probability_zero(string name)
    {
        const int k = 4;
        var y = SyntheticEmbeddings.BalancedLabels(240, k);
        var x = SyntheticEmbeddings.Gaussian(6, seed: 4, separation: 4.0, (y, k));
        var keep = Enumerable.Range(0, y.Length).Where(i => y[i] != 2).ToArray();
        using var model = AttackerCatalog.Create(name).Fit(x.SelectRows(keep), keep.Select(i => y[i]).ToArray(), k, seed: 1);
        var proba = model.PredictProba(x);
        for (var i = 0; i < y.Length; i++) proba[i * k + 2].ShouldBe(0f);
        var predicted = ClassificationMetrics.ArgMax(proba, k);
        var others = keep.Select(i => (y[i], predicted[i])).ToArray();
        others.Count(p => p.Item1 == p.Item2).ShouldBeGreaterThan((int)(0.9 * others.Length));
    }

    [Theory]
    [MemberData(nameof(BaseAttackers))]
    public void Two_present_classes_of_a_larger_attribute_use_the_binary_path(string name)
    {
        const int k = 5;
        var y = Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? 1 : 3).ToArray();
        var x = SyntheticEmbeddings.Gaussian(6, seed: 6, separation: 4.0, (y, k));
        using var model = AttackerCatalog.Create(name).Fit(x, y, k, seed: 1);
        var proba = model.PredictProba(x);
        var predicted = ClassificationMetrics.ArgMax(proba, k);
        predicted.ShouldAllBe(c => c == 1 || c == 3);
        ClassificationMetrics.BalancedAccuracy(y, predicted).ShouldBeGreaterThan(0.9);
    }

    [Fact]
    public void A_single_training_class_is_always_predicted()
    {
        var x = SyntheticEmbeddings.Gaussian(4, seed: 1, separation: 0, (new int[10], 3));
        using var model = new LightGbmAttacker().Fit(x, Enumerable.Repeat(2, 10).ToArray(), 3, seed: 0);
        ClassificationMetrics.ArgMax(model.PredictProba(x), 3).ShouldAllBe(c => c == 2);
    }

    [Fact]
    public void LightGbm_copes_with_a_class_missing_from_a_training_fold_of_a_21_class_attribute()
    {
        // Occupation-like: 21 classes, the rare ones with a handful of users; drop class 8 entirely.
        const int k = 21;
        var y = Enumerable.Range(0, 420).Select(i => i % k).Where(c => c != 8).ToArray();
        var x = SyntheticEmbeddings.Gaussian(8, seed: 9, separation: 5.0, (y, k));
        using var model = new LightGbmAttacker().Fit(x, y, k, seed: 3);
        var proba = model.PredictProba(x);
        for (var i = 0; i < y.Length; i++) proba[i * k + 8].ShouldBe(0f);
        ClassificationMetrics.BalancedAccuracy(y, ClassificationMetrics.ArgMax(proba, k)).ShouldBeGreaterThan(0.8);
    }

    [Theory]
    [MemberData(nameof(BaseAttackers))]
    public void Fits_are_deterministic_for_a_seed(string name)
    {
        const int k = 3;
        var y = SyntheticEmbeddings.BalancedLabels(150, k);
        var x = SyntheticEmbeddings.Gaussian(6, seed: 8, separation: 1.0, (y, k));
        var attacker = AttackerCatalog.Create(name);
        using var a = attacker.Fit(x, y, k, seed: 4);
        using var b = attacker.Fit(x, y, k, seed: 4);
        a.PredictProba(x).ShouldBe(b.PredictProba(x));
    }

    [Fact]
    public void The_mlp_stops_early_on_a_loss_plateau()
    {
        const int k = 2;
        var y = SyntheticEmbeddings.BalancedLabels(200, k);
        var x = SyntheticEmbeddings.Gaussian(6, seed: 2, separation: 6.0, (y, k));
        using var model = MlpAttacker.Default.Fit(x, y, k, seed: 1);
        MlpAttacker.LastEpochs.ShouldBeLessThan(500);
        MlpAttacker.LastEpochs.ShouldBeGreaterThan(11);
    }

    [Fact]
    public void Unknown_attacker_names_are_rejected_with_the_known_ones()
    {
        var e = Should.Throw<ArgumentException>(() => AttackerCatalog.Create("xgb"));
        e.Message.ShouldContain("lgbm");
        AttackerCatalog.Create("LR+CAL").Name.ShouldBe("lr+cal");
    }
}
