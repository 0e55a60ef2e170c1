using System.Numerics;
using System.Runtime.InteropServices;
using AttrCloak.Streaming.Statistics;

namespace AttrCloak.Streaming.Cloaking;

/// <summary>What the factory built for one attribute (for logs, metrics and tests).</summary>
/// <param name="Attribute">Catalog name.</param>
/// <param name="Mapped">False when the original global fit is too small (<see cref="TransportCloakerOptions.MinGlobalUsers"/>): users declaring a class of it get the warm-up vector.</param>
/// <param name="ServedTarget">True when the targets are the served statistics; false = the original global fit (cold store: pure class equalisation).</param>
/// <param name="CovarianceMaps">True when full Monge matrices are used; false = mean shifts only.</param>
/// <param name="WarmClasses">Classes whose own served statistics are their target (the others are equalised to the global target).</param>
public sealed record AttributeMapInfo(string Attribute, bool Mapped, bool ServedTarget, bool CovarianceMaps, int WarmClasses);

/// <summary>
/// The per-user re-cloak: per-class Gaussian transport maps derived from the AttrCloak objective and the class
/// statistics, applied to one user in O(m d^2) (m attributes, one d x d matrix-vector product each, plus one for the
/// population-wide part), independent of the population size. Immutable and thread-safe.
/// <para>
/// Why maps and not per-user gradient steps: AttrCloak-DF moves each class's original Gaussian to a served one that is
/// (nearly) indistinguishable from the others, while keeping the expected squared displacement (the DF retention loss)
/// small. For attribute a and class k the map with the least expected squared displacement among all maps that send
/// N(mu_o,ak, Sigma_o,ak) to N(mu_s,ak, Sigma_s,ak) is the Gaussian optimal-transport (Monge) map
/// T_ak(x) = mu_s,ak + B_ak (x - mu_o,ak); a new user of class k thus gets what the batch did to class k. A user's
/// own gradient of L_AU with the statistics held fixed is O(1/n_k), and against an already cloaked population (class
/// means equal) it carries no information about the displacement the class received.
/// </para>
/// <para>
/// Several attributes (<see cref="MapCombination.CenteredAdditive"/>): y = T_g(x) + sum_a (T_a,k_a(x) - T_a,g(x)), where
/// T_a,g is attribute a's global map (original global fit to served global fit) and T_g the global map of the attribute
/// with the most labelled users.
/// </para>
/// <para>
/// Targets: a warm class is sent to its served Gaussian with the served class mean pulled halfway to the served global
/// mean (<see cref="TransportCloakerOptions.TargetOffsetScale"/> = 0.5). Replicating the batch exactly (1) left the
/// stream less private than the batch (ML-100K gender +0.02..+0.05): new users carry their own class sampling noise
/// plus the bootstrap's estimation noise, which the batch never had; 0.5 was more private than the batch at an equal
/// NDCG@10. Covariance targets do not replicate the served class covariances: every class is sent to one global
/// covariance target, a mix of the served (75 %) and the ORIGINAL (25 %) global covariance
/// (<see cref="TransportCloakerOptions.TargetCovarianceScale"/>, <see cref="TransportCloakerOptions.CovarianceAnchor"/>):
/// the served statistics contain the re-cloaked users themselves, and targets taken from them fed the maps' errors
/// back on every rebuild until the classes were separable again (the repeated-updates experiment). Plain additive displacements (<see cref="MapCombination.Additive"/>) apply the population-wide part once
/// per attribute: 9x the batch's displacement on ML-100K.
/// </para>
/// <para>
/// Refresh: the maps are functions of the statistics only; rebuild when they drift (the replay rebuilt every 25 users,
/// 3-5% of the population) and swap the instance atomically.
/// </para>
/// <para>
/// Cold start and small classes (thresholds in <see cref="TransportCloakerOptions"/>): an attribute whose ORIGINAL
/// global fit holds fewer than MinGlobalUsers users is not mapped; a user who declares a class of such an attribute is
/// served the warm-up vector (the original population mean, zeros on an empty store: nothing about the user), never
/// their own embedding. When the SERVED
/// global fit is that small too (a store without a bootstrap) every class is sent to the attribute's ORIGINAL global
/// Gaussian: pure class equalisation, which is what AttrCloak converges to when privacy dominates. A class with fewer
/// than MinClassUsers served users is sent to the global target likewise. Class means are shrunk toward the global mean
/// with weight n / (n + MeanPriorUsers), class covariances toward the global covariance with CovariancePriorUsers, and
/// below MinCovarianceUsers labelled users only mean shifts are applied.
/// </para>
/// <para>
/// Unknown class (-1) for an attribute: no class-specific displacement for it and its bit stays clear: the worker knows
/// that attribute is not protected for this user (the population-wide part still applies).
/// </para>
/// </summary>
public sealed class TransportCloaker : IUserCloaker
{
    private readonly int _dimension;
    private readonly ClassMap?[][] _classMaps;
    private readonly float[]? _globalLinear;
    private readonly float[] _globalOffset;
    private readonly float[] _warmup;

