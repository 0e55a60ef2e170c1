using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;
using AttrCloak.Streaming.Redis;
using AttrCloak.Streaming.Redis.Scripts;
using AttrCloak.Streaming.State;
using AttrCloak.Tools.Experiments.Support;
using static AttrCloak.Tools.Samples.Streaming.StoreSamples;

namespace AttrCloak.Tools.Experiments.Store;

/// <summary>
/// <c>store-throughput</c>: throughput of <see cref="RedisStateStore.ApplyAsync"/> at d = 64 with a MovieLens-like
/// catalog (2 + 7 + 21 classes) over a resident population of 20,000 users: re-embeddings of random users (10 % also move class), per batch size,
/// write path and event kind: "served" events carry only a new cloaked embedding, "both" events a new original and a
/// new cloaked embedding (what the worker's embedding update does). Prints figures, asserts nothing. Runs against a
/// throw-away local redis-server (it sets the slow log). Environment: ATTRCLOAK_BENCH_BATCHES (e.g. 64,512) and
/// ATTRCLOAK_BENCH_PATHS=absolute narrow the run.
/// </summary>
internal sealed class StoreThroughputBenchmark(ExperimentRedis redis)
{
    private const int D = 64;
    private const int Population = 20_000;
    private static readonly string ReadSha = Sha1(LuaScripts.ReadUsers);
    private static readonly string ApplySha = Sha1(LuaScripts.Apply);

