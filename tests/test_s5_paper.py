"""S5's own setup (github.com/lindermanlab/S5): HiPPO-N initialisation, blocks, the shared
bidirectional form, optimiser groups and the LRA run scripts, each against an independent
computation or the released source's values written out here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax
from memjax import config as config_lib
from memjax import models, optim, s5_release
from memjax.cells import hippo

S5_OPTIONS = dict(lambda_init="hippo", bc_init="s5", lambda_re_param="linear")


# ------------------------------------------------------------------------------- HiPPO-N


def legs_by_formula(n: int) -> np.ndarray:
    """HiPPO-LegS from its definition, entry by entry (Gu et al. 2020, eq. for LegS)."""
    a = np.zeros((n, n))
    for j in range(n):
        for k in range(n):
            if j > k:
                a[j, k] = -np.sqrt(2 * j + 1) * np.sqrt(2 * k + 1)
            elif j == k:
                a[j, k] = -(j + 1)
    return a


@pytest.mark.parametrize("n", [2, 7, 16])
def test_hippo_n_eigendecomposition_against_numpy(n):
    a = legs_by_formula(n)
    np.testing.assert_allclose(hippo.legs(n), a, rtol=0, atol=1e-12)
    p = np.sqrt(np.arange(n) + 0.5)
    normal = a + np.outer(p, p)  # the rank-1 correction makes it normal
    np.testing.assert_allclose(normal @ normal.T, normal.T @ normal, atol=1e-9)
    expected = np.linalg.eigvals(normal)
    lam, v = hippo.legs_normal_eig(n)
    order = lambda z: np.lexsort((np.round(z.real, 9), np.round(z.imag, 9)))
    np.testing.assert_allclose(lam[order(lam)], expected[order(expected)], atol=1e-9)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-12)
    np.testing.assert_allclose(v @ np.diag(lam) @ np.linalg.inv(v), normal, atol=1e-9)
    np.testing.assert_allclose(v.conj().T @ v, np.eye(n), atol=1e-9)


def test_conj_sym_keeps_one_of_each_conjugate_pair():
    lam, v, v_inv = hippo.block_init(modes=4, blocks=1, conj_sym=True)
    full, _ = hippo.legs_normal_eig(8)
    assert lam.shape == (4,) and v.shape == (8, 4) and v_inv.shape == (4, 8)
    np.testing.assert_allclose(np.sort(np.concatenate([lam, lam.conj()]).imag), np.sort(full.imag))
    assert np.all(lam.imag < 0)


def test_blocks_are_block_diagonal_copies():
    modes, blocks = 12, 3
    lam, v, v_inv = hippo.block_init(modes, blocks, conj_sym=True)
    one, v_one = hippo.legs_normal_eig(2 * modes // blocks)
    np.testing.assert_allclose(lam, np.tile(one[: modes // blocks], blocks))
    m, k = 2 * modes // blocks, modes // blocks
    for i in range(blocks):
        for j in range(blocks):
            block = v[i * m : (i + 1) * m, j * k : (j + 1) * k]
            np.testing.assert_allclose(block, v_one[:, :k] if i == j else 0.0)
    np.testing.assert_allclose(v_inv, v.conj().T)
    cell = memjax.cells.get("s5", hidden=4, state_size=modes, blocks=blocks, **S5_OPTIONS)
    p = cell.init(jax.random.key(0), 4)
    np.testing.assert_allclose(p["lambda_re"], lam.real, rtol=1e-6)
    np.testing.assert_allclose(p["lambda_im"], lam.imag, rtol=1e-6)


def test_s5_b_and_c_are_transformed_by_v():
    """``B~ = V^-1 B``: B~ lies in the range of V^H, i.e. V V^H B = B for a B of V's range;
    equivalently ``V^-1 V B~ = B~``. ``C~ = C V``: ``C~`` of a C drawn in V's range."""
    cell = memjax.cells.get("s5", hidden=5, state_size=6, blocks=2, **S5_OPTIONS)
    p = cell.init(jax.random.key(1), 5)
    _, v, v_inv = hippo.block_init(6, 2, True)
    b_tilde = (np.asarray(p["b_re"]) + 1j * np.asarray(p["b_im"])).T  # [N, d_in]
    np.testing.assert_allclose(v_inv @ (v @ b_tilde), b_tilde, atol=1e-5)
    # B = V b_tilde + (part outside V's range); its V^-1 is b_tilde: check the block zeros
    assert np.abs(b_tilde).mean() > 0.01
    c_tilde = (np.asarray(p["c_re"]) + 1j * np.asarray(p["c_im"])).T  # [H, N]
    assert c_tilde.shape == (5, 6) and cell.out_scale == 2.0


