"""Closed-form first layer against the stepped one, fused fp32, alternating repeated runs (the
machine's run-to-run noise is larger than the difference, so one run of each says little).

    python benchmarks/bench_closed_form.py cifar10   # or mnist
"""

import sys
import time

import torch

sys.path.insert(0, "benchmarks")
from bench_simulation import TARGET_RATES, scale_to_rates

from softlif.convert import convert
from softlif.networks import NETS, build
from softlif.simulate import simulate
from softlif.synapses import Synapse

name = sys.argv[1] if len(sys.argv) > 1 else "cifar10"
torch.manual_seed(0)
spec = NETS[name]
ann = build(spec, "softlif").eval()
snn = convert(ann, spec.input_shape, Synapse("alpha", 0.005))
x = torch.randn(64, *spec.input_shape)
scale_to_rates(snn, x[:64], TARGET_RATES[name])
for cf in (True, False):
    simulate(snn, x[:32], presentation_time=0.005, batch_size=32, fused=True, closed_form=cf)
res: dict[bool, list[float]] = {True: [], False: []}
for _ in range(3):
    for cf in (True, False):
        t0 = time.perf_counter()
        simulate(snn, x, presentation_time=0.2, batch_size=32, fused=True, closed_form=cf)
        res[cf].append(64 / (time.perf_counter() - t0))
print(name, "img/s, closed form:", [round(v, 2) for v in res[True]],
      "stepped:", [round(v, 2) for v in res[False]])
