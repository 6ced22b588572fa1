"""Encoder-decoder models over any memjax memory, for SCAN (Lake & Baroni 2018) and its kin.

``Seq2Seq(inputs [B, S], mask [B, S], targets_in [B, M]) -> logits [B, M, V]``: the source
tokens are embedded and read by an encoder of memjax memories; the decoder reads the target
tokens shifted right (``targets_in = [BOS, targets[:, :-1]]``, :mod:`memjax.data`) and
predicts ``targets`` at each step. Target ids: 0 padding, ``BOS`` = 1, ``EOS`` = 2
(:mod:`memjax.tasks.spec`).

Two layer styles:

* ``"classic"`` (Lake & Baroni's models, after Sutskever et al. 2014 and Bahdanau et al. 2014):
  an embedding, ``depth`` stacked memories with dropout on the embeddings and between layers
  (PyTorch's ``nn.LSTM(dropout=p)``: not after the last layer), no norm, residual or MLP, and
  a linear output layer on the top decoder output::

      x_0 = dropout(E[y_{t-1}])                 (E [V, F], F = embed_features or d_model)
      x_l = dropout(M_l(x_{l-1}))  (l < L),     x_L = M_L(x_{L-1}),   logits_t = W_o x_L + b_o

* ``"blocks"``: :class:`memjax.models.Encoder`'s embedding, positions and pre-norm residual
  :class:`memjax.models.Block` s (``block_options``), final norm and a linear head. The
  Transformer (``encoder="transformer"``) is this style: the encoder's blocks run non-causal
  attention; each decoder block is causal self-attention, then cross-attention over the
  encoder's outputs, then the MLP (Vaswani et al. 2017), each a residual branch::

      u = x + act(M(norm_1(x)))      v = u + dropout(CrossAttn(norm_c(u), h))
      y = v + dropout(MLP(norm_2(v)))                   (post-norm: norm after each sum)

Attention over the encoder states ``h_j`` (:mod:`memjax.seq2seq_attention`), classic style:

* ``"bahdanau"``: ``c_t = sum_j softmax_j(v^T tanh(W s_{t-1} + U h_j)) h_j`` with ``s_{t-1}``
  the decoder's previous top output (``s_{-1}``: the encoder's top output at its last valid
  token when the decoder starts from the encoder's state, else 0); the first decoder layer
  reads ``[x_0; c_t]``, the context fed with the input embedding into the recurrent step, as
  in Lake & Baroni's attention decoder. This needs the decoder's previous output, so training
  runs step by step too.
* ``"luong_dot"`` / ``"luong_general"``: after the recurrent step,
  ``h~_t = tanh(W_c [c_t; h_t])`` with ``c_t`` attending from the top output ``h_t`` (score
  ``h_t^T h_j`` or ``h_t^T W_a h_j``); the output layer reads ``h~_t``. No input feeding.

Blocks style: ``"cross"`` (the Transformer's cross-attention; any causal memory may be the
decoder's mixer) or ``"none"``.

Decoder state (``init_state``): ``"encoder"`` starts decoder layer ``l`` from encoder layer
``l``'s final state, the classic seq2seq bridge (Sutskever et al. 2014; Lake & Baroni). It
needs the same memory kind, width and depth on both sides and a fixed-size state (not a KV
cache); the build refuses anything else and says why. With padding that is each sequence's
state at its last valid token (:func:`memjax.scan` keeps the carry over padded steps). For a
bidirectional encoder it is the forward direction's state. ``"zeros"`` starts from each
memory's ``initial_carry`` (an empty KV cache for attention). Default: ``"zeros"`` for an
attention decoder, ``"encoder"`` otherwise.

Teacher forcing (Lake & Baroni: "teacher forcing" half of the time, per sequence): with
``teacher_forcing=p < 1`` each sequence is teacher-forced with probability ``p``; the other
sequences are fed the model's own greedy prediction ``argmax_y logits_{t-1}`` (PAD and BOS
excluded, as :mod:`memjax.decoding` excludes them; no gradient through the choice). That runs
as one ``jax.lax.scan`` over decoder steps through the streaming face. Unlike the PyTorch
loop of Lake & Baroni, which stops a free-running sequence at its first predicted EOS, the
scan runs all ``M`` steps and the loss covers every target position (``target_mask``).

Streaming face (:mod:`memjax.decoding`): :meth:`Seq2Seq.encode` once per source, then
:meth:`Seq2Seq.decode_step` per token; the decoder state is ``{"layers": per-layer carries
(recurrent state or KV cache), "query": [B, D] (s_{t-1}), "t": int32 [B]}``.

Shapes: ``inputs`` int32 ``[B, S]``, ``mask`` bool ``[B, S]`` (valid prefix, padding at the
end), ``targets_in`` int32 ``[B, M]``, logits float32 ``[B, M, target_vocab_size]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from memjax import cells
from memjax.attention import Attention, sinusoidal
from memjax.models import Block, Encoder, Mixer, apply_norm, pool
from memjax.scan import scan as memjax_scan
from memjax.seq2seq_attention import Bahdanau, CrossAttention, Luong
from memjax.tasks.spec import BOS, EOS

Array = jax.Array
PAD = 0
STYLES = ("classic", "blocks")
ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general", "cross")
INIT_STATES = ("encoder", "zeros")
TRANSFORMER = "transformer"
FORBIDDEN_OUTPUTS = (PAD, BOS)
"""Target ids a decoder never emits (greedy feedback and :mod:`memjax.decoding`)."""

__all__ = ["BOS", "EOS", "PAD", "Seq2Seq", "allowed_logits", "state_bytes", "state_breakdown"]


def _check_choice(argument: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")


def allowed_logits(logits: Array) -> Array:
    """``logits [..., V]`` with PAD and BOS set to ``-inf``: what a decoder may emit."""
    forbidden = jnp.isin(jnp.arange(logits.shape[-1]), jnp.asarray(FORBIDDEN_OUTPUTS))
    return jnp.where(forbidden, -jnp.inf, logits)


class MemoryLayer(Mixer):
    """A :class:`memjax.models.Mixer` of ``hidden`` outputs whose memory reads ``d_in`` inputs
    (a classic layer: the first layer reads the embedding, or the embedding and the context)."""

    def __init__(self, name: str, hidden: int, d_in: int, *, rngs: nnx.Rngs, **mixer: Any):
        super().__init__(name, hidden, rngs=rngs, **mixer)
        if d_in != hidden:
            self.params = nnx.data(self._tagged(self.memory.init(rngs.params(), d_in)))
            if self.backward_params is not None and not self.shared:
                second = self.memory.init(rngs.params(), d_in)
                self.backward_params = nnx.data(self._tagged(second))


def run_mixer(
    mixer: Mixer, x: Array, mask: Array | None, carry: Any = None
) -> tuple[Array, Any, Array]:
    """A mixer over ``x [B, T, d_in]`` from ``carry``: ``(ys, final carry, forward ys)``.

    ``ys`` is what :meth:`Mixer.__call__` returns (a bidirectional mixer adds the backward
    pass); the carry is the forward pass's state at each sequence's last valid step.
    """
    options = dict(mask=mask, mode=mixer.mode, remat=mixer.remat, unroll=mixer.unroll)
    forward, final = memjax_scan(mixer.memory, mixer.values(), x, carry=carry, **options)
    ys = forward
    if mixer.backward_params is not None:
        backward, _ = memjax_scan(mixer.memory, mixer.values(True), x, reverse=True, **options)
        ys = forward + backward
    return ys, final, forward


class CrossLayer(nnx.Module):
    """The cross-attention sub-layer of a decoder block: its norm and :class:`CrossAttention`."""

    def __init__(self, d_model: int, heads: int, norm: str, *, rngs: nnx.Rngs):
        _check_choice("norm", norm, ("layernorm", "rmsnorm"))
        cls = nnx.LayerNorm if norm == "layernorm" else nnx.RMSNorm
        self.norm = cls(d_model, rngs=rngs)
        self.attention = CrossAttention(d_model, heads, rngs=rngs)


def apply_block(
    block: Block,
    x: Array,
    mask: Array | None,
    mix: Callable[[Array], tuple[Array, Any]],
    cross: CrossLayer | None = None,
    source: tuple[tuple[Array, Array], Array] | None = None,
) -> tuple[Array, Any]:
    """:class:`memjax.models.Block`'s computation with its mixer run by ``mix(u) -> (y, carry)``
    (a full pass from a given state, or one streaming step) and, for a Transformer decoder,
    ``cross`` attention over ``source = ((k, v), source_mask)`` between the mixer and the MLP.

    Equals ``block(x, mask)`` when ``mix`` is the mixer's full pass and ``cross`` is None.
    """

    def attend(u: Array) -> Array:
        keys, source_mask = source
        return block.dropout(cross.attention(u, keys, source_mask))

    if block.post_norm:
        y, carry = mix(x)
        x = apply_norm(block.norm_mixer, x + block.activation(y), mask)
        if cross is not None:
            x = apply_norm(cross.norm, x + attend(x), mask)
        if block.mlp is not None:
            x = apply_norm(block.norm_mlp, x + block.dropout(block.mlp(x)), mask)
        return x, carry
    y, carry = mix(apply_norm(block.norm_mixer, x, mask))
    x = x + block.activation(y)
    if cross is not None:
        x = x + attend(apply_norm(cross.norm, x, mask))
    if block.mlp is not None:
        x = x + block.dropout(block.mlp(apply_norm(block.norm_mlp, x, mask)))
    return x, carry


def _position_at(encoder: Encoder, x: Array, t: Array) -> Array:
    """``x [B, 1, D]`` plus the position embedding of step ``t [B]`` (what
    :meth:`Encoder.add_positions` adds at that step of a whole sequence)."""
    if encoder.positional == "sinusoidal":
        table = sinusoidal(t[:, None], x.shape[-1], jnp.float32)
    elif encoder.positional == "learned":
        table = jnp.take(encoder.positions[...], t[:, None], axis=0, mode="clip")
    else:
        return x
    return (x.astype(jnp.float32) + table).astype(x.dtype)


def _streams(memory: Any, params: Any) -> str | None:
    """None if ``memory`` has a streaming face, else the reason it has none."""
    if getattr(memory, "causal", True) is False:
        return (
            f"{type(memory).__name__}(causal=False) attends to future tokens, so it has no "
            "streaming face"
        )
    d_in = memory.input_features(params)
    try:
        jax.eval_shape(
            lambda: memory.step(params, memory.initial_carry(params, (1,)), jnp.zeros((1, d_in)))
        )
    except (ValueError, NotImplementedError, TypeError) as error:
        return f"{type(memory).__name__}.step fails: {error}"
    return None


class Seq2Seq(nnx.Module):
    """Encoder-decoder over memjax memories (module docstring for the equations).

    Args:
      encoder: a registered memory name (``memjax.cells.names()``) or ``"transformer"``
        (non-causal attention blocks; then the decoder is causal attention with cross-attention,
        ``style="blocks"``, ``attention="cross"``, ``init_state="zeros"`` by default).
      decoder: the decoder's memory (None: the encoder's); it must stream.
      source_vocab_size, target_vocab_size: embedding rows (ids include padding 0; the target
        vocabulary also BOS and EOS); the output layer has ``target_vocab_size`` logits.
      d_model: width of every memory layer (hidden units), default 200 (Lake & Baroni).
      depth: encoder layers (default 2, Lake & Baroni's best overall model); ``decoder_depth``
        decoder layers (None: ``depth``).
      style: "classic" or "blocks" (None: "blocks" for the Transformer, else "classic").
      attention: "none", "bahdanau", "luong_dot", "luong_general" (classic) or "cross" (blocks);
        None: "cross" for the Transformer, else "none".
      init_state: "encoder" or "zeros" (None: see the module docstring).
      bidirectional: the encoder's memories read both ways (:class:`memjax.models.Mixer`'s
        ``bidirectional``: True / "independent" / "shared"), outputs added.
      decoder_bidirectional: only to be refused: a decoder must stream.
      encoder_options, decoder_options: memory hyperparameters (``memjax.cells.get``). An
        attention decoder's ``max_length`` (KV-cache capacity) defaults to
        ``max_target_length``, an attention encoder's to ``max_source_length`` when given.
      dropout: classic: on the embeddings and between layers (default 0.5, Lake & Baroni's
        best overall model); blocks: ``Block(dropout=...)`` unless ``block_options`` sets it
        (default 0.1).
      embed_features: classic embedding width (None: ``d_model``).
      attention_features: Bahdanau's scorer width ``A`` (None: ``d_model``).
      heads: heads of cross-attention and of the Transformer's self-attention (default 4).
      max_source_length, max_target_length: capacities for attention memories and learned
        positions (``max_target_length`` default 64; SCAN needs 49).
      positional: blocks style: :class:`memjax.models.Encoder`'s ``positional`` for both sides.
      block_options: blocks style: :class:`memjax.models.Block` options for both sides (the
        decoder may not use ``norm="batchnorm"``: its step-by-step statistics would differ
        from the full pass).
      mode, unroll, remat: :func:`memjax.scan` options of the full passes.
    """

    def __init__(
        self,
        encoder: str = "lstm",
        decoder: str | None = None,
        *,
        source_vocab_size: int,
        target_vocab_size: int,
        rngs: nnx.Rngs,
        d_model: int = 200,
        depth: int = 2,
        decoder_depth: int | None = None,
        style: str | None = None,
        attention: str | None = None,
        init_state: str | None = None,
        bidirectional: bool | str = False,
        decoder_bidirectional: bool = False,
        encoder_options: Mapping[str, Any] | None = None,
        decoder_options: Mapping[str, Any] | None = None,
        dropout: float | None = None,
        embed_features: int | None = None,
        attention_features: int | None = None,
        heads: int = 4,
        max_source_length: int | None = None,
        max_target_length: int = 64,
        positional: str = "none",
        block_options: Mapping[str, Any] | None = None,
        mode: str = "auto",
        unroll: int | str = "auto",
        remat: bool | int = False,
    ):
        decoder = encoder if decoder is None else decoder
        transformer = encoder == TRANSFORMER or decoder == TRANSFORMER
        style = ("blocks" if transformer else "classic") if style is None else style
        attention = ("cross" if transformer else "none") if attention is None else attention
        _check_choice("style", style, STYLES)
        _check_choice("attention", attention, ATTENTIONS)
        if transformer and style != "blocks":
            raise ValueError("the Transformer is built of blocks; expected style='blocks'")
        if (attention == "cross") != (style == "blocks") and attention != "none":
            raise ValueError(
                f"attention={attention!r} with style={style!r}: Bahdanau and Luong attention "
                "belong to the classic stacked decoder, cross-attention to blocks; expected "
                "style='classic' with 'bahdanau'/'luong_dot'/'luong_general', or "
                "style='blocks' with 'cross'"
            )
        if decoder_bidirectional:
            raise ValueError(
                "decoder_bidirectional=True: a bidirectional decoder reads each target sequence "
                "from its end, which decoding has not produced yet, so it has no streaming "
                "face; expected a causal decoder (bidirectional=... applies to the encoder)"
            )
        decoder_depth = depth if decoder_depth is None else decoder_depth
        for argument, value in (("depth", depth), ("decoder_depth", decoder_depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{argument} must be a positive int, got {value!r}")
        block_options = dict(block_options or {})
        if dropout is None:
            dropout = 0.5 if style == "classic" else block_options.get("dropout", 0.1)
        block_options.setdefault("dropout", dropout)
        if style == "blocks" and block_options.get("norm") == "batchnorm":
            raise ValueError(
                "norm='batchnorm' in the decoder: BatchNorm's training statistics span all "
                "time steps, so a step-by-step decoder (scheduled teacher forcing, decoding) "
                "would not compute the full pass; expected 'layernorm' or 'rmsnorm'"
            )

        enc_name, enc_options = self._memory_options(
            encoder, encoder_options, causal=False, heads=heads, max_length=max_source_length
        )
        dec_name, dec_options = self._memory_options(
            decoder, decoder_options, causal=True, heads=heads, max_length=max_target_length
        )
        # Refuse a decoder memory without a streaming face before building anything.
        probe = cells.get(dec_name, hidden=d_model, **dec_options)
        reason = _streams(probe, probe.init(jax.random.key(0), d_model))
        if reason is not None:
            raise ValueError(
                f"decoder memory {decoder!r} cannot decode: {reason}; a decoder runs causally "
                "one token at a time (expected a recurrent memory or causal attention)"
            )
        if init_state is None:
            init_state = "zeros" if isinstance(probe, Attention) else "encoder"
        _check_choice("init_state", init_state, INIT_STATES)

        self.style, self.attention, self.init_state = style, attention, init_state
        self.d_model, self.target_vocab_size = d_model, target_vocab_size
        self.max_target_length = max_target_length
        mixer = dict(mode=mode, remat=remat, unroll=unroll)
        if style == "classic":
            features = d_model if embed_features is None else embed_features
            self.source_embed = nnx.Embed(source_vocab_size, features, rngs=rngs)
            self.target_embed = nnx.Embed(target_vocab_size, features, rngs=rngs)
            self.dropout = nnx.Dropout(dropout, rngs=rngs)
            self.encoder_layers = nnx.List(
                [
                    MemoryLayer(
                        enc_name,
                        d_model,
                        features if i == 0 else d_model,
                        rngs=rngs,
                        options=enc_options,
                        bidirectional=bidirectional,
                        **mixer,
                    )
                    for i in range(depth)
                ]
            )
            first = features + d_model if attention == "bahdanau" else features
            self.decoder_layers = nnx.List(
                [
                    MemoryLayer(
                        dec_name,
                        d_model,
                        first if i == 0 else d_model,
                        rngs=rngs,
                        options=dec_options,
                        **mixer,
                    )
                    for i in range(decoder_depth)
                ]
            )
            if attention == "bahdanau":
                self.scorer = Bahdanau(d_model, d_model, attention_features, rngs=rngs)
            elif attention.startswith("luong"):
                score = attention.removeprefix("luong_")
                self.scorer = Luong(d_model, d_model, score, rngs=rngs)
            else:
                self.scorer = None
        else:
            sides = dict(d_model=d_model, rngs=rngs, positional=positional, **mixer)
            self.encoder = Encoder(
                enc_name,
                depth=depth,
                vocab_size=source_vocab_size,
                max_length=max_source_length,
                mixer_options=enc_options,
                bidirectional=bidirectional,
                **sides,
                **block_options,
            )
            self.decoder = Encoder(
                dec_name,
                depth=decoder_depth,
                vocab_size=target_vocab_size,
                max_length=max_target_length,
                mixer_options=dec_options,
                **sides,
                **block_options,
            )
            norm = block_options.get("norm", "layernorm")
            self.cross = (
                nnx.List(
                    [CrossLayer(d_model, heads, norm, rngs=rngs) for _ in range(decoder_depth)]
                )
                if attention == "cross"
                else None
            )
        self.head = nnx.Linear(d_model, target_vocab_size, rngs=rngs)
        if init_state == "encoder":
            self._check_bridge(encoder, decoder)

    @staticmethod
    def _memory_options(
        name: str,
        options: Mapping[str, Any] | None,
        *,
        causal: bool,
        heads: int,
        max_length: int | None,
    ) -> tuple[str, dict[str, Any]]:
        """The registered memory name and options for ``name`` on one side."""
        options = dict(options or {})
        if name == TRANSFORMER:
            name = "attention"
            options.setdefault("causal", causal)
            options.setdefault("heads", heads)
        cells.lookup(name)
        if name == "attention" and max_length is not None:
            options.setdefault("max_length", max_length)
        return name, options

    def encoder_mixers(self) -> list[Mixer]:
        """The encoder's memory layers, first to last."""
        if self.style == "classic":
            return list(self.encoder_layers)
        return [block.mixer for block in self.encoder.blocks]

    def decoder_mixers(self) -> list[Mixer]:
        """The decoder's memory layers, first to last."""
        if self.style == "classic":
            return list(self.decoder_layers)
        return [block.mixer for block in self.decoder.blocks]

    def _check_bridge(self, encoder: str, decoder: str) -> None:
        """``init_state="encoder"``: ValueError unless layer ``l`` of the decoder can start from
        the final state of layer ``l`` of the encoder."""
        enc, dec = self.encoder_mixers(), self.decoder_mixers()
        fix = "; expected init_state='zeros' or matching encoder and decoder memories"
        why = None
        if isinstance(dec[0].memory, Attention) or isinstance(enc[0].memory, Attention):
            why = (
                "attention's state is a KV cache of the tokens it has read: the encoder's cache "
                "holds the source, not a state for the decoder to continue"
            )
        elif type(enc[0].memory) is not type(dec[0].memory):
            why = (
                f"the encoder runs {type(enc[0].memory).__name__} and the decoder "
                f"{type(dec[0].memory).__name__}; one's state is not the other's"
            )
        elif len(enc) != len(dec):
            why = f"the encoder has {len(enc)} layers and the decoder {len(dec)}"
        else:
            for i, (e, d) in enumerate(zip(enc, dec, strict=True)):
                shape = lambda m: jax.tree.map(
                    lambda a: (a.shape, a.dtype),
                    jax.eval_shape(lambda m=m: m.memory.initial_carry(m.values(), (1,))),
                )
                if jax.tree.structure(shape(e)) != jax.tree.structure(shape(d)) or (
                    jax.tree.leaves(shape(e)) != jax.tree.leaves(shape(d))
                ):
                    why = (
                        f"layer {i}: the encoder's state {shape(e)} and the decoder's "
                        f"{shape(d)} differ (width or options)"
                    )
                    break
        if why is not None:
            raise ValueError(
                f"init_state='encoder' starts decoder layer l from encoder layer l's final "
                f"state (encoder {encoder!r}, decoder {decoder!r}), but {why}{fix}"
            )

    # ------------------------------------------------------------------ encoder

    def encode(self, inputs: Array, mask: Array | None = None) -> dict[str, Any]:
        """Read the source once: the context every decoder step uses.

        Returns ``{"states": h [B, S, D], "mask": bool [B, S], "keys": what the attention
        precomputes from h (Bahdanau ``U h``, Luong ``W_a h``, per cross layer ``(k, v)``; None
        without attention), "state": the decoder's initial state}``.
        """
        if inputs.ndim != 2 or not jnp.issubdtype(inputs.dtype, jnp.integer):
            raise ValueError(f"inputs must be int tokens [batch, time], got {inputs.shape}")
        batch, length = inputs.shape
        valid = jnp.ones((batch, length), bool) if mask is None else jnp.asarray(mask, bool)
        carries = []
        if self.style == "classic":
            x = self.dropout(self.source_embed(inputs))
            last = len(self.encoder_layers) - 1
            for i, layer in enumerate(self.encoder_layers):
                x, carry, top = run_mixer(layer, x, valid)
                carries.append(carry)
                if i < last:
                    x = self.dropout(x)
            states = x
        else:
            encoder = self.encoder
            x = encoder.add_positions(encoder.embed_inputs(inputs))
            for block in encoder.blocks:
                outputs = {}

                def mix(u, block=block, outputs=outputs):
                    ys, carry, outputs["top"] = run_mixer(block.mixer, u, valid)
                    return ys, carry

                x, carry = apply_block(block, x, valid, mix)
                carries.append(carry)
                top = outputs["top"]
            states = x if encoder.norm is None else apply_norm(encoder.norm, x, valid)
        if self.attention in ("bahdanau", "luong_dot", "luong_general"):
            keys = self.scorer.keys(states)
        elif self.attention == "cross":
            keys = tuple(layer.attention.keys(states) for layer in self.cross)
        else:
            keys = None
        if self.init_state == "encoder":
            layers = tuple(carries)
            query = pool(top, valid, "last").astype(jnp.float32)
        else:
            layers = tuple(
                m.memory.initial_carry(m.values(), (batch,)) for m in self.decoder_mixers()
            )
            query = jnp.zeros((batch, self.d_model), jnp.float32)
        state = {"layers": layers, "query": query, "t": jnp.zeros((batch,), jnp.int32)}
        return {"states": states, "mask": valid, "keys": keys, "state": state}

    # ------------------------------------------------------------------ decoder

    def _teacher_forced(
        self, context: dict[str, Any], targets_in: Array, target_mask: Array | None
    ) -> Array:
        """All decoder steps at once from the targets (no Bahdanau: it needs s_{t-1})."""
        start = context["state"]["layers"] if self.init_state == "encoder" else None
        carry = lambda i: None if start is None else start[i]
        source_mask = context["mask"]
        if self.style == "classic":
            x = self.dropout(self.target_embed(targets_in))
            last = len(self.decoder_layers) - 1
            for i, layer in enumerate(self.decoder_layers):
                x, _, _ = run_mixer(layer, x, target_mask, carry(i))
                if i < last:
                    x = self.dropout(x)
            if self.scorer is not None:
                x, _ = self.scorer(x, context["keys"], context["states"], source_mask)
        else:
            decoder = self.decoder
            x = decoder.add_positions(decoder.embed_inputs(targets_in))
            for i, block in enumerate(decoder.blocks):
                mix = lambda u, block=block, i=i: run_mixer(block.mixer, u, target_mask, carry(i))[
                    :2
                ]
                cross, source = self._cross(context, i)
                x, _ = apply_block(block, x, target_mask, mix, cross, source)
            x = x if decoder.norm is None else apply_norm(decoder.norm, x, target_mask)
        return self.head(x).astype(jnp.float32)

    def _cross(self, context: dict[str, Any], i: int) -> tuple[CrossLayer | None, Any]:
        if self.attention != "cross":
            return None, None
        return self.cross[i], (context["keys"][i], context["mask"])

    def decode_step(
        self, context: dict[str, Any], state: dict[str, Any], token: Array
    ) -> tuple[dict[str, Any], Array]:
        """One decoder step through each memory's streaming face.

        ``token [B]`` is the previous output (BOS first); returns the new state and the logits
        ``[B, V]`` (float32) of the next token.
        """
        layers = []
        if self.style == "classic":
            x = self.dropout(self.target_embed(token))
            if self.attention == "bahdanau":
                c, _ = self.scorer(
                    state["query"].astype(x.dtype),
                    context["keys"],
                    context["states"],
                    context["mask"],
                )
                x = jnp.concatenate([x, c.astype(x.dtype)], axis=-1)
            last = len(self.decoder_layers) - 1
            for i, layer in enumerate(self.decoder_layers):
                carry, x = layer.step(state["layers"][i], x)
                layers.append(carry)
                if i < last:
                    x = self.dropout(x)
            query = x
            if self.scorer is not None and self.attention != "bahdanau":
                x = self.scorer(x[:, None], context["keys"], context["states"], context["mask"])[0][
                    :, 0
                ]
        else:
            decoder = self.decoder
            x = _position_at(decoder, decoder.embed_inputs(token[:, None]), state["t"])
            for i, block in enumerate(decoder.blocks):

                def mix(u, block=block, i=i):
                    carry, y = block.mixer.step(state["layers"][i], u[:, 0])
                    return y[:, None], carry

                cross, source = self._cross(context, i)
                x, carry = apply_block(block, x, None, mix, cross, source)
                layers.append(carry)
            x = (x if decoder.norm is None else apply_norm(decoder.norm, x, None))[:, 0]
            query = x
        new_state = {
            "layers": tuple(layers),
            "query": query.astype(jnp.float32),
            "t": state["t"] + 1,
        }
        return new_state, self.head(x).astype(jnp.float32)

    def functional_step(self) -> tuple[Callable, Any]:
        """:meth:`decode_step` as a pure function, for loops (``lax.scan``/``while_loop``).

        Returns ``(step, rest)``: ``step(rest, context, state, token) -> (rest, state,
        logits)``, where ``rest`` is the model's non-parameter state (dropout rng counts), which
        a loop carries; after the loop, ``nnx.update(model, rest)``.
        """
        graphdef, params, rest = nnx.split(self, nnx.Param, ...)

        def step(rest, context, state, token):
            model = nnx.merge(graphdef, params, rest)
            state, logits = model.decode_step(context, state, token)
            return nnx.split(model, nnx.Param, ...)[2], state, logits

        return step, rest

    def _stepwise(
        self,
        context: dict[str, Any],
        targets_in: Array,
        teacher_forcing: float | Array | None,
        rng: Array | None,
    ) -> Array:
        """Every decoder step through :meth:`decode_step` in one ``lax.scan``; sequences not
        teacher-forced (probability ``1 - teacher_forcing``) read their own greedy outputs."""
        batch, length = targets_in.shape
        if teacher_forcing is None:
            forced = jnp.ones((batch,), bool)
        else:
            forced = jax.random.bernoulli(rng, teacher_forcing, (batch,))
        step, rest = self.functional_step()

        def body(carry, inputs):
            rest, state, fed_back = carry
            t, target = inputs
            token = jnp.where(forced | (t == 0), target, fed_back)
            rest, state, logits = step(rest, context, state, token)
            prediction = jnp.argmax(allowed_logits(jax.lax.stop_gradient(logits)), axis=-1)
            return (rest, state, prediction.astype(token.dtype)), logits

        start = (rest, context["state"], jnp.zeros((batch,), targets_in.dtype))
        inputs = (jnp.arange(length), jnp.swapaxes(targets_in, 0, 1))
        (rest, _, _), logits = jax.lax.scan(body, start, inputs)
        nnx.update(self, rest)
        return jnp.swapaxes(logits, 0, 1)

    def __call__(
        self,
        inputs: Array,
        mask: Array | None,
        targets_in: Array,
        *,
        teacher_forcing: float | Array = 1.0,
        rng: Array | None = None,
        target_mask: Array | None = None,
        stream: bool = False,
    ) -> Array:
        """Training forward: ``logits [B, M, V]`` (float32) of ``targets`` given
        ``targets_in = [BOS, targets[:, :-1]]`` (int ``[B, M]``).

        Args:
          inputs, mask: source tokens ``[B, S]`` and validity (None: all valid).
          targets_in: decoder inputs; position 0 is always read as given (BOS).
          teacher_forcing: probability that a sequence reads the targets; the rest read their
            own greedy predictions (Lake & Baroni: 0.5). A Python 1.0 (the default) runs the
            full parallel pass where the decoder allows it.
          rng: a ``jax.random`` key, needed when ``teacher_forcing`` is not the Python 1.0.
          target_mask: bool ``[B, M]`` validity of ``targets_in`` (optional: the decoder is
            causal, so padding never reaches valid positions; a full pass zeroes padded steps).
          stream: run the steps through the streaming face even with full teacher forcing
            (what decoding computes; equal to the full pass).
        """
        if targets_in.ndim != 2 or not jnp.issubdtype(targets_in.dtype, jnp.integer):
            raise ValueError(f"targets_in must be int tokens [batch, M], got {targets_in.shape}")
        context = self.encode(inputs, mask)
        concrete = isinstance(teacher_forcing, int | float) and not isinstance(
            teacher_forcing, bool
        )
        if concrete and not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing!r}")
        full = concrete and teacher_forcing == 1.0
        if not full and rng is None:
            raise ValueError(
                f"teacher_forcing={teacher_forcing!r} < 1 draws which sequences read their own "
                "predictions; expected rng=<jax.random key>"
            )
        if full and not stream and self.attention != "bahdanau":
            return self._teacher_forced(
                context, targets_in, None if target_mask is None else jnp.asarray(target_mask, bool)
            )
        return self._stepwise(context, targets_in, None if full else teacher_forcing, rng)