def test_discretizations_and_clip_eigs():
    cell = memjax.cells.get("s5", hidden=3, state_size=4, clip_eigs=True, **S5_OPTIONS)
    p = cell.init(jax.random.key(0), 3)
    p = {**p, "lambda_re": jnp.array([-0.5, 0.3, -2.0, 0.0])}
    lam = np.minimum(np.asarray(p["lambda_re"], np.float64), -1e-4) + 1j * np.asarray(
        p["lambda_im"], np.float64
    )
    step = np.exp(np.asarray(p["log_step"], np.float64))
    lam_bar, scale = cell.diagonal(p)
    np.testing.assert_allclose(lam_bar, np.exp(lam * step), rtol=1e-5)
    np.testing.assert_allclose(scale, (np.exp(lam * step) - 1) / lam, rtol=1e-4)
    bilinear = memjax.cells.get(
        "s5", hidden=3, state_size=4, clip_eigs=True, discretization="bilinear", **S5_OPTIONS
    )
    lam_bar, scale = bilinear.diagonal(p)
    bl = 1 / (1 - step / 2 * lam)
    np.testing.assert_allclose(lam_bar, bl * (1 + step / 2 * lam), rtol=1e-5)
    np.testing.assert_allclose(scale, bl * step, rtol=1e-5)


def test_s5_options_are_checked():
    with pytest.raises(ValueError, match="needs lambda_init='hippo'"):
        memjax.cells.get("s5", hidden=4, bc_init="s5")
    with pytest.raises(ValueError, match="blocks must be a positive int dividing"):
        memjax.cells.get("s5", hidden=4, state_size=6, blocks=4, lambda_init="hippo")
    with pytest.raises(ValueError, match="clip_eigs=True"):
        memjax.cells.get("s5", hidden=4, clip_eigs=True)
    with pytest.raises(ValueError, match="c_init must be one of"):
        memjax.cells.get("s5", hidden=4, c_init="zeros")


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_s5_options_scan_and_step_agree(mode):
    cell = memjax.cells.get(
        "s5", hidden=4, state_size=6, blocks=3, c_init="complex_normal", **S5_OPTIONS
    )
    p = cell.init(jax.random.key(2), 4)
    xs = jax.random.normal(jax.random.key(3), (2, 5, 4))
    ys, _ = memjax.scan(cell, p, xs, mode=mode)
    carry = cell.initial_carry(p, (2,))
    for t in range(5):
        carry, y = cell.step(p, carry, xs[:, t])
        np.testing.assert_allclose(ys[:, t], y, atol=1e-5)


# ------------------------------------------------------------ shared bidirectional form


def s5_bidirectional_reference(p, c2, xs, lengths):
    """S5's ``apply_ssm`` with ``bidirectional=True`` (``s5/ssm.py``), float64, per sequence
    over its valid steps: the same Lambda_bar and B_bar forwards and backwards, C~ = [C1 C2],
    ``y = 2 Re(C~ [x_f; x_b]) + D u``; padded outputs zero."""
    f64 = lambda a: np.asarray(a, np.float64)
    lam = f64(p["lambda_re"]) + 1j * f64(p["lambda_im"])
    step = np.exp(f64(p["log_step"]))
    lam_bar = np.exp(lam * step)
    b_bar = ((lam_bar - 1) / lam)[:, None] * (f64(p["b_re"]) + 1j * f64(p["b_im"])).T  # [N, H]
    c1 = (f64(p["c_re"]) + 1j * f64(p["c_im"])).T  # [H, N]
    c2 = (f64(c2["c_re"]) + 1j * f64(c2["c_im"])).T
    out = np.zeros(xs.shape)
    for i, length in enumerate(lengths):
        u = f64(xs[i, :length])
        fwd, bwd = np.zeros((length, lam.size), complex), np.zeros((length, lam.size), complex)
        h = np.zeros(lam.size, complex)
        for t in range(length):
            h = lam_bar * h + b_bar @ u[t]
            fwd[t] = h
        h = np.zeros(lam.size, complex)
        for t in reversed(range(length)):
            h = lam_bar * h + b_bar @ u[t]
            bwd[t] = h
        out[i, :length] = 2 * (fwd @ c1.T + bwd @ c2.T).real + f64(p["d"]) * u
    return out


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_shared_bidirectional_equals_s5_equations(mode):
    mixer = models.Mixer(
        "s5",
        6,
        rngs=nnx.Rngs(0),
        options=dict(state_size=4, blocks=2, c_init="lecun_normal", **S5_OPTIONS),
        bidirectional="shared",
        mode=mode,
    )
    xs = jax.random.normal(jax.random.key(4), (2, 7, 6))
    lengths = (7, 4)
    mask = jnp.arange(7)[None, :] < jnp.array(lengths)[:, None]
    backward = jax.tree.map(lambda v: v[...], mixer.backward_params, is_leaf=models._is_variable)
    assert set(backward) == {"c_re", "c_im"}  # Lambda, B and D are shared
    want = s5_bidirectional_reference(mixer.values(), backward, np.asarray(xs), lengths)
    np.testing.assert_allclose(mixer(xs, mask), want, atol=2e-5)


