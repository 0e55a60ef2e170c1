using System.Text;
using System.Text.RegularExpressions;
using AttrCloak.Cli.Commands.Streaming;
using AttrCloak.Cli.Experiments;
using AttrCloak.Streaming.Contracts;
using AttrCloak.Streaming.Kafka;
using AttrCloak.Tools.Kafka;
using static AttrCloak.Cli.Tests.Streaming.StreamingTestSupport;

namespace AttrCloak.Cli.Tests.Streaming;

/// <summary>`attrcloak replay` into the librdkafka mock cluster, read back with a real consumer and checked against the contracts.</summary>
public sealed partial class ReplayCommandTests
{
    private const int Dimension = 8;
    private const int Users = 60;

    [Fact]
    public async Task Replay_produces_valid_updates_and_privacy_requests_with_increasing_versions_and_the_rest_after_a_bootstrap()
    {
        using var tmp = new TempDirectory();
        using var kafka = new MockKafkaCluster();
        var model = tmp["model"];
        var (trained, trainOutput) = await CliRunner.RunAsync("train", "--dataset", "synthetic", "--synthetic-users", $"{Users}", "--epochs", "2", "--dim", $"{Dimension}", "--out", model);
        trained.ShouldBe(0, trainOutput);
        var data = new DataSource("synthetic", null, Users).Load();
        var limits = new ContractLimits(Dimension);
        var catalog = new AttributeCatalog(Catalog);

        // JSON, two shuffled passes, every kind of privacy request.
        var config = WriteConfig(tmp["json.json"], redis: null, prefix: null, Dimension, kafka.BootstrapServers, topicSuffix: "-json");
        var (code, output) = await CliRunner.RunAsync("replay", "--config", config, "--model", model, "--repeat", "2", "--shuffle", "--seed", "3",
            "--forget-fraction", "0.2", "--opt-out-fraction", "0.2", "--update-attributes-fraction", "0.2", "--rate", "2000");
        code.ShouldBe(0, output);
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        var forgets = Count(output, "forget");
        var optOuts = Count(output, "opt_out");
        var attributeUpdates = Count(output, "update_attributes");
        (forgets * optOuts * attributeUpdates).ShouldBeGreaterThan(0, output); // with 120 draws of 0.2 each, all kinds occur
        output.ShouldMatch(@"│ failed\s+│ 0 ");

        var updates = ConsumeAll(kafka.BootstrapServers, "embeddings-json", expected: 2 * Users);
        var requests = ConsumeAll(kafka.BootstrapServers, "requests-json", expected: forgets + optOuts + attributeUpdates);
        updates.Count.ShouldBe(2 * Users);
        requests.Count.ShouldBe(forgets + optOuts + attributeUpdates);

        var versions = new Dictionary<string, List<long>>();
        var kinds = new Dictionary<PrivacyRequestType, int>();
        foreach (var m in updates.Concat(requests))
        {
            Header(m, KafkaHeaders.ContentType).ShouldBe(ContentTypes.Json);
            var decoded = EventCodec.TryDecode(m.Message.Value, ContentTypes.Json, limits, catalog);
            decoded.IsSuccess.ShouldBeTrue(decoded.Error?.ToString());
            var e = decoded.Event!;
            Encoding.UTF8.GetString(m.Message.Key).ShouldBe(e.UserId);
            Header(m, KafkaHeaders.Schema).ShouldBe(e.SchemaName);
            (versions.TryGetValue(e.UserId, out var list) ? list : versions[e.UserId] = []).Add(e.Version);
            switch (e)
            {
                case EmbeddingUpdate update:
                    SchemaErrors("embedding_update", m.Message.Value!).ShouldBeNull();
                    update.Embedding.Length.ShouldBe(Dimension);
                    update.ModelVersion.ShouldBe("model");
                    update.Attributes.ShouldNotBeNull();
                    update.Attributes.Keys.ShouldBe(["age", "gender"], ignoreOrder: true); // the catalog's, not occupation
                    break;
                case PrivacyRequest request:
                    SchemaErrors("privacy_request", m.Message.Value!).ShouldBeNull();
                    kinds[request.Type] = kinds.GetValueOrDefault(request.Type) + 1;
                    break;
            }
        }
        kinds[PrivacyRequestType.Forget].ShouldBe(forgets);
        kinds[PrivacyRequestType.OptOut].ShouldBe(optOuts);
        kinds[PrivacyRequestType.UpdateAttributes].ShouldBe(attributeUpdates);
        versions.Count.ShouldBe(Users);
        foreach (var (user, v) in versions)
        {
            v.Distinct().Count().ShouldBe(v.Count, user); // every event of a user has its own version
            v.Min().ShouldBe(1, user);
        }
        // The first update of the original embedding of user 0 carries the model's row 0 (the worker cloaks it).
        var model0 = AttrCloak.Learning.Backbones.TrainedModel.Load(model).Users.Row(0).ToArray();
        updates.Select(m => (EmbeddingUpdate)EventCodec.TryDecode(m.Message.Value, null, limits).Event!)
            .First(u => u.UserId == data.UserIds[0]).Embedding.ShouldBe(model0);

        // Binary, only the users a `bootstrap --fraction 0.5 --seed 9` would leave out, no attributes.
        var binaryConfig = WriteConfig(tmp["binary.json"], redis: null, prefix: null, Dimension, kafka.BootstrapServers, topicSuffix: "-binary");
        var (binary, binaryOutput) = await CliRunner.RunAsync("replay", "--config", binaryConfig, "--model", model, "--binary", "--no-attributes",
            "--after-bootstrap", "0.5", "--seed", "9");
        binary.ShouldBe(0, binaryOutput);
        var rest = Enumerable.Range(0, Users).Except(UserSample.Draw(Users, 0.5, 9)).Select(u => data.UserIds[u]).ToHashSet();
        var binaryUpdates = ConsumeAll(kafka.BootstrapServers, "embeddings-binary", expected: rest.Count);
        binaryUpdates.Count.ShouldBe(rest.Count);
        foreach (var m in binaryUpdates)
        {
            Header(m, KafkaHeaders.ContentType).ShouldBe(ContentTypes.EmbeddingBinary);
            var decoded = EventCodec.TryDecode(m.Message.Value, ContentTypes.EmbeddingBinary, limits, catalog);
            decoded.IsSuccess.ShouldBeTrue(decoded.Error?.ToString());
            var update = (EmbeddingUpdate)decoded.Event!;
            update.Attributes.ShouldBeNull();
            rest.Remove(update.UserId).ShouldBeTrue(update.UserId);
        }
        rest.ShouldBeEmpty();
    }

    [Fact]
    public async Task Unreachable_brokers_are_one_line()
    {
        var (code, output) = await CliRunner.RunAsync("replay", "--brokers", "127.0.0.1:1", "--synthetic-users", "50");
        ShouldBeOneClearError(code, output, "cannot reach Kafka at 127.0.0.1:1");
    }

    private static int Count(string output, string kind)
    {
        var match = CountLine().Matches(output).FirstOrDefault(m => m.Groups[1].Value == kind);
        return match is null ? 0 : int.Parse(match.Groups[2].Value);
    }

    [GeneratedRegex(@"│ (forget|opt_out|update_attributes)\s+│ (\d+) ->")]
    private static partial Regex CountLine();
}
