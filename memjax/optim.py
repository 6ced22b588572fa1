"""The optimiser: AdamW, a warmup schedule, clipping, and per-group learning rates.

Parameters fall into three groups by what they are, read off the module that owns them:

* ``recurrence``: :class:`~memjax.params.RecurrenceParam` (the keys a memory lists in
  ``recurrence_params``: LRU's ``nu_log`` and ``theta_log``, S5's eigenvalues and step sizes):
  ``optim.recurrence_lr``, no weight decay;
* ``no_decay``: lookup tables (``nnx.Embed``'s token embedding, and
  :class:`~memjax.params.TableParam` such as attention's learned positions), and every parameter
  with fewer than two dimensions (biases, norm scales, a CLS token): ``optim.lr``, no weight
  decay;
* ``decay``: all other matrices, every ``nnx.Linear`` kernel included (the input projection of
  continuous inputs among them): ``optim.lr`` with ``optim.weight_decay``.

``optim.opt_config`` other than "memjax" (the default, above) selects one of S5's optimiser
setups (``s5/train_helpers.py: create_train_state``; ``--opt_config`` of ``run_train.py``) for
the parameters of diagonal SSMs, which carry their role as the variable metadata ``ssm_role``
("Lambda", "log_step", "B", "C", "D"; :meth:`memjax.cells.ssm.DiagonalSSM.param_roles`)::

    opt_config        B                   C, D                Lambda    log_step
    standard          recurrence          decay               recur.    recurrence
    BandCdecay        recurrence_decay    decay               recur.    recurrence
    BfastandCdecay    decay               decay               recur.    recurrence
    noBCdecay         recurrence          recurrence          recur.    recurrence

``optim.dt_global=True`` (S5's ``--dt_global``) moves ``log_step`` to ``decay``. Every other
parameter goes to ``decay``, biases, norm scales and tables included: S5's "regular" group is
AdamW over every leaf not named in its SSM list (the list's ``"norm"`` names no leaf, since the
rule is applied to leaf keys, so norm parameters are "regular" too); ``recurrence`` parameters
without a role (other memories') stay ``recurrence``. ``recurrence_decay`` is S5's
``BandCdecay`` group for ``B``: ``optim.recurrence_lr`` with ``optim.weight_decay``.

Schedules (``optim.schedule``), with ``w = warmup_steps`` and ``T = train.steps``:
``cosine``: linear warmup to ``lr`` then cosine decay to 0 at ``T``; ``rsqrt`` (LRA):
``lr * min(1, t / w) / sqrt(max(t, w))``; ``constant``: linear warmup then ``lr``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from memjax.params import RecurrenceParam, TableParam

GROUPS = ("decay", "no_decay", "recurrence", "recurrence_decay")
OPT_CONFIGS = ("memjax", "standard", "BandCdecay", "BfastandCdecay", "noBCdecay")
_S5_B_GROUP = {
    "standard": "recurrence",
    "BandCdecay": "recurrence_decay",
    "BfastandCdecay": "decay",
    "noBCdecay": "recurrence",
}


def schedule(optim: ml_collections.ConfigDict, lr: float, steps: int) -> optax.Schedule:
    """The learning-rate schedule ``optim.schedule`` peaking at ``lr``."""
    warmup = max(int(optim.warmup_steps), 0)
    if optim.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), 0.0)
    if optim.schedule == "constant":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup]
        )
    if optim.schedule == "rsqrt":
        w = max(warmup, 1)
        return lambda t: lr * jnp.minimum(1.0, t / w) / jnp.sqrt(jnp.maximum(t, w))
    raise ValueError(f"optim.schedule must be cosine, rsqrt or constant, got {optim.schedule!r}")


def s5_group(role: str, opt_config: str, dt_global: bool = False) -> str:
    """The group of a diagonal-SSM parameter of ``role`` under S5's ``opt_config``."""
    if role == "Lambda":
        return "recurrence"
    if role == "log_step":
        return "decay" if dt_global else "recurrence"
    if role == "B":
        return _S5_B_GROUP[opt_config]
    if role in ("C", "D"):
        return "recurrence" if opt_config == "noBCdecay" else "decay"
    raise ValueError(f"unknown SSM parameter role {role!r}")


def param_labels(model: nnx.Module, opt_config: str = "memjax", dt_global: bool = False) -> Any:
    """A pytree like ``nnx.state(model, nnx.Param)`` holding each parameter's group name."""
    if opt_config not in OPT_CONFIGS:
        raise ValueError(f"optim.opt_config must be one of {OPT_CONFIGS}, got {opt_config!r}")
    groups: dict[tuple, str] = {}
    for path, _ in nnx.to_flat_state(nnx.state(model, RecurrenceParam)):
        groups[path] = "recurrence"
    if opt_config == "memjax":
        for path, _ in nnx.to_flat_state(nnx.state(model, TableParam)):
            groups[path] = "no_decay"
        for path, module in nnx.iter_modules(model):
            if isinstance(module, nnx.Embed):
                groups[(*path, "embedding")] = "no_decay"
    else:
        for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
            role = variable.get_metadata().get("ssm_role")
            if role is not None:
                groups[path] = s5_group(role, opt_config, dt_global)

    def label(path: tuple, value: Any) -> str:
        keys = tuple(getattr(k, "key", k) for k in path)
        if opt_config != "memjax":
            return groups.get(keys, "decay")
        return groups.get(keys, "no_decay" if value.ndim < 2 else "decay")

    return jax.tree_util.tree_map_with_path(label, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def build(
    optim: ml_collections.ConfigDict, steps: int, model: nnx.Module
) -> tuple[optax.GradientTransformation, dict[str, optax.Schedule]]:
    """The optax transformation for ``model``'s parameter dict, and each group's schedule."""
    lr = float(optim.lr)
    recurrence_lr = lr if optim.recurrence_lr is None else float(optim.recurrence_lr)
    schedules = {
        "decay": schedule(optim, lr, steps),
        "no_decay": schedule(optim, lr, steps),
        "recurrence": schedule(optim, recurrence_lr, steps),
        "recurrence_decay": schedule(optim, recurrence_lr, steps),
    }
    adam = dict(b1=float(optim.b1), b2=float(optim.b2))
    decay = float(optim.weight_decay)
    transforms = {
        "decay": optax.adamw(schedules["decay"], weight_decay=decay, **adam),
        "no_decay": optax.adam(schedules["no_decay"], **adam),
        "recurrence": optax.adam(schedules["recurrence"], **adam),
        "recurrence_decay": optax.adamw(schedules["recurrence_decay"], weight_decay=decay, **adam),
    }
    labels = param_labels(
        model, str(optim.get("opt_config", "memjax")), bool(optim.get("dt_global", False))
    )
    chain = [optax.multi_transform(transforms, labels)]
    if float(optim.clip_norm) > 0:
        chain.insert(0, optax.clip_by_global_norm(float(optim.clip_norm)))
    return optax.chain(*chain), schedules
