"""The MNIST-1D paper's GRU in torch, written here to measure what its recipe reaches on our data.

Not part of memjax: a second implementation that `results/tables/mnist1d-other-memories/` quotes
to separate the published number from memjax's model. It needs torch and mnist1d
(`pip install torch mnist1d`), and runs on one CPU thread.

The model and loop follow greydanus/mnist1d at HEAD 7878d96 (read, not copied):
``notebooks/models.py`` ``GRUBase(input_size=1, output_size=10, hidden_size=6, time_steps=40,
bidirectional=True)``: one bidirectional ``torch.nn.GRU`` of 6 units per direction, every step's
12 outputs flattened into ``torch.nn.Linear(480, 10)`` (5,134 parameters, torch's default
initialisation); ``notebooks/train.py`` ``train_model``: ``optim.Adam(lr=1e-2)``, batch 100 read
in the fixed order ``x[(step * 100) % 4000 :][:100]`` for ``range(6000 + 1)`` steps, the test
accuracy evaluated every 250 steps. ``notebooks/mnist1d-classification.ipynb`` seeds 42 and
shuffles with ``np.random.seed(42); permutation(40)``; its printed outputs give the GRU 89.1% test
accuracy at step 6,000 (90.3% at step 4,000), shuffled 53.3% (56.8% at step 1,000).

The data is ``mnist1d.data.make_dataset(get_dataset_args())``, the generator memjax's task calls
(equal, to 1e-15, to the repository's ``mnist1d_data.pkl`` that the notebook downloads).

Options that each put one of memjax's differences (``configs/mnist1d.py`` ``DIFFERENCES``) into
the torch model, to measure which of them moves the accuracy:

- ``--rows 3600`` trains on memjax's 3,600 training rows (``memjax.tasks.mnist1d``'s
  ``split_rows`` with seed 0), in the same fixed order.
- ``--block memjax``: memjax's block around the cell: ``u = Linear(1, 12)(x)``, the two GRUs read
  ``u`` (12 features), and the head reads ``u + [h_fwd, h_bwd]`` (the residual).
- ``--init memjax``: memjax's initialisation: input weights truncated LeCun normal
  (std 1/sqrt(fan_in)), each gate's recurrent matrix orthogonal, every bias zero, and the
  linear layers as flax's (truncated LeCun-normal kernels, zero biases).

Usage: ``python results/reference/mnist1d_torch_gru.py --seeds 42 0 1 2 [--shuffled] [--rows 3600]
[--block memjax] [--init memjax]``
prints one JSON line per seed: the test accuracy (%) at the last step and its maximum over the
evaluations.
"""

import argparse
import json

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset

STEPS, BATCH, LR, EVAL_EVERY, HIDDEN, LENGTH = 6000, 100, 1e-2, 250, 6, 40


class PaperGRU(torch.nn.Module):
    """x [B, 40] -> logits [B, 10]: a bidirectional GRU's outputs [B, 40, 12] flattened, linear.

    ``memjax_block``: u = Linear(1, 12)(x) [B, 40, 12]; the GRU reads u and the head u + outputs.
    """

    def __init__(self, memjax_block: bool) -> None:
        super().__init__()
        width = 2 * HIDDEN
        self.project = torch.nn.Linear(1, width) if memjax_block else None
        self.gru = torch.nn.GRU(
            width if memjax_block else 1, HIDDEN, batch_first=True, bidirectional=True
        )
        self.linear = torch.nn.Linear(width * LENGTH, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x[..., None] if self.project is None else self.project(x[..., None])
        outputs, _ = self.gru(u)
        if self.project is not None:
            outputs = outputs + u
        return self.linear(outputs.reshape(len(x), -1))


def lecun_normal_(weight: torch.Tensor) -> None:
    """flax/JAX's lecun_normal: a normal truncated at 2 std, rescaled to std 1/sqrt(fan_in)."""
    fan_in = weight.shape[1]
    std = (1.0 / fan_in) ** 0.5 / 0.87962566103423978
    torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def memjax_init_(model: PaperGRU) -> None:
    """memjax's GRU and flax Linear initialisation (see the module docstring)."""
    with torch.no_grad():
        for name, weight in model.gru.named_parameters():
            if name.startswith("weight_ih"):
                lecun_normal_(weight)
            elif name.startswith("weight_hh"):
                for gate in weight.split(HIDDEN, dim=0):
                    torch.nn.init.orthogonal_(gate)
            else:
                weight.zero_()
        for linear in (model.project, model.linear):
            if linear is not None:
                lecun_normal_(linear.weight)
                linear.bias.zero_()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(-1) == y).float().mean())


def train(data: dict, seed: int, memjax_block: bool, memjax_init: bool) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"])
    x_test = torch.tensor(data["x_test"], dtype=torch.float32)
    y_test = torch.tensor(data["y_test"])
    model = PaperGRU(memjax_block)
    if memjax_init:
        memjax_init_(model)
    optimizer = torch.optim.Adam(model.parameters(), LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    curve = []
    for step in range(STEPS + 1):
        start = (step * BATCH) % len(x)
        loss = loss_fn(model(x[start : start + BATCH]), y[start : start + BATCH])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % EVAL_EVERY == 0:
            curve.append(accuracy(model, x_test, y_test))
    return {
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_last": curve[-1],
        "test_max": max(curve),
        "curve_every_250": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--shuffled", action="store_true", help="the notebook's permutation")
    parser.add_argument("--rows", type=int, choices=(3600, 4000), default=4000)
    parser.add_argument("--block", choices=("paper", "memjax"), default="paper")
    parser.add_argument("--init", choices=("torch", "memjax"), default="torch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = make_dataset(get_dataset_args())
    if args.rows == 3600:
        train_rows = np.sort(np.random.default_rng(0).permutation(len(data["y"]))[400:])
        data = {**data, "x": data["x"][train_rows], "y": data["y"][train_rows]}
    if args.shuffled:
        np.random.seed(42)
        order = np.random.permutation(LENGTH)
        data = {**data, "x": data["x"][:, order], "x_test": data["x_test"][:, order]}
    for seed in args.seeds:
        result = train(data, seed, args.block == "memjax", args.init == "memjax")
        settings = {"shuffled": args.shuffled, "rows": args.rows, "block": args.block}
        print(json.dumps({**settings, "init": args.init, **result}), flush=True)


if __name__ == "__main__":
    main()
