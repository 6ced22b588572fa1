"""Flax NNX models around every registered memory: forward, backward, budgets, pooling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax
from memjax import budget, models

VOCAB, CLASSES, BATCH, TIME = 11, 3, 2, 7


def classifier(mixer, d_model=16, **kw):
    return models.SequenceClassifier(
        mixer,
        num_classes=CLASSES,
        d_model=d_model,
        depth=2,
        vocab_size=VOCAB,
        rngs=nnx.Rngs(0),
        **kw,
    )


def tokens(seed=0):
    return jax.random.randint(jax.random.key(seed), (BATCH, TIME), 1, VOCAB)


@pytest.mark.parametrize("mixer", memjax.cells.names())
def test_forward_and_backward_for_every_mixer(mixer):
    model = classifier(mixer, mlp="glu", norm="rmsnorm")
    x = tokens()
    mask = jnp.arange(TIME)[None] < jnp.array([[TIME], [4]])
    labels = jnp.array([0, 2])

    def loss(m):
        logits = m(x, mask)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(BATCH), labels])

    value, grads = nnx.jit(nnx.value_and_grad(loss))(model)
    assert np.isfinite(float(value))
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    mixer_grads = jax.tree.leaves(nnx.state(grads, nnx.Param)["encoder"]["blocks"][0]["mixer"])
    assert sum(float(jnp.abs(g).sum()) for g in mixer_grads) > 0


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_padding_does_not_change_logits(pooling):
    model = classifier("gru", pooling=pooling)
    x = tokens()
    mask = jnp.arange(TIME)[None] < jnp.array([[TIME], [4]])
    padded = jnp.where(mask, x, 0)
    logits = model(padded, mask)
    alone = model(x[1:, :4], jnp.ones((1, 4), bool))
    np.testing.assert_allclose(logits[1], alone[0], atol=1e-5)


def test_pooling_against_direct_evaluation():
    h = jax.random.normal(jax.random.key(0), (2, 5, 3))
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    np.testing.assert_allclose(models.pool(h, mask, "mean")[0], h[0, :3].mean(0), rtol=1e-6)
    np.testing.assert_allclose(models.pool(h, mask, "last")[0], h[0, 2])
    np.testing.assert_allclose(models.pool(h, mask, "last")[1], h[1, 4])
    np.testing.assert_allclose(models.pool(h, mask, "cls"), h[:, 0])


def test_norm_none_is_the_identity():
    plain = classifier("gru", norm="none")
    assert plain.encoder.blocks[0].norm_mixer is None and plain.encoder.norm is None
    x = tokens()
    block = plain.encoder.blocks[0]
    embedded = plain.encoder.embed_inputs(x)
    after = embedded + block.mixer(embedded)
    after = after + block.mlp(after)
    np.testing.assert_allclose(block(embedded), after, rtol=1e-6, atol=1e-6)


def test_flatten_pooling_puts_every_step_side_by_side():
    h = jax.random.normal(jax.random.key(0), (2, 5, 3))
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    flat = np.asarray(models.pool(h, mask, "flatten"))
    expected = np.asarray(h).copy()
    expected[0, 3:] = 0.0  # padded steps read as zeros
    np.testing.assert_array_equal(flat, expected.reshape(2, 15))
    np.testing.assert_array_equal(flat[1, 3 * 4 : 3 * 5], h[1, 4])  # out[:, t*D + i] = h[:, t, i]


def test_flatten_classifier_is_one_linear_head_over_all_outputs():
    model = classifier("gru", pooling="flatten", length=TIME)
    x = tokens()
    h = model.encoder(x)
    expected = h.reshape(BATCH, -1) @ model.head.kernel[...] + model.head.bias[...]
    assert model.head.kernel.shape == (TIME * 16, CLASSES)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="built for length=7 steps, got inputs of 4 steps"):
        model(x[:, :4])
    with pytest.raises(ValueError, match="pooling='flatten' needs length.*got length=None"):
        classifier("gru", pooling="flatten")
    with pytest.raises(ValueError, match="pooling='flatten' is for one fixed-length sequence"):
        models.DualEncoder(
            "gru",
            num_classes=2,
            pooling="flatten",
            d_model=8,
            depth=1,
            vocab_size=VOCAB,
            rngs=nnx.Rngs(0),
        )


def test_cls_pooling_with_bidirectional_attention():
    model = classifier("attention", pooling="cls", mixer_options={"causal": False})
    assert model(tokens()).shape == (BATCH, CLASSES)


def test_continuous_inputs_and_bfloat16_compute():
    model = models.SequenceClassifier(
        "lru",
        num_classes=CLASSES,
        d_model=16,
        depth=1,
        input_kind="continuous",
        channels=3,
        dtype=jnp.bfloat16,
        rngs=nnx.Rngs(0),
    )
    x = jax.random.normal(jax.random.key(1), (BATCH, TIME, 3))
    logits = model(x)
    assert logits.dtype == jnp.float32 and logits.shape == (BATCH, CLASSES)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_dual_encoder_is_symmetric_in_shared_tower():
    model = models.DualEncoder(
        "lstm", num_classes=2, d_model=8, depth=1, vocab_size=VOCAB, rngs=nnx.Rngs(0)
    )
    pair = jnp.stack([tokens(0), tokens(1)], axis=1)
    mask = jnp.ones((BATCH, 2, TIME), bool)
    logits = model(pair, mask)
    u = model.tower.features(pair[:, 0], mask[:, 0])
    v = model.tower.features(pair[:, 1], mask[:, 1])
    h = jax.nn.gelu(model.hidden(jnp.concatenate([u, v, u * v, u - v], -1)))
    np.testing.assert_allclose(logits, model.out(h), atol=1e-6)
    with pytest.raises(ValueError, match=r"inputs must be paired \[batch, 2, time"):
        model(pair[:, :1], mask[:, :1])


def test_dual_encoder_has_no_unused_parameters():
    """Every parameter gets a gradient from the logits: the tower carries no dead head."""
    model = models.DualEncoder(
        "lstm", num_classes=2, d_model=8, depth=1, vocab_size=VOCAB, rngs=nnx.Rngs(0)
    )
    pair = jnp.stack([tokens(0), tokens(1)], axis=1)
    grads = nnx.jit(nnx.grad(lambda m: jnp.sum(m(pair) ** 2)))(model)
    flat = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(grads, nnx.Param)))[0]
    unused = [jax.tree_util.keystr(path) for path, g in flat if not bool(jnp.any(g != 0))]
    assert unused == []
    d, classes = 8, 2
    shared = budget.param_count(
        models.SequenceFeatures("lstm", d_model=d, depth=1, vocab_size=VOCAB, rngs=nnx.Rngs(0))
    )
    head = 4 * d * d + d + d * classes + classes
    assert budget.param_count(model) == shared + head


@pytest.mark.parametrize("mixer", ["lstm", "lru", "attention"])
def test_cls_pooling_with_a_causal_memory_is_refused(mixer):
    with pytest.raises(ValueError, match=rf"pooling='cls' .* causal memory '{mixer}'"):
        classifier(mixer, pooling="cls")
    assert classifier(mixer, pooling="cls", bidirectional=True)(tokens()).shape == (BATCH, CLASSES)


def test_per_position_head_is_causal_for_recurrent_mixer():
    model = models.PerPositionHead(
        "mingru", num_classes=VOCAB, d_model=8, depth=2, vocab_size=VOCAB, rngs=nnx.Rngs(0)
    )
    x = tokens()
    changed = x.at[:, 5:].set(1)
    np.testing.assert_allclose(model(x)[:, :5], model(changed)[:, :5], atol=1e-6)
    assert model(x).shape == (BATCH, TIME, VOCAB)


def test_dropout_is_identity_in_eval_mode_and_random_in_train_mode():
    model = classifier("rnn", dropout=0.5)
    x = tokens()
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    model.train()
    assert not np.allclose(model(x), model(x))


@pytest.mark.parametrize("mixer", memjax.cells.names())
def test_width_for_budget_lands_within_ten_percent(mixer):
    target = 200_000
    build = lambda d: classifier(mixer, d_model=d)
    width = budget.width_for_budget(build, target, multiple=4)
    count = budget.param_count_of(build, width)
    assert abs(count - target) / target <= 0.10, (mixer, width, count)
    assert budget.param_count(build(width)) == count


def test_param_count_equals_hand_count_for_lstm_layer():
    model = models.SequenceClassifier(
        "lstm",
        num_classes=CLASSES,
        d_model=4,
        depth=1,
        vocab_size=VOCAB,
        mlp="none",
        rngs=nnx.Rngs(0),
    )
    d = 4
    expected = VOCAB * d + (d * 4 * d + d * 4 * d + 4 * d) + 2 * (2 * d) + (d * CLASSES + CLASSES)
    assert budget.param_count(model) == expected


def test_state_bytes_constant_for_recurrence_and_linear_for_attention():
    rnn = classifier("lstm")
    att = classifier("attention")
    assert models.state_bytes(rnn, 10) == models.state_bytes(rnn, 1000) == 2 * 2 * 16 * 4
    assert models.state_bytes(att, 2000) == 2 * models.state_bytes(att, 1000) > 0


def test_bad_model_arguments():
    with pytest.raises(ValueError, match=r"pooling must be one of .* got 'max'"):
        classifier("gru", pooling="max")
    with pytest.raises(ValueError, match=r"norm must be one of .* got 'groupnorm'"):
        classifier("gru", norm="groupnorm")
    with pytest.raises(ValueError, match=r"activation must be one of .* got 'relu'"):
        classifier("gru", activation="relu")
    with pytest.raises(ValueError, match=r"positional must be one of .* got 'rope'"):
        classifier("gru", positional="rope")
    with pytest.raises(ValueError, match="unknown memory name 'lsmt'"):
        classifier("lsmt")
    with pytest.raises(ValueError, match=r"inputs must be integer tokens \[batch, time\]"):
        classifier("gru")(jnp.ones((2, 3, 4)))


def test_width_for_budget_returns_the_nearest_measured_width():
    build = lambda d: nnx.Linear(d, d, rngs=nnx.Rngs(0))  # d^2 + d parameters
    assert budget.width_for_budget(build, 1000, multiple=1) == 31  # 992 beats 1056
    assert budget.width_for_budget(build, 1050, multiple=1) == 32  # 1056 beats 992
    assert budget.width_for_budget(build, 1000, multiple=8) == 32  # 1056 beats 600 (d=24)
    with pytest.raises(ValueError, match="needs a width above max_width=64"):
        budget.width_for_budget(build, 10**6, multiple=8, max_width=64)


def test_width_for_budget_of_a_count_linear_in_width_measures_few_widths():
    built = []

    def build(d):  # 3 d + 5 parameters: per-channel vectors only (an S4D layer's shape)
        built.append(d)
        return nnx.Sequential(nnx.Embed(3, d, rngs=nnx.Rngs(0)), nnx.Embed(1, 5, rngs=nnx.Rngs(0)))

    assert budget.width_for_budget(build, 574, multiple=2) == 190  # 575 is the nearest count
    assert budget.width_for_budget(build, 7, multiple=2) == 2  # below the smallest width
    assert len(set(built)) < 20  # a fit's float-noise leading term once walked thousands


def test_bidirectional_mixer_adds_a_reversed_memory_with_its_own_parameters():
    rngs = nnx.Rngs(0)
    mixer = models.Mixer("lru", 8, rngs=rngs, bidirectional=True)
    x = jax.random.normal(jax.random.key(1), (2, 6, 8))
    mask = jnp.arange(6)[None] < jnp.array([[6], [4]])
    forward = memjax.scan(mixer.memory, mixer.values(), x, mask=mask)[0]
    backward = memjax.scan(mixer.memory, mixer.values(backward=True), x, mask=mask, reverse=True)[0]
    np.testing.assert_allclose(mixer(x, mask), forward + backward, atol=1e-6)
    assert not np.allclose(
        jax.tree.leaves(mixer.values())[0], jax.tree.leaves(mixer.values(True))[0]
    )
    changed = x.at[:, 5].set(9.0)
    assert not np.allclose(mixer(changed, mask)[0, 0], mixer(x, mask)[0, 0])  # sees the future
    np.testing.assert_allclose(mixer(changed, mask)[1], mixer(x, mask)[1], atol=1e-6)  # padding
    with pytest.raises(ValueError, match="bidirectional mixer reads the whole sequence"):
        mixer.step(mixer.memory.initial_carry(mixer.values(), (2,)), x[:, 0])
    assert len(models.memories(mixer)) == 2


# ------------------------------------------ bidirectional: one meaning, S5's shared form


@pytest.mark.parametrize("form", [True, "shared"])
def test_bidirectional_mixer_is_the_sum_of_scan_bidirectional_halves(form):
    """Mixer(bidirectional) = y_fwd + y_bwd, the two halves of memjax.bidirectional's concat."""
    mixer = models.Mixer("lru", 8, rngs=nnx.Rngs(1), bidirectional=form)
    xs = jax.random.normal(jax.random.key(5), (BATCH, TIME, 8))
    mask = jnp.arange(TIME)[None] < jnp.array([[TIME], [3]])
    both = memjax.bidirectional(
        mixer.memory, mixer.values(), mixer.memory, mixer.values(backward=True), xs, mask=mask
    )
    np.testing.assert_allclose(mixer(xs, mask), both[..., :8] + both[..., 8:], atol=1e-6)
    backward = memjax.scan(mixer.memory, mixer.values(True), xs, mask=mask, reverse=True)[0]
    forward = memjax.scan(mixer.memory, mixer.values(), xs, mask=mask)[0]
    np.testing.assert_allclose(mixer(xs, mask), forward + backward, atol=1e-6)
    if form == "shared":  # one D: the backward pass reads D = 0; Lambda and B are shared
        np.testing.assert_array_equal(mixer.values(True)["d"], 0.0)
        np.testing.assert_array_equal(mixer.values(True)["nu_log"], mixer.values()["nu_log"])
        np.testing.assert_array_equal(mixer.values(True)["b_re"], mixer.values()["b_re"])


