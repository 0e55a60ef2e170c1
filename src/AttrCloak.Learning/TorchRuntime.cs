namespace AttrCloak.Learning;

/// <summary>One place that initialises libtorch for the process (threads, determinism).</summary>
public static class TorchRuntime
{
    private static int _initialised;

    /// <summary>Loads libtorch and fixes the thread count; safe to call many times.</summary>
    public static void EnsureInitialised(int? threads = null)
    {
        if (Interlocked.Exchange(ref _initialised, 1) == 1) return;
        torch.set_num_threads(threads ?? Environment.ProcessorCount);
    }
}
