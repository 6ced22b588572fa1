"""Seq2Seq (memjax.seq2seq), its attention (memjax.seq2seq_attention) and decoding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import memjax.tasks as tasks
from memjax import data, decoding
from memjax.seq2seq import Seq2Seq, allowed_logits, state_breakdown, state_bytes
from memjax.seq2seq_attention import Bahdanau
from memjax.tasks.spec import BOS, EOS

B, S, M, V, SOURCE_VOCAB, D = 3, 7, 6, 9, 14, 16
SOURCE_LENGTHS = np.array([7, 4, 5])
CONFIGS = {
    "lstm-bahdanau": dict(encoder="lstm", attention="bahdanau", depth=1),
    "gru-luong": dict(encoder="gru", attention="luong_general"),
    "lstm-bridge": dict(encoder="lstm"),
    "transformer": dict(encoder="transformer"),
}


def build(name, **overrides):
    options = dict(
        d_model=D,
        depth=2,
        source_vocab_size=SOURCE_VOCAB,
        target_vocab_size=V,
        max_target_length=M + 4,
        rngs=nnx.Rngs(0),
    )
    options.update(CONFIGS[name])
    options.update(overrides)
    model = Seq2Seq(**options)
    model.eval()
    return model


@functools.cache
def model_for(name):
    return build(name)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    mask = np.arange(S)[None] < SOURCE_LENGTHS[:, None]
    inputs = np.where(mask, rng.integers(1, SOURCE_VOCAB, (B, S)), 0)
    targets = rng.integers(3, V, (B, M))
    targets_in = np.concatenate([np.full((B, 1), BOS), targets[:, :-1]], axis=1)
    as_int = lambda a: jnp.asarray(a, jnp.int32)
    return as_int(inputs), jnp.asarray(mask), as_int(targets), as_int(targets_in)


@nnx.jit
def full_pass(model, inputs, mask, targets_in):
    return model(inputs, mask, targets_in)


@nnx.jit
def step(model, context, state, token):
    return model.decode_step(context, state, token)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_streaming_steps_equal_the_teacher_forced_full_pass(name):
    model = model_for(name)
    inputs, mask, _, targets_in = batch()
    full = full_pass(model, inputs, mask, targets_in)
    context = nnx.jit(lambda m, a, b: m.encode(a, b))(model, inputs, mask)
    state, logits = context["state"], []
    for t in range(M):
        state, out = step(model, context, state, targets_in[:, t])
        logits.append(out)
    np.testing.assert_allclose(np.stack(logits, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["lstm-bahdanau", "gru-luong", "transformer"])
def test_padding_changes_nothing(name):
    model = model_for(name)
    inputs, mask, _, targets_in = batch()
    logits = full_pass(model, inputs, mask, targets_in)
    junk = jnp.asarray(np.random.default_rng(1).integers(1, SOURCE_VOCAB, (B, 3)), jnp.int32)
    long_inputs = jnp.concatenate([jnp.where(mask, inputs, 5), junk], axis=1)
    long_mask = jnp.concatenate([mask, jnp.zeros((B, 3), bool)], axis=1)
    long_targets_in = jnp.concatenate([targets_in, jnp.full((B, 2), 4, jnp.int32)], axis=1)
    padded = full_pass(model, long_inputs, long_mask, long_targets_in)
    np.testing.assert_allclose(padded[:, :M], logits, atol=1e-5, rtol=1e-5)


def test_encoder_state_is_the_last_valid_tokens_state():
    model = model_for("lstm-bridge")
    inputs, mask, _, _ = batch()
    encode = nnx.jit(lambda m, a, b: m.encode(a, b))
    padded = encode(model, inputs, mask)["state"]["layers"]
    for b, n in enumerate(SOURCE_LENGTHS):
        alone = encode(model, inputs[b : b + 1, :n], None)["state"]["layers"]
        for layer_padded, layer_alone in zip(padded, alone, strict=True):
            for key in ("c", "h"):
                np.testing.assert_allclose(
                    layer_padded[key][b], layer_alone[key][0], atol=1e-6, rtol=1e-6
                )
    # The decoder starts there: layer l of the decoder from layer l of the encoder.
    assert len(padded) == 2 and model.init_state == "encoder"


def test_greedy_is_beam_one_and_wider_beams_score_at_least_greedy():
    model = model_for("gru-luong")
    inputs, mask, _, _ = batch()
    tokens, score = decoding.greedy(model, inputs, mask, M + 2, return_scores=True)
    beam_tokens, beam_scores = decoding.beam(model, inputs, mask, M + 2, beam_size=1)
    np.testing.assert_array_equal(beam_tokens[:, 0], tokens)
    np.testing.assert_allclose(beam_scores[:, 0], score, rtol=1e-5)
    # Scores are the model's log-probabilities of what it returns.
    np.testing.assert_allclose(
        decoding.log_probability(model, inputs, mask, tokens), score, rtol=1e-4, atol=1e-5
    )
    wide_tokens, wide_scores = decoding.beam(model, inputs, mask, M + 2, beam_size=4)
    assert wide_tokens.shape == (B, 4, M + 2) and wide_scores.shape == (B, 4)
    assert np.all(np.diff(np.asarray(wide_scores), axis=1) <= 0)
    assert np.all(wide_scores[:, 0] >= score - 1e-5)
    for i in range(4):
        np.testing.assert_allclose(
            decoding.log_probability(model, inputs, mask, wide_tokens[:, i]),
            wide_scores[:, i],
            rtol=1e-4,
            atol=1e-4,
        )
    # Length normalisation ranks by log p / ((5 + |y|) / 6)^alpha, still sorted.
    _, normalised = decoding.beam(model, inputs, mask, M + 2, beam_size=4, length_penalty=0.6)
    assert np.all(np.diff(np.asarray(normalised), axis=1) <= 0)
    # Nothing after EOS, never PAD or BOS before it.
    for row in np.asarray(wide_tokens).reshape(-1, M + 2):
        end = np.flatnonzero(row == EOS)
        body = row[: end[0]] if len(end) else row
        assert np.all(body >= 3) and (not len(end) or np.all(row[end[0] + 1 :] == 0))


@pytest.mark.parametrize("name", ["lstm-bridge", "transformer"])
def test_oracle_length_returns_exactly_the_target_length(name):
    model = model_for(name)
    inputs, mask, _, _ = batch()
    lengths = jnp.asarray([1, 4, M + 2], jnp.int32)
    tokens = np.asarray(decoding.oracle_length(model, inputs, mask, lengths, M + 2))
    for row, n in zip(tokens, np.asarray(lengths), strict=True):
        assert row[n - 1] == EOS and np.all(row[: n - 1] >= 3) and np.all(row[n:] == 0)
    if name == "transformer":
        return
    beam_tokens, _ = decoding.beam(model, inputs, mask, M + 2, 2, target_lengths=lengths)
    np.testing.assert_array_equal(np.asarray(beam_tokens[:, 0] == EOS).argmax(1), lengths - 1)


def test_free_running_sequences_read_their_own_greedy_outputs():
    model = model_for("lstm-bahdanau")
    inputs, mask, _, targets_in = batch()
    run = nnx.jit(lambda m, a, b, c, key: m(a, b, c, teacher_forcing=0.0, rng=key))
    logits = run(model, inputs, mask, targets_in, jax.random.key(0))
    predicted = np.asarray(jnp.argmax(allowed_logits(logits), -1))
    greedy = np.asarray(decoding.greedy(model, inputs, mask, M))
    for row_predicted, row_greedy in zip(predicted, greedy, strict=True):
        end = np.flatnonzero(row_greedy == EOS)
        n = end[0] + 1 if len(end) else M
        np.testing.assert_array_equal(row_predicted[:n], row_greedy[:n])
    # teacher_forcing=1.0 given as a traced value takes the step path: the same numbers.
    forced = nnx.jit(lambda m, a, b, c, p, key: m(a, b, c, teacher_forcing=p, rng=key))
    np.testing.assert_allclose(
        forced(model, inputs, mask, targets_in, jnp.float32(1.0), jax.random.key(0)),
        full_pass(model, inputs, mask, targets_in),
        atol=1e-6,
    )


def test_bahdanau_matches_its_equation_in_float64():
    rng = np.random.default_rng(0)
    dq, dk, a, length = 5, 6, 7, 4
    scorer = Bahdanau(dq, dk, a, rngs=nnx.Rngs(3))
    query = rng.normal(size=(2, dq)).astype(np.float32)
    states = rng.normal(size=(2, length, dk)).astype(np.float32)
    mask = np.array([[True] * 4, [True, True, False, False]])
    context, weights = scorer(jnp.asarray(query), scorer.keys(jnp.asarray(states)), states, mask)
    w = np.asarray(scorer.w.kernel[...], np.float64)
    u = np.asarray(scorer.u.kernel[...], np.float64)
    v = np.asarray(scorer.v[...], np.float64)
    q64, h64 = query.astype(np.float64), states.astype(np.float64)
    for b in range(2):
        n = mask[b].sum()
        e = np.array([v @ np.tanh(q64[b] @ w + h64[b, j] @ u) for j in range(n)])
        alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        np.testing.assert_allclose(weights[b, :n], alpha, rtol=1e-5, atol=1e-6)
        assert np.all(np.asarray(weights[b, n:]) == 0)
        np.testing.assert_allclose(context[b], alpha @ h64[b, :n], rtol=1e-5, atol=1e-6)


def test_blocks_encoder_matches_models_encoder():
    model = model_for("transformer")
    inputs, mask, _, _ = batch()
    ours = nnx.jit(lambda m, a, b: m.encode(a, b)["states"])(model, inputs, mask)
    theirs = nnx.jit(lambda m, a, b: m.encoder(a, b))(model, inputs, mask)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_build_time_refusals():
    with pytest.raises(ValueError, match="cannot decode.*causal=False"):
        build("transformer", decoder_options={"causal": False})
    with pytest.raises(ValueError, match="bidirectional decoder"):
        build("lstm-bridge", decoder_bidirectional=True)
    with pytest.raises(ValueError, match="LSTM and the decoder GRU"):
        build("lstm-bridge", decoder="gru", init_state="encoder")
    with pytest.raises(ValueError, match="2 layers and the decoder 1"):
        build("lstm-bridge", decoder_depth=1)
    with pytest.raises(ValueError, match="KV cache"):
        build("transformer", init_state="encoder")
    with pytest.raises(ValueError, match="classic stacked decoder"):
        build("lstm-bridge", attention="cross")
    with pytest.raises(ValueError, match="rng="):
        model_for("lstm-bridge")(*batch()[:2], batch()[3], teacher_forcing=0.5)
    # What init_state='zeros' allows: any causal decoder, of any depth.
    build("lstm-bridge", decoder="gru", decoder_depth=1, init_state="zeros", depth=1)


def test_state_bytes():
    bridge = state_breakdown(model_for("lstm-bridge"), 9, 49)
    assert bridge == {"decoder": 2 * 2 * D * 4, "query": 0, "source": 0}
    bahdanau = state_breakdown(model_for("lstm-bahdanau"), 9, 49)
    assert bahdanau == {"decoder": 2 * D * 4, "query": D * 4, "source": 9 * 2 * D * 4}
    transformer = model_for("transformer")
    # Decoder self-attention: K and V of every target token; cross-attention: of every source.
    assert state_bytes(transformer, 9, 8) == 2 * (2 * 8 * D * 4) + 2 * (2 * 9 * D * 4)


def test_memorises_twenty_scan_pairs():
    task = tasks.get("scan", split="simple")
    source = task.source("train")
    examples = [data.encode(task.spec, source[i]) for i in range(20)]
    s = max(int(e["mask"].sum()) for e in examples)
    m = max(int(e["target_mask"].sum()) for e in examples)
    stack = lambda key, n: jnp.asarray(np.stack([e[key][:n] for e in examples]))
    inputs, mask = stack("inputs", s), stack("mask", s)
    targets, target_mask = stack("targets", m), stack("target_mask", m)
    targets_in = jnp.concatenate([jnp.full((20, 1), BOS, jnp.int32), targets[:, :-1]], axis=1)
    model = Seq2Seq(
        "lstm",
        source_vocab_size=task.spec.vocab_size,
        target_vocab_size=task.spec.target_vocab_size,
        d_model=64,
        depth=1,
        attention="bahdanau",
        dropout=0.0,
        max_target_length=m,
        rngs=nnx.Rngs(0),
    )
    steps = 250
    schedule = optax.cosine_decay_schedule(2e-2, steps)
    # Lake & Baroni: Adam, gradients clipped at norm 5.
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(5.0), optax.adam(schedule)), wrt=nnx.Param
    )

    @nnx.jit
    def train_step(model, optimizer, key):
        def loss_fn(model):
            # Lake & Baroni: half of the sequences read the model's own outputs.
            logits = model(inputs, mask, targets_in, teacher_forcing=0.5, rng=key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            return (loss * target_mask).sum() / target_mask.sum()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    key = jax.random.key(0)
    for _ in range(steps):
        key, sub = jax.random.split(key)
        loss = train_step(model, optimizer, sub)
    model.eval()
    tokens = decoding.greedy(model, inputs, mask, m)
    exact = np.all(np.asarray(tokens) == np.asarray(targets), axis=1)
    assert exact.all(), f"exact match on {exact.sum()} of 20 pairs, final loss {float(loss)}"