def test_concat_bidirectional_puts_two_half_width_memories_side_by_side():
    """torch's bidirectional GRU: [forward outputs, outputs of the reversed valid prefix]."""
    mixer = models.Mixer("gru", 8, rngs=nnx.Rngs(2), bidirectional="concat")
    assert mixer.memory.hidden == 4
    xs = jax.random.normal(jax.random.key(6), (BATCH, TIME, 8))
    lengths = [TIME, 3]
    mask = jnp.arange(TIME)[None] < jnp.array(lengths)[:, None]
    out = np.asarray(mixer(xs, mask))
    assert out.shape == (BATCH, TIME, 8)
    for b, n in enumerate(lengths):
        prefix = xs[b : b + 1, :n]
        forward = memjax.scan(mixer.memory, mixer.values(), prefix)[0][0]
        flipped = memjax.scan(mixer.memory, mixer.values(True), prefix[:, ::-1])[0][0]
        np.testing.assert_allclose(out[b, :n, :4], forward, atol=1e-6)
        np.testing.assert_allclose(out[b, :n, 4:], flipped[::-1], atol=1e-6)
        np.testing.assert_array_equal(out[b, n:], 0.0)
    with pytest.raises(ValueError, match="d_model must be even, got 7"):
        models.Mixer("gru", 7, rngs=nnx.Rngs(0), bidirectional="concat")


