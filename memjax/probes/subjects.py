"""What a probe looks at: one memory layer, a small model at initialisation, or a trained run.

Every probe sees a :class:`Subject` through the same pure functions of its parameters:

    x = embed(params, tokens)            tokens int [B, T] -> x [B, T, D]
    y = apply(params, x)                 x [B, T, D] -> y [B, T, F], the features read out
    layers(params, x)                    each memory layer as (memory, its params, its input)

* :func:`layer`: one bare memory, ``y = memory(x)``; tokens are embedded by a fixed random
  table ``E [EMBED_ROWS, hidden]`` with ``E_ij ~ N(0, 1)``, so ``x_t`` has unit variance.
* :func:`small_model`: a :class:`memjax.models.Encoder` of ``depth`` blocks at initialisation,
  ``y`` its final-norm output.
* :func:`run`: the model of a training run rebuilt from ``workdir/config.json``, at
  initialisation (the run's own seed) and with the parameters of its best checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from memjax import cells, models, tasks, train
from memjax.cells.base import Array, Memory, Params
from memjax.scan import scan

EMBED_ROWS = 256
"""Token ids a bare layer's embedding table holds (probes use ids below this)."""

Layer = tuple[Memory, Params, Array]


@dataclasses.dataclass(frozen=True)
class Subject:
    """A memory, or a model built around memories, as every probe sees it.

    Attributes:
      label: name in probes.json and the plots (``"lru"``, ``"mqar-lru@trained"``).
      mixer: registry name of the memory.
      stage: ``"init"`` or ``"trained"``.
      params: the pytree every function below takes first.
      embed: ``(params, tokens int [B, T]) -> x [B, T, D]``.
      apply: ``(params, x [B, T, D]) -> y [B, T, F]``.
      layers: ``(params, x) -> [(memory, memory_params, layer_input [B, T, d]), ...]``.
      state_bytes: bytes of memory state one sequence holds after ``length`` steps.
      max_length: longest sequence the probes may feed it.
      vocab: token ids ``1 .. vocab - 1`` are valid inputs (0 is padding).
      task: the run's task name (runs only).
      task_options: the run's task options, defaults filled in (runs only).
      predict: ``(params, tokens) -> int [B, T]``, the run's model's argmax class at every
        step, compiled (runs only).
    """

    label: str
    mixer: str
    stage: str
    params: Any
    embed: Callable[[Any, Array], Array]
    apply: Callable[[Any, Array], Array]
    layers: Callable[[Any, Array], list[Layer]]
    state_bytes: Callable[[int], int]
    max_length: int
    vocab: int
    task: str | None = None
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    predict: Callable[[Any, Array], Array] | None = None


def capacity_options(mixer: str, length: int) -> dict[str, int]:
    """``{"max_length": length}`` for a memory with a KV cache (attention), else nothing."""
    fields = {f.name for f in dataclasses.fields(cells.lookup(mixer))}
    return {"max_length": length} if "max_length" in fields else {}


def build_memory(mixer: str, hidden: int, length: int, **options: Any) -> Memory:
    """``cells.get(mixer, hidden=hidden, **options)``; a KV cache is sized to hold ``length``."""
    return cells.get(mixer, hidden=hidden, **{**capacity_options(mixer, length), **options})


def layer(memory: Memory, *, length: int, seed: int = 0) -> Subject:
    """One bare memory layer at initialisation, fed ``d_in = hidden`` features."""

    def initialise(key: Array) -> Params:
        k_memory, k_embed = jax.random.split(key)
        return {
            "memory": memory.init(k_memory, memory.hidden),
            "embed": jax.random.normal(k_embed, (EMBED_ROWS, memory.hidden)),
        }

    params = jax.jit(initialise)(jax.random.key(seed))
    return Subject(
        label=memory.name,
        mixer=memory.name,
        stage="init",
        params=params,
        embed=lambda p, tokens: p["embed"][tokens],
        apply=lambda p, x: scan(memory, p["memory"], x)[0],
        layers=lambda p, x: [(memory, p["memory"], x)],
        state_bytes=lambda n: memory.state_bytes(params["memory"], n),
        max_length=length,
        vocab=EMBED_ROWS,
    )


