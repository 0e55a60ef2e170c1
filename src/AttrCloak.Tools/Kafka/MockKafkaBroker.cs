using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace AttrCloak.Tools.Kafka;

/// <summary>
/// librdkafka's mock Kafka cluster (one broker) reachable on a FIXED address, so that a broker process can be ended
/// and a new one started where clients expect it (they reconnect by themselves). The mock listens on a random port
/// and advertises it in its metadata; here it advertises <c>host:port</c> instead
/// (<c>rd_kafka_mock_broker_set_host_port</c>) and a TCP forwarder on that address relays every connection to the
/// real listener. Everything lives in memory: ending the broker loses every topic, offset and group (a real Kafka
/// keeps them on disk). For tests, local runs and kcat; never for production. See <see cref="MockKafkaCluster"/> for
/// the in-process variant on a random port.
/// </summary>
public sealed class MockKafkaBroker : IAsyncDisposable
{
    private readonly IntPtr _handle;
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Socket> _open = [];
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>
    /// Creates <paramref name="topic"/> with <paramref name="partitions"/> partitions (an existing topic is left as it
    /// is). Subscribing does not create topics on the mock (only a producer's or admin's metadata request would), so
    /// a worker started first would wait for its topics: create the deployment's topics up front.
    /// </summary>
    /// <exception cref="InvalidOperationException">librdkafka refused (e.g. a bad name or partition count).</exception>
    public void CreateTopic(string topic, int partitions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var err = Native.rd_kafka_mock_topic_create(Native.rd_kafka_handle_mock_cluster(_handle), topic, partitions, 1);
        // 36 = TOPIC_ALREADY_EXISTS: created before (by us or on first use); fine.
        if (err != 0 && err != 36) throw new InvalidOperationException($"librdkafka could not create topic '{topic}' (error {err})");
    }

    private MockKafkaBroker(IntPtr handle, TcpListener listener, IPEndPoint target, string address)
    {
        _handle = handle;
        _listener = listener;
        _target = target;
        BootstrapServers = address;
        _accepting = AcceptAsync(_stop.Token);
    }

    /// <summary>The <c>bootstrap.servers</c> value, e.g. <c>127.0.0.1:19092</c>; also what the metadata advertises.</summary>
    public string BootstrapServers { get; }

    /// <summary>Connections relayed so far (tests).</summary>
    public int Connections => Volatile.Read(ref _connections);
    private int _connections;