def unprojected_encoder(channels, **options):
    """A one-layer GRU encoder of width 8 that feeds ``channels`` input features to its memory."""
    return models.Encoder(
        "gru",
        d_model=8,
        depth=1,
        input_kind="continuous",
        channels=channels,
        rngs=nnx.Rngs(3),
        input_projection=False,
        **options,
    )


def test_bare_encoder_is_the_memory_on_the_raw_inputs():
    """input_projection=False, residual=False (the MNIST-1D paper's GRU): the encoder's output
    is the bidirectional GRU's read straight from the one input channel, torch's GRUBase."""
    encoder = unprojected_encoder(
        1, norm="none", mlp="none", final_norm=False, bidirectional="concat", residual=False
    )
    mixer = encoder.blocks[0].mixer
    assert encoder.embed is None and mixer.params["w_i"].shape == (1, 12)
    xs = jax.random.normal(jax.random.key(7), (BATCH, TIME, 1))
    forward = memjax.scan(mixer.memory, mixer.values(), xs)[0]
    flipped = memjax.scan(mixer.memory, mixer.values(True), xs[:, ::-1])[0][:, ::-1]
    expected = np.concatenate([forward, flipped], axis=-1)
    np.testing.assert_allclose(np.asarray(encoder(xs)), expected, atol=1e-6)
    with_residual = models.Block("gru", 8, rngs=nnx.Rngs(3), norm="none", mlp="none")
    h = jax.random.normal(jax.random.key(8), (BATCH, TIME, 8))
    without = models.Block("gru", 8, rngs=nnx.Rngs(3), norm="none", mlp="none", residual=False)
    np.testing.assert_allclose(with_residual(h) - h, without(h), atol=1e-6)


