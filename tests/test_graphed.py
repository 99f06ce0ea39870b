"""Blocks of steps through softlif.graphed's static buffers (the CUDA-graph path without the
capture, which needs a GPU: tests/test_cuda.py records and replays the real graphs): the same
spikes, readouts, counts and state as run_steps, across blocks, new images (the closed-form
schedules' clock restarts) and resets."""

import torch
from test_simulate import images, small_net

from softlif.convert import convert
from softlif.graphed import GraphedSteps
from softlif.simulate import Simulator, initial_state, run_steps, set_input, simulate
from softlif.synapses import Synapse


def _snn():
    return convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))


def _assert_states_equal(a, b):
    assert a.onset_steps == b.onset_steps and a.has_input == b.has_input
    for fa, fb in ((a.neurons, b.neurons), (a.syn, b.syn), (a.count, b.count),
                   (a.spikes, b.spikes), (a.schedules, b.schedules)):
        la, _ = torch.utils._pytree.tree_flatten(fa)
        lb, _ = torch.utils._pytree.tree_flatten(fb)
        assert len(la) == len(lb)
        for x, y in zip(la, lb, strict=True):
            assert (x is None and y is None) or torch.equal(x, y)


def test_buffers_give_run_steps_results_across_blocks_and_images():
    snn = _snn()
    plan = Simulator(snn, batch_size=3)
    assert plan.planners[0] is not None  # the first layer runs from its closed-form schedule
    x = images(6)
    ref = set_input(plan, initial_state(plan), x[:3])
    g = GraphedSteps(plan, ref, 5, capture=False)
    state = ref
    outs = []
    for block in range(6):
        if block == 3:  # the next image, back to back: new schedules, the clock restarts
            ref = set_input(plan, ref, x[3:])
            state = set_input(plan, state, x[3:])
        assert g.matches(state)
        o_ref, t_ref, ref = run_steps(plan, ref, 5)
        o, t, state = g(state)
        assert torch.equal(o, o_ref) and torch.equal(t, t_ref)
        _assert_states_equal(state, ref)
        outs.append(o)
    assert state.onset_steps == 15
    # what a call returns is its own: later calls do not overwrite it
    o_again, _, _ = run_steps(plan, set_input(plan, initial_state(plan), x[:3]), 5)
    assert torch.equal(outs[0], o_again) and any(t.abs().sum() > 0 for t in outs)


def test_a_state_of_another_structure_does_not_match():
    snn = _snn()
    with_sched = Simulator(snn, batch_size=3)
    plain = Simulator(snn, batch_size=3, closed_form=False)
    x = images(3)
    g = GraphedSteps(with_sched, set_input(with_sched, initial_state(with_sched), x), 5,
                     capture=False)
    assert not g.matches(set_input(plain, initial_state(plain), x))  # no schedule
    other = Simulator(snn, batch_size=2)
    assert not g.matches(set_input(other, initial_state(other), x[:2]))  # other shapes


def test_simulate_through_the_graph_buffers_is_unchanged():
    snn = _snn()
    x = images(8)
    a = simulate(snn, x, presentation_time=0.06, batch_size=4, block_steps=10)
    b = simulate(snn, x, presentation_time=0.06, batch_size=4, block_steps=10, cuda_graph=True)
    assert torch.equal(a.outputs, b.outputs) and torch.equal(a.layer_counts, b.layer_counts)
    assert torch.equal(a.layer_step_counts, b.layer_step_counts) and a.layer_counts.sum() > 0
