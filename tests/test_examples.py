"""The runnable examples in examples/ run (CI size) and report consistent figures."""

import importlib.util
import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_own_model_example_runs_end_to_end(tmp_path, capsys):
    assert _load("own_model").main(["--small", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["test_images"] == 200
    # a residual block: one population is driven by two sources
    assert any(len(p["sources"]) == 2 for p in r["populations"])
    for k in ("relu_error", "ann_error", "ann_error_hard", "snn_error"):
        assert 0 <= r[k] <= 1
    assert r["relu_error"] < 0.6  # the ReLU net learnt something (chance: 0.9)
    assert len(r["snn_rates_hz"]) == 4 and all(x > 0 for x in r["snn_rates_hz"])
    assert r["energy"]["chip_synops_per_s"] >= r["energy"]["synops_per_s"] > 0
    assert r["nir_round_trip_same_spikes"] is True
    assert (tmp_path / "own_model.nir").stat().st_size > 0
    assert "snn_error" in capsys.readouterr().out