def test_bare_encoder_arguments_are_checked():
    with pytest.raises(ValueError, match="input width must be d_model=8; got d_in=1"):
        models.Block("gru", 8, rngs=nnx.Rngs(0), d_in=1)
    with pytest.raises(ValueError, match="expected norm_position='pre'"):
        models.Block("gru", 8, rngs=nnx.Rngs(0), residual=False, norm_position="post")
    with pytest.raises(ValueError, match="input_kind='tokens', positional='none'"):
        models.Encoder(
            "gru", d_model=8, depth=1, vocab_size=5, rngs=nnx.Rngs(0), input_projection=False
        )
    with pytest.raises(ValueError, match="with input_projection=False there is no embedding"):
        models.SequenceClassifier(
            "gru",
            num_classes=2,
            pooling="cls",
            d_model=8,
            depth=1,
            input_kind="continuous",
            channels=8,
            rngs=nnx.Rngs(0),
            bidirectional=True,
            input_projection=False,
        )
    with pytest.raises(ValueError, match="d_model=8; got d_in=3"):
        unprojected_encoder(3)


def test_shared_bidirectional_needs_a_diagonal_ssm():
    with pytest.raises(ValueError, match="needs a diagonal SSM"):
        models.Mixer("gru", 4, rngs=nnx.Rngs(0), bidirectional="shared")


