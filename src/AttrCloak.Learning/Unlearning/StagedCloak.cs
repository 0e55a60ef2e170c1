using AttrCloak.Core.Data;

namespace AttrCloak.Learning.Unlearning;

/// <summary>
/// Two strength cloaks in sequence, each attribute given to one of them: the first stage cloaks the original
/// embeddings with the strengths of its attributes (0 for the others), the second cloaks the first's output with the
/// strengths of the rest. So the privacy-target loop sees one strength per attribute, as for a single cloak, while
/// gender can be removed by DF's class means and age by the Gaussian maps (<see cref="CloakChoice"/> decides which).
/// </summary>
public sealed class StagedCloak : IStrengthCloak
{
    private readonly EmbeddingMatrix _original;
    private readonly IStrengthCloak _first;
    private readonly Func<EmbeddingMatrix, IStrengthCloak> _second;
    private readonly bool[] _inSecond;
    private (AttributeStrength[] Strengths, StrengthCloakResult Result, IStrengthCloak Second)? _firstStage;

    /// <param name="original">The embeddings both stages start from.</param>
    /// <param name="first">The first stage, run on <paramref name="original"/>.</param>
    /// <param name="second">Builds the second stage on the first stage's output (e.g. maps fitted on it).</param>
    /// <param name="inSecond">Per attribute (the loop's order): true when its strength goes to the second stage.</param>
    public StagedCloak(EmbeddingMatrix original, IStrengthCloak first, Func<EmbeddingMatrix, IStrengthCloak> second, IReadOnlyList<bool> inSecond)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ArgumentNullException.ThrowIfNull(inSecond);
        (_original, _first, _second, _inSecond) = (original, first, second, inSecond.ToArray());
    }

    public StrengthCloakResult Run(IReadOnlyList<AttributeStrength> strengths, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(strengths);
        if (strengths.Count != _inSecond.Length)
            throw new ArgumentException($"{strengths.Count} strengths for {_inSecond.Length} attributes");
        var firstStrengths = strengths.Select((s, j) => _inSecond[j] ? AttributeStrength.None : s).ToArray();
        var secondStrengths = strengths.Select((s, j) => _inSecond[j] ? s : AttributeStrength.None).ToArray();
        // The loop raises one stage's attributes at a time more often than not: the first stage's output (and the
        // second stage built on it, e.g. its fitted maps) is kept while its strengths stay the same.
        if (_firstStage is not { } stage || !stage.Strengths.SequenceEqual(firstStrengths))
        {
            var result = firstStrengths.All(s => s == AttributeStrength.None) ? new StrengthCloakResult(_original) : _first.Run(firstStrengths, ct);
            stage = (firstStrengths, result, _second(result.Embeddings));
            _firstStage = stage;
        }
        if (secondStrengths.All(s => s == AttributeStrength.None)) return stage.Result;
        return new StrengthCloakResult(stage.Second.Run(secondStrengths, ct).Embeddings, stage.Result.Cloak);
    }
}
