using System.Globalization;
using System.Text;
using AttrCloak.Core.Data;

namespace AttrCloak.Core.IO;

/// <summary>
/// Writes user embeddings with their labels in plain formats (CSV + NumPy .npy), so results can be audited
/// outside this code base, e.g. with scikit-learn or XGBoost in Python. Row i of every file is user index i.
/// </summary>
public static class EmbeddingExport
{
    public const string UsersFileName = "users.csv";
    public const string OriginalFileName = "embeddings_original.npy";
    public const string CloakedFileName = "embeddings_cloaked.npy";

    /// <summary>
    /// Writes <c>users.csv</c> (header <c>user_index,user_id,&lt;attribute names&gt;</c>, one integer class
    /// column per attribute, -1 for unknown), <c>embeddings_original.npy</c> and, when
    /// <paramref name="cloaked"/> is given, <c>embeddings_cloaked.npy</c> (float32). Creates the directory.
    /// Without cloaked embeddings an old <c>embeddings_cloaked.npy</c> is removed, so the directory never pairs
    /// new users with stale cloaked vectors.
    /// </summary>
    /// <exception cref="ArgumentException">A matrix does not have one row per user, or the two matrices differ in width.</exception>
    public static void Write(string dir, RecDataset data, EmbeddingMatrix original, EmbeddingMatrix? cloaked)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dir);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(original);
        // Check everything before touching the disk: a half-written export is worse than none.
        if (original.Rows != data.UserCount)
            throw new ArgumentException(
                $"the original embeddings have {original.Rows} rows but data set '{data.Name}' has {data.UserCount} users; row i must be user index i",
                nameof(original));
        if (cloaked is not null && cloaked.Rows != data.UserCount)
            throw new ArgumentException(
                $"the cloaked embeddings have {cloaked.Rows} rows but data set '{data.Name}' has {data.UserCount} users; row i must be user index i",
                nameof(cloaked));
        if (cloaked is not null && cloaked.Cols != original.Cols)
            throw new ArgumentException(
                $"the cloaked embeddings have {cloaked.Cols} dimensions but the original ones {original.Cols}", nameof(cloaked));

        Directory.CreateDirectory(dir);
        WriteUsers(Path.Combine(dir, UsersFileName), data);
        NpyFile.Write(Path.Combine(dir, OriginalFileName), original);
        var cloakedPath = Path.Combine(dir, CloakedFileName);
        if (cloaked is not null) NpyFile.Write(cloakedPath, cloaked);
        else if (File.Exists(cloakedPath)) File.Delete(cloakedPath);
    }

    private static void WriteUsers(string path, RecDataset data)
    {
        var text = new StringBuilder();
        text.Append("user_index,user_id");
        foreach (var spec in data.Attributes) text.Append(',').Append(Quote(spec.Name));
        text.Append('\n');
        for (var u = 0; u < data.UserCount; u++)
        {
            text.Append(u.ToString(CultureInfo.InvariantCulture)).Append(',').Append(Quote(data.UserIds[u]));
            foreach (var column in data.Labels) text.Append(',').Append(column[u].ToString(CultureInfo.InvariantCulture));
            text.Append('\n');
        }
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text.ToString(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(tmp, path, overwrite: true); // never leave a half-written file under the real name
    }

    /// <summary>RFC 4180 quoting, only where needed: ids from CSV data sets may contain commas or quotes.</summary>
    private static string Quote(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 && value.Trim().Length == value.Length
            ? value
            : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
