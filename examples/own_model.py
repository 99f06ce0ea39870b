"""Bring your own PyTorch model: a ReLU residual CNN with BatchNorm -> spiking LIF network.

    python examples/own_model.py                 # the embedded MNIST subset, a few minutes
    python examples/own_model.py --small         # CI size (seconds)
    python examples/own_model.py --out runs/own  # also write results.json there

Steps: train the ReLU net as any PyTorch user would (here with ``sl.fit``, which takes any
model and DataLoader) -> ``sl.prepare`` (fold BatchNorm, ReLU -> soft LIF, global average
pooling -> an exact average pool) -> fine-tune with the soft-LIF annealing and 10 Hz training
noise -> ``sl.convert`` (a graph of LIF populations with alpha synapses; the residual addition
is a population driven by two sources) -> ``sl.verify`` -> ``sl.simulate`` -> ``sl.energy``
-> ``sl.to_nir`` (written with ``nir.write``, read back with ``nir.read`` and ``sl.from_nir``,
and simulated again: the same spikes). Prints the ReLU ANN, soft-LIF ANN, hard-rate ANN and SNN
errors on the same test images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import softlif as sl
from softlif.data.embedded import load_embedded_mnist
from softlif.io import write_json_atomic


class Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + x)


class SmallResNet(nn.Module):
    """conv-BN-ReLU, avg pool, a residual block, conv-BN-ReLU, global average pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.AvgPool2d(2)
        self.block = Residual(16)
        self.conv = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.pool(self.stem(x)))
        x = self.gap(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


def _nir_round_trip(snn: sl.SpikingNetwork, images: torch.Tensor, t_pres: float,
                    out: str | None) -> bool:
    """Export to NIR, write and read the file, import, simulate again: same spike counts?"""
    import nir

    with warnings.catch_warnings():  # the exporter names what NIR lacks (refractory period)
        warnings.simplefilter("ignore")
        graph = sl.to_nir(snn, dt=0.001)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(out or tmp) / "own_model.nir"
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(path, graph)
        back = sl.from_nir(nir.read(path))
    a, b = (sl.simulate(net, images, presentation_time=t_pres, batch_size=50)
            for net in (snn, back))
    return bool(torch.equal(a.layer_counts, b.layer_counts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="CI size: 2,000 training images, "
                   "3 + 1 epochs, 200 test images, 60 ms presentations")
    p.add_argument("--out", help="write results.json into this folder")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    train, test = load_embedded_mnist()
    n_train, n_test = (2000, 200) if a.small else (len(train), 1000)
    epochs, ft_epochs = (3, 1) if a.small else (4, 3)
    t_pres, c0 = (0.06, 0.03) if a.small else (0.2, 0.12)
    x_tr = torch.from_numpy(train.images[:n_train]).float() / 255
    mean = x_tr.mean(0)
    x_tr = x_tr - mean  # inputs in [0, 1] less the mean image, as the paper's MNIST
    y_tr = torch.from_numpy(train.labels[:n_train])
    x_te = torch.from_numpy(test.images[:n_test]).float() / 255 - mean
    y_te = torch.from_numpy(test.labels[:n_test])
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True)
    test_loader = DataLoader(TensorDataset(x_te, y_te), batch_size=500)
    quiet = {"progress": False, "log": lambda s: None}

    relu = SmallResNet()
    sl.fit(relu, loader, sl.TrainConfig(epochs=epochs, lr=3e-3, precision="float32"), **quiet)
    relu_error = sl.loader_error(relu, test_loader)

    ann = sl.prepare(relu.eval(), sl.LIF(), example_input=x_tr[:1])
    hist = sl.fit(ann, loader, sl.TrainConfig(epochs=ft_epochs, lr=1e-3, precision="float32"),
                  test_loader=test_loader, **quiet)
    snn = sl.convert(ann.eval(), tuple(x_tr.shape[1:]))
    sl.verify(ann, snn, x_te[:8])
    res = sl.simulate(snn, x_te, presentation_time=t_pres, batch_size=50)
    energy = sl.energy(snn, res)
    nir_same = _nir_round_trip(snn, x_te[:50], t_pres, a.out)
    out = {
        "train_images": n_train, "test_images": n_test, "relu_epochs": epochs,
        "finetune_epochs": ft_epochs, "relu_error": relu_error,
        "ann_error": hist[-1]["test_error"], "ann_error_hard": hist[-1]["test_error_hard"],
        "snn_error": res.error(y_te, c0, t_pres), "window_s": [c0, t_pres],
        "snn_rates_hz": res.firing_rates(),
        "populations": [{"sources": list(s.sources), "shape": list(s.out_shape),
                         "layers": list(s.layer_names)} for s in snn.stages],
        "energy": {"efficiency": energy.efficiency, "chip_efficiency": energy.chip_efficiency,
                   "synops_per_s": energy.synops_per_s,
                   "chip_synops_per_s": energy.chip_synops_per_s},
        "nir_round_trip_same_spikes": nir_same,
    }
    for k in ("relu_error", "ann_error", "ann_error_hard", "snn_error"):
        print(f"{k:>15}: {100 * out[k]:.2f}%")
    print(f"{'SNN rates':>15}: {', '.join(f'{r:.1f}' for r in out['snn_rates_hz'])} Hz")
    print(f"{'efficiency':>15}: {energy.efficiency:.2f}x (paper synops), "
          f"{energy.chip_efficiency:.2f}x (chip events)")
    print(f"{'NIR round trip':>15}: {'same spikes' if nir_same else 'DIFFERENT spikes'}")
    if a.out:
        write_json_atomic(Path(a.out) / "results.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
