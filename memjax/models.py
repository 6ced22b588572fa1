"""Sequence models in Flax NNX, built around any registered memory.

A :class:`Block` is the residual unit shared by Transformers and deep RNNs/SSMs; pre-norm
(``norm_position="pre"``, the default)::

    u = x + act(mixer(norm_1(x)))              mixer: any memjax memory, [B, T, D] -> [B, T, D]
    y = u + dropout(mlp(norm_2(u)))            mlp: D -> expand*D -> D (GELU), a GLU, or none

or post-norm (``"post"``): ``u = norm_1(x + act(mixer(x)))``, ``y = norm_2(u + dropout(mlp(u)))``.
``residual=False`` drops the mixer's skip connection, ``u = act(mixer(norm_1(x)))`` (the MNIST-1D
paper's GRU reads only the memory's outputs).
``act`` is what follows the mixer (``activation``, S5's ``activation_fn``, ``s5/layers.py``), with
``d = dropout``, ``g = d(gelu(h))`` and ``W, W_1, W_2`` dense ``D -> D`` layers with biases::

    "none" (default): d(h)          "gelu": g          "half_glu1": d(g * sigmoid(W g))
    "half_glu2": d(h * sigmoid(W g))                   "full_glu": d(W_1 g * sigmoid(W_2 g))

S5's layer is ``mlp="none"`` with one of these. ``norm`` is "layernorm", "rmsnorm", "batchnorm"
(S5's ``--batchnorm``) or "none" (the identity). BatchNorm normalises each feature over the
valid (unpadded) steps of the batch in training and keeps running averages (``bn_momentum``,
flax's convention: ``avg <- momentum * avg + (1 - momentum) * batch``) in ``nnx.BatchStat``
variables, which evaluation (``model.eval()``) uses. Its statistics are those of one device's
micro-batch (no cross-device mean). ``dropout_time_shared=True`` draws one dropout mask per
sequence and feature, shared by all steps (S5's ``broadcast_dims=[0]`` over time).

:class:`Encoder` embeds inputs (tokens through an embedding table, continuous inputs through a
linear layer, or none: ``input_projection=False`` feeds continuous inputs ``[B, T, C]`` to the
first block's memory as they are, which then needs ``residual=False`` unless ``C == D``) and
stacks blocks; :class:`SequenceFeatures` pools it; :class:`SequenceClassifier`,
:class:`DualEncoder` and :class:`PerPositionHead` put task heads on it. Parameters are float32;
``dtype`` sets the compute dtype of activations (float32 or bfloat16). Recurrent states stay
float32 (see :mod:`memjax.cells.base`).

Positions (``Encoder(positional=...)``): "none" (default), "sinusoidal" or "learned" are added
once, to the embedded inputs before the first block, as LRA's Transformer does
(``AddPositionEmbs`` in ``lra_benchmarks/models/layers/common_layers.py``): sinusoidal
``P[p, 2i] = sin(p / 10000^(2i/D))``, ``P[p, 2i+1] = cos(...)``, or a learned table
``P [max_length, D] ~ N(0, 0.02^2)`` (a :class:`~memjax.params.TableParam`: no weight decay).
A CLS token (``pooling="cls"``) is put first and takes position 0, as in LRA. The attention
memory's own ``positional`` option (inside every layer, on the normed input) stays available.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from memjax import cells
from memjax.attention import sinusoidal
from memjax.cells.base import Memory
from memjax.cells.ssm import DiagonalSSM
from memjax.params import RecurrenceParam, TableParam
from memjax.scan import bidirectional as bidirectional_scan
from memjax.scan import scan as memjax_scan

Array = jax.Array
NORMS = ("layernorm", "rmsnorm", "batchnorm", "none")
NORM_POSITIONS = ("pre", "post")
MLPS = ("mlp", "glu", "none")
ACTIVATIONS = ("none", "gelu", "half_glu1", "half_glu2", "full_glu")
POSITIONS = ("none", "sinusoidal", "learned")
BIDIRECTIONAL = (False, True, "independent", "shared", "concat")
POOLINGS = ("mean", "last", "cls", "flatten")
INPUT_KINDS = ("tokens", "continuous")


def _check_choice(argument: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")


def _is_variable(x: Any) -> bool:
    return isinstance(x, nnx.Variable)


class Mixer(nnx.Module):
    """A memjax memory as an NNX module: its parameter pytree held as ``nnx.Param`` leaves.

    ``mixer(x [B, T, D], mask [B, T]) -> [B, T, D]`` through :func:`memjax.scan`; ``step``
    exposes the memory's streaming face with the same parameters.

    ``bidirectional`` (S5's and LRU's LRA setup; no streaming face) follows
    :func:`memjax.scan.bidirectional` with ``combine="sum"`` (``"concat"`` for the form of that
    name): a forward pass and a pass from
    each sequence's last valid step back to its first, added::

        True / "independent":  y = M(x; theta_fwd) + M_reverse(x; theta_bwd)
                               (two memories of the same kind, each its own parameters and D)
        "shared" (S5's form, diagonal SSMs only):
                               y = out_scale * (Re(h_fwd C_fwd) + Re(h_bwd C_bwd)) + D x
        "concat" (torch's ``bidirectional=True``): y = [M(x; theta_fwd), M_reverse(x; theta_bwd)]
                               (two memories of width D / 2, outputs side by side: D even)

    where ``h_fwd`` and ``h_bwd`` run the same ``lambda`` and ``B x`` forwards and backwards
    (S5: ``C~ [H, 2P]``, ``s5/ssm.py: apply_ssm``); ``C_bwd`` is drawn like ``C`` and ``D``
    is counted once (the backward pass reads ``D = 0``).
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
        bidirectional: bool | str = False,
        d_in: int | None = None,
    ):
        if bidirectional not in BIDIRECTIONAL:
            raise ValueError(f"bidirectional must be one of {BIDIRECTIONAL}, got {bidirectional!r}")
        self.concat = bidirectional == "concat"
        if self.concat and d_model % 2:
            raise ValueError(
                f"bidirectional='concat' puts two memories of width d_model / 2 side by side; "
                f"d_model must be even, got {d_model}"
            )
        hidden = d_model // 2 if self.concat else d_model
        self.memory: Memory = cells.get(name, hidden=hidden, **dict(options or {}))
        d_in = d_model if d_in is None else d_in
        self.params = nnx.data(self._tagged(self.memory.init(rngs.params(), d_in)))
        self.shared = bidirectional == "shared"
        if self.shared:
            if not isinstance(self.memory, DiagonalSSM):
                raise ValueError(
                    f"bidirectional='shared' (S5's form: shared Lambda and B, two C's, one D) "
                    f"needs a diagonal SSM (s5, lru), got {name!r}; use bidirectional=True"
                )
            second = self.memory.init(rngs.params(), d_in)
            readout = {k: second[k] for k in ("c_re", "c_im")}
            self.backward_params = nnx.data(self._tagged(readout))
        elif bidirectional:
            self.backward_params = nnx.data(self._tagged(self.memory.init(rngs.params(), d_in)))
        else:
            self.backward_params = None
        self.mode, self.remat, self.unroll = mode, remat, unroll

    def _tagged(self, params: dict[str, Any]) -> dict[str, Any]:
        """The memory's parameter dict with each top-level entry as the kind of parameter it is
        (:mod:`memjax.params`): recurrence parameters, lookup tables, or plain ``nnx.Param``;
        a diagonal SSM's entries also carry their role in S5's optimiser groups as the
        variable metadata ``ssm_role`` (see :func:`memjax.optim.param_labels`)."""
        memory = self.memory
        roles = memory.param_roles() if isinstance(memory, DiagonalSSM) else {}

        def kind(key: str) -> type[nnx.Param]:
            if key in memory.recurrence_params:
                return RecurrenceParam
            return TableParam if key in memory.table_params else nnx.Param

        def make(key: str, leaf: Any) -> nnx.Param:
            metadata = {"ssm_role": roles[key]} if key in roles else {}
            return kind(key)(leaf, **metadata)

        return {
            key: jax.tree.map(lambda leaf, key=key: make(key, leaf), value)
            for key, value in params.items()
        }

    def values(self, backward: bool = False) -> Any:
        """The memory's parameter pytree as plain arrays (the backward pass's if asked: for the
        shared form, the forward parameters with the backward ``C`` and ``D = 0``)."""
        unwrap = lambda tree: jax.tree.map(lambda v: v[...], tree, is_leaf=_is_variable)
        if not backward:
            return unwrap(self.params)
        if self.backward_params is None:
            raise ValueError("this mixer is not bidirectional; it has no backward parameters")
        if self.shared:
            forward = unwrap(self.params)
            return {**forward, **unwrap(self.backward_params), "d": jnp.zeros_like(forward["d"])}
        return unwrap(self.backward_params)

    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        options = dict(mask=mask, mode=self.mode, remat=self.remat, unroll=self.unroll)
        if self.backward_params is None:
            return memjax_scan(self.memory, self.values(), x, **options)[0]
        backward = self.values(True)
        combine = "concat" if self.concat else "sum"
        return bidirectional_scan(
            self.memory, self.values(), self.memory, backward, x, combine=combine, **options
        )

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


def _norm(
    kind: str, d_model: int, dtype: Any, rngs: nnx.Rngs, bn_momentum: float = 0.95
) -> nnx.Module | None:
    _check_choice("norm", kind, NORMS)
    if kind == "none":
        return None
    if kind == "batchnorm":
        return nnx.BatchNorm(d_model, momentum=bn_momentum, epsilon=1e-5, dtype=dtype, rngs=rngs)
    cls = nnx.LayerNorm if kind == "layernorm" else nnx.RMSNorm
    return cls(d_model, dtype=dtype, rngs=rngs)


def apply_norm(norm: nnx.Module | None, x: Array, mask: Array | None) -> Array:
    """``norm(x)`` (``x`` for ``norm="none"``); a BatchNorm takes its training statistics over
    the valid steps only."""
    if norm is None:
        return x
    if isinstance(norm, nnx.BatchNorm):
        return norm(x, mask=None if mask is None else mask[..., None])
    return norm(x)


class MixerActivation(nnx.Module):
    """What follows the mixer in a block (S5's ``activation_fn``; see the module docstring)."""

    def __init__(
        self, kind: str, d_model: int, dropout: nnx.Dropout, *, dtype: Any, rngs: nnx.Rngs
    ):
        _check_choice("activation", kind, ACTIVATIONS)
        self.kind, self.dropout = kind, dropout
        glu = kind in ("half_glu1", "half_glu2", "full_glu")
        dense = lambda: nnx.Linear(d_model, d_model, dtype=dtype, rngs=rngs)
        self.out1 = dense() if kind == "full_glu" else None
        self.out2 = dense() if glu else None

    def __call__(self, h: Array) -> Array:
        drop = self.dropout
        if self.kind == "none":
            return drop(h)
        g = drop(jax.nn.gelu(h))
        if self.kind == "gelu":
            return g
        if self.kind == "half_glu1":
            return drop(g * jax.nn.sigmoid(self.out2(g)))
        if self.kind == "half_glu2":
            return drop(h * jax.nn.sigmoid(self.out2(g)))
        return drop(self.out1(g) * jax.nn.sigmoid(self.out2(g)))


class Block(nnx.Module):
    """Residual block: mixer, then feed-forward, pre- or post-norm (see module docstring).

    ``d_in`` (default ``d_model``): the width of the block's input, which only a block without
    the mixer's residual (``residual=False``) may change.
    """

    def __init__(
        self,
        mixer: str,
        d_model: int,
        *,
        rngs: nnx.Rngs,
        mixer_options: Mapping[str, Any] | None = None,
        norm: str = "layernorm",
        norm_position: str = "pre",
        mlp: str = "mlp",
        mlp_expand: int = 4,
        activation: str = "none",
        dropout: float = 0.0,
        dropout_time_shared: bool = False,
        bn_momentum: float = 0.95,
        dtype: Any = jnp.float32,
        mode: str = "auto",
        remat: bool | int = False,
        unroll: int | str = "auto",
        bidirectional: bool | str = False,
        residual: bool = True,
        d_in: int | None = None,
    ):
        _check_choice("mlp", mlp, MLPS)
        _check_choice("norm_position", norm_position, NORM_POSITIONS)
        d_in = d_model if d_in is None else d_in
        if residual and d_in != d_model:
            raise ValueError(
                f"a residual block adds its input to the mixer's output, so its input width "
                f"must be d_model={d_model}; got d_in={d_in} (expected residual=False)"
            )
        if not residual and norm_position == "post":
            raise ValueError("residual=False is a pre-norm form; expected norm_position='pre'")
        self.post_norm, self.residual = norm_position == "post", residual
        self.norm_mixer = _norm(norm, d_in, dtype, rngs, bn_momentum)
        self.mixer = Mixer(
            mixer,
            d_model,
            rngs=rngs,
            options=mixer_options,
            mode=mode,
            remat=remat,
            unroll=unroll,
            bidirectional=bidirectional,
            d_in=d_in,
        )
        self.norm_mlp = _norm(norm, d_model, dtype, rngs, bn_momentum) if mlp != "none" else None
        self.mlp = (
            FeedForward(d_model, mlp, mlp_expand, dtype=dtype, rngs=rngs) if mlp != "none" else None
        )
        self.dropout = nnx.Dropout(
            dropout, broadcast_dims=(1,) if dropout_time_shared else (), rngs=rngs
        )
        self.activation = MixerActivation(activation, d_model, self.dropout, dtype=dtype, rngs=rngs)

    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        if self.post_norm:
            x = apply_norm(self.norm_mixer, x + self.activation(self.mixer(x, mask)), mask)
            if self.mlp is not None:
                x = apply_norm(self.norm_mlp, x + self.dropout(self.mlp(x)), mask)
            return x
        mixed = self.activation(self.mixer(apply_norm(self.norm_mixer, x, mask), mask))
        x = x + mixed if self.residual else mixed
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(apply_norm(self.norm_mlp, x, mask)))
        return x


