using AttrCloak.Streaming.Cloaking;
using AttrCloak.Streaming.Monitoring;
using AttrCloak.Streaming.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using AttrCloak.Streaming.Generations;

namespace AttrCloak.Streaming.Hosting;

/// <summary>Composition of the privacy guard for a host (<c>attrcloak serve</c>, <c>attrcloak demo</c>, tests).</summary>
public static class PrivacyGuardServiceCollectionExtensions
{
    /// <summary>
    /// Registers the privacy guard over the <see cref="IGenerationStore"/> an adapter registered (the Redis adapter's
    /// <c>AddRedisGenerationStore</c>; the demo and tests hand an instance to the overload below): <see cref="WorkerMetrics"/> (unless
    /// one is registered or given), the <see cref="GuardPipeline"/>, its <see cref="PipelineStatus"/> (for
    /// /healthz/ready) and <see cref="PrivacyGuardWorker"/> as a hosted service. <paramref name="settings"/> must name
    /// the brokers (<c>KafkaOptions.BootstrapServers</c>); for the demo, start a <c>MockKafkaCluster</c>
    /// (AttrCloak.Tools) first and put its address there.
    /// </summary>
    /// <exception cref="StreamingConfigurationException">No brokers are configured.</exception>
    public static IServiceCollection AddPrivacyGuard(
        this IServiceCollection services,
        StreamingSettings settings,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer = null,
        WorkerMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(cloakerFactory);
        if (string.IsNullOrWhiteSpace(settings.Kafka.BootstrapServers))
            throw new StreamingConfigurationException(
                $"{KafkaOptions.SectionName}:BootstrapServers is empty: name the Kafka brokers (host:port,...); the demo starts a mock cluster and sets it");

        if (metrics is not null) services.TryAddSingleton(metrics);
        else services.TryAddSingleton(_ => new WorkerMetrics());
        services.TryAddSingleton(cloakerFactory);
        if (observer is not null) services.TryAddSingleton(observer);
        services.TryAddSingleton(sp => CreatePipeline(settings, sp.GetRequiredService<IGenerationStore>(), cloakerFactory,
            sp.GetService<IServedPopulationObserver>(), sp.GetRequiredService<WorkerMetrics>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        services.TryAddSingleton(sp => sp.GetRequiredService<GuardPipeline>().Status);
        services.TryAddSingleton<PrivacyGuardWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<PrivacyGuardWorker>());
        return services;
    }

    /// <summary>As above, over a store built by the caller (tests; the caller keeps it and disposes it).</summary>
    public static IServiceCollection AddPrivacyGuard(
        this IServiceCollection services,
        StreamingSettings settings,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer = null,
        WorkerMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(store);
        return services.AddPrivacyGuard(settings, cloakerFactory, observer, metrics);
    }

    /// <summary>The pipeline alone, for hosts that run it themselves (benchmarks, tests): call <see cref="GuardPipeline.Run"/> on a dedicated thread.</summary>
    public static GuardPipeline CreatePipeline(
        StreamingSettings settings,
        IGenerationStore store,
        IUserCloakerFactory cloakerFactory,
        IServedPopulationObserver? observer,
        WorkerMetrics metrics,
        ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        return new GuardPipeline(settings.Kafka, settings.Guard, store, cloakerFactory, observer, metrics,
            loggerFactory.CreateLogger("AttrCloak.Streaming.PrivacyGuard"), settings.Generations)
        {
            Input = settings.Input,
            MaxUnacknowledgedBatches = settings.Guard.MaxUnacknowledgedBatches,
            CloakerRebuildShare = settings.Guard.CloakerRebuildShare,
            UserCacheCapacity = settings.Guard.UserCacheCapacity,
        };
    }
}
