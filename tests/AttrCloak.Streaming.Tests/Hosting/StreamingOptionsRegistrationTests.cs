using AttrCloak.Streaming.Hosting;
using AttrCloak.Streaming.Poisoning;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace AttrCloak.Streaming.Tests.Hosting;

/// <summary>
/// The options pattern of the worker host (<see cref="StreamingOptionsRegistration.AddStreamingOptions"/>): bound with
/// BindConfiguration, lists replacing the defaults, the worker's own messages as validation failures, checked at start.
/// </summary>
public sealed class StreamingOptionsRegistrationTests
{
    private static IConfiguration Configuration(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["AttrCloak:Guard:Dimension"] = "4",
        ["AttrCloak:Guard:Attributes:gender:0"] = "F",
        ["AttrCloak:Guard:Attributes:gender:1"] = "M",
    };

    [Fact]
    public void Options_bind_from_their_sections_and_a_list_replaces_the_default()
    {
        var values = new Dictionary<string, string?>(Valid)
        {
            ["AttrCloak:Audit:Attackers:0"] = "lgbm",
            ["AttrCloak:Input:MaxNormRatio"] = "8",
            ["AttrCloak:Kafka:BootstrapServers"] = "broker:9092",
        };
        using var provider = new ServiceCollection().AddSingleton(Configuration(values)).AddStreamingOptions().BuildServiceProvider();
        provider.GetRequiredService<IOptions<AuditOptions>>().Value.Attackers.ShouldBe(["lgbm"]);
        provider.GetRequiredService<IOptions<InputOptions>>().Value.MaxNormRatio.ShouldBe(8);
        provider.GetRequiredService<IOptions<KafkaOptions>>().Value.BootstrapServers.ShouldBe("broker:9092");
        provider.GetRequiredService<IOptions<GuardOptions>>().Value.AttributeSpecs().Single().ClassNames.ShouldBe(["F", "M"]);
    }

    [Fact]
    public void A_mistake_is_a_validation_failure_with_the_workers_message()
    {
        var values = new Dictionary<string, string?>(Valid) { ["AttrCloak:Audit:Intervall"] = "00:01:00", ["AttrCloak:Audit:Folds"] = "1" };
        using var provider = new ServiceCollection().AddSingleton(Configuration(values)).AddStreamingOptions().BuildServiceProvider();
        var e = Should.Throw<OptionsValidationException>(() => provider.GetRequiredService<IOptions<AuditOptions>>().Value);
        e.Failures.ShouldContain(f => f.StartsWith("AttrCloak:Audit:Intervall is not a setting", StringComparison.Ordinal));
        e.Failures.ShouldContain("AttrCloak:Audit:Folds must be in 2..10, got 1");
    }

    [Fact]
    public async Task A_host_with_a_bad_configuration_does_not_start()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(Valid) { ["AttrCloak:Guard:Dimension"] = "0" });
        builder.Services.AddStreamingOptions();
        using var host = builder.Build();
        var e = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync());
        e.Failures.ShouldContain(f => f.StartsWith("AttrCloak:Guard:Dimension must be in 1..4096", StringComparison.Ordinal));
    }

    [Fact]
    public void Bind_reports_every_problem_of_every_section_one_line_each()
    {
        var values = new Dictionary<string, string?>(Valid)
        {
            ["AttrCloak:Guard:Dimension"] = "sixty-four",
            ["AttrCloak:Audit:Folds"] = "1",
            ["AttrCloak:Kafka:Nope"] = "x",
        };
        var e = Should.Throw<StreamingConfigurationException>(() => StreamingSettings.Bind(Configuration(values)));
        var lines = e.Message.Split(Environment.NewLine);
        lines.ShouldContain(l => l.StartsWith("AttrCloak:Kafka:Nope is not a setting", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("AttrCloak:Guard:Dimension:", StringComparison.Ordinal) && l.Contains("'AttrCloak:Guard:Dimension'"));
        lines.ShouldContain("AttrCloak:Audit:Folds must be in 2..10, got 1");
        lines.Length.ShouldBe(3, e.Message);
    }
}
