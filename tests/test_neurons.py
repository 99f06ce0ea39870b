"""Neuron models against closed forms (SPEC section 2)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from softlif.activations import (
    RateNeuron,
    hash_normal,
    set_rate_mode,
    set_smoothing,
    use_fused_kernels,
)
from softlif.calibrate import filtered_spread
from softlif.neurons import IF, LIF, LIF_CIFAR, LIF_MNIST, lif_rate, soft_lif_rate
from softlif.synapses import Synapse, periodic_train


def analytic_lif_rate(j: float, tau_rc: float, tau_ref: float) -> float:
    return 0.0 if j <= 1 else 1.0 / (tau_ref + tau_rc * math.log(1.0 + 1.0 / (j - 1.0)))


def reference_lif(j: np.ndarray, dt: float, tau_rc: float, tau_ref: float) -> np.ndarray:
    """Straightforward float64 transcription of the paper's evaluation integrator (SPEC 2):
    refractory time decremented per step; exact exponential integration over the
    non-refractory part; crossing time interpolated; v reset to 0; v clipped at 0."""
    steps, n = j.shape
    v = np.zeros(n)
    refractory = np.zeros(n)
    out = np.zeros((steps, n))
    for t in range(steps):
        refractory -= dt
        delta = np.clip(dt - refractory, 0, dt)
        v = v + (j[t] - v) * (1 - np.exp(-delta / tau_rc))
        fired = v > 1
        out[t] = fired / dt
        overshoot = np.zeros(n)
        overshoot[fired] = -tau_rc * np.log1p(-(v[fired] - 1) / (j[t][fired] - 1))
        v[v < 0] = 0
        v[fired] = 0
        refractory[fired] = tau_ref + dt - overshoot[fired]
    return out


@pytest.mark.parametrize("neuron", [LIF_MNIST, LIF_CIFAR])
@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_spiking_rate_matches_analytic(neuron, dt):
    j = torch.cat([torch.linspace(1.001, 100.0, 60, dtype=torch.float64),
                   torch.tensor([1.0001, 1.3, 2.0, 7.0], dtype=torch.float64)])
    v = torch.zeros_like(j)
    ref = torch.zeros_like(j)
    count = torch.zeros_like(j)
    for _ in range(int(round(1.0 / dt))):
        s, v, ref = neuron.step(j, v, ref, dt)
        count += s
    expected = torch.tensor([analytic_lif_rate(float(x), neuron.tau_rc, neuron.tau_ref)
                             for x in j], dtype=torch.float64)
    assert (count - expected).abs().max() <= 1.0


def test_spiking_step_identical_to_reference_integrator():
    gen = torch.Generator().manual_seed(1)
    steps, n = 300, 200
    j = (torch.rand(steps, n, generator=gen, dtype=torch.float64) * 6 - 1).numpy()
    j[:, :20] = 1.0 + 1e-6  # slow neurons near threshold
    expected = reference_lif(j, 1e-3, 0.02, 0.002)
    jt = torch.from_numpy(j)
    v = torch.zeros(n, dtype=torch.float64)
    ref = torch.zeros(n, dtype=torch.float64)
    got = []
    for t in range(steps):
        s, v, ref = LIF(tau_rc=0.02, tau_ref=0.002).step(jt[t], v, ref, 1e-3)
        got.append(s / 1e-3)
    np.testing.assert_array_equal(torch.stack(got).numpy(), expected)
    assert expected.sum() > 1000  # the comparison saw plenty of spikes


def test_silent_below_threshold_and_voltage_clipped():
    neuron = LIF()
    j = torch.tensor([-5.0, 0.0, 0.99])
    v, ref = torch.zeros(3), torch.zeros(3)
    for _ in range(500):
        s, v, ref = neuron.step(j, v, ref, 1e-3)
        assert s.sum() == 0
        assert (v >= 0).all()


def test_if_rate_is_rectified_line_and_spikes_match():
    neuron = IF(tau=0.01)
    j = torch.tensor([0.5, 1.0, 1.25, 2.0, 3.7], dtype=torch.float64)
    np.testing.assert_allclose(neuron.rate(j).numpy(), [0, 0, 25, 100, 270], rtol=1e-12)
    v, ref, count = torch.zeros_like(j), torch.zeros_like(j), torch.zeros_like(j)
    for _ in range(1000):
        s, v, ref = neuron.step(j, v, ref, 1e-3)
        count += s
    assert ((neuron.rate(j) - count).abs() <= 1).all()
    with_ref = IF(tau=0.01, tau_ref=0.002)
    np.testing.assert_allclose(float(with_ref.rate(torch.tensor(3.0))), 2 / (0.01 + 0.004))
    v, ref, count = torch.zeros_like(j), torch.zeros_like(j), torch.zeros_like(j)
    for _ in range(10000):
        s, v, ref = with_ref.step(j, v, ref, 1e-4)
        count += s
    assert ((with_ref.rate(j) - count).abs() <= 1).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_rate_and_gradient_finite_everywhere(dtype):
    x = torch.cat([torch.linspace(-1e4, 1e4, 20001, dtype=dtype),
                   torch.logspace(-30, 4, 500, dtype=dtype),
                   -torch.logspace(-30, 4, 500, dtype=dtype),
                   torch.tensor([0.0], dtype=dtype)]).requires_grad_()
    for neuron in (LIF_MNIST, LIF_CIFAR, LIF(smoothing=1e-4), IF()):
        r = neuron.soft_rate(neuron.current(x))
        (g,) = torch.autograd.grad(r.sum(), x)
        assert torch.isfinite(r).all() and torch.isfinite(g).all()
        assert (r >= 0).all() and (g >= 0).all()
        assert float(r.detach().max()) <= neuron.max_rate() * (1 + 1e-6)


def test_soft_tail_below_threshold():
    # SPEC section 2: about 0.8 Hz at J = 0 for g = 0.02, falling like 1 / |J - 1|.
    neuron = LIF_MNIST
    r0 = float(neuron.soft_rate(torch.tensor(0.0, dtype=torch.float64)))
    assert 0.7 < r0 < 0.95
    far = neuron.soft_rate(torch.tensor([-99.0, -999.0], dtype=torch.float64))
    assert float(far[0] / far[1]) == pytest.approx(10.0, rel=0.01)


def test_soft_tends_to_hard_as_smoothing_vanishes():
    j = torch.linspace(-2, 10, 1201, dtype=torch.float64)
    hard = lif_rate(j, 0.02, 0.002)
    errs = [float((soft_lif_rate(j, 0.02, 0.002, g) - hard).abs().max())
            for g in (0.1, 0.01, 0.001, 1e-5)]
    assert errs == sorted(errs, reverse=True)
    # the largest gap sits at threshold, where the hard rate is 0 and the soft one is
    # 1 / (tau_ref + tau_rc log(1 + 1 / (g log 2))): it vanishes only like 1 / log(1 / g)
    at_threshold = 1 / (0.002 + 0.02 * math.log(1 + 1 / (1e-5 * math.log(2))))
    assert errs[-1] == pytest.approx(at_threshold, rel=0.02)
    soft = soft_lif_rate(j, 0.02, 0.002, 1e-5)
    above, below = j > 1.1, j < 0.9
    assert float((soft - hard)[above].abs().max()) < 1e-6
    # below threshold only the tail is left: rho_g ~ g exp(z / g), so rate ~ g / (tau_rc |z|)
    tail = 1e-5 / (0.02 * (1 - j[below]))
    torch.testing.assert_close(soft[below], tail, rtol=0.02, atol=0.0)


def test_soft_lif_gradcheck_float64():
    z = torch.tensor([-50.0, -3.0, -0.05, -1e-3, 0.0, 1e-3, 0.05, 0.7, 4.0, 80.0],
                     dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda j: soft_lif_rate(j, 0.02, 0.002, 0.02), (z + 1,))
    assert torch.autograd.gradcheck(lambda j: soft_lif_rate(j, 0.05, 0.001, 0.5), (z + 1,))
    assert torch.autograd.gradcheck(lambda j: IF().soft_rate(j), (z + 1,))


def test_hard_rate_gradient_matches_finite_differences_above_threshold():
    """Against central differences of the rate itself, not the formula the code uses."""
    j = torch.tensor([1.1, 2.0, 5.0, 40.0], dtype=torch.float64, requires_grad=True)
    r = lif_rate(j, 0.02, 0.002)
    (g,) = torch.autograd.grad(r.sum(), j)

    def rate(x: float) -> float:  # the LIF rate written out by hand (SPEC section 2)
        return 1.0 / (0.002 + 0.02 * math.log(1.0 + 1.0 / (x - 1.0)))

    h = 1e-6
    fd = torch.tensor([(rate(x + h) - rate(x - h)) / (2 * h) for x in j.tolist()],
                      dtype=torch.float64)
    torch.testing.assert_close(g, fd, rtol=1e-6, atol=0)


def test_parameter_validation():
    with pytest.raises(ValueError, match="tau_rc"):
        LIF(tau_rc=0)
    with pytest.raises(ValueError, match="noise_std"):
        LIF(noise_std=float("nan"))


def test_rate_neuron_noise_only_in_training_and_above_threshold():
    act = RateNeuron(LIF_MNIST, generator=torch.Generator().manual_seed(0))
    x = torch.cat([torch.full((5000,), -0.5), torch.full((5000,), 0.5)]).requires_grad_()
    act.eval()
    clean = act(x)
    act.train()
    noisy = act(x)
    assert torch.equal(noisy[:5000], clean[:5000])  # below threshold: no noise
    diff = (noisy[5000:] - clean[5000:]) / LIF_MNIST.amplitude  # Hz
    assert abs(float(diff.detach().std()) - LIF_MNIST.noise_std) < 0.5
    assert (noisy >= 0).all()
    (g,) = torch.autograd.grad(noisy.sum(), x)
    (g_clean,) = torch.autograd.grad(act.eval()(x).sum(), x)
    # no gradient through the noise: the same as without noise, except where clipped at 0
    kept = noisy.detach() > 0
    torch.testing.assert_close(g[kept], g_clean[kept])
    assert (g[~kept] == 0).all()


def test_rate_neuron_hard_mode_and_smoothing_anneal():
    model = torch.nn.Sequential(RateNeuron(LIF_MNIST))
    x = torch.linspace(-1, 1, 100)  # no point at the threshold itself, where x + 1 - 1 != x
    expected = LIF_MNIST.amplitude * LIF_MNIST.rate(x + 1)
    set_smoothing(model, 0.0)  # soft mode with g = 0 is the hard curve
    torch.testing.assert_close(model.eval()(x), expected)
    set_smoothing(model, 0.02)
    assert not torch.allclose(model(x), expected)
    set_rate_mode(model, "hard")
    torch.testing.assert_close(model(x), expected)


def test_phase_noise_is_the_filtered_spike_train_and_unbiased():
    neuron = dataclasses.replace(LIF_MNIST, noise_model="alpha", noise_tau=0.005)
    act = RateNeuron(neuron, mode="hard", generator=torch.Generator().manual_seed(0))
    x = torch.cat([torch.full((20000,), -0.5), torch.full((20000,), 0.05),
                   torch.full((20000,), 2.0)]).requires_grad_()
    clean = act.eval()(x)
    noisy = act.train()(x)
    assert torch.equal(noisy[:20000], clean[:20000])  # below threshold: no noise
    # the simulated, alpha-filtered spike trains of steadily firing LIFs, ~ 14 Hz and ~ 170 Hz
    sim = filtered_spread(LIF_MNIST, Synapse("alpha", 0.005), torch.tensor([1.05, 3.0]),
                          duration=3.0, dt=1e-4)
    for i, part in enumerate((slice(20000, 40000), slice(40000, None))):
        rate = float(clean[part][0]) / neuron.amplitude
        sample = noisy[part].detach() / neuron.amplitude
        assert float(sim["rate"][i]) == pytest.approx(rate, rel=1e-4)
        # unbiased: averaged over the phase, the filtered train is the rate
        assert float(sample.mean()) == pytest.approx(rate, rel=0.03)
        assert float(sample.std()) == pytest.approx(float(sim["std"][i]), rel=0.06)
        assert float(sample.max()) == pytest.approx(float(sim["max"][i]), rel=0.06)
        assert (sample >= 0).all() and float(sample.min()) < rate  # skewed, never negative
    # no gradient through the noise, and no clipping mask: the noise-free gradient everywhere
    (g,) = torch.autograd.grad(noisy.sum(), x)
    (g_clean,) = torch.autograd.grad(act.eval()(x).sum(), x)
    torch.testing.assert_close(g, g_clean)


@pytest.mark.parametrize("order, kind", [(1, "lowpass"), (2, "alpha")])
@pytest.mark.parametrize("rate", [0.5, 5.0, 50.0, 400.0])
def test_periodic_train_closed_form(order, kind, rate):
    phase = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000
    y = periodic_train(phase, torch.tensor(rate, dtype=torch.float64), 0.005, order)
    assert float(y.mean()) == pytest.approx(rate, rel=1e-4)  # unit DC gain
    # against a direct sum of impulse responses over the last 400 spikes
    period = 1 / rate
    t = torch.tensor([0.1, 0.37, 0.9], dtype=torch.float64) * period
    past = t[:, None] + period * torch.arange(400, dtype=torch.float64)
    direct = Synapse(kind, 0.005).impulse_response(past).sum(1)
    torch.testing.assert_close(periodic_train(t / period, torch.tensor(rate, dtype=torch.float64),
                                              0.005, order), direct)
    with pytest.raises(ValueError, match="tau > 0"):
        periodic_train(phase, torch.tensor(rate), 0.0, order)


def test_noise_model_validation():
    with pytest.raises(ValueError, match="noise_model"):
        LIF(noise_model="poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_tau"):
        LIF(noise_model="alpha", noise_tau=0.0)
    assert LIF(noise_std=0.0, noise_model="alpha").has_training_noise
    assert not LIF(noise_std=0.0).has_training_noise


@pytest.mark.parametrize("neuron", [LIF_MNIST, LIF_CIFAR, IF(tau_ref=0.002),
                                    dataclasses.replace(LIF_MNIST, noise_model="alpha")])
def test_fused_activation_matches_eager(neuron):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(4, 3, 8, 8, generator=gen) * 2).requires_grad_()
    outs = []
    for fused in (False, True):
        use_fused_kernels(fused)
        act = RateNeuron(neuron, generator=torch.Generator().manual_seed(7)).train()
        y = act(x)
        (g,) = torch.autograd.grad((y * torch.linspace(0, 1, y.numel()).view_as(y)).sum(), x)
        outs.append((y.detach(), g))
    use_fused_kernels(False)
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)


def test_hash_noise_is_standard_normal_and_seeded():
    like = torch.empty(400_000)
    a = hash_normal(torch.tensor(11), like)
    b = hash_normal(torch.tensor(12), like)
    assert torch.equal(a, hash_normal(torch.tensor(11), like))
    assert abs(float(a.mean())) < 0.01 and abs(float(a.std()) - 1) < 0.01
    assert abs(float((a**4).mean()) - 3) < 0.05  # Gaussian kurtosis
    assert abs(float((a * b).mean())) < 0.01  # different seeds: uncorrelated
    assert abs(float((a[1:] * a[:-1]).mean())) < 0.01  # neighbours: uncorrelated


@pytest.mark.parametrize("fused", [False, True])
def test_bfloat16_input_is_computed_in_float32(fused):
    """Under bf16 autocast the activation gets bf16 currents: it must compute the curve and
    the noise in float32 on those values (same result as float32 on the rounded input, up to
    the final rounding to bf16), and hand back bf16 outputs and bf16 input gradients."""
    gen = torch.Generator().manual_seed(3)
    x32 = (torch.randn(4, 3, 8, 8, generator=gen) * 2).to(torch.bfloat16).float()
    use_fused_kernels(fused)
    try:
        res = {}
        for dtype in (torch.float32, torch.bfloat16):
            x = x32.to(dtype).requires_grad_()
            act = RateNeuron(LIF_CIFAR, generator=torch.Generator().manual_seed(7)).train()
            y = act(x)
            w = torch.linspace(0, 1, y.numel()).view_as(y)
            (g,) = torch.autograd.grad((y.float() * w).sum(), x)
            res[dtype] = (y, g)
    finally:
        use_fused_kernels(False)
    y16, g16 = res[torch.bfloat16]
    y32, g32 = res[torch.float32]
    assert y16.dtype == g16.dtype == torch.bfloat16
    # outputs within one bf16 rounding (unit roundoff 2^-8) of float32 on the same input;
    # gradients within two (the incoming gradient is rounded to bf16 too)
    torch.testing.assert_close(y16.float(), y32, rtol=2**-8, atol=1e-6)
    torch.testing.assert_close(g16.float(), g32, rtol=2**-7, atol=1e-6)
    assert (y32 > 0).float().mean() > 0.3  # the check covers active, noisy units
