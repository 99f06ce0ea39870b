"""The neuron-type protocol: a type defined here, outside softlif, trains, converts, simulates,
goes through a checkpoint and gets an energy figure without any change to softlif's source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import softlif as sl
from softlif.neurons import (
    NEURON_TYPES,
    NeuronBase,
    NeuronModel,
    StateVar,
    neuron_from_dict,
    neuron_to_dict,
    register_neuron,
)


# The rate curve of a non-leaky integrator reset by subtraction: rate = max(J - 1, 0) / tau,
# smoothed as g softplus(z / g) / tau. Kernels take the excess current z = J - 1.
def _soft_value(z, g, tau):
    rate = g * F.softplus(z / g) / tau
    return rate, torch.sigmoid(z / g)


def _hard_value(z, tau):
    return torch.clamp(z, min=0) / tau, (z > 0).to(z.dtype)


def _derivative(rate, aux, *params):
    return aux / params[-1]


@register_neuron
@dataclass(frozen=True)
class SubtractiveIF(NeuronBase):
    """tau dv/dt = J - 1; at v >= 1 a spike and v -= 1 (no refractory period); v >= 0."""

    tau: float = 0.02
    amplitude: float = 0.02
    gain: float = 1.0
    bias: float = 1.0
    smoothing: float = 0.05
    tau_ref: float = 0.0
    noise_std: float = 0.0
    noise_model: str = "gaussian"
    noise_tau: float = 0.005
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("v", "voltage"),)

    def rate_kernels(self, soft):
        if soft and self.smoothing > 0:
            return _soft_value, _derivative, (self.smoothing, self.tau)
        return _hard_value, _derivative, (self.tau,)

    def spike_step(self, j, state, dt):
        v = state[0] + (j - 1.0) * dt / self.tau
        spiked = v >= 1.0
        v = torch.clamp(torch.where(spiked, v - 1.0, v), min=0.0)
        return spiked.to(v.dtype), (v,)


def test_a_type_defined_outside_softlif_follows_the_protocol_and_checkpoints():
    n = SubtractiveIF(tau=0.01)
    assert isinstance(n, NeuronModel) and NEURON_TYPES["SubtractiveIF"] is SubtractiveIF
    assert neuron_from_dict(neuron_to_dict(n)) == n
    # hard rate 100 Hz per unit of excess current; the soft curve tends to it
    j = torch.tensor([0.5, 1.0, 1.5, 3.0])
    torch.testing.assert_close(n.rate(j), torch.tensor([0.0, 0.0, 50.0, 200.0]))
    assert float(n.soft_rate(torch.tensor(3.0))) == pytest.approx(200.0, rel=1e-6)
    # d soft_rate / dJ against central differences
    x = torch.tensor([0.9, 1.02, 1.3], dtype=torch.float64, requires_grad=True)
    n.soft_rate(x).sum().backward()
    h = 1e-6
    fd = (n.soft_rate(x.detach() + h) - n.soft_rate(x.detach() - h)) / (2 * h)
    torch.testing.assert_close(x.grad, fd, rtol=1e-5, atol=1e-6)


def test_an_unregistered_or_malformed_type_is_refused_by_name():
    @dataclass(frozen=True)
    class Stray(SubtractiveIF):
        pass

    with pytest.raises(ValueError, match="Stray is not registered"):
        neuron_to_dict(Stray())

    class NotFrozen:  # not a frozen dataclass
        pass

    with pytest.raises(TypeError, match="frozen dataclass"):
        register_neuron(NotFrozen)

    @dataclass(frozen=True)
    class NoState(SubtractiveIF):
        state_vars: ClassVar[tuple[StateVar, ...]] = ()

    with pytest.raises(TypeError, match="state_vars"):
        register_neuron(NoState)


def train_toy(neuron, weight_bits=None):
    """8 -> 32 neurons -> 2 trained with ``sl.fit`` on a two-class task (the sign of the mean
    of the first four inputs), with ``weight_bits``-bit weights if given; returns (model,
    inputs) after checking that it learnt."""
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x[:, :4].mean(1) > 0).long()
    model = nn.Sequential(nn.Linear(8, 32), sl.RateNeuron(neuron), nn.Linear(32, 2))
    if weight_bits:
        sl.quantize_layers(model, weight_bits)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    hist = sl.fit(model, loader, sl.TrainConfig(epochs=8, lr=1e-2, precision="float32"),
                  test_loader=DataLoader(TensorDataset(x[:256], y[:256]), batch_size=256),
                  progress=False, log=lambda s: None)
    assert hist[-1]["test_error"] < 0.15  # it learnt (chance: 0.5)
    return model, x


def test_the_new_type_trains_converts_simulates_and_counts_energy(tmp_path):
    neuron = SubtractiveIF(tau=0.02, amplitude=0.02)
    model, x = train_toy(neuron)
    snn = sl.convert(model.eval(), (8,))
    converted = snn.stages[0].neuron  # the same type and parameters (g annealed by fit)
    assert converted == dataclasses.replace(neuron, smoothing=converted.smoothing)
    assert sl.verify(model, snn, x[:16]) < 1e-4
    # one presentation of 0.5 s per image; the SNN's rates follow the hard rate curve
    res = sl.simulate(snn, x[:64], presentation_time=0.5, batch_size=64, reset=True)
    rates: list[torch.Tensor] = []
    snn.rate_forward(x[:64], mode="hard", rates=rates)
    measured = (res.layer_counts[:, 0] / 0.5 / 32).float()  # mean Hz per image
    torch.testing.assert_close(measured, rates[0].mean(1).float(), rtol=0.05, atol=2.0)
    ann_pred = snn.rate_forward(x[:64], mode="hard").argmax(1)
    snn_pred = res.outputs[250:].mean(0).argmax(1)
    assert (ann_pred == snn_pred).float().mean() >= 0.95
    # its state is what it declared, by name
    sim = sl.Simulator(snn, batch_size=2)
    sim.set_input(x[:2])
    sim.step()
    assert list(sim.neuron_state(0)) == ["v"] and sim.voltages[0].shape == (2, 32)
    report = sl.energy(snn, res)
    assert report.synops_per_s > 0 and report.efficiency > 0