# ------------------------------------------------------------------- optimiser groups

S5_SSM_LISTS = {
    # s5/train_helpers.py: create_train_state, the leaf keys of the "ssm" group (dt_global
    # False / True) and of the "none" group; every other leaf is "regular" (AdamW, lr, decay).
    "standard": (["B", "Lambda_re", "Lambda_im", "log_step", "norm"], []),
    "BandCdecay": (["Lambda_re", "Lambda_im", "log_step", "norm"], ["B"]),
    "BfastandCdecay": (["Lambda_re", "Lambda_im", "log_step", "norm"], []),
    "noBCdecay": (["B", "C", "C1", "C2", "D", "Lambda_re", "Lambda_im", "log_step", "norm"], []),
}
S5_GROUP_IN_MEMJAX = {"ssm": "recurrence", "regular": "decay", "none": "recurrence_decay"}
"""S5's "ssm" is Adam at ssm_lr; "regular" AdamW at lr; BandCdecay's "none" AdamW at ssm_lr."""


def s5_name(path: tuple) -> str:
    """The S5 leaf name of a memjax parameter path (the mixer's keys), else its own leaf key."""
    names = {"lambda_re": "Lambda_re", "lambda_im": "Lambda_im", "log_step": "log_step"}
    names |= {"b_re": "B", "b_im": "B", "d": "D"}
    leaf, owner = path[-1], path[-2] if len(path) > 1 else ""
    if leaf in ("c_re", "c_im"):
        return "C2" if owner == "backward_params" else "C1"
    return names.get(leaf, leaf) if owner in ("params", "backward_params") else leaf


@pytest.mark.parametrize("dt_global", [False, True])
@pytest.mark.parametrize("opt_config", sorted(S5_SSM_LISTS))
def test_opt_config_groups_follow_s5_train_helpers(opt_config, dt_global):
    model = models.SequenceClassifier(
        "s5",
        num_classes=3,
        d_model=8,
        depth=1,
        vocab_size=5,
        rngs=nnx.Rngs(0),
        mixer_options=dict(state_size=4, **S5_OPTIONS),
        bidirectional="shared",
        mlp="none",
        norm="batchnorm",
        activation="half_glu2",
    )
    ssm, none = S5_SSM_LISTS[opt_config]
    if dt_global:
        ssm = [k for k in ssm if k != "log_step"]
    labels = optim.param_labels(model, opt_config, dt_global)
    flat = jax.tree_util.tree_flatten_with_path(labels)[0]
    seen = set()
    for path, label in flat:
        keys = tuple(getattr(k, "key", k) for k in path)
        name = s5_name(keys)
        seen.add(name)
        s5 = "ssm" if name in ssm else ("none" if name in none else "regular")
        assert label == S5_GROUP_IN_MEMJAX[s5], (keys, name, label)
    assert {"B", "C1", "C2", "D", "Lambda_re", "Lambda_im", "log_step"} <= seen


def test_recurrence_decay_group_decays_at_the_recurrence_lr():
    model = models.SequenceClassifier(
        "s5", num_classes=2, d_model=4, depth=1, vocab_size=3, rngs=nnx.Rngs(0),
        mixer_options=dict(state_size=2, **S5_OPTIONS), mlp="none",
    )  # fmt: skip
    cfg = config_lib.base_config().optim
    cfg.update(lr=0.1, recurrence_lr=0.01, weight_decay=0.5, schedule="constant")
    cfg.update(warmup_steps=0, clip_norm=0.0, opt_config="BandCdecay")
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    tx, _ = optim.build(cfg, 10, model)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    b = params["encoder"]["blocks"][0]["mixer"]["params"]["b_re"]
    ub = updates["encoder"]["blocks"][0]["mixer"]["params"]["b_re"]
    np.testing.assert_allclose(ub, -0.01 * 0.5 * b, rtol=1e-5)  # AdamW: -lr * wd * param


# ------------------------------------------------------------------- the run scripts

