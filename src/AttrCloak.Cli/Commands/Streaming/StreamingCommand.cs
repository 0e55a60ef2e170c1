using AttrCloak.Streaming.Hosting;
using Confluent.Kafka;
using Spectre.Console.Cli;
using StackExchange.Redis;
using AttrCloak.Streaming.State;

namespace AttrCloak.Cli.Commands.Streaming;

/// <summary>
/// Base of the streaming commands: turns the failures an operator can cause (configuration, an unreachable or
/// misconfigured Redis or Kafka, a prefix holding another layout) into one <c>error:</c> line with exit code 2.
/// </summary>
public abstract class StreamingCommand<TSettings> : AsyncCommand<TSettings> where TSettings : CommandSettings
{
    public sealed override async Task<int> ExecuteAsync(CommandContext context, TSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            return await RunAsync(settings, cancellationToken).ConfigureAwait(false);
        }
        catch (StreamingConfigurationException e)
        {
            throw new UsageException($"invalid configuration: {e.Message.ReplaceLineEndings("; ")}");
        }
        catch (StateStoreLayoutException e)
        {
            throw new UsageException(e.Message);
        }
        catch (RedisConnectionException e)
        {
            throw new UsageException($"lost the connection to Redis: {e.Message}");
        }
        catch (RedisTimeoutException e)
        {
            throw new UsageException($"Redis did not answer in time: {e.Message}");
        }
        catch (RedisServerException e)
        {
            throw new UsageException($"Redis refused a command: {e.Message}");
        }
        catch (KafkaException e)
        {
            throw new UsageException($"Kafka: {e.Error.Reason} ({e.Error.Code})");
        }
    }

    protected abstract Task<int> RunAsync(TSettings settings, CancellationToken cancellationToken);
}
