using System.Globalization;
using AttrCloak.Audit;
using AttrCloak.Audit.Attackers;
using AttrCloak.Core.Data;
using AttrCloak.Core.Evaluation;
using AttrCloak.Learning.Unlearning;
using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Statistics;
using AttrCloak.Tools.Benchmarks;

namespace AttrCloak.Tools.Experiments.Research;

/// <summary>
/// <c>crossfit-transport</c>: the harness's served stream read better than batch DF on ML-100K at the same NDCG@10
/// (streamed users are cloaked by the worker's per-class Gaussian maps, fitted on OTHER users' statistics). Is that the
/// maps or the mixture of two cloaks in one audit? Variants, each audited on all users with the same attackers:
/// batch DF at the loop's strengths (ATTRCLOAK_BATCH "gender=0.6,age=0.278,occupation=0.3", 5 strata); the served
/// stream (half seeded with that, half streamed); and batch cross-fitted transport: the users split into K folds
/// (ATTRCLOAK_FOLDS, default 2,5), each fold cloaked by the worker's maps built from the other folds' original and
/// DF-served statistics (no user's own row in its map). The served stream's halves are also audited alone (an attacker
/// who knows who joined after the bootstrap). ATTRCLOAK_SCALES ("s" or "s1/s2/s3" per attribute, comma-separated
/// variants) adds the maps alone toward the other folds' ORIGINAL fit at those deviation scales (AttrCloak-OT at fixed
/// strengths, first fold count); ATTRCLOAK_HYBRID ("gender=0.6") adds DF at those strengths followed by the same maps
/// fitted on DF's output. Needs ATTRCLOAK_MODEL.
/// </summary>
internal static class CrossFitTransportExperiment
{
    public static void Run(ExperimentContext output)
    {
        var ct = output.CancellationToken;
        var spec = Environment.GetEnvironmentVariable("ATTRCLOAK_BATCH") ?? "gender=0.6,age=0.278,occupation=0.3";
        var folds = (Environment.GetEnvironmentVariable("ATTRCLOAK_FOLDS") ?? "2,5").Split(',').Select(int.Parse).ToArray();
        var attackers = Environment.GetEnvironmentVariable("ATTRCLOAK_ATTACKERS") is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.TrimEntries) : AttackerCatalog.DefaultNames;
        var (_, model, split, attributes) = ResearchInputs.Load("gender,age,occupation");
        var names = attributes.Select(a => a.Attribute.Name).ToArray();
        var strengths = spec.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));
        var options = TargetedCloaker.CandidateOptions(CloakPresets.DataFree, names,
            names.Select(n => new AttributeStrength(strengths.GetValueOrDefault(n), 0)).ToArray(), 5);
        var labels = attributes.Select(a => a.Labels).ToArray();
        var audited = attributes.Select(a => new AuditedAttribute(a.Attribute.Name, a.Attribute.ClassCount, a.Labels)).ToArray();
        var audit = new AuditOptions { Seed = 1, Attackers = attackers };
        var originalNdcg = UtilityEvaluator.Ndcg10PerUser(model.Users, model.Items, split.TestCandidates);
        output.WriteLine($"ML-100K, {model.Users.Rows} users d={model.Dim}; DF at {spec}, 5 strata; attackers {string.Join(",", attackers)}");
        output.WriteLine("variant                      worst |adv| " + string.Join(" / ", names) + "     test NDCG@10 ratio +/- SE   msd");
        void Row(string name, EmbeddingMatrix users)
        {
            var privacy = PrivacyAudit.Run(users, audited, audit, ct: ct);
            var ratio = PairedRatio.Of(originalNdcg, UtilityEvaluator.Ndcg10PerUser(users, model.Items, split.TestCandidates));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-28} {string.Join(" / ", privacy.Attributes.Select(a => a.MaxAbsAdvantage.ToString("0.000", CultureInfo.InvariantCulture))),-24} {ratio.Ratio:0.000}x +/- {ratio.StandardError:0.000}   {StreamingReplay.MeanSquaredDisplacement(users, model.Users):0.000}"));
        }

        Row("original", model.Users);
        var batch = new Cloaker().Cloak(model.Users, attributes, options, null, null, ct).Embeddings;
        Row("batch DF", batch);
        var replay = new StreamingReplay { Attributes = attributes.Select(a => a.Attribute).ToArray(), RefreshEvery = 25, Seed = 1, BatchOptions = options };
        var served = replay.Run(model.Users, labels, new TransportCloakerFactory(), ct).Served;
        Row("served stream", served);
        // An attacker who knows who joined after the bootstrap (join dates) audits the streamed half on its own.
        var (bootstrapOrder, streamOrder) = replay.Partition(model.Users.Rows);
        var streamed = streamOrder.Order().ToArray();
        var streamedAudited = audited.Select(a => a with { Labels = streamed.Select(u => a.Labels[u]).ToArray() }).ToArray();
        var streamedPrivacy = PrivacyAudit.Run(served.SelectRows(streamed), streamedAudited, audit, ct: ct);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"  its streamed half alone",-28} {string.Join(" / ", streamedPrivacy.Attributes.Select(a => a.MaxAbsAdvantage.ToString("0.000", CultureInfo.InvariantCulture)))} ({streamed.Length} users)"));
        var bootstrapped = bootstrapOrder.Order().ToArray();
        var bootAudited = audited.Select(a => a with { Labels = bootstrapped.Select(u => a.Labels[u]).ToArray() }).ToArray();
        var bootPrivacy = PrivacyAudit.Run(served.SelectRows(bootstrapped), bootAudited, audit, ct: ct);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"  its bootstrapped half alone",-28} {string.Join(" / ", bootPrivacy.Attributes.Select(a => a.MaxAbsAdvantage.ToString("0.000", CultureInfo.InvariantCulture)))} ({bootstrapped.Length} users)"));
        foreach (var k in folds) Row($"cross-fit transport, {k} folds", CrossFit(model.Users, batch, attributes, k, new TransportCloakerFactory()));
        // The maps as a batch cloak of their own (no DF): every class mapped toward the other folds' ORIGINAL global fit,
        // class-specific deviations scaled by s (0 = only the population-wide map, 1 = full equalisation of the Gaussian fits).
        // ATTRCLOAK_SCALES: "s" for every attribute or "s1/s2/s3" per attribute (in the attributes' order).
        // ATTRCLOAK_HYBRID: DF strengths ("gender=0.6") applied first; the maps are then fitted on DF's output.
        var hybrid = Environment.GetEnvironmentVariable("ATTRCLOAK_HYBRID") is { Length: > 0 } h
            ? new Cloaker().Cloak(model.Users, attributes, TargetedCloaker.CandidateOptions(CloakPresets.DataFree, names,
                names.Select(n => new AttributeStrength(h.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture)).GetValueOrDefault(n), 0)).ToArray(), 5),
                null, null, ct).Embeddings
            : null;
        if (hybrid is not null) Row($"DF {Environment.GetEnvironmentVariable("ATTRCLOAK_HYBRID")} alone", hybrid);
        foreach (var scale in (Environment.GetEnvironmentVariable("ATTRCLOAK_SCALES") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = scale.Split('/').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            var perAttribute = names.Select((n, j) => (n, parts.Length == 1 ? parts[0] : parts[j])).ToDictionary(p => p.n, p => p.Item2);
            var factory = new TransportCloakerFactory(new TransportCloakerOptions { TargetOffsetScale = 0, AttributeDeviationScales = perAttribute });
            Row($"transport alone, s={scale}, {folds[0]}f", CrossFit(model.Users, model.Users, attributes, folds[0], factory));
            if (hybrid is not null)
                Row($"DF then transport s={scale}", CrossFit(hybrid, hybrid, attributes, folds[0], factory));
        }
    }

    /// <summary>Each fold through the maps built from the other folds (<see cref="CrossFittedTransport"/>, seed 1).</summary>
    private static EmbeddingMatrix CrossFit(EmbeddingMatrix original, EmbeddingMatrix served, LabeledAttribute[] attributes, int k,
        TransportCloakerFactory factory)
    {
        var transport = new CrossFittedTransport(original, attributes, k, seed: 1, factory.Options, served);
        // Strength 1 everywhere: the factory's own per-attribute scales apply unchanged.
        var scales = attributes.Select(a => new AttributeStrength(factory.Options.DeviationScaleOf(a.Name), 0)).ToArray();
        return transport.Run(scales, CancellationToken.None).Embeddings;
    }
}