def state_breakdown(model: Seq2Seq, source_length: int, target_length: int) -> dict[str, int]:
    """Bytes one sequence holds while decoding ``target_length`` tokens from
    ``source_length`` source tokens, by part (float32 throughout):

    - ``"decoder"``: every decoder memory's state after ``target_length`` steps
      (``Memory.state_bytes``: constant for a recurrence, ``2 N H 4 t`` for a KV cache);
    - ``"query"``: Bahdanau's ``s_{t-1}`` (``4 D``);
    - ``"source"``: the encoder states attention reads and what it precomputes from them:
      Bahdanau ``h`` and ``U h`` (``4 S (D + A)``), Luong ``h`` (and ``W_a h`` for
      "general"), cross-attention ``k, v`` per layer (``2 N H 4 S`` each); 0 without attention.
    """
    for argument, value in (("source_length", source_length), ("target_length", target_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{argument} must be a non-negative int, got {value!r}")
    decoder = sum(m.memory.state_bytes(m.values(), target_length) for m in model.decoder_mixers())
    query, source = 0, 0
    float_bytes = jnp.dtype(jnp.float32).itemsize
    if model.attention == "bahdanau":
        query = float_bytes * model.d_model
        features = model.scorer.v.shape[0]
        source = float_bytes * source_length * (model.d_model + features)
    elif model.attention == "luong_dot":
        source = float_bytes * source_length * model.d_model
    elif model.attention == "luong_general":
        source = 2 * float_bytes * source_length * model.d_model
    elif model.attention == "cross":
        source = source_length * sum(layer.attention.bytes_per_token() for layer in model.cross)
    return {"decoder": int(decoder), "query": int(query), "source": int(source)}


def state_bytes(model: Seq2Seq, source_length: int, target_length: int) -> int:
    """Total bytes of :func:`state_breakdown`: what decoding holds per sequence."""
    return sum(state_breakdown(model, source_length, target_length).values())
