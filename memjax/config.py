"""Run configuration: shared defaults, model variants, loading ``configs/*.py`` and overrides.

A config file defines ``get_config(arg) -> ml_collections.ConfigDict`` where ``arg`` is
``"VARIANT"`` or ``"VARIANT,SCALE"``, as in ``configs/listops.py:lstm,smoke``.
Every field can then be overridden from the command line as ``--config.model.d_model=256``;
``--config.scale=smoke`` is applied before the others, since a scale rewrites many fields.

Layout of a config (the trainer reads nothing else)::

    task:     name, options (passed to memjax.tasks.get)
    model:    mixer, mixer_options, d_model, depth, mlp, mlp_expand, norm, dropout, pooling
              (mean | last | cls | flatten: every step's features into the head), dtype,
              mode, remat (0: off; K: keep the state every K steps and recompute the
              steps between in the backward pass), unroll (0: per backend, see
              memjax.scan.resolve_unroll),
              param_budget (0: use d_model; else size d_model to it),
              bidirectional (a backward pass over each valid prefix, added to the forward
              one; classification only), bidirectional_form ("independent": a second memory
              with its own parameters; "shared": S5's, same Lambda and B, two C's, one D;
              "concat": two memories of width d_model / 2, outputs side by side, torch's),
              norm (layernorm | rmsnorm | batchnorm | none), norm_position (pre | post), final_norm,
              input_projection (False: continuous inputs go to the first memory as they are),
              residual (False: no skip connection around the mixer),
              activation (after the mixer: none | gelu | half_glu1 | half_glu2 | full_glu),
              bn_momentum, dropout_time_shared, positional (none | sinusoidal | learned: added
              once after the embedding); see memjax.models
    optim:    lr, recurrence_lr (None: lr), weight_decay, b1, b2, schedule (cosine | rsqrt |
              constant), warmup_steps, clip_norm (0: off), accumulate (micro-batches per step),
              opt_config (memjax | S5's standard, BandCdecay, BfastandCdecay, noBCdecay),
              dt_global (S5's: log_step with the decayed group); see memjax.optim
    train:    steps, batch_size (global), eval_every, eval_batches (0: whole split),
              checkpoint_every, keep, log_every, seed, truncate
    parallel: "shard_map" | "pmap" | "none"
    scale:    "paper" | "smoke"
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from memjax import variants
from memjax.options import parse_value
from memjax.provenance import Provenance, never_ran
from memjax.s5_release import expand_s5_script

SCALES = ("paper", "smoke")
PARALLEL = ("shard_map", "pmap", "none")


def base_config() -> ml_collections.ConfigDict:
    """Defaults shared by every task; task files change only what differs."""
    c = ml_collections.ConfigDict()
    c.task = ml_collections.ConfigDict({"name": "", "options": ml_collections.ConfigDict()})
    c.model = ml_collections.ConfigDict(
        {
            "mixer": "lstm",
            "mixer_options": ml_collections.ConfigDict(),
            "d_model": 128,
            "depth": 4,
            "mlp": "glu",
            "mlp_expand": 2,
            "norm": "layernorm",
            "dropout": 0.1,
            "pooling": "mean",
            "dtype": "float32",
            "mode": "auto",
            "remat": 0,
            "unroll": 0,
            "param_budget": 0,
            "bidirectional": False,
            "bidirectional_form": "independent",
            "seq2seq": ml_collections.ConfigDict(
                {
                    "attention": "",
                    "init_state": "",
                    "style": "",
                    "teacher_forcing": 1.0,
                }
            ),
            "norm_position": "pre",
            "final_norm": True,
            "input_projection": True,
            "residual": True,
            "activation": "none",
            "bn_momentum": 0.95,
            "dropout_time_shared": False,
            "positional": "none",
        }
    )
    c.optim = ml_collections.ConfigDict(
        {
            "lr": 1e-3,
            "recurrence_lr": ml_collections.FieldReference(None, field_type=float),
            "weight_decay": 0.05,
            "b1": 0.9,
            "b2": 0.98,
            "schedule": "cosine",
            "warmup_steps": 100,
            "clip_norm": 1.0,
            "accumulate": 1,
            "opt_config": "memjax",
            "dt_global": False,
        }
    )
    c.train = ml_collections.ConfigDict(
        {
            "steps": 1000,
            "batch_size": 32,
            "eval_every": 200,
            "eval_batches": 0,
            "checkpoint_every": 200,
            "keep": 3,
            "log_every": 20,
            "seed": 0,
            "truncate": False,
        }
    )
    c.parallel = "shard_map"
    c.scale = "paper"
    c.provenance = Provenance("memjax's defaults, no paper", ("not a paper's setup",)).to_config()
    return c


def parse_arg(arg: str | None, default_variant: str = "lstm") -> tuple[str, str]:
    """``"lstm,smoke"`` -> ``("lstm", "smoke")``; validates both parts."""
    parts = (arg or default_variant).split(",")
    variant, scale = parts[0], parts[1] if len(parts) > 1 else "paper"
    if len(parts) > 2:
        raise ValueError(f"config argument must be VARIANT or VARIANT,SCALE, got {arg!r}")
    variants.get(variant)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    return variant, scale


def with_variant(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    """Set the model's mixer and mixer options from a named variant."""
    chosen = variants.get(variant)
    config.model.mixer = chosen.mixer
    config.model.mixer_options = ml_collections.ConfigDict(dict(chosen.options))
    config.model.seq2seq.attention = chosen.decoder_attention
    return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrink a config to finish in about a minute on a CPU (the task file shrinks its data)."""
    config.scale = "smoke"
    config.model.update(d_model=32, depth=2, dropout=0.0, param_budget=0)
    if "heads" in config.model.mixer_options:
        config.model.mixer_options.heads = 2
    config.optim.update(warmup_steps=10, accumulate=1)
    config.train.update(
        steps=60, batch_size=16, eval_every=20, eval_batches=4, checkpoint_every=20, log_every=10
    )
    return config


PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"
"""The configs installed with memjax (in a checkout, a link to the top-level ``configs/``)."""


def find_config(path: str | Path) -> Path:
    """The config file ``path`` names: the file itself if it exists (relative to the current
    directory, or absolute), else the installed config of that name (``configs/mqar.py``,
    ``mqar.py`` and ``mqar`` all name ``PACKAGED_CONFIGS/mqar.py``). FileNotFoundError names
    both places looked in and the installed configs."""
    given = Path(path).expanduser()
    if given.is_file():
        return given.resolve()
    name = given.name if given.suffix == ".py" else f"{given.name}.py"
    packaged = PACKAGED_CONFIGS / name
    if not given.is_absolute() and packaged.is_file():
        return packaged
    available = sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.py") if p.stem != "__init__")
    raise FileNotFoundError(
        f"config file {str(path)!r} does not exist: looked for {given.absolute()} and for "
        f"{packaged} (the installed configs: {', '.join(available)})"
    )


def load_module(path: str | Path) -> Any:
    """Import a config file (found by :func:`find_config`)."""
    path = find_config(path)
    spec = importlib.util.spec_from_file_location(f"memjax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {str(path)!r} defines no get_config(arg)")
    return module


def _flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        keys.append(name)
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(_flat_keys(value, name + "."))
    return keys


OPEN_GROUPS = ("task.options", "model.mixer_options")
"""Groups passed on to the task and the mixer, which validate them: new keys may be added."""


def override(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    """Set ``config.<dotted> = value`` through ConfigDict's own locked, type-checked assignment.

    The config is locked for the assignment (except the ``OPEN_GROUPS``), so an unknown key
    raises ValueError listing the closest valid keys, and ConfigDict's type check (an int may
    widen to a float) raises ValueError naming the key, the value and the type expected.
    """
    parent, _, leaf = dotted.rpartition(".")
    node = config
    for key in filter(None, parent.split(".")):
        node = node.get(key) if isinstance(node, ml_collections.ConfigDict) else None
        if node is None:
            _unknown(config, dotted)
    if isinstance(node, ml_collections.ConfigDict) and isinstance(
        node.get(leaf), ml_collections.ConfigDict
    ):
        raise ValueError(f"config.{dotted} is a group of fields; set one of its fields instead")
    config.lock()
    for group in OPEN_GROUPS:
        _group(config, group).unlock()
    try:
        config.update_from_flattened_dict({dotted: value})
    except KeyError:
        _unknown(config, dotted)
    except TypeError:
        expected = node.get_type(leaf).__name__
        raise ValueError(
            f"config.{dotted} expects a {expected}, got {value!r} ({type(value).__name__})"
        ) from None
    finally:
        config.unlock()


def _group(config: ml_collections.ConfigDict, dotted: str) -> ml_collections.ConfigDict:
    node = config
    for key in dotted.split("."):
        node = node[key]
    return node


def _unknown(config: ml_collections.ConfigDict, dotted: str) -> None:
    close = difflib.get_close_matches(dotted, _flat_keys(config), n=3, cutoff=0.5)
    hint = f"; closest valid keys: {', '.join('config.' + k for k in close)}" if close else ""
    raise ValueError(f"unknown config key config.{dotted}{hint}")


def parse_overrides(argv: Sequence[str]) -> list[tuple[str, Any]]:
    """``["--config.a.b=3", "--config.c", "x"]`` -> ``[("a.b", 3), ("c", "x")]``."""
    pairs, items = [], list(argv)
    while items:
        item = items.pop(0)
        if not item.startswith("--config."):
            raise ValueError(
                f"unexpected argument {item!r}; overrides look like --config.KEY=VALUE"
            )
        key, sep, value = item[len("--config.") :].partition("=")
        if not sep:
            if not items:
                raise ValueError(f"override {item!r} has no value")
            value = items.pop(0)
        pairs.append((key, parse_value(value)))
    return pairs


def load(spec: str, overrides: Sequence[tuple[str, Any]] = ()) -> ml_collections.ConfigDict:
    """Load ``"configs/FILE.py[:VARIANT[,SCALE]]"`` and apply ``(dotted_key, value)`` overrides."""
    path, _, arg = spec.partition(":")
    module = load_module(path)
    scale = [v for k, v in overrides if k == "scale"]
    if scale:
        variant = (arg or "lstm").split(",")[0]
        arg = f"{variant},{scale[-1]}"
    config = module.get_config(arg or None)
    for key, value in overrides:
        if key != "scale":
            override(config, key, value)
    validate(config)
    return config


def validate(config: ml_collections.ConfigDict) -> None:
    """Check the fields whose values are a closed set."""
    if config.parallel not in PARALLEL:
        raise ValueError(f"config.parallel must be one of {PARALLEL}, got {config.parallel!r}")
    if config.scale not in SCALES:
        raise ValueError(f"config.scale must be one of {SCALES}, got {config.scale!r}")
    if config.optim.schedule not in ("cosine", "rsqrt", "constant"):
        raise ValueError(
            "config.optim.schedule must be cosine, rsqrt or constant, "
            f"got {config.optim.schedule!r}"
        )
    if config.model.dtype not in ("float32", "bfloat16"):
        raise ValueError(
            f"config.model.dtype must be float32 or bfloat16, got {config.model.dtype!r}"
        )
    for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "keep", "log_every"):
        if int(config.train[key]) < 1:
            raise ValueError(f"config.train.{key} must be >= 1, got {config.train[key]!r}")
    _check_range("optim.lr", config.optim.lr, low=0.0, low_open=True)
    if config.optim.recurrence_lr is not None:
        _check_range("optim.recurrence_lr", config.optim.recurrence_lr, low=0.0, low_open=True)
    _check_range("optim.weight_decay", config.optim.weight_decay, low=0.0)
    _check_range("optim.clip_norm", config.optim.clip_norm, low=0.0)
    _check_range("optim.b1", config.optim.b1, low=0.0, high=1.0)
    _check_range("optim.b2", config.optim.b2, low=0.0, high=1.0)
    _check_range("optim.warmup_steps", config.optim.warmup_steps, low=0.0)
    _check_range("model.dropout", config.model.dropout, low=0.0, high=1.0)
    if int(config.model.remat) < 0 or int(config.model.param_budget) < 0:
        raise ValueError(
            "config.model.remat and config.model.param_budget must be >= 0, got "
            f"{config.model.remat!r} and {config.model.param_budget!r}"
        )
    if int(config.optim.accumulate) < 1 or config.train.batch_size % config.optim.accumulate:
        raise ValueError(
            f"config.optim.accumulate={config.optim.accumulate} must be >= 1 and divide "
            f"config.train.batch_size={config.train.batch_size}"
        )


def _check_range(
    key: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """ValueError unless ``value`` is a finite number in ``[low, high)`` (``(low, ...`` if open)."""
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    ok = (
        number is not None
        and math.isfinite(number)
        and (number > low if low_open else number >= low)
        and (high is None or number < high)
    )
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g}" + (f" and < {high:g}" if high else "")
        raise ValueError(f"config.{key} must be a finite number {bound}, got {value!r}")


NUMERICALLY_NEUTRAL = ("parallel", "model.mode", "model.unroll", "model.remat")
"""Fields that change how a run computes, not what: the same updates up to float rounding."""

CADENCE = (
    "train.eval_every",
    "train.eval_batches",
    "train.checkpoint_every",
    "train.keep",
    "train.log_every",
)
"""Fields that change what is logged and kept, not the parameters."""


DESCRIPTIVE = ("provenance",)
"""Fields that describe a run (where its setup comes from), not what it computes."""


def fingerprint(config: ml_collections.ConfigDict) -> str:
    """Hash of everything that changes the numbers a run computes.

    Left out: logging, evaluation and checkpoint cadence (``CADENCE``) and the fields that
    choose how the same computation runs (``NUMERICALLY_NEUTRAL``: data parallelism, scan mode,
    unrolling, rematerialisation), and the description of where the setup comes from
    (``DESCRIPTIVE``). A workdir remembers the fingerprint; resuming a run under a
    config with another one is refused.
    """
    data = json.loads(config.to_json())
    for dotted in (*CADENCE, *NUMERICALLY_NEUTRAL, *DESCRIPTIVE):
        *parents, leaf = dotted.split(".")
        node = data
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def apply_setup(config: ml_collections.ConfigDict, setup: dict[str, Any], task: str) -> None:
    """Set ``config``'s fields from a setup dict (the keys of :func:`task_config`'s ``paper``).

    ``s5_script`` (a dict of S5 ``run_train.py`` flags) is first translated by
    :func:`memjax.s5_release.expand_s5_script`.
    """
    setup = expand_s5_script(setup)
    train_keys = ("batch_size", "steps")
    optim_keys = (
        "lr",
        "recurrence_lr",
        "weight_decay",
        "b1",
        "b2",
        "schedule",
        "warmup_steps",
        "clip_norm",
        "opt_config",
        "dt_global",
    )
    mixer = config.model.mixer
    for key, value in setup.items():
        if key in train_keys:
            config.train[key] = value
        elif key in optim_keys:
            config.optim[key] = value
        elif key in MODEL_KEYS:
            config.model[key] = value
        elif key == "embed_positional":
            if mixer in _ACCEPTS[key]:
                config.model.positional = value
                config.model.mixer_options.positional = "none"
        elif key in _ACCEPTS:  # positional, heads, head_dim, state_size ...: mixer options
            if mixer in _ACCEPTS[key]:
                config.model.mixer_options[key] = value
        elif key == "mixer_options":
            config.model.mixer_options.update(dict(value))
        elif key == "seq2seq":
            config.model.seq2seq.update(dict(value))
        elif key == "task_options":
            config.task.options.update(dict(value))
        else:
            raise ValueError(f"unknown setup key {key!r} in the {task} config")


def task_config(
    task: str,
    arg: str | None,
    *,
    options: dict[str, Any],
    paper: dict[str, Any],
    smoke_options: dict[str, Any],
    per_variant: dict[str, dict[str, Any]] | None = None,
    sources: Mapping[str, Provenance] | None = None,
    shared: str = "memjax's shared setup of this task",
) -> ml_collections.ConfigDict:
    """Build a task's config: defaults, the variant's mixer, the paper setup, then the scale.

    ``paper`` holds the published training setup (keys, see :func:`apply_setup`: any of
    ``batch_size, steps, lr, recurrence_lr, weight_decay, b1, b2, schedule, warmup_steps,
    clip_norm, opt_config, dt_global``, the ``model`` fields of :data:`MODEL_KEYS`,
    ``embed_positional`` (attention: LRA's positions, added once at the embedding,
    ``model.positional``; the attention layers' own positions are then "none"),
    ``positional`` (attention's per-layer option), ``heads``, ``state_size``,
    ``mixer_options`` (a dict merged into ``model.mixer_options``), ``task_options`` (a dict
    merged into ``task.options``) and ``s5_script`` (:func:`memjax.s5_release.s5_setup`));
    ``per_variant[variant]`` overrides it for one variant (S5's own published setup for
    ``s5``, say). ``smoke_options`` shrink the task's data at smoke scale.
    """
    variant, scale = parse_arg(arg)
    config = with_variant(base_config(), variant)
    config.task.name = task
    config.task.options = ml_collections.ConfigDict(dict(options))
    own = expand_s5_script((per_variant or {}).get(variant, {}))
    apply_setup(config, {**paper, **own}, task)
    config.train.eval_every = max(1, min(config.train.eval_every, config.train.steps))
    config.train.checkpoint_every = config.train.eval_every
    provenance = (sources or {}).get(variant) or never_ran(variant, task, shared)
    if scale == "smoke":
        smoke(config)
        config.task.options.update(smoke_options)
        provenance = provenance.with_differences([SMOKE_DIFFERENCE])
    config.provenance = provenance.to_config()
    return config


SMOKE_DIFFERENCE = "smoke scale: a shrunk task and model trained for a few steps"


SYNTHETIC_SETUP = dict(
    schedule="cosine",
    warmup_steps=500,
    weight_decay=0.1,
    mlp="glu",
    mlp_expand=2,
    dropout=0.0,
    heads=4,
)
"""The training setup the generated tasks share (configs/copy.py, mqar.py, ...)."""


def safari_setup(epochs: int) -> dict[str, Any]:
    """H3's synthetic-task training (HazyResearch/safari configs/experiment/synthetics/*/base.yaml
    with configs/optimizer/adamw.yaml): 5,000 sequences in batches of 32 for ``epochs`` epochs
    (``div_up(5000, 32) = 157`` steps each), AdamW 5e-4, betas (0.9, 0.999), weight decay 0.1,
    warmup ``div_up(epochs, 10)`` epochs, no clipping; a 2-layer width-32 model with a GELU
    MLP of 128 and one attention head with learned positions."""
    per_epoch = -(-5_000 // 32)
    return dict(
        steps=per_epoch * epochs,
        batch_size=32,
        lr=5e-4,
        b2=0.999,
        weight_decay=0.1,
        schedule="cosine",
        warmup_steps=per_epoch * -(-epochs // 10),
        clip_norm=0.0,
        d_model=32,
        depth=2,
        mlp="mlp",
        mlp_expand=4,
        dropout=0.0,
        heads=1,
        positional="learned",
    )


MODEL_KEYS = (
    "d_model",
    "depth",
    "mlp",
    "mlp_expand",
    "pooling",
    "dropout",
    "norm",
    "bidirectional",
    "bidirectional_form",
    "norm_position",
    "final_norm",
    "input_projection",
    "residual",
    "activation",
    "bn_momentum",
    "dropout_time_shared",
    "param_budget",
)
"""Setup keys that set the ``config.model`` field of the same name."""

_ACCEPTS = {
    "positional": ("attention",),
    "embed_positional": ("attention",),
    "heads": ("attention", "linear_attention"),
    "head_dim": ("attention",),
    "state_size": ("lru", "s5"),
}