RUN_SCRIPTS = {
    # bin/run_experiments/run_lra_*.sh of github.com/lindermanlab/S5, and the train-set sizes
    # S5's loaders report (TRAIN_SIZE in s5/dataloading.py).
    "listops": dict(
        C_init="lecun_normal", activation="half_glu2", blocks=8, bsz=50, d_model=128, epochs=40,
        lr_factor=3, n_layers=8, opt_config="BfastandCdecay", p_dropout=0.0, ssm_lr=0.001,
        P=16, warmup_end=1, weight_decay=0.04, dt_global=False, clip_eigs=False,
        bn_momentum=0.95, dt_min=0.001, train_size=96_000,
    ),
    "text": dict(
        C_init="lecun_normal", activation="half_glu2", blocks=12, bsz=50, d_model=256,
        epochs=35, lr_factor=4, n_layers=6, opt_config="standard", p_dropout=0.1, ssm_lr=0.001,
        P=192, warmup_end=0, weight_decay=0.07, dt_global=True, clip_eigs=False,
        bn_momentum=0.95, dt_min=0.001, train_size=25_000,
    ),
    "retrieval": dict(
        C_init="trunc_standard_normal", activation="half_glu1", blocks=16, bsz=32, d_model=128,
        epochs=20, lr_factor=2, n_layers=6, opt_config="standard", p_dropout=0.0, ssm_lr=0.001,
        P=256, warmup_end=1, weight_decay=0.05, dt_global=True, clip_eigs=False,
        bn_momentum=0.95, dt_min=0.001, train_size=147_086,
    ),
    "image": dict(
        C_init="lecun_normal", activation="half_glu1", blocks=3, bsz=50, d_model=512,
        epochs=250, lr_factor=4.5, n_layers=6, opt_config="BfastandCdecay", p_dropout=0.1,
        ssm_lr=0.001, P=384, warmup_end=1, weight_decay=0.07, dt_global=False, clip_eigs=True,
        bn_momentum=0.95, dt_min=0.001, train_size=45_000,
    ),
    "pathfinder": dict(
        C_init="trunc_standard_normal", activation="half_glu1", blocks=8, bsz=64, d_model=192,
        epochs=200, lr_factor=5, n_layers=6, opt_config="standard", p_dropout=0.05,
        ssm_lr=0.0009, P=256, warmup_end=1, weight_decay=0.03, dt_global=False,
        clip_eigs=False, bn_momentum=0.9, dt_min=0.001, train_size=160_000,
    ),
    "pathx": dict(
        C_init="complex_normal", activation="half_glu1", blocks=16, bsz=32, d_model=128,
        epochs=75, lr_factor=3, n_layers=6, opt_config="BandCdecay", p_dropout=0.0,
        ssm_lr=0.0006, P=256, warmup_end=1, weight_decay=0.06, dt_global=False,
        clip_eigs=False, bn_momentum=0.9, dt_min=0.0001, train_size=160_000,
    ),
}  # fmt: skip


@pytest.mark.parametrize("task", sorted(RUN_SCRIPTS))
def test_s5_configs_follow_the_run_scripts(task):
    s = RUN_SCRIPTS[task]
    c = config_lib.load(f"configs/{task}.py:s5")
    per_epoch = s["train_size"] // s["bsz"]
    assert (c.train.batch_size, c.train.steps) == (s["bsz"], s["epochs"] * per_epoch)
    assert c.optim.warmup_steps == s["warmup_end"] * per_epoch
    assert c.optim.lr == pytest.approx(s["lr_factor"] * s["ssm_lr"])
    assert c.optim.recurrence_lr == pytest.approx(s["ssm_lr"])
    assert c.optim.weight_decay == s["weight_decay"]
    assert (c.optim.opt_config, c.optim.dt_global) == (s["opt_config"], s["dt_global"])
    assert (c.optim.schedule, c.optim.clip_norm, c.optim.b1, c.optim.b2) == (
        "cosine", 0.0, 0.9, 0.999,
    )  # fmt: skip
    m = c.model
    assert (m.d_model, m.depth, m.dropout) == (s["d_model"], s["n_layers"], s["p_dropout"])
    assert (m.norm, m.norm_position, m.final_norm, m.bn_momentum) == (
        "batchnorm", "pre", False, s["bn_momentum"],
    )  # fmt: skip
    assert (m.mlp, m.activation, m.pooling) == ("none", s["activation"], "mean")
    assert (m.bidirectional, m.bidirectional_form, m.dropout_time_shared) == (True, "shared", True)
    o = m.mixer_options
    assert (o.state_size, o.blocks, o.conj_sym) == (s["P"] // 2, s["blocks"], True)
    assert (o.lambda_init, o.bc_init, o.c_init) == ("hippo", "s5", s["C_init"])
    assert (o.discretization, o.lambda_re_param, o.clip_eigs) == ("zoh", "linear", s["clip_eigs"])
    assert (o.dt_min, o.dt_max) == (s["dt_min"], 0.1)


def test_s5_setup_refuses_what_it_does_not_translate():
    with pytest.raises(ValueError, match="not translated"):
        s5_release.s5_setup(train_size=10, mystery=1)
    with pytest.raises(ValueError, match="cosine schedule"):
        s5_release.s5_setup(train_size=10, cosine_anneal=False)
