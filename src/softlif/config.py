"""Experiment configuration: TOML files parsed into typed, frozen, validated settings.

A config (``softlif reproduce --config FILE``; the bundled ones are in ``configs/``) has three
tables, each optional: ``[train]`` (:class:`TrainSection`), ``[simulate]``
(:class:`softlif.evaluate.SimSettings`) and ``[sweep]`` (:class:`SweepSection`). Everything is
checked before any work starts: unknown tables and keys are refused with a "did you mean"
suggestion, types are strict (``true`` is not a number, ``1.5`` is not an epoch count), NaN
and infinities are refused, and ranges are checked (time constants >= 0, 0 <= c0 < c1 <=
presentation time, non-empty noise lists, ...). Every failure is a :class:`ConfigError`
naming the table, the key and the value.

The checkers (:func:`check_int`, :func:`check_float`, ...) are shared by the settings
dataclasses elsewhere (``TrainConfig``, ``SimSettings``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean

__all__ = [
    "ConfigError", "ExperimentConfig", "SweepSection", "TrainSection", "check_bool",
    "check_choice", "check_float", "check_float_list", "check_int", "check_keys",
    "load_experiment_config", "parse_experiment_config",
]

BUNDLED = ("mnist", "svhn", "cifar10", "cifar100", "imagenet")


def check_int(name: str, value: Any, *, min_value: int | None = None) -> int:
    """``value`` as an int (bools and floats refused), at least ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if min_value is not None and value < min_value:
        raise ConfigError(f"{name} must be >= {min_value}, got {value}")
    return value


def check_float(name: str, value: Any, *, min_value: float | None = None,
                min_open: bool = False, max_value: float | None = None) -> float:
    """``value`` as a finite float (ints accepted, bools and strings refused) in range.

    ``min_open``: the minimum itself is not allowed (``> min_value``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if min_value is not None and (v < min_value or (min_open and v == min_value)):
        raise ConfigError(f"{name} must be {'>' if min_open else '>='} {min_value:g}, got {v:g}")
    if max_value is not None and v > max_value:
        raise ConfigError(f"{name} must be <= {max_value:g}, got {v:g}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool (true/false only; "yes", 1 refused)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` as one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}{hint}")
    return value


def check_float_list(name: str, value: Any, *, nonempty: bool = True,
                     min_value: float | None = None) -> tuple[float, ...]:
    """``value`` as a tuple of finite floats (a list in TOML)."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list of numbers, got {value!r}")
    if nonempty and not value:
        raise ConfigError(f"{name} must not be empty")
    return tuple(check_float(f"{name}[{i}]", v, min_value=min_value) for i, v in enumerate(value))


def check_keys(table: str, given: Any, known: Sequence[str]) -> dict[str, Any]:
    """``given`` as a dict whose keys are all in ``known``; else a ConfigError with a hint."""
    if not isinstance(given, dict):
        raise ConfigError(f"[{table}] must be a table of key = value lines, got {given!r:.80}")
    for key in given:
        if key not in known:
            raise ConfigError(f"[{table}] has an unknown key {key!r}{did_you_mean(key, known)}; "
                              f"known keys: {', '.join(known)}")
    return given


@dataclass(frozen=True)
class TrainSection:
    """``[train]``: what ``softlif reproduce`` trains. Times are epochs; rates are Hz."""

    net: str | None = None  # the paper's net; None = the data set's
    epochs: int = 15  # soft-LIF ANN epochs
    relu_epochs: int | None = None  # ReLU baseline epochs; None = epochs
    batch_size: int = 128
    recipe: str = "adam"  # paper | paper-exp | adam | modern (softlif.recipes)
    lr: float | None = None  # peak (one-cycle) or initial learning rate; None = the recipe's
    weight_decay: tuple[float, ...] = (0.0,)  # per weight layer (last value repeats)
    noises: tuple[float, ...] = (10.0,)  # training-noise sigmas (Hz), one soft-LIF net each
    anneal_to: float | None = 0.002  # soft-LIF g annealed to this over the last epochs
    anneal_fraction: float = 0.3
    finetune_epochs: int = 0  # epochs at the final g after each soft-LIF training
    finetune_lr: float | None = None  # their peak lr; None = lr / 10
    seed: int = 0
    init: str | None = None  # default | paper; None = the recipe's
    precision: str = "auto"  # auto | float32 | bfloat16 (auto: bf16 where native)

    def __post_init__(self) -> None:
        from .networks import NETS

        if self.net is not None:
            check_choice("[train] net", self.net, list(NETS))
        check_int("[train] epochs", self.epochs, min_value=1)
        if self.relu_epochs is not None:
            check_int("[train] relu_epochs", self.relu_epochs, min_value=1)
        check_int("[train] batch_size", self.batch_size, min_value=1)
        check_choice("[train] recipe", self.recipe, ("paper", "paper-exp", "adam", "modern"))
        if self.lr is not None:
            check_float("[train] lr", self.lr, min_value=0, min_open=True)
        wd = check_float_list("[train] weight_decay", self.weight_decay, min_value=0)
        noises = check_float_list("[train] noises", self.noises, min_value=0)
        if len(set(noises)) != len(noises):
            raise ConfigError(f"[train] noises has repeated values: {list(noises)}")
        if self.anneal_to is not None:
            check_float("[train] anneal_to", self.anneal_to, min_value=0)
        check_float("[train] anneal_fraction", self.anneal_fraction, min_value=0, max_value=1)
        check_int("[train] finetune_epochs", self.finetune_epochs, min_value=0)
        if self.finetune_lr is not None:
            check_float("[train] finetune_lr", self.finetune_lr, min_value=0, min_open=True)
        check_int("[train] seed", self.seed)
        if self.init is not None:
            check_choice("[train] init", self.init, ("default", "paper"))
        check_choice("[train] precision", self.precision, ("auto", "float32", "bfloat16"))
        object.__setattr__(self, "weight_decay", wd)
        object.__setattr__(self, "noises", noises)


