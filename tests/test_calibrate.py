"""Noise calibration (paper's Fig. 2): the filtered spike train's spread."""

import torch

from softlif.calibrate import calibrate_noise, filtered_spread
from softlif.neurons import LIF_CIFAR
from softlif.synapses import Synapse


def test_filtered_train_averages_the_rate_and_ripples():
    s = filtered_spread(LIF_CIFAR, Synapse("alpha", 0.005), torch.tensor([1.5, 4.0, 12.0]))
    torch.testing.assert_close(s["mean"], s["rate"], rtol=0.03, atol=0.5)
    assert (s["min"] <= s["q25"]).all() and (s["q25"] <= s["median"]).all()
    assert (s["median"] <= s["q75"]).all() and (s["q75"] <= s["max"]).all()
    assert (s["std"] > 1).all()
    # a longer synapse smooths more
    slow = filtered_spread(LIF_CIFAR, Synapse("alpha", 0.02), torch.tensor([1.5, 4.0, 12.0]))
    assert (slow["std"] < s["std"]).all()


def test_paper_setting_calibrates_near_10_hz():
    c = calibrate_noise(LIF_CIFAR, Synapse("alpha", 0.005), n_currents=30)
    assert 8.0 < c["sigma_hz"] < 12.5
