"""Decoding a :class:`memjax.seq2seq.Seq2Seq` through its streaming face: greedy, beam search
and Lake & Baroni's oracle length.

All three encode the source once (:meth:`Seq2Seq.encode`) and then call
:meth:`Seq2Seq.decode_step` once per output token, carrying each decoder memory's state (the
recurrent state, or the KV cache of attention). Each is one compiled program (``nnx.jit``, the
length static) around a ``jax.lax.while_loop`` of at most ``max_length`` steps that stops once
every sequence (every beam) has emitted EOS.

Outputs follow the layout of :mod:`memjax.data`'s targets: ``tokens int32 [B, max_length]``
holding the emitted ids, EOS included, and 0 after EOS; a sequence that reaches
``max_length`` without EOS simply ends there. Decoders never emit PAD (0) or BOS (1)
(:func:`memjax.seq2seq.allowed_logits`). Scores are log-probabilities under the model,
``log p(y) = sum_t log softmax(logits_t)[y_t]`` over the emitted tokens (EOS included), with
no renormalisation over the allowed ids.

Oracle length (Lake & Baroni 2018, Experiment 2): decoding is told each target's length
``n`` (EOS included, ``target_mask.sum(-1)``): EOS is forbidden at steps ``t < n - 1`` and
forced at step ``n - 1``, so the output has exactly ``n - 1`` actions and EOS.

Beam search (``beam``): ``k`` hypotheses per sequence, the first step expanded from one. At
each step every live hypothesis is extended by every allowed token; a finished one (it
emitted EOS) continues only with PAD at no cost. The ``k`` best of the ``k V`` extensions
by log-probability survive. At the end the hypotheses are ranked by
``log p(y) / lp(|y|)`` with Wu et al. (2016)'s length penalty
``lp(n) = ((5 + n) / 6)^alpha`` (``length_penalty=alpha``; 0, the default, ranks by
log-probability itself; ``|y|`` counts EOS) and returned best first with those scores.
The search itself ranks by the raw log-probability; the length penalty applies only to the
final ranking (with ``alpha = 0`` the two agree). ``beam_size=1`` is greedy search.

The model runs as it is: call ``model.eval()`` first so that dropout is off.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from memjax.attention import Attention
from memjax.seq2seq import Seq2Seq, allowed_logits
from memjax.tasks.spec import BOS, EOS

Array = jax.Array

__all__ = ["beam", "greedy", "log_probability", "oracle_length"]


def _check(model: Seq2Seq, inputs: Array, max_length: int) -> None:
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"model must be a memjax.seq2seq.Seq2Seq, got {type(model).__name__}")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    for mixer in model.decoder_mixers():
        memory = mixer.memory
        if isinstance(memory, Attention) and memory.position_limit is not None:
            if max_length > memory.position_limit:
                raise ValueError(
                    f"max_length={max_length} outruns the decoder's attention, which holds "
                    f"max_length={memory.position_limit} tokens (KV cache / positions); "
                    "expected a smaller max_length or a larger max_target_length"
                )
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be int tokens [batch, time], got shape {inputs.shape}")


def _constrain(logp: Array, t: Array, lengths: Array | None) -> Array:
    """Allowed log-probabilities ``[N, V]`` at step ``t``: PAD and BOS never; with oracle
    ``lengths [N]`` (EOS included), EOS only at ``t = n - 1``, and only EOS there."""
    logp = allowed_logits(logp)
    if lengths is None:
        return logp
    vocab = jnp.arange(logp.shape[-1])[None, :]
    at_end = (t == lengths - 1)[:, None]
    allowed = jnp.where(at_end, vocab == EOS, vocab != EOS)
    return jnp.where(allowed, logp, -jnp.inf)


def _start(model: Seq2Seq, inputs: Array, mask: Array | None):
    context = model.encode(inputs, mask)
    step, rest = model.functional_step()
    return context, step, rest


def _lengths(target_lengths: Array | None, batch: int, max_length: int) -> Array | None:
    if target_lengths is None:
        return None
    lengths = jnp.asarray(target_lengths, jnp.int32)
    if lengths.shape != (batch,):
        raise ValueError(f"target_lengths must have shape ({batch},), got {lengths.shape}")
    return jnp.clip(lengths, 1, max_length)


@functools.partial(nnx.jit, static_argnames=("max_length",))
def _greedy(
    model: Seq2Seq, inputs: Array, mask: Array | None, target_lengths: Array | None, max_length: int
) -> tuple[Array, Array]:
    batch = inputs.shape[0]
    lengths = _lengths(target_lengths, batch, max_length)
    context, step, rest = _start(model, inputs, mask)

    def running(carry):
        t, done = carry[0], carry[3]
        return (t < max_length) & ~jnp.all(done)

    def body(carry):
        t, rest, state, done, previous, tokens, score = carry
        rest, state, logits = step(rest, context, state, previous)
        logp = _constrain(jax.nn.log_softmax(logits, axis=-1), t, lengths)
        token = jnp.argmax(logp, axis=-1).astype(jnp.int32)
        gained = jnp.take_along_axis(logp, token[:, None], axis=-1)[:, 0]
        token = jnp.where(done, 0, token)
        score = score + jnp.where(done, 0.0, gained)
        tokens = tokens.at[:, t].set(token)
        return t + 1, rest, state, done | (token == EOS), token, tokens, score

    start = (
        jnp.int32(0),
        rest,
        context["state"],
        jnp.zeros((batch,), bool),
        jnp.full((batch,), BOS, jnp.int32),
        jnp.zeros((batch, max_length), jnp.int32),
        jnp.zeros((batch,), jnp.float32),
    )
    _, rest, _, _, _, tokens, score = jax.lax.while_loop(running, body, start)
    nnx.update(model, rest)
    return tokens, score


def greedy(
    model: Seq2Seq,
    inputs: Array,
    mask: Array | None,
    max_length: int,
    *,
    return_scores: bool = False,
) -> Array | tuple[Array, Array]:
    """Greedy decoding: ``tokens int32 [B, max_length]`` (EOS included, 0 after it), and with
    ``return_scores`` their log-probabilities ``[B]`` as well."""
    _check(model, inputs, max_length)
    tokens, score = _greedy(model, inputs, mask, None, max_length=max_length)
    return (tokens, score) if return_scores else tokens


def oracle_length(
    model: Seq2Seq,
    inputs: Array,
    mask: Array | None,
    target_lengths: Array,
    max_length: int,
    *,
    return_scores: bool = False,
) -> Array | tuple[Array, Array]:
    """Greedy decoding of exactly ``target_lengths [B]`` tokens each, EOS included (pass
    ``target_mask.sum(-1)``): EOS forbidden before the last step and forced at it (module
    docstring). Lengths are clipped to ``[1, max_length]``."""
    _check(model, inputs, max_length)
    tokens, score = _greedy(model, inputs, mask, target_lengths, max_length=max_length)
    return (tokens, score) if return_scores else tokens


@functools.partial(nnx.jit, static_argnames=("max_length", "beam_size"))
def _beam(
    model: Seq2Seq,
    inputs: Array,
    mask: Array | None,
    target_lengths: Array | None,
    length_penalty: Array,
    max_length: int,
    beam_size: int,
) -> tuple[Array, Array]:
    batch, k = inputs.shape[0], beam_size
    lengths = _lengths(target_lengths, batch, max_length)
    context, step, rest = _start(model, inputs, mask)
    tile = lambda a: jnp.repeat(a, k, axis=0)
    context = jax.tree.map(tile, context)
    beam_lengths = None if lengths is None else tile(lengths)
    rows = jnp.arange(batch)[:, None]

    def regroup(a: Array, parent: Array) -> Array:
        """``a [B k, ...]`` reordered so that hypothesis ``(b, i)`` is ``(b, parent[b, i])``."""
        grouped = a.reshape(batch, k, *a.shape[1:])[rows, parent]
        return grouped.reshape(batch * k, *a.shape[1:])

    def running(carry):
        t, done = carry[0], carry[3]
        return (t < max_length) & ~jnp.all(done)

    def body(carry):
        t, rest, state, done, previous, tokens, score, length = carry
        rest, state, logits = step(rest, context, state, previous)
        logp = _constrain(jax.nn.log_softmax(logits, axis=-1), t, beam_lengths)
        vocab = logp.shape[-1]
        finished = jnp.where(jnp.arange(vocab) == 0, 0.0, -jnp.inf)
        logp = jnp.where(done.reshape(-1)[:, None], finished[None, :], logp)
        candidates = score[:, :, None] + logp.reshape(batch, k, vocab)
        score, index = jax.lax.top_k(candidates.reshape(batch, k * vocab), k)
        parent, token = index // vocab, (index % vocab).astype(jnp.int32)
        state = jax.tree.map(lambda a: regroup(a, parent), state)
        tokens = tokens[rows, parent].at[:, :, t].set(token)
        was_done = done[rows, parent]
        length = length[rows, parent] + jnp.where(was_done, 0, 1)
        done = was_done | (token == EOS)
        return t + 1, rest, state, done, token.reshape(-1), tokens, score, length

    first = jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf)
    start = (
        jnp.int32(0),
        rest,
        context["state"],
        jnp.zeros((batch, k), bool),
        jnp.full((batch * k,), BOS, jnp.int32),
        jnp.zeros((batch, k, max_length), jnp.int32),
        jnp.broadcast_to(first, (batch, k)).astype(jnp.float32),
        jnp.zeros((batch, k), jnp.int32),
    )
    _, rest, _, _, _, tokens, score, length = jax.lax.while_loop(running, body, start)
    nnx.update(model, rest)
    score = score / ((5.0 + length) / 6.0) ** length_penalty  # alpha = 0: divides by 1
    order = jnp.argsort(-score, axis=-1, stable=True)
    return tokens[rows, order], score[rows, order]


def beam(
    model: Seq2Seq,
    inputs: Array,
    mask: Array | None,
    max_length: int,
    beam_size: int = 4,
    *,
    length_penalty: float = 0.0,
    target_lengths: Array | None = None,
) -> tuple[Array, Array]:
    """Beam search (module docstring): ``(tokens int32 [B, k, max_length], scores [B, k])``,
    best first. ``length_penalty`` is GNMT's ``alpha`` (0: plain log-probability);
    ``target_lengths`` imposes oracle lengths as :func:`oracle_length` does."""
    _check(model, inputs, max_length)
    if not isinstance(beam_size, int) or isinstance(beam_size, bool) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty!r}")
    return _beam(
        model,
        inputs,
        mask,
        target_lengths,
        jnp.float32(length_penalty),
        max_length=max_length,
        beam_size=beam_size,
    )


@nnx.jit
def log_probability(model: Seq2Seq, inputs: Array, mask: Array | None, tokens: Array) -> Array:
    """``log p(tokens | inputs)`` ``[B]`` under teacher forcing, summed up to and including
    the first EOS (or over all of ``tokens [B, M]`` when there is none): the score greedy
    and beam search report for the sequences they return."""
    tokens = jnp.asarray(tokens, jnp.int32)
    targets_in = jnp.concatenate(
        [jnp.full((tokens.shape[0], 1), BOS, jnp.int32), tokens[:, :-1]], axis=1
    )
    logits = model(inputs, mask, targets_in)
    logp = allowed_logits(jax.nn.log_softmax(logits, axis=-1))
    gained = jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
    is_eos = tokens == EOS
    before = jnp.cumsum(is_eos, axis=1) - is_eos  # EOS seen strictly before step t
    return jnp.where(before == 0, gained, 0.0).sum(axis=1)
