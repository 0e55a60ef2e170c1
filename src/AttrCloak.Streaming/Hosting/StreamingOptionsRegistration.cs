using AttrCloak.Streaming.Generations;
using AttrCloak.Streaming.Poisoning;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AttrCloak.Streaming.Hosting;

/// <summary>
/// The worker's option classes in the options pattern: each is bound from its section with
/// <c>AddOptions&lt;T&gt;().BindConfiguration(section).ValidateOnStart()</c> and validated by a
/// <see cref="SectionValidator{T}"/> that carries the worker's own messages (one line per problem, naming the key).
/// Two things the plain binder gets wrong are put right here: a list given in configuration REPLACES the option's
/// default list (the binder appends: the shipped <c>"Attackers": ["lr", "mlp"]</c> became lr, mlp, lr, mlp), and a key
/// the option class does not have is an error (the binder ignores a typo silently).
/// </summary>
public static class StreamingOptionsRegistration
{
    /// <summary>
    /// Registers <see cref="KafkaOptions"/>, <see cref="RedisConnectionOptions"/>, <see cref="GuardOptions"/>,
    /// <see cref="AuditOptions"/>, <see cref="GenerationOptions"/> and <see cref="InputOptions"/>, bound from the
    /// <see cref="IConfiguration"/> of the container and validated when the host starts.
    /// </summary>
    public static IServiceCollection AddStreamingOptions(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        Add<KafkaOptions>(services, KafkaOptions.SectionName, (o, errors) => o.Validate(errors));
        // The Redis section also holds the state store's layout keys (StateStoreOptions reads them).
        Add<RedisConnectionOptions>(services, RedisConnectionOptions.SectionName, null, StreamingSettings.StoreLayoutKeys);
        Add<GuardOptions>(services, GuardOptions.SectionName, (o, errors) => o.Validate(errors));
        Add<AuditOptions>(services, AuditOptions.SectionName, (o, errors) => o.Validate(errors));
        Add<GenerationOptions>(services, GenerationOptions.SectionName, (o, errors) => o.Validate(errors));
        Add<InputOptions>(services, InputOptions.SectionName, (o, errors) => o.Validate(errors));
        return services;
    }

    private static void Add<T>(IServiceCollection services, string section, Action<T, List<string>>? validate, params string[] otherKeys)
        where T : class, new()
    {
        services.AddOptions<T>()
            .BindConfiguration(section)
            .PostConfigure<IConfiguration>((options, configuration) => OptionsBinding.ReplaceLists(options, configuration, section))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>>(sp => new SectionValidator<T>(sp.GetRequiredService<IConfiguration>(), section, validate, otherKeys));
    }
}

/// <summary>
/// Validates one option class: keys of its section that it does not have, then its own rules (the messages of
/// <c>Validate(List&lt;string&gt;)</c>), one failure per problem.
/// </summary>
public sealed class SectionValidator<T>(IConfiguration configuration, string section, Action<T, List<string>>? validate, string[] otherKeys)
    : IValidateOptions<T> where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        OptionsBinding.CheckKeys(typeof(T), configuration, section, errors, otherKeys);
        validate?.Invoke(options, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
