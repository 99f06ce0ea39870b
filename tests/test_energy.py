"""The paper's efficiency figures (SPEC section 5), reproduced exactly."""

import pytest

from softlif.energy import DEVICES, energy_report, parse_device
from softlif.networks import NETS, layer_table

PAPER_RATES = {
    "cifar10": [173.3, 99.0, 9.7, 7.2],
    "mnist": [4.6, 15.6, 4.2],
    "imagenet": [178.1, 48.8, 26.6, 30.6, 35.6, 19.1, 10.7],
}


@pytest.mark.parametrize("net, t, expected", [
    ("cifar10", 0.2, 0.76), ("cifar10", 0.08, 1.64), ("cifar10", 0.06, 2.04),
    # SPEC lists 11.98x for the MNIST window 2/40/100 ms; the paper's own rates give that
    # figure at an 80 ms presentation (10.24x at 100 ms), so the window and time differ there
    ("mnist", 0.2, 5.94), ("mnist", 0.08, 11.98), ("mnist", 0.06, 14.42),
    ("imagenet", 0.2, 1.39), ("imagenet", 0.08, 2.88), ("imagenet", 0.06, 3.51),
])
def test_paper_efficiencies(net, t, expected):
    r = energy_report(layer_table(NETS[net]), PAPER_RATES[net], t)
    assert round(r.efficiency, 2) == expected


def test_cifar10_intermediate_figures():
    r = energy_report(layer_table(NETS["cifar10"]), PAPER_RATES["cifar10"], 0.2)
    assert round(r.synops_per_s) == 2_693_315_174
    assert r.updates_per_s == pytest.approx(49_536_000)
    assert r.first_layer_flops == 5_529_600
    assert r.ann_flops == 39_074_688
    assert round(r.snn_energy - r.first_layer_flops) == 45_569_843
    assert round(r.snn_energy) == 51_099_443


def test_device_joules_and_parsing():
    r = energy_report(layer_table(NETS["mnist"]), PAPER_RATES["mnist"], 0.2)
    loihi = DEVICES["loihi"]
    expected = (loihi.joules_per_synop * r.synops_per_s
                + loihi.joules_per_update * r.updates_per_s) * 0.2
    assert r.devices["loihi"]["joules_per_image"] == pytest.approx(expected)
    assert r.devices["cpu"]["joules_per_image"] == pytest.approx(8.6e-9 * r.ann_flops)
    d = parse_device("mychip:1e-12:2e-12")
    assert d.spiking and d.joules_per_update == 2e-12
    with pytest.raises(ValueError, match="NAME"):
        parse_device("bad")
    with pytest.raises(ValueError, match="one rate per neuron layer"):
        energy_report(layer_table(NETS["mnist"]), [1.0], 0.2)


def test_pareto_front_by_hand():
    from softlif.energy import pareto_front

    pts = [{"rate_penalty": 0.0, "msynops_per_s": 30.0, "snn_error": 0.007},
           {"rate_penalty": 0.1, "msynops_per_s": 20.0, "snn_error": 0.008},
           {"rate_penalty": 0.2, "msynops_per_s": 25.0, "snn_error": 0.009},  # beaten by 0.1
           {"rate_penalty": 0.3, "msynops_per_s": 10.0, "snn_error": 0.012},
           {"rate_penalty": 0.4, "msynops_per_s": 35.0, "snn_error": 0.007}]  # ties, dearer
    assert pareto_front(pts) == [0.3, 0.1, 0.0]
