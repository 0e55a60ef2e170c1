using AttrCloak.Streaming.Hosting;
using Microsoft.Extensions.Configuration;
using StackExchange.Redis;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Streaming.Tests.Security;

/// <summary>
/// Redis AUTH (an ACL user) and TLS (a private CA) reach the client for real: a redis-server that accepts nothing
/// else, configured through the binding `serve` uses (<see cref="StreamingSettings.Bind"/>, then
/// <see cref="RedisConnectionOptionsExtensions.ClientOptions"/>), and the state store writes and reads through it.
/// </summary>
public sealed class RedisTlsAuthTests
{
    private static StreamingSettings Bind(string configuration, string? caFile) =>
        StreamingSettings.Bind(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AttrCloak:Guard:Dimension"] = "4",
            ["AttrCloak:Guard:Attributes:gender:0"] = "F",
            ["AttrCloak:Guard:Attributes:gender:1"] = "M",
            ["AttrCloak:Redis:Configuration"] = configuration,
            ["AttrCloak:Redis:TrustedCaFile"] = caFile,
        }).Build());

    [Fact]
    public async Task State_store_writes_and_reads_over_tls_as_the_acl_user_with_the_configured_ca()
    {
        var ct = TestContext.Current.CancellationToken;
        using var server = TlsRedisServer.Start();
        var settings = Bind(server.Configuration(), server.CaFile);
        var options = settings.Redis.ClientOptions();
        options.Ssl.ShouldBeTrue();
        options.User.ShouldBe(TlsRedisServer.User);

        await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
        redis.IsConnected.ShouldBeTrue(redis.GetStatus());
        // Authenticated as the ACL user, not as default.
        ((string?)await redis.GetDatabase().ExecuteAsync("ACL", "WHOAMI")).ShouldBe(TlsRedisServer.User);

        using var store = new RedisStateStore(redis, new StateStoreOptions
        {
            Prefix = "tls",
            Dimension = 4,
            Attributes = settings.Guard.AttributeSpecs(),
            TombstoneSecret = new byte[32],
        });
        var applied = await store.ApplyAsync([new UserStateChange("alice", "e1", 1) { Original = [1, 2, 3, 4], Cloaked = [4, 3, 2, 1], Classes = [1] }], ct);
        applied.Single().Outcome.ShouldBe(ApplyOutcome.Applied);
        using var restarted = new RedisStateStore(redis, new StateStoreOptions
        {
            Prefix = "tls",
            Dimension = 4,
            Attributes = settings.Guard.AttributeSpecs(),
            TombstoneSecret = new byte[32],
        });
        var read = await restarted.GetUserAsync("alice", ct); // a fresh instance: read from Redis, not its cache
        read.ShouldNotBeNull();
        read.Cloaked.ShouldBe([4f, 3f, 2f, 1f]);
    }

    [Fact]
    public async Task Without_the_ca_or_with_a_wrong_password_nothing_connects_and_no_message_shows_the_password()
    {
        using var server = TlsRedisServer.Start();

        // The server's certificate is not trusted without TrustedCaFile: TLS really verifies.
        await using (var untrusted = await ConnectionMultiplexer.ConnectAsync(Bind(server.Configuration(), null).Redis.ClientOptions()))
        {
            await Task.Delay(500, TestContext.Current.CancellationToken);
            untrusted.IsConnected.ShouldBeFalse();
        }

        const string wrong = "wrong-S3cret-0c9b";
        var options = Bind(server.Configuration(wrong), server.CaFile).Redis.ClientOptions();
        await using var denied = await ConnectionMultiplexer.ConnectAsync(options);
        denied.IsConnected.ShouldBeFalse();
        var error = await Should.ThrowAsync<RedisConnectionException>(() => denied.GetDatabase().PingAsync());
        // What an operator sees of the failure: the exception (message, inner exceptions, stack), the multiplexer's status.
        foreach (var (what, text) in new[] { ("exception", error.ToString()), ("status", denied.GetStatus()), ("options", options.ToString(includePassword: false)) })
        {
            text.ShouldNotContain(wrong, Case.Sensitive, what);
            text.ShouldNotContain(TlsRedisServer.UserPassword, Case.Sensitive, what);
        }
    }

    [Fact]
    public void A_missing_ca_file_is_a_clear_configuration_error_without_the_password()
    {
        var error = Should.Throw<StreamingConfigurationException>(() =>
            Bind("redis:6380,password=pw-S3cret-77aa,ssl=true", "/nonexistent/ca.crt").Redis.ClientOptions());
        error.Message.ShouldContain("AttrCloak:Redis:TrustedCaFile '/nonexistent/ca.crt' does not exist");
        error.Message.ShouldNotContain("pw-S3cret-77aa");
    }
}