class Encoder(nnx.Module):
    """Inputs -> embedding (+ positions) -> ``depth`` blocks -> final norm: ``[B, T(, C)] ->
    [B, T, D]``.

    Token inputs ``int [B, T]`` use an embedding table of ``vocab_size`` rows; continuous inputs
    ``float [B, T, C]`` a linear layer from ``channels`` features. ``positional`` adds
    positions once after the embedding (module docstring; ``max_length`` rows for "learned").
    ``final_norm=False`` leaves out the norm after the last block (S5's encoder has none).
    ``input_projection=False`` (continuous inputs only) has no linear layer: the first block's
    memory reads the ``channels`` input features (module docstring).
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
        positional: str = "none",
        max_length: int | None = None,
        final_norm: bool = True,
        input_projection: bool = True,
        **block_options: Any,
    ):
        _check_choice("input_kind", input_kind, INPUT_KINDS)
        if not input_projection and (input_kind != "continuous" or positional != "none"):
            raise ValueError(
                f"input_projection=False feeds continuous inputs to the first memory as they "
                f"are; expected input_kind='continuous' and positional='none', got "
                f"input_kind={input_kind!r}, positional={positional!r}"
            )
        _check_choice("positional", positional, POSITIONS)
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
            self.embed = (
                nnx.Linear(channels, d_model, dtype=dtype, rngs=rngs) if input_projection else None
            )
        self.input_kind, self.dtype, self.positional = input_kind, dtype, positional
        self.channels = channels if input_kind == "continuous" else None
        if positional == "learned":
            if not isinstance(max_length, int) or max_length < 1:
                raise ValueError(
                    f"positional='learned' needs max_length, a positive int, got {max_length!r}"
                )
            table = 0.02 * jax.random.normal(rngs.params(), (max_length, d_model))
            self.positions = TableParam(table)
        else:
            self.positions = None
        first_width = d_model if input_projection else channels
        self.blocks = nnx.List(
            [
                Block(
                    mixer,
                    d_model,
                    rngs=rngs,
                    dtype=dtype,
                    d_in=first_width if layer == 0 else d_model,
                    **block_options,
                )
                for layer in range(depth)
            ]
        )
        norm = block_options.get("norm", "layernorm")
        momentum = block_options.get("bn_momentum", 0.95)
        self.norm = _norm(norm, d_model, dtype, rngs, momentum) if final_norm else None

    def embed_inputs(self, inputs: Array) -> Array:
        """``[B, T]`` tokens or ``[B, T, C]`` features -> ``[B, T, D]`` in the compute dtype
        (without positions: :meth:`__call__` adds them)."""
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
        if self.embed is None:
            return inputs.astype(self.dtype)
        return self.embed(inputs).astype(self.dtype)

    def add_positions(self, x: Array) -> Array:
        """``x [B, T, D] + P[:T]`` (positions ``0 .. T-1``), or ``x`` for ``positional="none"``."""
        length = x.shape[1]
        if self.positional == "sinusoidal":
            table = sinusoidal(jnp.arange(length), x.shape[-1], jnp.float32)
        elif self.positional == "learned":
            capacity = self.positions.shape[0]
            if length > capacity:
                raise ValueError(
                    f"{length} steps need {length} learned positions, but the table has "
                    f"max_length={capacity}"
                )
            table = self.positions[...][:length]
        else:
            return x
        return (x.astype(jnp.float32) + table[None]).astype(x.dtype)

    def __call__(
        self, inputs: Array, mask: Array | None = None, *, embedded: bool = False
    ) -> Array:
        x = inputs if embedded else self.embed_inputs(inputs)
        x = self.add_positions(x)
        for block in self.blocks:
            x = block(x, mask)
        return x if self.norm is None else apply_norm(self.norm, x, mask)


def pool(h: Array, mask: Array | None, how: str) -> Array:
    """``[B, T, D] -> [B, D]``: mean over valid steps, the last valid step, or step 0 (CLS);
    ``"flatten"``: every step's features side by side, ``[B, T * D]`` (padded steps zeroed),
    ``out[:, t * D + i] = h[:, t, i]``."""
    _check_choice("pooling", how, POOLINGS)
    if how == "cls":
        return h[:, 0]
    if mask is None:
        mask = jnp.ones(h.shape[:2], bool)
    if how == "flatten":
        h = jnp.where(mask[..., None], h, jnp.zeros((), h.dtype))
        return h.reshape(h.shape[0], -1)
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
    ``pooling="flatten"`` (MNIST-1D's GRU: all outputs into one linear head) needs ``length``,
    the fixed number of steps: its features are ``[B, length * D]`` (:attr:`width`).
    """

    def __init__(
        self,
        mixer: str,
        *,
        pooling: str = "mean",
        length: int | None = None,
        rngs: nnx.Rngs,
        **encoder: Any,
    ):
        _check_choice("pooling", pooling, POOLINGS)
        if pooling == "flatten" and (not isinstance(length, int) or length < 1):
            raise ValueError(
                f"pooling='flatten' needs length, the fixed number of steps, a positive int; "
                f"got length={length!r}"
            )
        self.encoder = Encoder(mixer, rngs=rngs, **encoder)
        memory = self.encoder.blocks[0].mixer.memory
        causal = getattr(memory, "causal", True) and not encoder.get("bidirectional", False)
        if pooling == "cls" and causal:
            raise ValueError(
                f"pooling='cls' reads the output at the CLS token, step 0, where the causal "
                f"memory {mixer!r} sees only the CLS token itself; expected pooling='mean' or "
                "'last', bidirectional=True, or a non-causal memory (attention, causal=False)"
            )
        if pooling == "cls" and self.encoder.embed is None:
            raise ValueError(
                "pooling='cls' puts a learned d_model-wide token before the embedded inputs; "
                "with input_projection=False there is no embedding: expected another pooling"
            )
        d_model = encoder["d_model"]
        self.pooling, self.length = pooling, length
        self.width = d_model * length if pooling == "flatten" else d_model
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
        if self.pooling == "flatten" and x.shape[1] != self.length:
            raise ValueError(
                f"pooling='flatten' was built for length={self.length} steps, got inputs of "
                f"{x.shape[1]} steps"
            )
        return pool(self.encoder(x, mask, embedded=True), mask, self.pooling)

    def __call__(self, inputs: Array, mask: Array | None = None) -> Array:
        return self.features(inputs, mask)


