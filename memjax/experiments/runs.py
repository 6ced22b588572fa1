"""Runs and plans: a run is a config file, overrides and a seed; its digest names its directory."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memjax import config as config_lib
from memjax.experiments import published

LRA_HEADERS = ("ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X")
VM_OPTION = {"tpu": "--tpu", "gpu": "--vm"}
PROBLEM_PREFIX = {"no data": "d", "failed": "f"}
SPEED_BATCH = 32
Override = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The sweep axes of one scale."""

    mqar_lengths: tuple[int, ...]
    mqar_widths: tuple[int, ...]
    copy_lags: tuple[int, ...]
    adding_lengths: tuple[int, ...]
    speed_lengths: tuple[int, ...]
    speed_steps: int  # timed training steps per speed measurement


SWEEPS = {
    "paper": Sweep(
        mqar_lengths=(64, 128, 256, 512),
        mqar_widths=(64, 128, 256, 512),
        copy_lags=(100, 200, 500, 1000),
        adding_lengths=(100, 200, 400, 750),
        speed_lengths=published.SPEED_LENGTHS,
        speed_steps=20,
    ),
    "smoke": Sweep(
        mqar_lengths=(32, 64),
        mqar_widths=(16, 32),
        copy_lags=(10, 20),
        adding_lengths=(30, 60),
        speed_lengths=tuple(n // 8 for n in published.SPEED_LENGTHS),
        speed_steps=3,
    ),
}

# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: ``configs/FILE.py:VARIANT,SCALE`` plus overrides, at one seed."""

    config: str  # relative to the project root, as the launcher ships it
    overrides: tuple[Override, ...]
    seed: int

    @property
    def digest(self) -> str:
        """8 hex digits naming the config and overrides (not the seed)."""
        blob = json.dumps([self.config, [list(item) for item in self.overrides]])
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """The run directory's name: readable, and the same for the same run."""
        file, _, arg = self.config.partition(":")
        variant, scale = arg.split(",")
        return f"{Path(file).stem}-{variant}-{scale}-{self.digest}-seed{self.seed}"

    @property
    def all_overrides(self) -> tuple[Override, ...]:
        """The overrides with the seed last."""
        return (*self.overrides, ("train.seed", self.seed))

    @property
    def absolute_config(self) -> str:
        """The config spec with the file's absolute path."""
        file, _, arg = self.config.partition(":")
        return f"{config_lib.PACKAGED_CONFIGS / Path(file).name}:{arg}"

    def load(self) -> Any:
        """The run's ConfigDict."""
        return config_lib.load(self.absolute_config, self.all_overrides)

    def train_argv(self, workdir: str, config: str) -> list[str]:
        """``train --config CONFIG --workdir ... --config.KEY=VALUE ...`` for ``memjax``."""
        overrides = [f"--config.{key}={value!r}" for key, value in self.all_overrides]
        return ["train", "--config", config, "--workdir", workdir, "--no-progress", *overrides]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The command line's choices that every table definition expands with."""

    scale: str
    seeds: int
    variants: tuple[str, ...]
    sets: tuple[Override, ...]
    columns: tuple[str, ...] = ()  # the column headers asked for (--columns); empty: every one

    def shows(self, column: str) -> bool:
        """Whether the table prints ``column`` (every column when none were asked for)."""
        return not self.columns or column in self.columns

    def runs(self, task: str, variant: str, overrides: Iterable[Override] = ()) -> tuple[Run, ...]:
        """One run per seed of ``configs/TASK.py:VARIANT,SCALE`` with ``overrides`` then --set."""
        config = f"configs/{task}.py:{variant},{self.scale}"
        chosen = (*overrides, *self.sets)
        return tuple(Run(config, chosen, seed) for seed in range(self.seeds))
