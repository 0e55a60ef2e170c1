using System.Collections;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// Binds one configuration section onto an options object the way an operator expects, which
/// <see cref="ConfigurationBinder"/> alone does not:
/// <list type="bullet">
/// <item>a list given in configuration REPLACES the option's default list (the binder appends to a non-empty default:
/// <c>"Attackers": ["lr", "mlp"]</c> over the default lr, mlp became lr, mlp, lr, mlp and every audit failed);</item>
/// <item>a key the options class does not have is an error naming the key (a typo would otherwise be ignored
/// silently and the default used);</item>
/// <item>a value of the wrong type is an error naming its key, and the other keys still bind.</item>
/// </list>
/// Problems are added to a list, one line each, so that every mistake of a file is reported at once.
/// </summary>
public static class OptionsBinding
{
    /// <summary>
    /// Binds <paramref name="sectionName"/> of <paramref name="configuration"/> onto a new <typeparamref name="T"/>.
    /// <paramref name="otherKeys"/>: keys of the same section that other code reads (not properties of T).
    /// </summary>
    public static T Bind<T>(IConfiguration configuration, string sectionName, List<string> errors, params string[] otherKeys) where T : new()
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var value = new T();
        var section = configuration.GetSection(sectionName);
        if (!section.Exists()) return value;
        var properties = Properties(typeof(T));
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                if (!otherKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
                    errors.Add($"{sectionName}:{child.Key} is not a setting (known: {string.Join(", ", properties.Keys.Concat(otherKeys).Order(StringComparer.Ordinal))})");
                continue;
            }
            // Property by property: a bad value is reported for its key alone (the others still bind, so that no
            // follow-up error blames a key that was fine), and a list is bound from the section only, so it REPLACES
            // the default list (the binder would append to it).
            try
            {
                var bound = IsList(property.PropertyType) && !child.GetChildren().Any()
                    ? EmptyOf(property.PropertyType) // "Attackers": [] arrives as an empty value without children: none
                    : child.Get(property.PropertyType);
                if (bound is not null) property.SetValue(value, bound);
            }
            catch (InvalidOperationException e)
            {
                errors.Add($"{sectionName}:{property.Name}: {e.Message}");
            }
        }
        return value;
    }

    /// <summary>
    /// Keys of <paramref name="sectionName"/> that <paramref name="type"/> has no property for (and that are not among
    /// <paramref name="otherKeys"/>), one error each.
    /// </summary>
    public static void CheckKeys(Type type, IConfiguration configuration, string sectionName, List<string> errors, params string[] otherKeys)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var section = configuration.GetSection(sectionName);
        if (!section.Exists()) return;
        var properties = Properties(type);
        foreach (var child in section.GetChildren())
            if (!properties.ContainsKey(child.Key) && !otherKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
                errors.Add($"{sectionName}:{child.Key} is not a setting (known: {string.Join(", ", properties.Keys.Concat(otherKeys).Order(StringComparer.Ordinal))})");
    }

    /// <summary>
    /// Values of <paramref name="sectionName"/> that cannot be converted to their property's type, one error each
    /// (what <see cref="ConfigurationBinder"/> would throw for, one at a time).
    /// </summary>
    public static void CheckTypes(Type type, IConfiguration configuration, string sectionName, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var section = configuration.GetSection(sectionName);
        if (!section.Exists()) return;
        var properties = Properties(type);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property)) continue;
            try
            {
                if (!(IsList(property.PropertyType) && !child.GetChildren().Any())) child.Get(property.PropertyType);
            }
            catch (InvalidOperationException e)
            {
                errors.Add($"{sectionName}:{property.Name}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// After <see cref="ConfigurationBinder"/> has bound <paramref name="options"/>: every list property given in the
    /// section is set from the section alone, so that it REPLACES the default list (the binder appends to it).
    /// </summary>
    public static void ReplaceLists<T>(T options, IConfiguration configuration, string sectionName) where T : class
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(sectionName);
        if (!section.Exists()) return;
        var properties = Properties(typeof(T));
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property) || !IsList(property.PropertyType)) continue;
            var bound = !child.GetChildren().Any() ? EmptyOf(property.PropertyType) : child.Get(property.PropertyType);
            if (bound is not null) property.SetValue(options, bound);
        }
    }

    private static bool IsList(Type type) =>
        type != typeof(string)
        && (type.IsArray || (type.IsGenericType && typeof(IEnumerable).IsAssignableFrom(type) && type.GetGenericArguments().Length == 1));

    private static object EmptyOf(Type type) =>
        type.IsArray
            ? Array.CreateInstance(type.GetElementType()!, 0)
            : Activator.CreateInstance(type.IsInterface ? typeof(List<>).MakeGenericType(type.GetGenericArguments()) : type)!;

    private static Dictionary<string, PropertyInfo> Properties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
}