    internal TransportCloaker(StatisticsVersion version, int dimension, ClassMap?[][] classMaps, float[]? globalLinear,
        float[] globalOffset, IReadOnlyList<AttributeMapInfo> maps, float[] warmup)
    {
        _warmup = warmup;
        StatisticsVersion = version;
        _dimension = dimension;
        _classMaps = classMaps;
        _globalLinear = globalLinear;
        _globalOffset = globalOffset;
        Maps = maps;
    }

    /// <summary>One class's contribution: y += Linear x + Offset (Linear null = zero).</summary>
    internal sealed record ClassMap(float[]? Linear, float[] Offset);

    public StatisticsVersion StatisticsVersion { get; }

    /// <summary>The embedding dimension this cloaker expects.</summary>
    public int Dimension => _dimension;

    /// <summary>What was built per catalog attribute.</summary>
    public IReadOnlyList<AttributeMapInfo> Maps { get; }

    public CloakOutcome Cloak(ReadOnlySpan<float> original, ReadOnlySpan<int> classes, Span<float> cloaked)
    {
        var d = _dimension;
        if (original.Length != d) throw new ArgumentException($"the embedding has {original.Length} values; this deployment's dimension is {d}", nameof(original));
        if (cloaked.Length != d) throw new ArgumentException($"the output span has {cloaked.Length} values, expected {d}", nameof(cloaked));
        if (classes.Length != _classMaps.Length)
            throw new ArgumentException($"{classes.Length} classes given; the catalog has {_classMaps.Length} attributes", nameof(classes));

        // Accumulate into a scratch copy so that cloaked may alias original.
        Span<float> y = d <= 1024 ? stackalloc float[d] : new float[d];
        original.CopyTo(y);
        Add(y, _globalOffset);
        if (_globalLinear is not null) AddProduct(y, _globalLinear, original);

        uint mask = 0;
        for (var a = 0; a < _classMaps.Length; a++)
        {
            var k = classes[a];
            if (k == -1) continue;
            var perClass = _classMaps[a];
            if ((uint)k >= (uint)perClass.Length)
                throw new ArgumentOutOfRangeException(nameof(classes), k, $"class {k} of attribute {a} is outside -1..{perClass.Length - 1}");
            if (perClass[k] is not { } map)
                return WarmUp(classes, cloaked);
            Add(y, map.Offset);
            if (map.Linear is not null) AddProduct(y, map.Linear, original);
            mask |= 1u << a;
        }
        y.CopyTo(cloaked);
        return new CloakOutcome(mask);
    }

    /// <summary>
    /// Warm-up (too few users to map an attribute whose class this user declares): fail closed. The output is the
    /// original population's mean (zeros on an empty store), which carries nothing about the user, so every attribute
    /// with a known class counts as protected. The user's utility is poor until their next event after the warm-up;
    /// `attrcloak bootstrap` avoids the warm-up altogether.
    /// </summary>
    private CloakOutcome WarmUp(ReadOnlySpan<int> classes, Span<float> cloaked)
    {
        _warmup.CopyTo(cloaked);
        uint mask = 0;
        for (var a = 0; a < classes.Length; a++)
            if (classes[a] != -1) mask |= 1u << a;
        return new CloakOutcome(mask);
    }

    /// <summary>True when an attribute with a known class cannot be mapped yet, so <see cref="Cloak"/> serves the warm-up vector.</summary>
    public bool IsWarmingUp(ReadOnlySpan<int> classes)
    {
        for (var a = 0; a < _classMaps.Length && a < classes.Length; a++)
            if (classes[a] >= 0 && classes[a] < _classMaps[a].Length && _classMaps[a][classes[a]] is null) return true;
        return false;
    }

    private static void Add(Span<float> y, ReadOnlySpan<float> v)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (var j = 0; j < vy.Length; j++) vy[j] += vv[j];
            i = vy.Length * Vector<float>.Count;
        }
        for (; i < y.Length; i++) y[i] += v[i];
    }

    /// <summary>y += M x for a row-major d x d matrix M.</summary>
    private static void AddProduct(Span<float> y, float[] matrix, ReadOnlySpan<float> x)
    {
        var d = x.Length;
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var tail = vx.Length * Vector<float>.Count;
        for (var i = 0; i < d; i++)
        {
            var row = matrix.AsSpan(i * d, d);
            var vr = MemoryMarshal.Cast<float, Vector<float>>(row);
            var acc = Vector<float>.Zero;
            for (var j = 0; j < vx.Length; j++) acc += vr[j] * vx[j];
            var sum = Vector.Sum(acc);
            for (var j = tail; j < d; j++) sum += row[j] * x[j];
            y[i] += sum;
        }
    }
}
