using AttrCloak.Cli.Streaming;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>
/// A Redis configuration string carries the password (AttrCloak__Redis__Configuration from a Kubernetes Secret); the
/// one-line errors of the streaming commands, which end up in pod logs, must never repeat it.
/// </summary>
public sealed class SecretsTests
{
    private const string Password = "redis-S3cret-5e1c";

    [Fact]
    public async Task Unreachable_redis_error_names_the_endpoint_but_not_the_password()
    {
        var error = await Should.ThrowAsync<UsageException>(() =>
            RedisConnector.ConnectAsync($"127.0.0.1:1,user=guard,password={Password}", TimeSpan.FromSeconds(1)));
        error.Message.ShouldContain("cannot reach Redis at 127.0.0.1:1");
        error.Message.ShouldNotContain(Password);
    }

    [Fact]
    public async Task Malformed_configuration_error_does_not_contain_the_password()
    {
        var error = await Should.ThrowAsync<UsageException>(() =>
            RedisConnector.ConnectAsync($"127.0.0.1:1,password={Password},sslx=true", TimeSpan.FromSeconds(1)));
        error.Message.ShouldContain("not a valid StackExchange.Redis configuration string");
        error.Message.ShouldNotContain(Password);
    }
}
