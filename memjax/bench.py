"""Speed of every memory, forward and forward+backward, beside the baselines, in one run.

``memjax bench --batch 16 --lengths 256 --width 128`` times each registered memory through
:func:`memjax.scan` and, in the same process, the baselines of
:mod:`memjax.bench_baselines` that are installed: flax's ``nn.RNN`` LSTM cells, memax's GRU,
LSTM and LRU (``pip install memjax[bench]``), torch's LSTM, GRU, SDPA and attention layer (with
torch installed). Each entry reports the median wall time of ``--repeats`` calls after
compilation, called in interleaved rounds, tokens/s and compile time; ``--threads N`` runs XLA
and torch on ``N`` CPUs; ``--json`` writes the rows with the device, library versions and thread
limit. Times mean something only beside the device they were measured on; compare ratios within
one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from tabulate import tabulate

import memjax
from memjax.bench_baselines import BASELINES
from memjax.cells.base import Cell
from memjax.options import parse_memories, parse_memory
from memjax.scan import MODES, Unroll, resolve_mode, resolve_options, resolve_unroll
from memjax.timing import jax_pair, time_interleaved


@dataclasses.dataclass
class Row:
    """One measurement: ``name`` run in ``pass_`` ("forward" or "forward+backward")."""

    name: str
    pass_: str
    batch: int
    length: int
    width: int
    median_ms: float
    tokens_per_s: float
    compile_s: float
    peak_bytes: int | None = None


def memjax_functions(
    text: str,
    batch: int,
    length: int,
    width: int,
    mode: str,
    unroll: Unroll,
    dtype: str = "float32",
    remat: int = 0,
):
    """Jitted forward and forward+backward closures for memory ``text`` (name[:key=value,...]),
    on inputs of ``dtype`` (the compute dtype; parameters and recurrent state stay float32)."""
    name, hyper = parse_memory(text)
    memory = memjax.cells.get(name, hidden=width, **hyper)
    params = memory.init(jax.random.key(0), width)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width)).astype(dtype)

    def apply(p, x):
        return memjax.scan(memory, p, x, mode=mode, unroll=unroll, remat=remat)[0]

    def loss(p, x):
        return jnp.sum(apply(p, x).astype(jnp.float32) ** 2)

    forward = jax.jit(apply)
    backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return jax_pair(forward, backward, params, xs)


def parse_baselines(text: str) -> list[str]:
    """``"torch sdpa,flax LSTMCell"`` -> the two names; ValueError naming unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(
            f"--baselines has unknown names {unknown}; expected any of {list(BASELINES)}"
        )
    return names


def parse_remats(text: str) -> list[int]:
    """``"0,64"`` -> ``[0, 64]``; ValueError naming ``--remat`` otherwise."""
    items = text.split(",")
    if not all(item.isdigit() for item in items):
        raise ValueError(f"--remat takes non-negative ints separated by commas, got {text!r}")
    return [int(item) for item in items]


def parse_unrolls(text: str) -> list[Unroll]:
    """``"auto,1,8"`` -> ``["auto", 1, 8]``; ValueError naming ``--unroll`` otherwise."""
    unrolls: list[Unroll] = []
    for item in text.split(","):
        if item != "auto" and not item.isdigit():
            raise ValueError(f"--unroll takes ints or 'auto' separated by commas, got {text!r}")
        unroll = item if item == "auto" else int(item)
        resolve_unroll(unroll)
        unrolls.append(unroll)
    return unrolls


def modes_of(text: str, modes: Sequence[str], width: int) -> list[str]:
    """The modes of ``modes`` that memory ``text`` runs in: a recurrent cell skips the modes it
    has no form for (an LSTM has no parallel form); attention ignores modes, so runs once."""
    name, hyper = parse_memory(text)
    memory = memjax.cells.get(name, hidden=width, **hyper)
    if not isinstance(memory, Cell):
        return list(modes[:1])
    supported = []
    for mode in modes:
        try:
            resolve_mode(memory, mode)
        except ValueError:
            continue
        supported.append(mode)
    return supported


