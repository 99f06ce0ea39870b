"""NIR that other tools read: the paper's MNIST net, trained briefly, exported with the Norse and
snnTorch profiles, loaded by the real importers and simulated there on the same images as in
softlif; predictions and per-layer spike counts must agree within the bounds below.

Why they can differ at all: softlif integrates the LIF exactly (spikes between steps, a
refractory period), the foreign tools take Euler steps of dt and spike at step boundaries
without one. With tau_ref = 0 the remaining difference is the sub-step timing."""

from __future__ import annotations

import dataclasses
import importlib
import os
import warnings

import numpy as np
import pytest
import torch

import softlif as sl
from softlif.convert import ConversionError
from softlif.data import load_embedded_mnist, paper_preprocess
from softlif.networks import build, get_spec
from softlif.train import TrainConfig, train


def _require(module: str):
    """The module; missing, a skip on a developer's machine but a failure in CI (CI=true),
    which installs the tools (Makefile)."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


nir = _require("nir")
DT = 0.001
STEPS = 120  # 120 ms per image
WINDOW = slice(40, 120)  # the readout is summed over 40-120 ms


@pytest.fixture(scope="module")
def mnist():
    tr, te = load_embedded_mnist()
    tr, te = tr.subset(list(range(4000))), te.subset(list(range(200)))
    pre = paper_preprocess("mnist", tr)
    x = pre.test(torch.from_numpy(te.images[:24]))
    return tr, te, pre, x


_TRAINED: dict[str, torch.nn.Module] = {}  # one training per case, shared by both tools


def _trained(mnist, activation, neuron):
    key = f"{activation} {neuron}"
    if key in _TRAINED:
        return _TRAINED[key]
    tr, te, pre, _ = mnist
    spec = dataclasses.replace(get_spec("mnist"), neuron=neuron)
    ck = train(spec, tr, te, pre, TrainConfig(epochs=2, batch_size=64, precision="float32"),
               activation=activation, progress=False, log=lambda s: None)
    _TRAINED[key] = ck.build_model()
    return _TRAINED[key]


def _softlif_run(snn, x):
    r = sl.simulate(snn, x, presentation_time=STEPS * DT, dt=DT, batch_size=len(x), reset=True)
    rates = r.firing_rates(WINDOW.start * DT, WINDOW.stop * DT)
    return r.outputs[WINDOW].sum(0).argmax(1), torch.tensor(rates, dtype=torch.float64)


def _export(snn, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sl.to_nir(snn, dt=DT, target=target)


class _Rates:
    """Forward hooks on a foreign net's neuron modules: each one's spikes (its first output)
    summed over the steps of WINDOW, as mean rates (Hz) per layer."""

    def __init__(self, module, kinds):
        self.neurons = [m for m in module.modules() if isinstance(m, kinds)]
        self.counts = [0.0] * len(self.neurons)
        self.sizes = [0] * len(self.neurons)
        self.step = 0
        for k, m in enumerate(self.neurons):
            m.register_forward_hook(self._hook(k))

    def _hook(self, k):
        def hook(_m, _inp, out):
            z = out[0] if isinstance(out, tuple) else out
            self.sizes[k] = z.numel()
            if WINDOW.start <= self.step < WINDOW.stop:
                self.counts[k] += float(z.detach().sum())
        return hook

    def rates(self):
        seconds = (WINDOW.stop - WINDOW.start) * DT
        return torch.tensor([c / (n * seconds) for c, n in zip(self.counts, self.sizes,
                                                                strict=True)],
                            dtype=torch.float64)


def _norse_run(graph, x):
    norse = _require("norse.torch")
    net = norse.from_nir(graph, dt=DT, ignore_warnings=True)
    tap = _Rates(net, (norse.LIFBoxCell, norse.IAFCell))
    state, outs = None, []
    with torch.no_grad():
        for t in range(STEPS):
            tap.step = t
            out, state = net(x, state)
            outs.append(out)
    return torch.stack(outs)[WINDOW].sum(0).argmax(1), tap.rates()


def _snntorch_run(graph, x):
    snn_mod = _require("snntorch")
    utils = _require("snntorch.utils")
    from snntorch.import_nir import import_from_nir

    net = import_from_nir(graph)
    tap = _Rates(net, (snn_mod.Leaky,))
    utils.reset(net)
    outs = []
    with torch.no_grad():
        for t in range(STEPS):
            tap.step = t
            out = net(x)[0]  # (output, state); the neurons keep their own state
            outs.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(outs)[WINDOW].sum(0).argmax(1), tap.rates()


RUNNERS = {"norse": _norse_run, "snntorch": _snntorch_run}


# Measured when written (AMD EPYC, torch 2.13, Norse 1.1, snnTorch 1.0): every prediction
# equal in all six cases; per-layer rate ratios tool / softlif 0.91-1.04 (LIF, tau_ref 0),
# 1.04-1.21 (the paper's neuron: the tools have no refractory period, so they fire more),
# 0.81-1.00 (IF: the tools let v go below 0 under inhibition, softlif clips it at 0, so they
# fire less). The bounds leave room for other CPUs' rounding.
@pytest.mark.parametrize("case, agree, rate_tol", [
    ("lif-no-refractory", 0.9, 0.15),
    ("lif-paper", 0.9, 0.30),
    ("if", 0.9, 0.25),
])
@pytest.mark.parametrize("target", ["norse", "snntorch"])
def test_the_tools_run_the_export_as_softlif_does(mnist, target, case, agree, rate_tol):
    neuron = {"lif-no-refractory": sl.LIF(tau_rc=0.02, tau_ref=0.0),
              "lif-paper": get_spec("mnist").neuron,
              "if": sl.IF(tau=0.02, tau_ref=0.0)}[case]
    ann = _trained(mnist, "if" if case == "if" else "softlif", neuron)
    snn = sl.convert(ann, (1, 28, 28), sl.Synapse("none", 0.0))
    x = mnist[3]
    ours, our_rates = _softlif_run(snn, x)
    theirs, their_rates = RUNNERS[target](_export(snn, target), x)
    assert len(their_rates) == len(our_rates) == 3
    assert float(our_rates.min()) > 0  # every layer fires
    ratio = their_rates / our_rates
    assert torch.all((ratio - 1).abs() <= rate_tol), (case, ratio)
    assert float((ours == theirs).float().mean()) >= agree, (case, ours, theirs)


@pytest.mark.parametrize("target", ["norse", "snntorch"])
def test_what_the_tools_cannot_read_is_refused_by_node(target):
    spec = get_spec("mnist")
    snn = sl.convert(build(spec).eval(), spec.input_shape)  # alpha synapse
    with pytest.raises(ConversionError, match=r"node 'syn0' \(CubaLI\): the synapse has no node"):
        _export(snn, target)


def test_profiles_keep_the_exact_dynamics_of_the_nir_graph():
    """Closed forms: the Norse profile's LIF current (r folded into the weights) and the snnTorch
    profile's per-step input (r dt / tau and v_leak dt / tau folded in, beta = 1 - dt / tau at
    snnTorch's 0.1 ms) equal the exact graph's."""
    neuron = sl.LIF(tau_rc=0.03, tau_ref=0.0, gain=1.7, bias=0.4, amplitude=0.05)
    torch.manual_seed(0)
    ann = torch.nn.Sequential(torch.nn.Linear(3, 4), sl.RateNeuron(neuron, mode="hard"),
                              torch.nn.Linear(4, 2)).eval()
    snn = sl.convert(ann, (3,), sl.Synapse("none", 0.0))
    exact, nor, st = (_export(snn, t) for t in ("nir", "norse", "snntorch"))
    x = np.array([0.3, -0.2, 0.9])
    lif, lin = exact.nodes["pop0"], exact.nodes["l0.0"]
    current = lif.r * (lin.weight.astype(np.float64) @ x) + lif.v_leak  # tau v' = J - v
    n_lin = nor.nodes["l0.0"]
    np.testing.assert_allclose(n_lin.weight @ x + n_lin.bias + nor.nodes["pop0"].v_leak, current,
                               rtol=1e-5)
    s_lin, s_lif = st.nodes["l0.0"], st.nodes["pop0"]
    np.testing.assert_allclose(s_lin.weight @ x + s_lin.bias, current * DT / 0.03, rtol=1e-5)
    np.testing.assert_allclose(1 - 1e-4 / s_lif.tau, 1 - DT / 0.03)
    np.testing.assert_allclose(s_lif.r * 1e-4 / s_lif.tau, 1.0)
    assert np.all(s_lif.v_leak == 0)
    # the spikes' weight amplitude/dt is in the readout's weights, no Scale node is left
    np.testing.assert_allclose(nor.nodes["l1.0"].weight,
                               exact.nodes["l1.0"].weight * 0.05 / DT, rtol=1e-6)
    assert not any(isinstance(v, nir.Scale) for g in (nor, st) for v in g.nodes.values())
    with pytest.raises(ValueError, match="target must be one of"):
        _export(snn, "lava")


# The imports below agreed, when written, on every prediction, with summed readouts 1.1%
# (Norse) and 5.7% (snnTorch, at dt/tau = 0.05: Euler against softlif's exact decay) apart.
def _agreement(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """(share of equal predictions, relative difference of the summed readouts)."""
    same = float((ours.argmax(1) == theirs.argmax(1)).float().mean())
    return same, float((ours - theirs).abs().sum() / theirs.abs().sum())


def test_a_norse_export_runs_in_softlif_as_in_norse():
    norse = _require("norse.torch")
    torch.manual_seed(0)
    lif = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(50.0),
                                                  v_leak=torch.tensor(0.0),
                                                  v_th=torch.tensor(1.0)), dt=DT)
    # no Flatten: Norse's exporter writes no node for it (docs/nir-upstream.md)
    net = norse.SequentialState(torch.nn.Linear(16, 30), lif, torch.nn.Linear(30, 5))
    x = torch.rand(12, 16) * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse.to_nir(net, x[:1], dt=DT)
    state, outs = None, []
    with torch.no_grad():
        for _ in range(STEPS):
            out, state = net(x, state)
            outs.append(out)
    theirs = torch.stack(outs).sum(0)
    back = sl.from_nir(graph, dt=DT, source="norse")
    assert back.stages[0].neuron.tau_rc == pytest.approx(0.02)  # Norse wrote dt * tau
    r = sl.simulate(back, x, presentation_time=STEPS * DT, dt=DT, batch_size=len(x), reset=True)
    same, diff = _agreement(r.outputs.sum(0), theirs)
    assert same >= 0.9 and diff < 0.1, (same, diff)


def test_an_snntorch_export_runs_in_softlif_as_in_snntorch():
    snn_mod = _require("snntorch")
    utils = _require("snntorch.utils")
    export_to_nir = _require("snntorch.export_nir").export_to_nir
    torch.manual_seed(0)
    # per-neuron beta and threshold: with scalars the exported LIF node has no shape and
    # NIR's type check refuses the graph (docs/nir-upstream.md)
    leaky = snn_mod.Leaky(beta=torch.full((30,), 0.95), threshold=torch.ones(30),
                          init_hidden=True, reset_mechanism="zero")
    net = torch.nn.Sequential(torch.nn.Linear(16, 30), leaky, torch.nn.Linear(30, 5))
    x = torch.rand(12, 16) * 0.5
    graph = export_to_nir(net, x[:1], ignore_dims=[0])
    utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(x) for _ in range(STEPS)]).sum(0)
    back = sl.from_nir(graph, source="snntorch")  # one step of snnTorch: 0.1 ms
    r = sl.simulate(back, x, presentation_time=STEPS * 1e-4, dt=1e-4, batch_size=len(x),
                    reset=True)
    same, diff = _agreement(r.outputs.sum(0), theirs)
    assert same >= 0.9 and diff < 0.1, (same, diff)