# -------------------------------------------------------------- S5's layer: norms, GLUs


def test_half_glu2_and_post_norm_follow_s5_layers():
    """s5/layers.py: x1 = drop(gelu(h)); x = h * sigmoid(W x1); post-norm: norm(skip + x)."""
    block = models.Block(
        "lru", 8, rngs=nnx.Rngs(0), mlp="none", activation="half_glu2", norm_position="post"
    )
    x = jax.random.normal(jax.random.key(0), (BATCH, TIME, 8))
    h = block.mixer(x)
    w = block.activation.out2
    gated = h * jax.nn.sigmoid(jax.nn.gelu(h) @ w.kernel[...] + w.bias[...])
    np.testing.assert_allclose(block(x), block.norm_mixer(x + gated), atol=1e-5)


def test_batchnorm_uses_valid_steps_in_training_and_running_averages_in_eval():
    block = models.Block("lru", 4, rngs=nnx.Rngs(0), mlp="none", norm="batchnorm", bn_momentum=0.9)
    x = jax.random.normal(jax.random.key(0), (BATCH, TIME, 4)) * 3 + 1
    mask = jnp.arange(TIME)[None] < jnp.array([[TIME], [2]])
    x = jnp.where(mask[..., None], x, 100.0)  # padding must not move the statistics
    block.train()
    block(x, mask)
    valid = np.asarray(x)[np.asarray(mask)]
    bn = block.norm_mixer
    np.testing.assert_allclose(bn.mean[...], 0.1 * valid.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.var[...], 0.9 + 0.1 * valid.var(0), rtol=1e-5)
    # the running statistics are model state outside nnx.Param: the trainer's `rest`
    _, params, rest = nnx.split(block, nnx.Param, ...)
    assert "mean" in nnx.to_pure_dict(rest)["norm_mixer"]
    assert "mean" not in nnx.to_pure_dict(params)["norm_mixer"]
    block.eval()
    normed = (x - bn.mean[...]) / jnp.sqrt(bn.var[...] + 1e-5) * bn.scale[...] + bn.bias[...]
    np.testing.assert_allclose(block(x, mask), x + block.mixer(normed, mask), atol=1e-4)