def option_grid(
    text: str, mode: str, width: int, unrolls: Sequence[Unroll], remats: Sequence[int]
) -> list[tuple[Unroll, int]]:
    """The ``(unroll, remat)`` pairs that memory ``text`` uses in ``mode``: every pair where the
    scan is sequential; once, with the defaults, where it ignores both (parallel, attention)."""
    name, hyper = parse_memory(text)
    memory = memjax.cells.get(name, hidden=width, **hyper)
    grid = []
    for unroll in unrolls:
        for remat in remats:
            try:
                resolve_options(memory, mode, unroll=unroll, remat=remat, chunk=None)
            except ValueError:
                continue
            grid.append((unroll, remat))
    return grid or [("auto", 0)]


def model_compile_seconds(text: str, *, depth: int = 4, width: int = 128, length: int = 256):
    """Seconds to compile the train step (forward, backward, AdamW) of a ``depth``-layer model
    of memory ``text`` (``name[:key=value,...]``, its options passed to every layer)."""
    import optax
    from flax import nnx

    from memjax import models

    name, options = parse_memory(text)
    model = models.SequenceClassifier(
        name,
        num_classes=10,
        d_model=width,
        depth=depth,
        vocab_size=256,
        mixer_options=options,
        rngs=nnx.Rngs(0),
    )
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
    tx = optax.adamw(1e-3)
    tokens = jnp.ones((8, length), jnp.int32)

    def step(p, opt_state, r):
        grads = jax.grad(lambda q: nnx.merge(graphdef, q, r)(tokens).sum())(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    start = time.perf_counter()
    jax.jit(step).lower(params, tx.init(params), rest).compile()
    return time.perf_counter() - start


def run(
    names: Sequence[str],
    *,
    batch: int,
    lengths: Sequence[int],
    width: int,
    repeats: int,
    modes: Sequence[str] = ("auto",),
    unrolls: Sequence[Unroll] = ("auto",),
    baselines: Sequence[str] = (),
    dtype: str = "float32",
    remats: Sequence[int] = (0,),
) -> list[Row]:
    """Measure every memory in ``names`` in every scan mode of ``modes``, at every unroll
    factor of ``unrolls`` and every remat segment of ``remats`` (0: off), and each of
    ``baselines`` (keys of :data:`BASELINES`) that is installed, at each length. A row's name
    carries the mode, unroll and remat when more than one is asked for."""
    rows = []
    for length in lengths:
        shape = (batch, length, width)
        entries = [
            (
                f"memjax {n}"
                + (f" mode={m}" if len(modes) > 1 else "")
                + (f" unroll={u}" if len(unrolls) > 1 else "")
                + (f" remat={r}" if len(remats) > 1 else ""),
                functools.partial(memjax_functions, n, *shape, m, u, dtype, r),
            )
            for n in names
            for m in modes_of(n, modes, width)
            for u, r in option_grid(n, m, width, unrolls, remats)
        ]
        entries += [
            (label, functools.partial(BASELINES[label][0], *BASELINES[label][1:], *shape))
            for label in baselines
        ]
        timed = []
        for label, make in entries:
            pair = make()
            if pair is not None:
                timed += zip([label] * 2, ("forward", "forward+backward"), pair, strict=True)
        results = time_interleaved([entry.call for *_, entry in timed], repeats)
        for (label, pass_, entry), (first_s, median_s) in zip(timed, results, strict=True):
            ms, rate = 1e3 * median_s, batch * length / median_s
            compile_s = first_s if entry.compile_s is None else entry.compile_s
            rows.append(Row(label, pass_, *shape, ms, rate, compile_s, entry.peak_bytes))
    return rows


def limit_threads(threads: int) -> None:
    """Run this process on its first ``threads`` schedulable CPUs, XLA's CPU backend with an
    intra-op pool of ``threads`` (one thread: no pool, ``--xla_cpu_multi_thread_eigen=false``)
    and torch on ``threads`` threads.

    Pinning alone is not enough: XLA's default pool on one pinned CPU runs the LSTM's
    forward+backward about 1.45x slower than one thread with no pool. Must run before JAX starts
    its backend, which reads ``XLA_FLAGS`` once. ValueError for a count below 1 or above the
    CPUs available, or when the backend has already started (the limit would not reach XLA).
    """
    from jax._src import xla_bridge

    cpus = sorted(os.sched_getaffinity(0))
    if not 1 <= threads <= len(cpus):
        raise ValueError(f"--threads must be between 1 and {len(cpus)} here, got {threads}")
    if xla_bridge.backends_are_initialized():
        raise ValueError("--threads must be set before JAX starts its backend")
    os.sched_setaffinity(0, cpus[:threads])
    pool = f"--xla_cpu_multi_thread_eigen={'false' if threads == 1 else 'true'}"
    os.environ["XLA_FLAGS"] = " ".join(
        filter(None, (os.environ.get("XLA_FLAGS"), pool, f"intra_op_parallelism_threads={threads}"))
    )
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def environment(threads: int | None = None) -> dict[str, str]:
    """Device, versions and thread limit (``"default"``: none) to write beside a measured time."""
    import flax

    return {
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "python": platform.python_version(),
        "threads": "default" if threads is None else str(threads),
        "date": datetime.date.today().isoformat(),
    }


def markdown(rows: Sequence[Row], reference: str = "flax OptimizedLSTMCell") -> str:
    """Rows as a markdown table with each time's ratio to ``reference`` at the same length and
    pass (measured in the same run)."""
    ref = {(r.length, r.pass_): r.median_ms for r in rows if r.name == reference}
    headers = ("memory", "length", "pass", "median ms", "tokens/s", "compile s", "peak MB")
    table = [
        (
            r.name,
            r.length,
            r.pass_,
            f"{r.median_ms:.2f}",
            f"{r.tokens_per_s:,.0f}",
            f"{r.compile_s:.2f}",
            f"{r.peak_bytes / 2**20:,.0f}" if r.peak_bytes else "-",
            f"{r.median_ms / ref[key]:.2f}" if (key := (r.length, r.pass_)) in ref else "-",
        )
        for r in rows
    ]
    align = ("left", "right", "left", "right", "right", "right", "right", "right")
    return tabulate(
        table, (*headers, f"x {reference}"), tablefmt="pipe", colalign=align, disable_numparse=True
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memjax bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mixers",
        default=";".join(memjax.cells.names()),
        help="memories separated by ';', each NAME or NAME:key=value,...",
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lengths", default="256", help="comma-separated sequence lengths")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--mode",
        default="auto",
        help=f"comma-separated scan modes, each one of {MODES}; each memory runs in every one",
    )
    parser.add_argument(
        "--unroll",
        default="auto",
        help="comma-separated lax.scan unroll factors, each an int or 'auto'; each memory is "
        "measured at every one",
    )
    parser.add_argument(
        "--remat",
        default="0",
        help="comma-separated remat segment lengths (0: off; K: keep the state every K steps)",
    )
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="comma-separated baselines to time beside the memories (those not installed, or "
        f"not on this backend, are skipped); any of {list(BASELINES)}",
    )
    parser.add_argument("--no-baselines", action="store_true", help="time no baseline")
    parser.add_argument("--reference", default="flax OptimizedLSTMCell")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time compiling a 4-layer model's train step for each memory",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="run on this many CPUs (XLA's thread pool and torch's threads); default: the "
        "libraries' own defaults",
    )
    parser.add_argument("--json", help="write rows and environment to this file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        limit_threads(args.threads)
    names = parse_memories(args.mixers)
    for n in names:
        name, hyper = parse_memory(n)
        memjax.cells.get(name, hidden=args.width, **hyper)
    lengths = [int(n) for n in args.lengths.split(",")]
    unrolls = parse_unrolls(args.unroll)
    remats = parse_remats(args.remat)
    modes = args.mode.split(",")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"--mode takes modes from {MODES} separated by commas, got {mode!r}")
    rows = run(
        names,
        batch=args.batch,
        lengths=lengths,
        width=args.width,
        repeats=args.repeats,
        modes=modes,
        dtype=args.dtype,
        unrolls=unrolls,
        remats=remats,
        baselines=[] if args.no_baselines else parse_baselines(args.baselines),
    )
    env = environment(args.threads)
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    print(markdown(rows, args.reference))
    compile_times = {}
    if args.compile:
        for n in names:
            compile_times[n] = model_compile_seconds(n)
        print("\n| memory | 4-layer train-step compile s |\n|---|---:|")
        print("\n".join(f"| {n} | {t:.1f} |" for n, t in compile_times.items()))
    if args.json:
        payload = {
            "environment": env,
            "rows": [dataclasses.asdict(r) for r in rows],
            "model_compile_s": compile_times,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)


if __name__ == "__main__":
    main()
