using System.Globalization;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Generations;

/// <summary>
/// When a generation is ready to be seated (a batch cloak over its stored originals; a filling generation is promoted
/// by it): every class of every protected attribute has <see cref="GenerationOptions.MinClassUsers"/> users, or, for
/// a new model while another serves, as many as the class has in the serving generation when that is fewer, and the new
/// model holds <see cref="GenerationOptions.MinUserShare"/> of the serving generation's users; a cold start also once it
/// holds <see cref="GenerationOptions.ColdSeatUsers"/>. An operator's request (<c>attrcloak generations promote</c>)
/// needs only one user. And when the serving generation is seated again (<see cref="ReseatDue"/>). Pure.
/// </summary>
internal static class SeatingPolicy
{
    /// <summary>Why <paramref name="generation"/> is not ready yet, or null when it is.</summary>
    /// <param name="generation">a filling generation, or the serving one before its first seating.</param>
    /// <param name="statistics">its class statistics.</param>
    /// <param name="users">its users.</param>
    /// <param name="serving">the serving generation when it is another one (its statistics and users), else null.</param>
    /// <param name="options">the thresholds.</param>
    public static string? NotReady(Generation generation, StatisticsSnapshot statistics, long users,
        (StatisticsSnapshot Statistics, long Users)? serving, GenerationOptions options)
    {
        if (users == 0) return "it has no users yet";
        if (generation.PromoteRequested) return null;
        if (!options.AutoPromote)
            return "automatic promotion is off (AttrCloak:Generations:AutoPromote); promote it with `attrcloak generations promote`";
        if (serving is { } s)
        {
            var needed = (long)Math.Ceiling(options.MinUserShare * s.Users);
            if (users < needed)
                return string.Create(CultureInfo.InvariantCulture, $"{users} users, {needed} needed ({options.MinUserShare:P0} of the serving generation's {s.Users})");
        }
        // A cold start large enough is seated even with a class that has not filled (it may never).
        if (serving is null && options.ColdSeatUsers > 0 && users >= options.ColdSeatUsers) return null;
        for (var a = 0; a < statistics.Attributes.Count; a++)
        {
            var attribute = statistics.Attributes[a];
            for (var k = 0; k < attribute.Counts.Length; k++)
            {
                long needed = options.MinClassUsers;
                if (serving is { } reference && a < reference.Statistics.Attributes.Count && k < reference.Statistics.Attributes[a].Counts.Length)
                    needed = Math.Min(needed, reference.Statistics.Attributes[a].Counts[k]);
                if (attribute.Counts[k] < needed)
                    return string.Create(CultureInfo.InvariantCulture,
                        $"class '{attribute.ClassNames[k]}' of '{attribute.Attribute}' has {attribute.Counts[k]} users, {needed} needed");
            }
        }
        return null;
    }

    /// <summary>
    /// Why the seated serving <paramref name="generation"/>, now of <paramref name="users"/> users, must be seated again
    /// (it has grown <see cref="GenerationOptions.ReseatGrowth"/> times past its last seating), or null.
    /// </summary>
    public static string? ReseatDue(Generation generation, long users, GenerationOptions options)
    {
        if (generation is not { State: GenerationState.Serving, Seated: true } || generation.SeatedUsers <= 0 || options.ReseatGrowth <= 0) return null;
        return users >= options.ReseatGrowth * generation.SeatedUsers
            ? string.Create(CultureInfo.InvariantCulture,
                $"it grew from {generation.SeatedUsers} users at its last seating to {users} (re-seated at {options.ReseatGrowth:G}x: the maps alone let the classes drift apart)")
            : null;
    }
}
