using AttrCloak.Core.Data;

namespace AttrCloak.Streaming.Contracts;

/// <summary>
/// The deployment's protected attributes (<see cref="AttributeSpec"/>, the one attribute type shared with the data
/// sets, the state store and the learning code) as a lookup for decoding and validating events
/// (e.g. gender -&gt; female, male). Names compare ordinally (case-sensitive). Class indices follow the order given,
/// so statistics keyed by index stay stable as long as the configuration keeps its order.
/// </summary>
public sealed class AttributeCatalog
{
    private readonly Dictionary<string, Dictionary<string, int>> classIndex = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AttributeSpec> byName = new(StringComparer.Ordinal);

    /// <param name="attributes">Attribute name -&gt; its classes (at least two, distinct); e.g. a configuration section bound to a dictionary.</param>
    public AttributeCatalog(IEnumerable<KeyValuePair<string, string[]>> attributes)
        : this((attributes ?? throw new ArgumentNullException(nameof(attributes))).Select(p => new AttributeSpec(p.Key, p.Value)))
    {
    }

    /// <param name="attributes">The protected attributes, each with at least two distinct classes.</param>
    public AttributeCatalog(IEnumerable<AttributeSpec> attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var specs = new List<AttributeSpec>();
        foreach (var spec in attributes)
        {
            var (name, values) = (spec?.Name, spec?.ClassNames);
            if (name is null || !TextRules.IsValid(name, TextRules.MaxNameLength))
                throw new ArgumentException($"Attribute name '{name}' must be 1-{TextRules.MaxNameLength} characters without control characters.", nameof(attributes));
            if (byName.ContainsKey(name))
                throw new ArgumentException($"Attribute '{name}' is listed twice.", nameof(attributes));
            if (values is null || values.Count < 2)
                throw new ArgumentException($"Attribute '{name}' needs at least two classes.", nameof(attributes));
            var index = new Dictionary<string, int>(values.Count, StringComparer.Ordinal);
            foreach (var value in values)
            {
                if (value is null || !TextRules.IsValid(value, TextRules.MaxNameLength))
                    throw new ArgumentException($"A class of '{name}' must be 1-{TextRules.MaxNameLength} characters without control characters.", nameof(attributes));
                if (!index.TryAdd(value, index.Count))
                    throw new ArgumentException($"Attribute '{name}' lists class '{value}' twice.", nameof(attributes));
            }
            var copy = new AttributeSpec(name, [.. values]);
            byName.Add(name, copy);
            classIndex.Add(name, index);
            specs.Add(copy);
        }
        if (specs.Count == 0)
            throw new ArgumentException("The catalog needs at least one attribute.", nameof(attributes));
        if (specs.Count > TextRules.MaxAttributes)
            throw new ArgumentException($"At most {TextRules.MaxAttributes} attributes.", nameof(attributes));
        Attributes = specs;
        AttributeNames = specs.Select(a => a.Name).ToArray();
    }

    /// <summary>The attributes with their classes, in configuration order.</summary>
    public IReadOnlyList<AttributeSpec> Attributes { get; }

    /// <summary>The attribute names, in configuration order.</summary>
    public IReadOnlyList<string> AttributeNames { get; }

    public bool Contains(string attribute) => byName.ContainsKey(attribute);

    /// <summary>The classes of <paramref name="attribute"/>, in configuration order.</summary>
    public IReadOnlyList<string> ClassesOf(string attribute) =>
        byName.TryGetValue(attribute, out var spec) ? spec.ClassNames : throw new KeyNotFoundException($"Unknown attribute '{attribute}'.");

    /// <summary>The position of <paramref name="className"/> among the attribute's classes.</summary>
    public bool TryGetClassIndex(string attribute, string className, out int index)
    {
        index = -1;
        return classIndex.TryGetValue(attribute, out var map) && map.TryGetValue(className, out index);
    }

    /// <summary>
    /// Null when every attribute is in the catalog and every non-null class is one of its classes (null clears a
    /// value and is always allowed here); otherwise the first defect, as
    /// <see cref="ReasonCode.UnknownAttribute"/> or <see cref="ReasonCode.UnknownClass"/>. The message names
    /// the attribute, never the rejected class (a class is an attribute value).
    /// </summary>
    public DecodeError? Validate(IReadOnlyDictionary<string, string?>? attributes)
    {
        if (attributes is null)
            return null;
        foreach (var (name, value) in attributes)
        {
            var error = Check(name, value);
            if (error is not null)
                return error;
        }
        return null;
    }

    /// <summary><see cref="Validate(IReadOnlyDictionary{string, string?})"/> for the attributes an event carries, if any.</summary>
    public DecodeError? Validate(InboundEvent inboundEvent)
    {
        ArgumentNullException.ThrowIfNull(inboundEvent);
        switch (inboundEvent)
        {
            case EmbeddingUpdate { Attributes: { } attributes }:
                foreach (var (name, value) in attributes)
                {
                    var error = Check(name, value);
                    if (error is not null)
                        return error;
                }
                return null;
            case PrivacyRequest { Attributes: { } attributes }:
                return Validate(attributes);
            default:
                return null;
        }
    }

    private DecodeError? Check(string name, string? value)
    {
        if (!classIndex.TryGetValue(name, out var map))
            return new DecodeError(ReasonCode.UnknownAttribute,
                $"attribute '{TextRules.Sanitize(name)}' is not in this deployment's catalog ({string.Join(", ", AttributeNames)})");
        if (value is not null && !map.ContainsKey(value))
            return new DecodeError(ReasonCode.UnknownClass,
                $"attribute '{name}' has a class that is not one of its {map.Count} classes in the catalog");
        return null;
    }
}