def find_encoder(model: nnx.Module) -> models.Encoder:
    """The :class:`memjax.models.Encoder` inside ``model`` (or ``model`` itself)."""
    if isinstance(model, models.Encoder):
        return model
    for _, module in nnx.iter_modules(model):
        if isinstance(module, models.Encoder):
            return module
    raise ValueError(f"{type(model).__name__} holds no memjax.models.Encoder")


def mixer_inputs(encoder: models.Encoder, x: Array) -> list[Layer]:
    """Each block's memory with its parameters and the input it sees, ``norm_1(x_l)``."""
    found = []
    for block in encoder.blocks:
        found.append(
            (block.mixer.memory, block.mixer.values(), models.apply_norm(block.norm_mixer, x, None))
        )
        x = block(x)
    return found


def model_subject(
    model: nnx.Module,
    *,
    label: str,
    mixer: str,
    stage: str,
    max_length: int,
    seed: int,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> Subject:
    """Any memjax model (an Encoder or a model holding one) as a probe subject; ``model`` is
    switched to evaluation mode (no dropout).

    Continuous-input models see token ``i`` as row ``i`` of a fixed ``N(0, 1)`` table
    ``[EMBED_ROWS, channels]`` before their input layer.
    """
    model.eval()
    encoder = find_encoder(model)
    graphdef, state = nnx.split(model)
    tokens_in = encoder.input_kind == "tokens"
    table = None
    if not tokens_in:
        table = jax.random.normal(jax.random.key(seed), (EMBED_ROWS, encoder.channels))
    params = {"model": state, "table": table}
    merged = lambda p: nnx.merge(graphdef, p["model"])

    def embed(p: Any, tokens: Array) -> Array:
        inputs = tokens if tokens_in else p["table"][tokens]
        return find_encoder(merged(p)).embed_inputs(inputs)

    vocab = encoder.embed.num_embeddings if tokens_in else EMBED_ROWS
    return Subject(
        label=label,
        mixer=mixer,
        stage=stage,
        params=params,
        embed=embed,
        apply=lambda p, x: find_encoder(merged(p))(x, None, embedded=True),
        layers=lambda p, x: mixer_inputs(find_encoder(merged(p)), x),
        state_bytes=lambda n: models.state_bytes(model, n),
        max_length=max_length,
        vocab=vocab,
        task=task,
        task_options=dict(task_options or {}),
        predict=jax.jit(lambda p, tokens: merged(p)(tokens).argmax(axis=-1)) if task else None,
    )


def small_model(mixer: str, *, hidden: int, depth: int, length: int, seed: int = 0) -> Subject:
    """A :class:`memjax.models.Encoder` of ``depth`` blocks of width ``hidden`` at init."""
    encoder = models.Encoder(
        mixer,
        d_model=hidden,
        depth=depth,
        vocab_size=EMBED_ROWS,
        rngs=nnx.Rngs(seed),
        mixer_options=capacity_options(mixer, length),
    )
    return model_subject(
        encoder, label=mixer, mixer=mixer, stage="init", max_length=length, seed=seed
    )


def run(workdir: str | Path) -> tuple[Subject, Subject]:
    """The run's model at initialisation and at its best checkpoint: ``(init, trained)``."""
    loaded = train.load_run(workdir)
    built, config = loaded.setup, loaded.setup.config
    trained = loaded.model()
    options = {**tasks.options(config.task.name), **dict(config.task.options)}
    common = dict(
        mixer=config.model.mixer,
        max_length=built.spec.max_length,
        seed=int(config.train.seed),
        task=config.task.name,
        task_options=options,
    )
    name = Path(workdir).name
    return (
        model_subject(built.model, label=f"{name}@init", stage="init", **common),
        model_subject(trained, label=f"{name}@trained", stage="trained", **common),
    )
