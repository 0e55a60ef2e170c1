using System.Text.Json;
using AttrCloak.Cli.Commands;
using AttrCloak.Cli.Experiments;

namespace AttrCloak.Cli.Tests;

/// <summary>`harness --json` writes every member, the noise control through the served stream included (its uncloaked noise is not audited twice).</summary>
public sealed class HarnessJsonTests
{
    [Fact]
    public void A_noise_control_with_a_served_stream_row_is_written_as_valid_JSON()
    {
        ControlAttribute Attribute(bool original) => new("gender", 2, 0.5,
            original ? [new ControlCell("lr", "argmax", 0.012, -0.01, 0.03)] : [],
            [new ControlCell("lr", "argmax", -0.015, -0.03, 0.0)]);
        var member = Harness.FullFamily(null).Single(m => m.NoiseControl);
        var result = new MemberResult(member, 2000, 2000, [], new NoiseControlResult(2000, 64, 3, [Attribute(true)], 1.0), true, "ok", 10,
            StreamNoise: new NoiseControlResult(2000, 64, 3, [Attribute(false)], 2.0));
        using var tmp = new TempDirectory();
        var path = tmp["harness.json"];

        HarnessJson.Write(path, new HarnessOptions { Members = [member] }, [result]);

        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var written = json.RootElement.GetProperty("results").EnumerateArray().ShouldHaveSingleItem();
        written.GetProperty("Noise").GetProperty("Attributes")[0].GetProperty("WorstOriginal").GetDouble().ShouldBe(0.012, 1e-9);
        var stream = written.GetProperty("StreamNoise").GetProperty("Attributes")[0];
        stream.GetProperty("WorstOriginal").ValueKind.ShouldBe(JsonValueKind.Null);
        stream.GetProperty("WorstCloaked").GetDouble().ShouldBe(0.015, 1e-9);
    }
}
