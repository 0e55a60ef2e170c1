using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AttrCloak.Tools.LocalRedis;
using Xunit;

namespace AttrCloak.Testing;

/// <summary>
/// A throw-away redis-server that accepts only TLS (<c>--port 0 --tls-port</c>) and only authenticated clients: the
/// default user needs <see cref="DefaultPassword"/> (<c>--requirepass</c>) and an ACL user <see cref="User"/> has
/// <see cref="UserPassword"/>. The CA and the server certificate (for <c>localhost</c> and 127.0.0.1) are made at
/// start with the openssl CLI. Skips the calling test, with the reason, when redis-server or openssl is missing or
/// this redis-server build has no TLS.
/// </summary>
public sealed class TlsRedisServer : IDisposable
{
    public const string User = "guard";
    public const string UserPassword = "acl-S3cret-4d2e";
    public const string DefaultPassword = "default-S3cret-8a1f";

    private readonly Process _process;
    private readonly TempDirectory _directory;

    private TlsRedisServer(Process process, TempDirectory directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>PEM of the CA that signed the server's certificate (not in any trust store).</summary>
    public string CaFile => _directory["ca.crt"];

    /// <summary>A StackExchange.Redis configuration string for the ACL user over TLS (the CA still has to be trusted).</summary>
    public string Configuration(string? password = null) =>
        $"127.0.0.1:{Port},user={User},password={password ?? UserPassword},ssl=true,sslHost=localhost,abortConnect=false,connectTimeout=3000";

    public static TlsRedisServer Start()
    {
        var redis = RedisServerProcess.FindExecutable() ?? throw SkipException("redis-server is not installed");
        var openssl = Find("openssl") ?? throw SkipException("the openssl CLI is not installed (needed to make test certificates)");
        var dir = new TempDirectory();
        try
        {
            File.WriteAllText(dir["ext.cnf"], "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
            Run(openssl, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=attrcloak-test-ca");
            Run(openssl, dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
            Run(openssl, dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf");
            var port = RedisServerProcess.FreePort();
            var output = new StringBuilder();
            var process = RedisServerProcess.Launch(redis, dir.Path,
                ["--port", "0", "--tls-port", port.ToString(), "--bind", "127.0.0.1",
                 "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no",
                 "--requirepass", DefaultPassword, "--user", User, "on", $">{UserPassword}", "~*", "&*", "+@all",
                 "--save", "", "--appendonly", "no", "--dir", dir.Path, "--daemonize", "no"], output);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < deadline && !process.HasExited)
            {
                lock (output)
                    if (output.ToString().Contains("Ready to accept connections", StringComparison.Ordinal))
                        return new TlsRedisServer(process, dir, port);
                Thread.Sleep(25); // polling interval, bounded by the deadline
            }
            string log;
            lock (output) log = output.ToString();
            if (!process.HasExited) process.Kill();
            process.Dispose();
            if (log.Contains("TLS", StringComparison.OrdinalIgnoreCase) && log.Contains("not", StringComparison.OrdinalIgnoreCase) && log.Contains("support", StringComparison.OrdinalIgnoreCase))
                throw SkipException($"this redis-server build has no TLS support: {log.Trim()}");
            throw new InvalidOperationException($"the TLS redis-server did not start: {log}");
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { /* already gone */ }
        _process.Dispose();
        _directory.Dispose();
    }

    private static Exception SkipException(string reason)
    {
        Assert.Skip(reason);
        return new InvalidOperationException(reason); // not reached: Assert.Skip throws
    }

    private static void Run(string executable, TempDirectory dir, params string[] args)
    {
        var start = new ProcessStartInfo(executable) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000) || process.ExitCode != 0)
            throw new InvalidOperationException($"openssl {string.Join(' ', args)} failed: {stderr.Result}");
    }


    private static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/local/bin")
            .Where(d => d.Length > 0).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