def test_time_shared_dropout_masks_whole_features():
    drop = models.Block("lru", 8, rngs=nnx.Rngs(0), dropout=0.5, dropout_time_shared=True)
    kept = drop.dropout(jnp.ones((BATCH, TIME, 8))) != 0
    np.testing.assert_array_equal(kept, jnp.broadcast_to(kept[:, :1], kept.shape))


# ---------------------------------------------------- LRA's positions, at the embedding


def test_learned_positions_are_added_once_at_the_embedding():
    model = classifier("attention", positional="learned", max_length=TIME + 1,
                       mixer_options=dict(positional="none", causal=False))  # fmt: skip
    encoder = model.encoder
    x = tokens()
    embedded = encoder.embed.embedding[...][x] + encoder.positions[...][:TIME]
    np.testing.assert_allclose(encoder.add_positions(encoder.embed_inputs(x)), embedded)
    assert encoder.positions[...].std() == pytest.approx(0.02, rel=0.3)
    from memjax import optim  # no weight decay on the table, like LRA's posemb

    assert optim.param_labels(model)["encoder"]["positions"] == "no_decay"


def test_without_positions_attention_is_permutation_equivariant_before_pooling():
    model = classifier("attention", positional="learned", max_length=TIME,
                       mixer_options=dict(positional="none", causal=False))  # fmt: skip
    encoder = model.encoder
    encoder.positions[...] = jnp.zeros_like(encoder.positions[...])
    x, perm = tokens(), jnp.array([3, 0, 6, 1, 5, 2, 4])
    np.testing.assert_allclose(encoder(x)[:, perm], encoder(x[:, perm]), atol=1e-5)
    encoder.positions[...] = jax.random.normal(jax.random.key(0), encoder.positions.shape)
    assert not np.allclose(encoder(x)[:, perm], encoder(x[:, perm]), atol=1e-3)


def test_sinusoidal_positions_match_lra_sinusoidal_init():
    """lra_benchmarks/models/layers/common_layers.py: sinusoidal_init."""
    model = classifier("gru", positional="sinusoidal")
    d = 16
    position = np.arange(TIME)[:, None]
    div = np.exp(np.arange(0, d, 2) * -(np.log(10000.0) / d))
    pe = np.zeros((TIME, d))
    pe[:, 0::2], pe[:, 1::2] = np.sin(position * div), np.cos(position * div)
    zeros = jnp.zeros((BATCH, TIME, d))
    np.testing.assert_allclose(model.encoder.add_positions(zeros)[0], pe, atol=1e-5)
