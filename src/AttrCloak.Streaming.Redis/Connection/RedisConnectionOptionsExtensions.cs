using AttrCloak.Streaming.Hosting;
using StackExchange.Redis;

namespace AttrCloak.Streaming.Redis;

/// <summary>The StackExchange.Redis client options of the <c>AttrCloak:Redis</c> section (the core binds it as plain settings).</summary>
public static class RedisConnectionOptionsExtensions
{
    /// <summary>
    /// The client options of <see cref="RedisConnectionOptions.Configuration"/> with <see cref="RedisConnectionOptions.TrustedCaFile"/> applied; throws
    /// <see cref="StreamingConfigurationException"/> (never quoting the configuration string, which holds the password).
    /// </summary>
    public static ConfigurationOptions ClientOptions(this RedisConnectionOptions connection)
    {
        ConfigurationOptions options;
        try { options = ConfigurationOptions.Parse(connection.Configuration); }
        catch (ArgumentException e)
        {
            throw new StreamingConfigurationException($"{RedisConnectionOptions.SectionName}:Configuration is not a valid StackExchange.Redis configuration string ({e.Message})");
        }
        connection.ApplyTrust(options);
        return options;
    }

    /// <summary>Trusts <see cref="RedisConnectionOptions.TrustedCaFile"/> on <paramref name="options"/> when set.</summary>
    public static void ApplyTrust(this RedisConnectionOptions connection, ConfigurationOptions options)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(connection.TrustedCaFile)) return;
        if (!File.Exists(connection.TrustedCaFile))
            throw new StreamingConfigurationException($"{RedisConnectionOptions.SectionName}:TrustedCaFile '{connection.TrustedCaFile}' does not exist (a PEM file of the CA that signed the Redis server's certificate)");
        options.TrustIssuer(connection.TrustedCaFile);
    }
}