    // Redis names scripts by their SHA-1 (EVALSHA): an identifier, not a security measure.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "Redis's script id is the SHA-1 of its text.")]
    private static string Sha1(string script) =>
        Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(script))).ToLowerInvariant();

    public static async Task RunAsync(ExperimentContext output)
    {
        await using var redis = await ExperimentRedis.StartAsync().ConfigureAwait(false);
        await new StoreThroughputBenchmark(redis).MeasureAllAsync(output).ConfigureAwait(false);
    }

    private async Task MeasureAllAsync(ExperimentContext output)
    {
        var ct = output.CancellationToken;
        var lines = new List<string>
        {
            $"d = {D}, attributes 2 + 7 + 21 classes, population {Population:N0}; {Environment.ProcessorCount} cores",
            "batch  path                 event   events   updates/s        wall ms/batch   redis CPU us/event    us/script (read+apply)",
        };
        // ATTRCLOAK_BENCH_BATCHES=64,512 and ATTRCLOAK_BENCH_PATHS=absolute narrow the run (A/B comparisons on a busy machine).
        var only = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_BATCHES")?.Split(',').Select(int.Parse).ToHashSet();
        var absoluteOnly = Environment.GetEnvironmentVariable("ATTRCLOAK_BENCH_PATHS") == "absolute";
        foreach (var (batchSize, events) in new[] { (1, 3_000), (64, 30_000), (512, 60_000) }.Where(b => only?.Contains(b.Item1) != false))
            foreach (var serverSide in absoluteOnly ? [false] : new[] { false, true })
                foreach (var both in new[] { false, true })
                    lines.Add(await MeasureAsync(batchSize, serverSide ? Math.Min(events, 6_000) : events, serverSide, both, ct));
        foreach (var line in lines) output.WriteLine(line);
    }

    private async Task<string> MeasureAsync(int batchSize, int events, bool serverSide, bool bothEmbeddings, CancellationToken ct)
    {
        var options = Options(redis.NewPrefix($"bench{batchSize}"), D, MovieLensCatalog);
        using var store = new RedisStateStore(redis.Redis, options, new RedisStoreSeams { ServerSideArithmetic = serverSide });
        var rng = new Random(batchSize);
        var versions = new long[Population];
        for (var start = 0; start < Population; start += 512)
        {
            var load = Enumerable.Range(start, Math.Min(512, Population - start))
                .Select(i => NewUser($"user{i}", 1, rng, D, MovieLensCatalog)).ToList();
            await store.ApplyAsync(load, ct);
        }
        Array.Fill(versions, 1);
        await store.ReadStatisticsAsync(ct);

        // Events are prepared up front: the figure is the store's cost, not the generator's.
        var batches = new List<List<UserStateChange>>();
        for (var done = 0; done < events; done += batchSize)
        {
            var batch = new List<UserStateChange>(batchSize);
            for (var i = 0; i < batchSize; i++)
            {
                var u = rng.Next(Population);
                var v = ++versions[u];
                batch.Add(new UserStateChange($"user{u}", $"e{v}", v)
                {
                    Original = bothEmbeddings ? RandomVector(rng, D) : null,
                    Cloaked = RandomVector(rng, D),
                    Classes = rng.Next(10) == 0 ? RandomClasses(rng, MovieLensCatalog) : null,
                });
            }
            batches.Add(batch);
        }

        var db = redis.Redis.GetDatabase();
        // Every script call's server-side duration, to split the read and the apply script.
        await db.ExecuteAsync("CONFIG", "SET", "slowlog-log-slower-than", "0");
        await db.ExecuteAsync("CONFIG", "SET", "slowlog-max-len", "200000");
        await db.ExecuteAsync("SLOWLOG", "RESET");
        var cpuBefore = await RedisCpuSecondsAsync(db);
        var callsBefore = await CommandStatsAsync(db);
        store.Counters.ClientTicks = store.Counters.WriteTicks = store.Counters.PlanTicks = 0;
        // CPU time (all threads of the test process) as well as wall time: on a shared machine the wall-clock figures
        // move with the other jobs' load, CPU time much less.
        var processCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var gcPauseBefore = GC.GetTotalPauseDuration();
        int[] gcBefore = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var clock = Stopwatch.StartNew();
        foreach (var batch in batches) await store.ApplyAsync(batch, ct);
        clock.Stop();
        var processCpu = Process.GetCurrentProcess().TotalProcessorTime - processCpuBefore;
        var gcPause = GC.GetTotalPauseDuration() - gcPauseBefore;
        var gcs = $"{GC.CollectionCount(0) - gcBefore[0]}/{GC.CollectionCount(1) - gcBefore[1]}/{GC.CollectionCount(2) - gcBefore[2]}";
        var cpuAfter = await RedisCpuSecondsAsync(db);
        var callsAfter = await CommandStatsAsync(db);
        var perScript = await ScriptDurationsAsync(db);
        await db.ExecuteAsync("CONFIG", "SET", "slowlog-log-slower-than", "10000");
        await db.ExecuteAsync("SLOWLOG", "RESET");

        var applied = batches.Sum(b => b.Count);
        var rate = applied / clock.Elapsed.TotalSeconds;
        var redisCpuPerEvent = (cpuAfter - cpuBefore) / applied * 1e6;
        var evalCalls = callsAfter.Calls - callsBefore.Calls;
        var evalUsec = callsAfter.Usec - callsBefore.Usec;
        return string.Create(CultureInfo.InvariantCulture,
            $"{batchSize,5}  {(serverSide ? "Lua float64 deltas" : "absolute (client sums)"),-20} {(bothEmbeddings ? "both" : "served"),-6}  {applied,7}   {rate,9:N0}   " +
            $"{clock.Elapsed.TotalMilliseconds / batches.Count,19:F2}   {redisCpuPerEvent,18:F1}   {evalUsec / Math.Max(1, evalCalls) ,20:F0}" +
            $"   client process CPU {processCpu.TotalMicroseconds / applied:F1} us/event, GC pause {gcPause.TotalMicroseconds / applied:F1} us/event (gen0/1/2 {gcs})" +
            $"   client {store.Counters.ClientTicks * 1e6 / Stopwatch.Frequency / applied:F1} us/event (plan {store.Counters.PlanTicks * 1e6 / Stopwatch.Frequency / applied:F1}), apply call {store.Counters.WriteTicks * 1e3 / Stopwatch.Frequency / batches.Count:F2} ms/batch" +
            $"   read {perScript.Read:F0} us + apply {perScript.Apply:F0} us per batch" +
            $"   (evalsha calls {callsAfter.Sha - callsBefore.Sha}, eval calls {callsAfter.Eval - callsBefore.Eval}, cache reloads {store.Counters.CacheReloads})");
    }

    /// <summary>Mean server-side duration of the read and of the apply script calls, from the slow log (threshold 0).</summary>
    private static async Task<(double Read, double Apply)> ScriptDurationsAsync(IDatabase db)
    {
        var entries = (RedisResult[])(await db.ExecuteAsync("SLOWLOG", "GET", "-1"))!;
        var read = new List<long>();
        var apply = new List<long>();
        foreach (var e in entries)
        {
            var micros = (long)e[2];
            var args = (RedisResult[])e[3]!;
            if (((string?)args[0])?.StartsWith("EVAL", StringComparison.OrdinalIgnoreCase) != true) continue;
            // The slow log keeps only the first arguments; the script's SHA1 tells the two apart.
            var sha = ((string?)args[1])?.ToLowerInvariant();
            if (sha == ReadSha) read.Add(micros);
            else if (sha == ApplySha) apply.Add(micros);
        }
        return (read.Count == 0 ? 0 : read.Average(), apply.Count == 0 ? 0 : apply.Average());
    }

    private static async Task<double> RedisCpuSecondsAsync(IDatabase db)
    {
        var info = (string)(await db.ExecuteAsync("INFO", "cpu"))!;
        double Read(string name) => double.Parse(info.Split('\n').First(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Split(':')[1].Trim(), CultureInfo.InvariantCulture);
        return Read("used_cpu_user") + Read("used_cpu_sys");
    }

    /// <summary>Calls and microseconds of EVAL + EVALSHA, and the calls of each.</summary>
    private static async Task<(long Calls, long Usec, long Sha, long Eval)> CommandStatsAsync(IDatabase db)
    {
        var info = (string)(await db.ExecuteAsync("INFO", "commandstats"))!;
        (long Calls, long Usec) Read(string command)
        {
            var line = info.Split('\n').FirstOrDefault(l => l.StartsWith($"cmdstat_{command}:", StringComparison.Ordinal));
            if (line is null) return (0, 0);
            var fields = line[(line.IndexOf(':') + 1)..].Trim().Split(',').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
            return (long.Parse(fields["calls"], CultureInfo.InvariantCulture), long.Parse(fields["usec"], CultureInfo.InvariantCulture));
        }
        var sha = Read("evalsha");
        var eval = Read("eval");
        return (sha.Calls + eval.Calls, sha.Usec + eval.Usec, sha.Calls, eval.Calls);
    }
}
