"""The CUDA path agrees with the CPU path: rate activations (eager and fused, with noise),
training steps, checkpoints, and the spiking simulation. Skipped where no GPU is available
(CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``."""

import json

import pytest
import torch

from softlif.activations import RateNeuron, hash_normal, use_fused_kernels
from softlif.cli import main
from softlif.convert import convert
from softlif.networks import NETS, build
from softlif.neurons import LIF_CIFAR, LIF_MNIST
from softlif.simulate import simulate
from softlif.synapses import Synapse

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(params=[False, True], ids=["eager", "fused"])
def fused(request):
    use_fused_kernels(request.param)
    yield request.param
    use_fused_kernels(False)


def test_hash_noise_is_the_same_on_both_devices():
    like = torch.empty(3, 1000)
    seed = torch.tensor(123456789, dtype=torch.int64)
    a = hash_normal(seed, like)
    b = hash_normal(seed.cuda(), like.cuda()).cpu()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["soft", "hard"])
@pytest.mark.parametrize("noise", [False, True])
def test_rate_activation_value_and_gradient_match_cpu(fused, mode, noise):
    neuron = LIF_CIFAR if noise else LIF_MNIST  # noise_std 10 Hz vs none in eval
    x = torch.linspace(-3, 3, 4096).reshape(8, 512)
    outs, grads = [], []
    for dev in ("cpu", "cuda"):
        act = RateNeuron(neuron, mode=mode, generator=torch.Generator().manual_seed(7))
        act.train(noise)
        xd = x.detach().to(dev).requires_grad_(True)
        y = act(xd)
        (y * torch.arange(y.numel(), device=dev).reshape(y.shape).sin()).sum().backward()
        outs.append(y.detach().cpu())
        grads.append(xd.grad.cpu())
    torch.testing.assert_close(outs[1], outs[0], atol=2e-4, rtol=1e-4)
    if mode == "soft":
        torch.testing.assert_close(grads[1], grads[0], atol=2e-4, rtol=1e-4)


def test_simulation_on_cuda_matches_cpu(fused):
    from test_simulate import images, small_net

    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(6)
    a = simulate(snn, x, presentation_time=0.1, batch_size=3, fused=fused)
    b = simulate(snn, x, presentation_time=0.1, batch_size=3, fused=fused, device="cuda")
    # different summation orders can move a rare spike by a step
    assert float((a.outputs.mean(0) - b.outputs.mean(0)).abs().max()) < 0.05
    assert float((a.layer_counts - b.layer_counts).abs().max()) <= 0.01 * float(
        a.layer_counts.max())


def test_cuda_graphs_replay_the_same_simulation(fused):
    """Blocks replayed as recorded CUDA graphs (the default on CUDA) == launched one kernel
    at a time, spike for spike (same kernels, same order)."""
    from test_simulate import images, small_net

    from softlif.simulate import Simulator

    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(6)
    kw = dict(presentation_time=0.1, batch_size=3, fused=fused, device="cuda", block_steps=10)
    a = simulate(snn, x, cuda_graph=False, **kw)
    b = simulate(snn, x, **kw)
    assert torch.equal(a.outputs, b.outputs) and torch.equal(a.layer_counts, b.layer_counts)
    sim = Simulator(snn, 3, fused=fused, device="cuda")
    sim.set_input(x[:3].cuda())
    sim.run(10)
    assert sim.cuda_graph and sim._graphs[10].graph is not None  # recorded, not fallen back


@pytest.mark.parametrize("net", ["mnist", "cifar10"])
def test_training_step_on_cuda_matches_cpu(fused, net):
    """One forward/backward of a paper net in training mode (noise on, dropout off): same loss
    and gradients on both devices (TF32 off, so that only summation order differs)."""
    spec = NETS[net]
    x = torch.randn(16, *spec.input_shape, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % spec.classes
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        results = []
        for dev in ("cpu", "cuda"):
            torch.manual_seed(1)
            model = build(spec, "softlif", generator=torch.Generator().manual_seed(2)).to(dev)
            model.train()
            for m in model.modules():  # dropout masks come from each device's own generator
                if isinstance(m, torch.nn.Dropout):
                    m.eval()
            loss = torch.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))
            loss.backward()
            results.append((float(loss.detach()), [p.grad.cpu() for p in model.parameters()]))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    (l_cpu, g_cpu), (l_gpu, g_gpu) = results
    assert l_gpu == pytest.approx(l_cpu, rel=1e-4)
    for a, b in zip(g_cpu, g_gpu, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3 * float(a.abs().max()) + 1e-7)


def test_cli_train_and_simulate_on_cuda(capsys, tmp_path):
    out = tmp_path / "cuda"
    code = main(["train", "--epochs", "1", "--limit-train", "1000", "--limit-test", "200",
                 "--out", str(out), "--no-progress", "--json", "--device", "cuda"])
    o = capsys.readouterr()
    assert code == 0, o.err
    assert json.loads(o.out)["epochs"] == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    tensors = list(state["state_dict"].values())
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    for st in state["train_state"]["optimizer"]["state"].values():
        assert all(v.device.type == "cpu" for v in st.values() if isinstance(v, torch.Tensor))
    code = main(["simulate", str(out / "checkpoint.pt"), "--images", "40",
                 "--presentation-time", "0.1", "--c0", "0.05", "--no-progress", "--json",
                 "--device", "cuda"])
    o = capsys.readouterr()
    assert code == 0, o.err
    sim = json.loads(o.out)
    assert sim["settings"]["device"] == "cuda" and 0 <= sim["snn_error"] <= 1
    # the same checkpoint simulated on the CPU gives the same error up to a rare spike
    code = main(["simulate", str(out / "checkpoint.pt"), "--images", "40",
                 "--presentation-time", "0.1", "--c0", "0.05", "--no-progress", "--json"])
    cpu = json.loads(capsys.readouterr().out)
    assert abs(cpu["snn_error"] - sim["snn_error"]) <= 0.05
    assert cpu["ann_error"] == pytest.approx(sim["ann_error"], abs=0.026)