@dataclass(frozen=True)
class SweepSection:
    """``[sweep]``: the Table-4 grid. Seconds throughout."""

    taus: tuple[float, ...] = ()  # synaptic time constants; 0 = no filter
    times: tuple[float, ...] = (0.2,)  # presentation times
    windows: tuple[tuple[float, float], ...] = ()  # (c0, c1) classification windows

    def __post_init__(self) -> None:
        taus = check_float_list("[sweep] taus", self.taus, nonempty=False, min_value=0)
        times = check_float_list("[sweep] times", self.times, min_value=0)
        if any(t == 0 for t in times):
            raise ConfigError("[sweep] times must be > 0")
        if not isinstance(self.windows, (list, tuple)):
            raise ConfigError(f"[sweep] windows must be a list of [c0, c1] pairs, got "
                              f"{self.windows!r}")
        wins = []
        for i, w in enumerate(self.windows):
            name = f"[sweep] windows[{i}]"
            if not isinstance(w, (list, tuple)) or len(w) != 2:
                raise ConfigError(f"{name} must be a pair [c0, c1] in seconds, got {w!r}")
            c0, c1 = (check_float(name, v, min_value=0) for v in w)
            if not c0 < c1 <= max(times):
                raise ConfigError(f"{name} must satisfy 0 <= c0 < c1 <= the longest "
                                  f"presentation time ({max(times):g} s); got [{c0:g}, {c1:g}]")
            wins.append((c0, c1))
        if taus and not wins:
            raise ConfigError("[sweep] taus given but no windows: add windows = [[c0, c1], ...]")
        object.__setattr__(self, "taus", taus)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "windows", tuple(wins))

    @property
    def empty(self) -> bool:
        return not self.taus


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment config: the three validated tables."""

    train: TrainSection
    simulate: Any  # softlif.evaluate.SimSettings
    sweep: SweepSection

    def to_dict(self) -> dict[str, Any]:
        return {"train": dataclasses.asdict(self.train),
                "simulate": dataclasses.asdict(self.simulate),
                "sweep": dataclasses.asdict(self.sweep)}


_TABLES = ("train", "simulate", "sweep")


def _build(cls: type, table: str, values: dict[str, Any]) -> Any:
    known = [f.name for f in dataclasses.fields(cls)]
    check_keys(table, values, known)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # a settings class's own check
        raise ConfigError(f"[{table}]: {e}") from None


def parse_experiment_config(data: Any, *, source: str = "config",
                            overrides: dict[str, dict[str, Any]] | None = None
                            ) -> ExperimentConfig:
    """Validate a parsed TOML document (dict) into an :class:`ExperimentConfig`.

    ``overrides``: per table, values (e.g. from command-line flags) that replace the file's,
    validated the same way. Raises ConfigError naming ``source``, the table and the key.
    """
    from .evaluate import SimSettings

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a TOML document of tables")
    for table in data:
        if table not in _TABLES:
            raise ConfigError(f"{source}: unknown table [{table}]{did_you_mean(table, _TABLES)}; "
                              f"known: {', '.join(f'[{t}]' for t in _TABLES)}")
    overrides = overrides or {}
    parts = {}
    for table, cls in (("train", TrainSection), ("simulate", SimSettings),
                       ("sweep", SweepSection)):
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{table}] must be a table, got {values!r:.80}")
        values = {**values, **overrides.get(table, {})}
        try:
            parts[table] = _build(cls, table, values)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
    sim, sweep = parts["simulate"], parts["sweep"]
    return ExperimentConfig(parts["train"], sim, sweep)


def load_experiment_config(name_or_path: str | Path,
                           overrides: dict[str, dict[str, Any]] | None = None
                           ) -> ExperimentConfig:
    """Read and validate a TOML config: a path, or a bundled name (mnist, cifar10, ...)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(name_or_path)
    if not path.exists():
        path = Path(__file__).parent / "configs" / f"{name_or_path}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {str(name_or_path)!r} not found (a .toml path, or one of "
                          f"{', '.join(BUNDLED)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config {path}: cannot be read ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {path}: not valid TOML ({e})") from None
    return parse_experiment_config(data, source=f"config {path}", overrides=overrides)
