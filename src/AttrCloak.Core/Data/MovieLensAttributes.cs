namespace AttrCloak.Core.Data;

/// <summary>The attribute encodings fixed by the evaluation protocol (docs/evaluation.md), shared by the ML-100K and ML-1M loaders.</summary>
public static class MovieLensAttributes
{
    public static readonly AttributeSpec Gender = new("gender", ["F", "M"]);

    /// <summary>ML-1M's seven age groups; ML-100K raw ages are bucketed with the same thresholds.</summary>
    public static readonly AttributeSpec Age = new("age", ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]);

    /// <summary>ML-1M occupation codes 0-20 in order.</summary>
    public static readonly AttributeSpec Occupation1M = new("occupation",
    [
        "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
        "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
        "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
        "tradesman/craftsman", "unemployed", "writer",
    ]);

    /// <summary>Age group index for a raw age in years (thresholds &lt;18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+).</summary>
    public static int AgeGroup(int years) => years switch
    {
        < 18 => 0,
        <= 24 => 1,
        <= 34 => 2,
        <= 44 => 3,
        <= 49 => 4,
        <= 55 => 5,
        _ => 6,
    };
}