    /// <summary>
    /// Starts the mock broker on <paramref name="host"/>:<paramref name="port"/> (0 picks a free port).
    /// </summary>
    /// <exception cref="SocketException">The address is taken (<see cref="SocketError.AddressAlreadyInUse"/>) or not local.</exception>
    /// <exception cref="InvalidOperationException">librdkafka could not create its mock cluster.</exception>
    public static MockKafkaBroker Start(int port, string host = "127.0.0.1")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        var address = IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host);
        // Bind first: a taken port fails before any native resource exists.
        var listener = new TcpListener(address, port);
        listener.Start(64);
        var bound = ((IPEndPoint)listener.LocalEndpoint).Port;
        IntPtr handle = IntPtr.Zero;
        try
        {
            handle = Native.CreateMockHost();
            var cluster = Native.rd_kafka_handle_mock_cluster(handle);
            if (cluster == IntPtr.Zero) throw new InvalidOperationException("librdkafka did not create its mock cluster");
            var real = Marshal.PtrToStringUTF8(Native.rd_kafka_mock_cluster_bootstraps(cluster))
                       ?? throw new InvalidOperationException("the librdkafka mock cluster has no listener");
            // One broker, id 1: its listener is the only bootstrap address.
            var target = ParseEndpoint(real.Split(',')[0]);
            var err = Native.rd_kafka_mock_broker_set_host_port(cluster, 1, host, bound);
            if (err != 0) throw new InvalidOperationException($"librdkafka refused to advertise {host}:{bound} (error {err})");
            return new MockKafkaBroker(handle, listener, target, $"{host}:{bound}");
        }
        catch
        {
            listener.Stop();
            if (handle != IntPtr.Zero) Native.rd_kafka_destroy(handle);
            throw;
        }
    }

    private static IPEndPoint ParseEndpoint(string hostPort)
    {
        var colon = hostPort.LastIndexOf(':');
        var host = hostPort[..colon];
        return new IPEndPoint(host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host),
            int.Parse(hostPort[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task AcceptAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptSocketAsync(cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            Interlocked.Increment(ref _connections);
            _ = RelayAsync(client, cancellationToken);
        }
    }

    private async Task RelayAsync(Socket client, CancellationToken cancellationToken)
    {
        var broker = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        lock (_gate) { _open.Add(client); _open.Add(broker); }
        try
        {
            await broker.ConnectAsync(_target, cancellationToken).ConfigureAwait(false);
            using var clientStream = new NetworkStream(client, ownsSocket: false);
            using var brokerStream = new NetworkStream(broker, ownsSocket: false);
            // Either direction ending (or failing) ends the connection, as a broker's close would.
            await Task.WhenAny(clientStream.CopyToAsync(brokerStream, cancellationToken),
                brokerStream.CopyToAsync(clientStream, cancellationToken)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // the client or the mock went away: close both sides
        }
        finally
        {
            lock (_gate) { _open.Remove(client); _open.Remove(broker); }
            client.Dispose();
            broker.Dispose();
        }
    }

    /// <summary>Closes the address and every relayed connection, then destroys the mock cluster.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        lock (_gate)
            foreach (var s in _open) s.Dispose();
        await _accepting.ConfigureAwait(false);
        Native.rd_kafka_destroy(_handle);
        _stop.Dispose();
    }

    /// <summary>
    /// The few librdkafka calls Confluent.Kafka does not expose (its handle is internal): our own rd_kafka_t hosts the
    /// mock cluster. The library is the one Confluent.Kafka ships (librdkafka.redist), found through the app's native
    /// search paths (deps.json) or, failing that, under runtimes/&lt;rid&gt;/native next to the app or Confluent.Kafka.
    /// </summary>
    private static class Native
    {
        private const string Library = "librdkafka";

        static Native() => NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, Resolve);

        private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
        {
            if (name != Library) return IntPtr.Zero;
            // Let Confluent.Kafka load its librdkafka first; loading the same file again then shares that instance.
            _ = Confluent.Kafka.Library.Version;
            var rid = (OperatingSystem.IsWindows() ? "win-" : OperatingSystem.IsMacOS() ? "osx-" : "linux-")
                      + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            // Confluent's order on Linux: the plain build, then the self-contained ones (no libsasl2 needed).
            string[] files = OperatingSystem.IsWindows() ? ["librdkafka.dll"]
                : OperatingSystem.IsMacOS() ? ["librdkafka.dylib"]
                : ["librdkafka.so", "centos8-librdkafka.so", "centos7-librdkafka.so", "alpine-librdkafka.so"];
            var confluent = Path.GetDirectoryName(typeof(Confluent.Kafka.Library).Assembly.Location);
            foreach (var dir in new[] { AppContext.BaseDirectory, confluent })
            {
                if (string.IsNullOrEmpty(dir)) continue;
                foreach (var file in files)
                {
                    var path = Path.Combine(dir, "runtimes", rid, "native", file);
                    if (File.Exists(path) && NativeLibrary.TryLoad(path, out var loaded)) return loaded;
                }
            }
            return NativeLibrary.TryLoad(name, assembly, searchPath, out var handle) ? handle : IntPtr.Zero;
        }

        /// <summary>A producer handle with <c>test.mock.num.brokers=1</c>: librdkafka then hosts a mock cluster for it.</summary>
        public static IntPtr CreateMockHost()
        {
            var conf = rd_kafka_conf_new();
            var error = new byte[512];
            foreach (var (key, value) in new[] { ("test.mock.num.brokers", "1"), ("log_level", "3"), ("client.id", "attrcloak-kafka-mock") })
                if (rd_kafka_conf_set(conf, key, value, error, (UIntPtr)error.Length) != 0)
                {
                    rd_kafka_conf_destroy(conf);
                    throw new InvalidOperationException($"librdkafka: {key}: {Text(error)}");
                }
            var handle = rd_kafka_new(0 /* RD_KAFKA_PRODUCER */, conf, error, (UIntPtr)error.Length);
            if (handle == IntPtr.Zero)
            {
                rd_kafka_conf_destroy(conf); // rd_kafka_new owns conf only when it succeeds
                throw new InvalidOperationException($"librdkafka could not create the mock host: {Text(error)}");
            }
            return handle;
        }

        private static string Text(byte[] error) => Encoding.UTF8.GetString(error, 0, Math.Max(0, Array.IndexOf(error, (byte)0)));

        [DllImport(Library)]
        private static extern IntPtr rd_kafka_conf_new();

        [DllImport(Library)]
        private static extern void rd_kafka_conf_destroy(IntPtr conf);

        [DllImport(Library, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        private static extern int rd_kafka_conf_set(IntPtr conf, [MarshalAs(UnmanagedType.LPUTF8Str)] string name,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string value, byte[] errstr, UIntPtr errstrSize);

        [DllImport(Library)]
        private static extern IntPtr rd_kafka_new(int type, IntPtr conf, byte[] errstr, UIntPtr errstrSize);

        [DllImport(Library)]
        public static extern void rd_kafka_destroy(IntPtr rk);

        [DllImport(Library)]
        public static extern IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

        [DllImport(Library)]
        public static extern IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr mcluster);

        [DllImport(Library, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        public static extern int rd_kafka_mock_topic_create(IntPtr mcluster,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string topic, int partitionCount, int replicationFactor);

        [DllImport(Library, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        public static extern int rd_kafka_mock_broker_set_host_port(IntPtr mcluster, int brokerId,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string host, int port);
    }
}
