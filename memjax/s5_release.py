"""S5's released runs as memjax setups: ``run_train.py`` flags translated to config keys.

The released S5 (github.com/lindermanlab/S5) trains every LRA task from a shell script of
``run_train.py`` flags (``bin/run_experiments/run_lra_*.sh``); the rest are the defaults of
``run_train.py`` (:data:`S5_DEFAULTS`). :func:`s5_setup` turns such flags into the setup keys
of :func:`memjax.config.task_config`, so a config can hold a script's flags exactly as given.
"""

from __future__ import annotations

from typing import Any

S5_DEFAULTS = dict(
    n_layers=6,
    d_model=128,
    ssm_size_base=256,
    blocks=8,
    C_init="trunc_standard_normal",
    discretization="zoh",
    mode="pool",
    activation_fn="half_glu1",
    conj_sym=True,
    clip_eigs=False,
    bidirectional=False,
    dt_min=0.001,
    dt_max=0.1,
    prenorm=True,
    batchnorm=True,
    bn_momentum=0.95,
    bsz=64,
    epochs=100,
    ssm_lr_base=1e-3,
    lr_factor=1,
    dt_global=False,
    lr_min=0,
    cosine_anneal=True,
    warmup_end=1,
    p_dropout=0.0,
    weight_decay=0.05,
    opt_config="standard",
)
"""The defaults of the released S5's ``run_train.py`` (github.com/lindermanlab/S5)."""

_S5_IGNORED = ("jax_seed", "dataset", "early_stop_patience", "dir_name", "USE_WANDB")


def s5_setup(*, train_size: int, **flags: Any) -> dict[str, Any]:
    """The memjax setup of an S5 run: ``run_train.py`` flags (S5's defaults for the rest,
    :data:`S5_DEFAULTS`) on a training set of ``train_size`` examples.

    Epochs become steps as S5 counts them (``int(train_size / bsz)`` per epoch), ``lr =
    lr_factor * ssm_lr_base``, ``recurrence_lr = ssm_lr_base``; the model is S5's layer
    (``models.Block`` with ``mlp="none"``, the activation, S5's norm and its placement, no final
    norm, dropout shared over time) around the ``s5`` memory with HiPPO-N blocks, S5's B and C,
    a free ``Re Lambda`` and the shared bidirectional form; Adam's defaults (``b2 = 0.999``) and
    no gradient clipping. ``state_size`` is the number of stored modes: ``ssm_size_base / 2``
    with ``conj_sym``. ``jax_seed`` and ``dataset`` are accepted and ignored; a plateau decay
    (``reduce_factor`` != 1), ``lr_min`` != 0 or ``cosine_anneal=False`` raise ValueError.
    """
    unknown = sorted(set(flags) - set(S5_DEFAULTS) - set(_S5_IGNORED) - {"reduce_factor"})
    if unknown:
        raise ValueError(
            f"S5 flags {unknown} are not translated; expected some of {sorted(S5_DEFAULTS)}"
        )
    f = {**S5_DEFAULTS, **flags}
    if f["lr_min"] != 0 or not f["cosine_anneal"] or f.get("reduce_factor", 1.0) != 1.0:
        raise ValueError(
            "only S5's cosine schedule to lr_min=0 without plateau decay is translated"
        )
    per_epoch = int(train_size / f["bsz"])
    modes = f["ssm_size_base"] // 2 if f["conj_sym"] else f["ssm_size_base"]
    return dict(
        batch_size=f["bsz"],
        steps=f["epochs"] * per_epoch,
        warmup_steps=f["warmup_end"] * per_epoch,
        schedule="cosine",
        lr=round(f["lr_factor"] * f["ssm_lr_base"], 12),
        recurrence_lr=f["ssm_lr_base"],
        weight_decay=f["weight_decay"],
        b1=0.9,
        b2=0.999,
        clip_norm=0.0,
        opt_config=f["opt_config"],
        dt_global=f["dt_global"],
        d_model=f["d_model"],
        depth=f["n_layers"],
        mlp="none",
        activation=f["activation_fn"],
        norm="batchnorm" if f["batchnorm"] else "layernorm",
        norm_position="pre" if f["prenorm"] else "post",
        final_norm=False,
        bn_momentum=f["bn_momentum"],
        dropout=float(f["p_dropout"]),
        dropout_time_shared=True,
        pooling="mean" if f["mode"] == "pool" else "last",
        bidirectional=bool(f["bidirectional"]),
        bidirectional_form="shared",
        mixer_options=dict(
            state_size=modes,
            lambda_init="hippo",
            blocks=f["blocks"],
            conj_sym=f["conj_sym"],
            bc_init="s5",
            c_init=f["C_init"],
            discretization=f["discretization"],
            lambda_re_param="linear",
            clip_eigs=f["clip_eigs"],
            dt_min=f["dt_min"],
            dt_max=f["dt_max"],
        ),
    )


def expand_s5_script(setup: dict[str, Any]) -> dict[str, Any]:
    """``setup`` with its ``s5_script`` (if any) translated by :func:`s5_setup`; the keys given
    beside ``s5_script`` override what it translates to."""
    setup = dict(setup)
    if "s5_script" not in setup:
        return setup
    return {**s5_setup(**setup.pop("s5_script")), **setup}
