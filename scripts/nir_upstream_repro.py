"""Minimal reproductions of where Norse 1.1 and snnTorch 1.0 read a NIR graph differently from
NIR's own definitions (nir 1.0.8, nirtorch 2.6); docs/nir-upstream.md explains each and the
fix proposed upstream. softlif's export profiles (sl.to_nir(..., target=...)) work around them.

    python scripts/nir_upstream_repro.py
"""

from __future__ import annotations

import nir
import norse.torch as norse
import numpy as np
import snntorch.utils
import torch
from snntorch.import_nir import import_from_nir


def graph(middle: dict, shape_in: list[int], shape_out: list[int]) -> nir.NIRGraph:
    names = list(middle)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape_in)}), **middle,
             "output": nir.Output(output_type={"output": np.array(shape_out)})}
    chain = ["input", *names, "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:], strict=True)))


def flatten_case() -> None:
    """NIR's Flatten.start_dim counts one sample's dimensions (no batch): start_dim=0 flattens
    (2, 3, 3) into 18 features. Both tools pass it to torch.nn.Flatten, which counts the batch."""
    g = graph({"flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0,
                                   end_dim=-1),
               "fc": nir.Linear(weight=np.ones((4, 18), np.float32))}, [2, 3, 3], [4])
    x = torch.ones(5, 2, 3, 3)  # a batch of 5
    for name, load in (("norse", lambda: norse.from_nir(g)), ("snntorch",
                                                              lambda: import_from_nir(g))):
        try:
            out = load()(x)[0]
            print(f"{name}: Flatten(start_dim=0) gives {tuple(out.shape)}")
        except RuntimeError as e:
            print(f"{name}: Flatten(start_dim=0): {str(e).splitlines()[0]}")


def if_case() -> None:
    """NIR's IF: C dv/dt = r I, so an Euler step of dt adds r I dt. With r = 10, I = 1, dt = 1 ms
    the voltage gains 0.01 per step: 200 steps reach v = 2, two spikes at threshold 1."""
    g = graph({"neuron": nir.IF(r=np.array([10.0]), v_threshold=np.array([1.0]),
                                v_reset=np.array([0.0]))}, [1], [1])
    net, state, spikes = norse.from_nir(g, dt=0.001, ignore_warnings=True), None, 0
    for _ in range(200):
        z, state = net(torch.ones(1, 1), state)
        spikes += int(z.sum())
    print(f"norse: IF r=10, I=1, dt=1 ms, 200 steps: {spikes} spikes (NIR's equation: 2)")
    try:
        import_from_nir(g)
    except AssertionError as e:
        print(f"snntorch: IF r=10: AssertionError {e}")
    g1 = graph({"neuron": nir.IF(r=np.array([1.0]), v_threshold=np.array([1.0]),
                                 v_reset=np.array([0.0]))}, [1], [1])
    net = import_from_nir(g1)
    snntorch.utils.reset(net)
    spikes = 0
    for _ in range(200):
        z, _mem = net(torch.full((1, 1), 0.5))[0]
        spikes += int(z.sum())
    print(f"snntorch: IF r=1, input 0.5 per step, 200 steps: {spikes} spikes (an integrator "
          "without leak: 100; the importer builds snn.Leaky(beta=0.9))")


if __name__ == "__main__":
    flatten_case()
    if_case()
