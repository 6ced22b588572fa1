"""Speed of every memory, forward and forward+backward, beside the baselines, in one run.

``python -m memjax.bench --batch 16 --length 256 --width 128`` times each registered memory
through :func:`memjax.scan` and, in the same process, flax's ``nn.RNN(OptimizedLSTMCell)`` and
``nn.RNN(LSTMCell)`` and (when installed) ``torch.nn.LSTM``. Each entry reports the median
wall time of ``--repeats`` calls after compilation, tokens/s and compile time; ``--json`` writes
the rows with the device and library versions. Times mean something only beside the device they
were measured on; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

import memjax
from memjax.scan import MODES


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


def _block(x: Any) -> Any:
    return jax.tree.map(
        lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x
    )


def time_call(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(compile-or-first-call seconds, median seconds of ``repeats`` later calls)."""
    start = time.perf_counter()
    _block(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def parse_memory(text: str) -> tuple[str, dict[str, Any]]:
    """``"lstm:bptt=False,forget_bias=0.5"`` -> ``("lstm", {"bptt": False, "forget_bias": .5})``."""
    name, _, options = text.partition(":")
    hyper = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"memory option {item!r} in {text!r} must look like key=value")
        try:
            hyper[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            hyper[key] = value
    return name, hyper


def memjax_functions(text: str, batch: int, length: int, width: int, mode: str, unroll: int):
    """Jitted forward and forward+backward closures for memory ``text`` (name[:key=value,...])."""
    name, hyper = parse_memory(text)
    memory = memjax.cells.get(name, hidden=width, **hyper)
    params = memory.init(jax.random.key(0), width)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width))

    def loss(p, x):
        return jnp.sum(memjax.scan(memory, p, x, mode=mode, unroll=unroll)[0] ** 2)

    forward = jax.jit(lambda p, x: memjax.scan(memory, p, x, mode=mode, unroll=unroll)[0])
    backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return (lambda: forward(params, xs)), (lambda: backward(params, xs))


def flax_functions(cell_name: str, batch: int, length: int, width: int):
    """Forward and forward+backward of ``flax.linen.RNN(cell)``."""
    from flax import linen as nn

    cell = getattr(nn, cell_name)(features=width)
    model = nn.RNN(cell)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width))
    variables = model.init(jax.random.key(0), xs)

    def loss(v, x):
        return jnp.sum(model.apply(v, x) ** 2)

    forward = jax.jit(model.apply)
    backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return (lambda: forward(variables, xs)), (lambda: backward(variables, xs))


def torch_functions(batch: int, length: int, width: int):
    """Forward and forward+backward of ``torch.nn.LSTM`` (None when torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lstm = torch.nn.LSTM(width, width, batch_first=True).to(device)
    xs = torch.randn(batch, length, width, device=device, requires_grad=True)

    def sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    def forward():
        with torch.no_grad():
            return sync(lstm(xs)[0])

    def backward():
        lstm.zero_grad()
        (lstm(xs)[0] ** 2).sum().backward()
        return sync(None)

    return forward, backward


def run(
    names: Sequence[str],
    *,
    batch: int,
    length: int,
    width: int,
    repeats: int,
    mode: str = "auto",
    unroll: int = 1,
    baselines: bool = True,
) -> list[Row]:
    """Measure every memory in ``names`` and the installed baselines at one shape."""
    entries: list[tuple[str, tuple[Callable, Callable]]] = [
        (f"memjax {n}", memjax_functions(n, batch, length, width, mode, unroll)) for n in names
    ]
    if baselines:
        for cell_name in ("OptimizedLSTMCell", "LSTMCell"):
            entries.append((f"flax {cell_name}", flax_functions(cell_name, batch, length, width)))
        torch_fns = torch_functions(batch, length, width)
        if torch_fns is not None:
            entries.append(("torch nn.LSTM", torch_fns))
    rows = []
    for label, fns in entries:
        for pass_, fn in zip(("forward", "forward+backward"), fns, strict=True):
            compile_s, median_s = time_call(fn, repeats)
            rows.append(
                Row(
                    label,
                    pass_,
                    batch,
                    length,
                    width,
                    1e3 * median_s,
                    batch * length / median_s,
                    compile_s,
                )
            )
    return rows


def environment() -> dict[str, str]:
    """Device and versions to write beside any measured time."""
    import flax

    return {
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def markdown(rows: Sequence[Row], reference: str = "flax OptimizedLSTMCell") -> str:
    """Rows as a markdown table with each time's ratio to ``reference`` in the same pass."""
    ref = {r.pass_: r.median_ms for r in rows if r.name == reference}
    lines = [
        "| memory | pass | median ms | tokens/s | compile s | x " + reference + " |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r.median_ms / ref[r.pass_]:.2f}" if r.pass_ in ref else "-"
        lines.append(
            f"| {r.name} | {r.pass_} | {r.median_ms:.2f} | {r.tokens_per_s:,.0f} | "
            f"{r.compile_s:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memjax bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mixers",
        default=";".join(memjax.cells.names()),
        help="memories separated by ';', each NAME or NAME:key=value,...",
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--mode", default="auto", choices=MODES)
    parser.add_argument("--unroll", type=int, default=1)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", help="write rows and environment to this file")
    args = parser.parse_args(argv)
    names = [n for n in args.mixers.split(";") if n]
    for n in names:
        name, hyper = parse_memory(n)
        memjax.cells.get(name, hidden=args.width, **hyper)
    rows = run(
        names,
        batch=args.batch,
        length=args.length,
        width=args.width,
        repeats=args.repeats,
        mode=args.mode,
        unroll=args.unroll,
        baselines=not args.no_baselines,
    )
    env = environment()
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"environment": env, "rows": [dataclasses.asdict(r) for r in rows]}, f, indent=1
            )


if __name__ == "__main__":
    main()
