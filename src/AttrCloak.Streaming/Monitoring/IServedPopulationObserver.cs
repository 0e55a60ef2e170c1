namespace AttrCloak.Streaming.Monitoring;

/// <summary>
/// Told by the pipeline about every acknowledged output, so that the shadow audit can keep a sample of the served
/// population with known classes. Called on the consume thread: implementations must be cheap and must not block.
/// </summary>
public interface IServedPopulationObserver
{
    /// <summary>
    /// A user's cloaked embedding of model generation <paramref name="modelVersion"/> was published (and acknowledged);
    /// <paramref name="classes"/>: class per catalog attribute, -1 unknown.
    /// </summary>
    void OnServed(string userId, string modelVersion, ReadOnlySpan<float> cloaked, ReadOnlySpan<int> classes);

    /// <summary>
    /// The deployment's serving generation is now <paramref name="modelVersion"/> (at start-up, and after a promotion):
    /// an audit compares users of one embedding space only.
    /// </summary>
    void OnServingGeneration(string modelVersion)
    {
    }

    /// <summary>The user was forgotten: drop everything held about them.</summary>
    void OnForgotten(string userId);
}
