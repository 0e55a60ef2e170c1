using System.Net;
using StackExchange.Redis;

using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Redis;

/// <summary>
/// Connects to Redis, failing fast with one clear line when it cannot be reached (<see cref="StateStoreUnavailableException"/>)
/// or the configuration string is unusable (<see cref="StreamingConfigurationException"/>); neither message quotes the password.
/// </summary>
public static class RedisConnection
{
    /// <summary>How long a command waits for Redis before it says so (a maintenance command should not hang).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connects with <paramref name="configuration"/> (a StackExchange.Redis configuration string, e.g.
    /// <c>localhost:6379,password=...</c>). AbortOnConnectFail is off so that a connection that drops later
    /// reconnects by itself; the first connection must succeed within <paramref name="connectTimeout"/>.
    /// <paramref name="failFastWhileDisconnected"/> (the worker): a call while the connection is down fails at once
    /// instead of waiting in the client's backlog for up to the 30 s timeout, so the worker's retry with backoff and
    /// its readiness react immediately (SocketClosed is seen at once when Redis dies).
    /// </summary>
    /// <param name="configuration">The StackExchange.Redis configuration string (holds the password: never quoted in errors).</param>
    /// <param name="connectTimeout">How long the first connection may take (default <see cref="DefaultConnectTimeout"/>).</param>
    /// <param name="failFastWhileDisconnected">See the summary (the worker).</param>
    /// <param name="configure">Adjusts the parsed options (e.g. <see cref="RedisConnectionOptionsExtensions.ApplyTrust"/>: a private CA).</param>
    public static async Task<ConnectionMultiplexer> ConnectAsync(string configuration, TimeSpan? connectTimeout = null, Action<ConfigurationOptions>? configure = null,
        bool failFastWhileDisconnected = false)
    {
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(configuration);
        }
        catch (ArgumentException e)
        {
            throw new StreamingConfigurationException($"the Redis configuration is not a valid StackExchange.Redis configuration string ({e.Message})");
        }
        configure?.Invoke(options);
        if (options.EndPoints.Count == 0)
            throw new StreamingConfigurationException("the Redis configuration names no host:port (e.g. --redis localhost:6379)");
        var timeout = connectTimeout ?? DefaultConnectTimeout;
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = (int)timeout.TotalMilliseconds;
        options.ConnectRetry = 1;
        if (failFastWhileDisconnected) options.BacklogPolicy = BacklogPolicy.FailFast;
        // Maintenance scans and the bootstrap's batches are larger than the event path's calls.
        options.SyncTimeout = Math.Max(options.SyncTimeout, 30_000);
        options.AsyncTimeout = Math.Max(options.AsyncTimeout, 30_000);
        var where = string.Join(", ", options.EndPoints.Select(Describe)); // never the password

        var connection = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        if (!connection.IsConnected)
        {
            // With AbortOnConnectFail off, ConnectAsync returns after the timeout either way; ask once more to be sure.
            try { await connection.GetDatabase().PingAsync().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false); }
            catch (Exception e) when (e is RedisException or TimeoutException) { }
        }
        if (!connection.IsConnected)
        {
            var status = connection.GetStatus();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new StateStoreUnavailableException(
                $"cannot reach Redis at {where} within {timeout.TotalSeconds:0.#} s; is it running? (configure it with --redis, " +
                $"AttrCloak:Redis:Configuration or AttrCloak__Redis__Configuration){FirstFailure(status)}");
        }
        return connection;
    }

    private static string Describe(EndPoint endPoint) => endPoint switch
    {
        DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
        IPEndPoint ip => ip.ToString(),
        _ => endPoint.ToString() ?? "?",
    };

    // The multiplexer's status text has the socket error (e.g. "ConnectionRefused"); keep only a short hint of it.
    private static string FirstFailure(string status)
    {
        foreach (var hint in new[] { "ConnectionRefused", "HostNotFound", "TimedOut", "AuthenticationFailure", "NOAUTH", "WRONGPASS" })
            if (status.Contains(hint, StringComparison.OrdinalIgnoreCase)) return $" [{hint}]";
        return "";
    }
}