class SequenceClassifier(SequenceFeatures):
    """:class:`SequenceFeatures` and a linear head: ``inputs -> logits [B, num_classes]``."""

    def __init__(
        self,
        mixer: str,
        *,
        num_classes: int,
        pooling: str = "mean",
        length: int | None = None,
        rngs: nnx.Rngs,
        **encoder: Any,
    ):
        super().__init__(mixer, pooling=pooling, length=length, rngs=rngs, **encoder)
        self.head = nnx.Linear(self.width, num_classes, rngs=rngs)

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
        if pooling == "flatten":
            raise ValueError(
                "pooling='flatten' is for one fixed-length sequence (SequenceClassifier); the "
                "dual encoder compares pooled features of width d_model: expected 'mean', "
                "'last' or 'cls'"
            )
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
    """Encoder and a per-step linear head: ``inputs -> logits [B, T, num_classes]``.

    With ``positions`` (int [B, K]) the head reads only those steps of each sequence:
    ``logits[b, k] = head(features[b, positions[b, k]])``, [B, K, num_classes].
    """

    def __init__(self, mixer: str, *, num_classes: int, rngs: nnx.Rngs, **encoder: Any):
        self.encoder = Encoder(mixer, rngs=rngs, **encoder)
        self.head = nnx.Linear(encoder["d_model"], num_classes, rngs=rngs)

    def __call__(
        self, inputs: Array, mask: Array | None = None, positions: Array | None = None
    ) -> Array:
        features = self.encoder(inputs, mask)
        if positions is not None:
            features = jnp.take_along_axis(features, positions[..., None], axis=1)
        return self.head(features).astype(jnp.float32)


def memories(model: nnx.Module) -> list[tuple[Memory, Any]]:
    """Every ``(memory, params)`` pair inside ``model``, in layer order (a bidirectional mixer
    gives two: its forward and backward passes, each holding its own state)."""
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
