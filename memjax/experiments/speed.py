"""``lra_speed``: steps/s and compiled memory of one training step beside LRA's Table 2."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from etils import epath

from memjax import variants
from memjax.experiments import published
from memjax.experiments.definitions import published_beside
from memjax.experiments.results import Block, Document, Entry, Line
from memjax.experiments.runs import SPEED_BATCH, SWEEPS, Plan, Run


def speed_runs(plan: Plan) -> dict[tuple[str, int], Run]:
    """(mixer, length) -> the text-task config the speed is measured with."""
    out = {}
    for variant in plan.variants:
        for length in SWEEPS[plan.scale].speed_lengths:
            overrides = [
                ("task.options.max_length", length),
                ("train.batch_size", SPEED_BATCH),
                ("parallel", "none"),
            ]
            (out[variant, length],) = dataclasses.replace(plan, seeds=1).runs(
                "text", variant, overrides
            )
    return out


def synthetic_batch(spec: Any, batch_size: int) -> dict[str, Any]:
    """Random byte tokens of the task's shape, a full mask and labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (batch_size, spec.max_length)
    return {
        "inputs": rng.integers(1, spec.vocab_size, shape).astype(np.int32),
        "mask": np.ones(shape, bool),
        "label": rng.integers(0, spec.num_classes, batch_size).astype(np.int32),
    }


def measure_speed(run: Run, steps: int) -> dict[str, Any]:
    """Training steps/s of ``run``'s model over ``steps`` steps after one warm-up step, and the
    memory XLA compiled its training step to (arguments + outputs + temporaries)."""
    import jax
    import jax.numpy as jnp

    from memjax import train

    built = train.setup(run.load())
    spec, config = built.spec, built.config
    batch = synthetic_batch(spec, int(config.train.batch_size))
    params, opt_state, stats = built.params, built.opt_state, built.stats
    compiled = built.steps.train.lower(params, opt_state, stats, jnp.int32(0), batch).compile()
    memory = compiled.memory_analysis()
    used = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    params, opt_state, stats, _ = jax.block_until_ready(
        compiled(params, opt_state, stats, jnp.int32(0), batch)
    )
    start = time.perf_counter()
    for i in range(steps):
        params, opt_state, stats, _ = compiled(params, opt_state, stats, jnp.int32(i + 1), batch)
    jax.block_until_ready(params)
    return {
        "steps_per_s": steps / (time.perf_counter() - start),
        "memory_gib": used / 2**30,
        "device": jax.devices()[0].device_kind,
        "length": spec.max_length,
        "batch": int(config.train.batch_size),
    }


def measured(run: Run, runs_dir: epath.Path, steps: int) -> dict[str, Any]:
    """The speed of ``run``: read from ``runs_dir/speed/NAME.json``, or measured and saved."""
    path = runs_dir / "speed" / f"{run.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    print(f"memjax table: measuring {run.name}", flush=True)
    result = measure_speed(run, steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result


def speed_block(
    plan: Plan, results: dict[tuple[str, int], dict | str], key: str, doc: Document
) -> Block:
    lengths = SWEEPS[plan.scale].speed_lengths
    row = published.LRA_STEPS_PER_S if key == "steps_per_s" else published.LRA_MEMORY_GB
    lines = []
    for variant in plan.variants:
        entries = []
        for i, length in enumerate(lengths):
            result = results[variant, length]
            beside = published_beside(row, i) if variant == "transformer" else {}
            if isinstance(result, str):
                entries.append(Entry(status=doc.problem("failed", result), **beside))
                continue
            doc.devices.add(result["device"])
            base = results.get(("transformer", length))
            ratio = result[key] / base[key] if isinstance(base, dict) and base[key] else None
            entries.append(Entry(mean=result[key], seeds=1, ratio=ratio, **beside))
        lines.append(Line(variants.get(variant).display, "ours", tuple(entries)))
    values = tuple(Entry(published=v) for v in row.values)
    lines.append(Line(f"{row.model}, TPU v3 4x4", "published", values, row.source))
    what = (
        f"Training steps/s, text task, batch {SPEED_BATCH}"
        if key == "steps_per_s"
        else "Memory of one compiled training step, GiB (2^30 bytes; LRA's row is in its own GB)"
    )
    title = f"{what} (in parentheses: ratio to our Transformer)"
    notes = (
        "Inputs are random byte tokens of the text task's shape [batch, L]: speed and memory do "
        "not depend on content, so imdb_reviews need not be on this machine.",
        "Ours: one device, the model of configs/text.py at this scale, "
        f"{SWEEPS[plan.scale].speed_steps} timed steps after a warm-up; memory is XLA's compiled "
        "arguments + outputs + temporaries of the step. Published: LRA's 4x4 TPU v3 at "
        "L=1K, 2K, 3K, 4K.",
    )
    columns = tuple(f"L={length}" for length in lengths)
    return Block(title, columns, tuple(lines), 2 if key == "steps_per_s" else 3, notes)
