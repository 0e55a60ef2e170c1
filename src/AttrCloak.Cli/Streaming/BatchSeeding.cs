using AttrCloak.Streaming.Generations;

namespace AttrCloak.Cli.Streaming;

/// <summary>The benches' population seeding: the one <c>attrcloak bootstrap</c> and the worker's seatings run.</summary>
public static class BatchSeeding
{
    /// <summary>Batch AttrCloak-DF (<see cref="PopulationSeeding.DataFree"/>) over all users and attributes.</summary>
    public static PopulationSeeding DataFree => PopulationSeeding.DataFree;
}
