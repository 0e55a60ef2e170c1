using System.Runtime.InteropServices;

namespace AttrCloak.Learning;

/// <summary>
/// One place that initialises libtorch for the process. Thread policy: ONE intra-op thread by default.
/// Our tensors are small (hundreds to a few thousand rows x 64 dims), so parallel kernels gain little, and on a
/// busy machine libtorch's OpenMP workers spin-wait against other work (measured: docs/performance.md).
/// Callers that run several fits at once (the audit) parallelise across fits instead. Override with
/// ATTRCLOAK_TORCH_THREADS.
/// </summary>
public static partial class TorchRuntime
{
    public const string ThreadsVariable = "ATTRCLOAK_TORCH_THREADS";
    private static int _initialised;

    /// <summary>The intra-op thread count used for libtorch in this process.</summary>
    public static int Threads { get; private set; } = 1;

    /// <summary>Loads libtorch and fixes the thread count; safe to call many times, from any thread.</summary>
    public static void EnsureInitialised()
    {
        if (Interlocked.Exchange(ref _initialised, 1) == 1) return;
        // Passive waiting must be chosen before OpenMP starts its pool, i.e. before the first parallel kernel.
        // .NET keeps its own copy of the environment on Unix, so libgomp only sees what libc's setenv writes.
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null && !OperatingSystem.IsWindows())
            _ = NativeEnvironment.setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
        Threads = int.TryParse(Environment.GetEnvironmentVariable(ThreadsVariable), out var t) && t > 0 ? t : 1;
        torch.set_num_threads(Threads);
    }

    private static partial class NativeEnvironment
    {
        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int setenv(string name, string value, int overwrite);
    }
}
