"""Sequence models in Flax NNX, built around any registered memory.

A :class:`Block` is the pre-norm residual unit shared by Transformers and deep RNNs/SSMs::

    u = x + dropout(mixer(norm_1(x)))          mixer: any memjax memory, [B, T, D] -> [B, T, D]
    y = u + dropout(mlp(norm_2(u)))            mlp: D -> expand*D -> D (GELU) or a GLU

:class:`Encoder` embeds inputs (tokens through an embedding table, continuous inputs through a
linear layer) and stacks blocks; :class:`SequenceFeatures` pools it; :class:`SequenceClassifier`,
:class:`DualEncoder` and :class:`PerPositionHead` put task heads on it. Parameters are float32;
``dtype`` sets the compute dtype of activations (float32 or bfloat16). Recurrent states stay
float32 (see :mod:`memjax.cells.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from memjax import cells
from memjax.cells.base import Memory
from memjax.params import RecurrenceParam, TableParam
from memjax.scan import scan

Array = jax.Array
NORMS = ("layernorm", "rmsnorm")
MLPS = ("mlp", "glu", "none")
POOLINGS = ("mean", "last", "cls")
INPUT_KINDS = ("tokens", "continuous")


def _check_choice(argument: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")


def _is_variable(x: Any) -> bool:
    return isinstance(x, nnx.Variable)


class Mixer(nnx.Module):
    """A memjax memory as an NNX module: its parameter pytree held as ``nnx.Param`` leaves.

    ``mixer(x [B, T, D], mask [B, T]) -> [B, T, D]`` through :func:`memjax.scan`; ``step``
    exposes the memory's streaming face with the same parameters. A bidirectional mixer (S5's
    and LRU's LRA setup) adds a second memory of the same kind run backwards over each valid
    prefix, ``y = M_fwd(x) + M_bwd(x)``, and has no streaming face.
    """

    def __init__(
        self,
        name: str,
        d_model: int,
        *,
        rngs: nnx.Rngs,
        options: Mapping[str, Any] | None = None,
        mode: str = "auto",
        remat: bool | int = False,
        unroll: int | str = "auto",
        bidirectional: bool = False,
    ):
        self.memory: Memory = cells.get(name, hidden=d_model, **dict(options or {}))
        self.params = nnx.data(self._tagged(self.memory.init(rngs.params(), d_model)))
        self.backward_params = (
            nnx.data(self._tagged(self.memory.init(rngs.params(), d_model)))
            if bidirectional
            else None
        )
        self.mode, self.remat, self.unroll = mode, remat, unroll

    def _tagged(self, params: dict[str, Any]) -> dict[str, Any]:
        """The memory's parameter dict with each top-level entry as the kind of parameter it is
        (:mod:`memjax.params`): recurrence parameters, lookup tables, or plain ``nnx.Param``."""
        memory = type(self.memory)

        def kind(key: str) -> type[nnx.Param]:
            if key in memory.recurrence_params:
                return RecurrenceParam
            return TableParam if key in memory.table_params else nnx.Param

        return {key: jax.tree.map(kind(key), value) for key, value in params.items()}

    def values(self, backward: bool = False) -> Any:
        """The memory's parameter pytree as plain arrays (the backward memory's if asked)."""
        params = self.backward_params if backward else self.params
        return jax.tree.map(lambda v: v[...], params, is_leaf=_is_variable)

    def _scan(self, x: Array, mask: Array | None, backward: bool) -> Array:
        options = dict(mode=self.mode, remat=self.remat, unroll=self.unroll)
        return scan(self.memory, self.values(backward), x, mask=mask, reverse=backward, **options)[
            0
        ]

    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        ys = self._scan(x, mask, backward=False)
        if self.backward_params is not None:
            ys = ys + self._scan(x, mask, backward=True)
        return ys

    def step(self, carry: Any, x_t: Array) -> tuple[Any, Array]:
        if self.backward_params is not None:
            raise ValueError("a bidirectional mixer reads the whole sequence; it has no step()")
        return self.memory.step(self.values(), carry, x_t)


class FeedForward(nnx.Module):
    """``mlp``: ``W_2 gelu(W_1 x)``; ``glu``: ``W_2 (silu(W_g x) * W_1 x)`` (SwiGLU)."""

    def __init__(self, d_model: int, kind: str, expand: int, *, dtype: Any, rngs: nnx.Rngs):
        _check_choice("mlp", kind, ("mlp", "glu"))
        width = expand * d_model
        self.kind = kind
        self.up = nnx.Linear(d_model, width, dtype=dtype, rngs=rngs)
        self.gate = nnx.Linear(d_model, width, dtype=dtype, rngs=rngs) if kind == "glu" else None
        self.down = nnx.Linear(width, d_model, dtype=dtype, rngs=rngs)

    def __call__(self, x: Array) -> Array:
        h = self.up(x)
        h = jax.nn.silu(self.gate(x)) * h if self.gate is not None else jax.nn.gelu(h)
        return self.down(h)


def _norm(kind: str, d_model: int, dtype: Any, rngs: nnx.Rngs) -> nnx.Module:
    _check_choice("norm", kind, NORMS)
    cls = nnx.LayerNorm if kind == "layernorm" else nnx.RMSNorm
    return cls(d_model, dtype=dtype, rngs=rngs)


class Block(nnx.Module):
    """Pre-norm residual block: mixer then feed-forward (see module docstring)."""

    def __init__(
        self,
        mixer: str,
        d_model: int,
        *,
        rngs: nnx.Rngs,
        mixer_options: Mapping[str, Any] | None = None,
        norm: str = "layernorm",
        mlp: str = "mlp",
        mlp_expand: int = 4,
        dropout: float = 0.0,
        dtype: Any = jnp.float32,
        mode: str = "auto",
        remat: bool | int = False,
        unroll: int | str = "auto",
        bidirectional: bool = False,
    ):
        _check_choice("mlp", mlp, MLPS)
        self.norm_mixer = _norm(norm, d_model, dtype, rngs)
        self.mixer = Mixer(
            mixer,
            d_model,
            rngs=rngs,
            options=mixer_options,
            mode=mode,
            remat=remat,
            unroll=unroll,
            bidirectional=bidirectional,
        )
        self.norm_mlp = _norm(norm, d_model, dtype, rngs) if mlp != "none" else None
        self.mlp = (
            FeedForward(d_model, mlp, mlp_expand, dtype=dtype, rngs=rngs) if mlp != "none" else None
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        x = x + self.dropout(self.mixer(self.norm_mixer(x), mask))
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(self.norm_mlp(x)))
        return x


class Encoder(nnx.Module):
    """Inputs -> embedding -> ``depth`` blocks -> final norm: ``[B, T(, C)] -> [B, T, D]``.

    Token inputs ``int [B, T]`` use an embedding table of ``vocab_size`` rows; continuous inputs
    ``float [B, T, C]`` a linear layer from ``channels`` features.
    """

    def __init__(
        self,
        mixer: str,
        *,
        d_model: int,
        depth: int,
        input_kind: Literal["tokens", "continuous"] = "tokens",
        vocab_size: int | None = None,
        channels: int | None = None,
        rngs: nnx.Rngs,
        dtype: Any = jnp.float32,
        **block_options: Any,
    ):
        _check_choice("input_kind", input_kind, INPUT_KINDS)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, got {depth!r}")
        if input_kind == "tokens":
            if not vocab_size or vocab_size < 1:
                raise ValueError(
                    f"vocab_size must be a positive int for token inputs, got {vocab_size!r}"
                )
            self.embed = nnx.Embed(vocab_size, d_model, dtype=dtype, rngs=rngs)
        else:
            if not channels or channels < 1:
                raise ValueError(
                    f"channels must be a positive int for continuous inputs, got {channels!r}"
                )
            self.embed = nnx.Linear(channels, d_model, dtype=dtype, rngs=rngs)
        self.input_kind, self.dtype = input_kind, dtype
        self.blocks = nnx.List(
            [Block(mixer, d_model, rngs=rngs, dtype=dtype, **block_options) for _ in range(depth)]
        )
        self.norm = _norm(block_options.get("norm", "layernorm"), d_model, dtype, rngs)

    def embed_inputs(self, inputs: Array) -> Array:
        """``[B, T]`` tokens or ``[B, T, C]`` features -> ``[B, T, D]`` in the compute dtype."""
        if self.input_kind == "tokens":
            if inputs.ndim != 2 or not jnp.issubdtype(inputs.dtype, jnp.integer):
                raise ValueError(
                    "inputs must be integer tokens [batch, time], "
                    f"got {inputs.dtype} {inputs.shape}"
                )
        elif inputs.ndim != 3:
            raise ValueError(
                f"inputs must be continuous [batch, time, channels], got shape {inputs.shape}"
            )
        return self.embed(inputs).astype(self.dtype)

    def __call__(
        self, inputs: Array, mask: Array | None = None, *, embedded: bool = False
    ) -> Array:
        x = inputs if embedded else self.embed_inputs(inputs)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


def pool(h: Array, mask: Array | None, how: str) -> Array:
    """``[B, T, D] -> [B, D]``: mean over valid steps, the last valid step, or step 0 (CLS)."""
    _check_choice("pooling", how, POOLINGS)
    if how == "cls":
        return h[:, 0]
    if mask is None:
        mask = jnp.ones(h.shape[:2], bool)
    if how == "mean":
        weights = mask.astype(h.dtype)[..., None]
        return (h * weights).sum(1) / jnp.maximum(weights.sum(1), 1)
    last = jnp.maximum(mask.sum(1) - 1, 0)
    return jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0]


class SequenceFeatures(nnx.Module):
    """Encoder and pooling: ``inputs -> features [B, D]`` (with ``pooling="cls"``, a learned
    token is put before the sequence and its output is the feature).

    ``pooling="cls"`` needs a memory that lets step 0 see later steps (non-causal attention, or
    ``bidirectional=True``): through a causal memory the CLS token would see only itself.
    """

    def __init__(self, mixer: str, *, pooling: str = "mean", rngs: nnx.Rngs, **encoder: Any):
        _check_choice("pooling", pooling, POOLINGS)
        self.encoder = Encoder(mixer, rngs=rngs, **encoder)
        memory = self.encoder.blocks[0].mixer.memory
        causal = getattr(memory, "causal", True) and not encoder.get("bidirectional", False)
        if pooling == "cls" and causal:
            raise ValueError(
                f"pooling='cls' reads the output at the CLS token, step 0, where the causal "
                f"memory {mixer!r} sees only the CLS token itself; expected pooling='mean' or "
                "'last', bidirectional=True, or a non-causal memory (attention, causal=False)"
            )
        d_model = encoder["d_model"]
        self.pooling = pooling
        self.cls = (
            nnx.Param(jax.random.normal(rngs.params(), (d_model,)) * 0.02)
            if pooling == "cls"
            else None
        )

    def features(self, inputs: Array, mask: Array | None = None) -> Array:
        """Pooled sequence features ``[B, D]``."""
        x = self.encoder.embed_inputs(inputs)
        if self.cls is not None:
            token = jnp.broadcast_to(self.cls[...].astype(x.dtype), (x.shape[0], 1, x.shape[2]))
            x = jnp.concatenate([token, x], axis=1)
            if mask is not None:
                mask = jnp.concatenate([jnp.ones((mask.shape[0], 1), bool), mask], axis=1)
        return pool(self.encoder(x, mask, embedded=True), mask, self.pooling)

    def __call__(self, inputs: Array, mask: Array | None = None) -> Array:
        return self.features(inputs, mask)


class SequenceClassifier(SequenceFeatures):
    """:class:`SequenceFeatures` and a linear head: ``inputs -> logits [B, num_classes]``."""

    def __init__(
        self, mixer: str, *, num_classes: int, pooling: str = "mean", rngs: nnx.Rngs, **encoder: Any
    ):
        super().__init__(mixer, pooling=pooling, rngs=rngs, **encoder)
        self.head = nnx.Linear(encoder["d_model"], num_classes, rngs=rngs)

    def __call__(self, inputs: Array, mask: Array | None = None) -> Array:
        return self.head(self.features(inputs, mask)).astype(jnp.float32)


class DualEncoder(nnx.Module):
    """Two-document matching (LRA retrieval): one shared tower (:class:`SequenceFeatures`),
    features ``[u, v, u*v, u-v]``.

    ``inputs [B, 2, T]`` and ``mask [B, 2, T]`` -> logits ``[B, num_classes]`` through an MLP.
    """

    def __init__(
        self, mixer: str, *, num_classes: int, pooling: str = "mean", rngs: nnx.Rngs, **encoder: Any
    ):
        self.tower = SequenceFeatures(mixer, pooling=pooling, rngs=rngs, **encoder)
        d_model = encoder["d_model"]
        self.hidden = nnx.Linear(4 * d_model, d_model, rngs=rngs)
        self.out = nnx.Linear(d_model, num_classes, rngs=rngs)

    def __call__(self, inputs: Array, mask: Array | None = None) -> Array:
        if inputs.shape[1] != 2:
            raise ValueError(
                f"inputs must be paired [batch, 2, time, ...], got shape {inputs.shape}"
            )
        u = self.tower(inputs[:, 0], None if mask is None else mask[:, 0])
        v = self.tower(inputs[:, 1], None if mask is None else mask[:, 1])
        h = jax.nn.gelu(self.hidden(jnp.concatenate([u, v, u * v, u - v], axis=-1)))
        return self.out(h).astype(jnp.float32)


class PerPositionHead(nnx.Module):
    """Encoder and a per-step linear head: ``inputs -> logits [B, T, num_classes]``."""

    def __init__(self, mixer: str, *, num_classes: int, rngs: nnx.Rngs, **encoder: Any):
        self.encoder = Encoder(mixer, rngs=rngs, **encoder)
        self.head = nnx.Linear(encoder["d_model"], num_classes, rngs=rngs)

    def __call__(self, inputs: Array, mask: Array | None = None) -> Array:
        return self.head(self.encoder(inputs, mask)).astype(jnp.float32)


def memories(model: nnx.Module) -> list[tuple[Memory, Any]]:
    """Every ``(memory, params)`` pair inside ``model``, in layer order."""
    pairs = []
    for _, m in nnx.iter_modules(model):
        if isinstance(m, Mixer):
            pairs.append((m.memory, m.values()))
            if m.backward_params is not None:
                pairs.append((m.memory, m.values(backward=True)))
    return pairs


def state_bytes(model: nnx.Module, length: int) -> int:
    """Bytes of memory state one sequence holds after ``length`` steps, summed over layers."""
    return sum(memory.state_bytes(params, length) for memory, params in memories(model))
