namespace AttrCloak.Learning.Tests;

public sealed class TorchLoadsTests
{
    [Fact]
    public void Libtorch_loads_and_autograd_runs()
    {
        TorchRuntime.EnsureInitialised();
        using var x = TorchSharp.torch.randn(4, 4, dtype: TorchSharp.torch.float64, requires_grad: true);
        using var y = TorchSharp.torch.linalg.slogdet(x.matmul(x.t()) + TorchSharp.torch.eye(4, dtype: TorchSharp.torch.float64)).Item2.sum();
        y.backward();
        x.grad.ShouldNotBeNull();
    }
}
