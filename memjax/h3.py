"""H3 (Fu et al. 2023, "Hungry Hungry Hippos: Towards Language Modeling with State Space
Models"): a shift SSM on the keys, a diagonal SSM on their product with the values, and the
queries read it out.

For inputs ``x_t [*batch, d_in]`` and ``M = hidden`` channels (HazyResearch/safari
``src/models/sequence/h3.py``)::

    q_t, k_t, v_t = x_t W_q + b_q,  x_t W_k + b_k,  x_t W_v + b_v          each [*batch, M]
    s_t = sum_{j=0}^{m-1} K_j * k_{t-j} + D_k * k_t                        [*batch, M]
    kv_t = s_t * v_t                         (head_dim = 1; per head below) [*batch, M]
    z_t = S4D(kv)_t                          (diagonal SSM, one per channel) [*batch, M]
    y_t = (q_t * z_t) W_o + b_o                                            [*batch, M]

The shift SSM is a shift register of the last ``m = shift_size`` keys, ``r_t[j] = k_{t-j}``
(``r_t = shift(r_{t-1}) + e_0 k_t``, safari's ``SSKernelShift`` with ``B = e_0``) read out by a
learned ``K = shift_c [M, m]``: a learned causal kernel of length ``m`` over each key channel,
plus a skip ``D_k = shift_d [M]``. ``S4D`` is :class:`memjax.cells.s4d.S4D` (its parameters
``a_re_log, a_im, log_dt, b_re, b_im, c_re, c_im, d`` sit at the top level of H3's), with
safari's H3 defaults: ``N = 64`` (32 complex modes), S4D-Lin, ``B = 1`` and the bilinear
discretisation (safari's ``SSKernelDiag`` default, which its H3 does not override).

``head_dim = d > 1`` (safari's multi-head H3) splits the ``M`` channels into ``H = M / d`` heads,
channel ``c = h d + i``, and runs one diagonal SSM per head over every product of a key and a
value of that head::

    kv_t[h, i, j] = s_t[h, i] * v_t[h, j]                                  [*batch, H, d, d]
    z_t[h, i, j] = S4D_h(kv[h, i, j])_t      (head h's A, B, C, D, Delta for all i, j)
    o_t[h, j] = sum_i q_t[h, i] * z_t[h, i, j],   y_t = o_t W_o + b_o      o_t flattened (h, j)

(safari flattens ``o`` as ``(j, h)``: a fixed permutation of the rows of ``W_o``).

Shapes: ``W_q, W_k, W_v [d_in, M]``, ``W_o [M, M]``, ``b_* [M]``, ``shift_c [M, m]``,
``shift_d [M]``, S4D's ``[H, N/2]`` and ``[H]``. Initialisation as safari's (PyTorch's): every
``W`` and ``b`` uniform in ``+-1/sqrt(fan_in)`` (``nn.Linear``), ``shift_c`` uniform in
``+-1/sqrt(m)`` (``kaiming_uniform_(a=sqrt(5))``), ``shift_d ~ N(0, 1)``; S4D's as its module
says. The recurrence parameters are S4D's (``A``, ``log_dt``, ``B``).

The carry is ``{"shift": r [*batch, M, m], "ssm": h [*batch, H d d, N/2] complex64}`` (float32
and complex64 for float32 and half-precision inputs, float64 and complex128 for float64 ones).
The streaming face (:meth:`H3.step`) updates both. The training face (:meth:`H3.sequence`,
called by :func:`memjax.scan`) computes the shift SSM over the whole sequence as a causal
depthwise convolution (the carried register in front of the keys) and hands ``kv`` to
:func:`memjax.scan` of the diagonal SSM with the same ``mode`` ("sequential", "parallel",
"pallas" or "auto") and mask, so padding and carries behave as for every cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from memjax.cells.base import (
    STATE_DTYPE,
    Array,
    Carry,
    Memory,
    Params,
    cast_carry,
    check_carry,
    check_input,
    compute_params,
    linear_init,
    matmul,
    state_dtype,
)
from memjax.cells.registry import register
from memjax.cells.s4d import (
    RECURRENCE_PARAMS,
    S4D,
    check_discretization,
    check_state_size,
    check_steps,
)
from memjax.scan import MODES, reverse_valid, scan

SSM_KEYS = ("a_re_log", "a_im", "log_dt", "b_re", "b_im", "c_re", "c_im", "d")
"""H3's parameters that are its diagonal SSM's."""


def _uniform(key: Array, shape: tuple[int, ...], bound: float) -> Array:
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _check_positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        expected = "None or a positive int" if optional else "a positive int"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def shift_conv(k: Array, register: Array, kernel: Array) -> tuple[Array, Array]:
    """The shift SSM's kernel sum over a whole sequence and the key history it reads.

    ``k [B, T, M]`` are the new keys and ``register [B, M, m]`` the carried ones
    (``register[..., j] = k_{-1-j}``). Returns ``sum_j kernel[:, j] * k_{t-j}`` ``[B, T, M]`` (a
    depthwise causal convolution in full precision) and the history ``ext [B, m + T, M]`` with
    ``ext[:, i] = k_{i-m}``.
    """
    m, time = kernel.shape[-1], k.shape[1]
    ext = jnp.concatenate([jnp.swapaxes(jnp.flip(register, -1), 1, 2), k], axis=1)
    # One shifted slice per tap: on the CPU 16x faster forward+backward than a grouped
    # convolution at T = 31 and 1.2-1.4x at T = 1K-4K (2-core CPU, jax 0.10.2).
    out = sum(
        kernel[:, j] * jax.lax.slice_in_dim(ext, m - j, m - j + time, axis=1) for j in range(m)
    )
    return out, ext


def last_keys(ext: Array, lengths: Array, m: int) -> Array:
    """The register after each sequence's last valid step: ``[B, M, m]`` with ``[..., j] =
    k_{n-1-j}`` for ``n = lengths [B]`` valid steps, from the history ``ext`` of
    :func:`shift_conv`."""
    index = m + lengths[:, None] - 1 - jnp.arange(m)[None, :]
    return jnp.swapaxes(jnp.take_along_axis(ext, index[..., None], axis=1), 1, 2)


@register
@dataclasses.dataclass(frozen=True)
class H3(Memory):
    """H3: shift SSM on the keys, diagonal SSM on keys times values, read by the queries.

    Attributes:
      hidden: width ``M`` of q, k, v and of the output.
      state_size: the diagonal SSM's ``N`` per head (``N / 2`` complex modes), safari's
        ``d_state``.
      shift_size: length ``m`` of the shift register; None means ``state_size``, as safari's H3
        sizes its shift SSM by the same ``d_state``.
      head_dim: width ``d`` of each head (safari's default 1); divides ``hidden``.
      dt_min, dt_max: range of the diagonal SSM's log-uniform initial steps.
      discretization: the diagonal SSM's, "bilinear" (safari's H3) or "zoh" (S4D's).
    """

    state_size: int = 64
    shift_size: int | None = None
    head_dim: int = 1
    dt_min: float = 0.001
    dt_max: float = 0.1
    discretization: str = "bilinear"
    name = "h3"
    recurrence_params = RECURRENCE_PARAMS

    @classmethod
    def width_multiple(cls, **options: Any) -> int:
        """``head_dim``: ``hidden`` is split into heads of that width."""
        return int(options.get("head_dim", cls.head_dim))

    def __post_init__(self) -> None:
        super().__post_init__()
        check_state_size(self.state_size)
        _check_positive_int("shift_size", self.shift_size, optional=True)
        _check_positive_int("head_dim", self.head_dim)
        if self.hidden % self.head_dim:
            raise ValueError(
                f"hidden={self.hidden} must be a multiple of head_dim={self.head_dim}; "
                "expected a hidden width that splits into whole heads"
            )
        check_steps(self.dt_min, self.dt_max)
        check_discretization(self.discretization)

    @property
    def heads(self) -> int:
        """``H = hidden / head_dim``, the number of diagonal SSMs."""
        return self.hidden // self.head_dim

    @property
    def shift(self) -> int:
        """``m``, the shift register's length."""
        return self.state_size if self.shift_size is None else self.shift_size

    def _diagonal(self, channels: int) -> S4D:
        return S4D(
            hidden=channels,
            state_size=self.state_size,
            dt_min=self.dt_min,
            dt_max=self.dt_max,
            discretization=self.discretization,
        )

    @property
    def diagonal(self) -> S4D:
        """The diagonal SSM as it runs: one channel per (head, key, value) triple."""
        return self._diagonal(self.heads * self.head_dim**2)

    def diagonal_params(self, params: Params) -> Params:
        """The S4D parameters of :attr:`diagonal`: each head's repeated ``head_dim^2`` times."""
        repeat = self.head_dim**2
        ssm = {key: params[key] for key in SSM_KEYS}
        return ssm if repeat == 1 else jax.tree.map(lambda p: jnp.repeat(p, repeat, 0), ssm)

    def init(self, key: Array, d_in: int) -> Params:
        keys = jax.random.split(key, 10)
        m, width = self.shift, self.hidden
        params = {}
        for name, k_w, k_b in zip("qkv", keys[0:3], keys[3:6], strict=True):
            params[f"w_{name}"] = linear_init(k_w, d_in, width, scale=1 / math.sqrt(3))
            params[f"b_{name}"] = _uniform(k_b, (width,), 1 / math.sqrt(d_in))
        params["w_o"] = linear_init(keys[6], width, width, scale=1 / math.sqrt(3))
        params["b_o"] = _uniform(keys[7], (width,), 1 / math.sqrt(width))
        params["shift_c"] = _uniform(keys[8], (width, m), 1 / math.sqrt(m))
        params["shift_d"] = jax.random.normal(keys[9], (width,))
        ssm = self._diagonal(self.heads).init(jax.random.fold_in(key, 1), self.heads)
        return {**params, **ssm}

    def input_features(self, params: Params) -> int:
        return params["w_q"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> dict[str, Array]:
        batch_shape = tuple(batch_shape)
        register = jnp.zeros((*batch_shape, self.hidden, self.shift), STATE_DTYPE)
        return {"shift": register, "ssm": self.diagonal.initial_carry(params, batch_shape)}

    def _qkv(self, params: Params, x: Array) -> tuple[Array, Array, Array]:
        """``q, k, v [..., M]`` in the state dtype of ``x``."""
        dtype = state_dtype(x.dtype)
        project = lambda n: matmul(x, params[f"w_{n}"]).astype(dtype) + params[f"b_{n}"]
        return project("q"), project("k"), project("v")

    def _heads_in(self, s: Array, v: Array) -> Array:
        """``kv [..., H d d]``: per head, every key channel times every value channel."""
        if self.head_dim == 1:
            return s * v
        split = lambda a: a.reshape(*a.shape[:-1], self.heads, self.head_dim)
        kv = split(s)[..., :, None] * split(v)[..., None, :]
        return kv.reshape(*kv.shape[:-3], -1)

    def _heads_out(self, params: Params, q: Array, z: Array, x_dtype: Any) -> Array:
        """``(q * z) W_o + b_o`` (per head ``o[h, j] = sum_i q[h, i] z[h, i, j]``)."""
        if self.head_dim == 1:
            o = q * z
        else:
            d = self.head_dim
            z = z.reshape(*z.shape[:-1], self.heads, d, d)
            o = jnp.sum(q.reshape(*q.shape[:-1], self.heads, d, 1) * z, axis=-2)
            o = o.reshape(*o.shape[:-2], -1)
        return (matmul(o.astype(x_dtype), params["w_o"]) + params["b_o"]).astype(x_dtype)

    def step(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        """One step: ``x_t [*batch, d_in] -> (carry', y_t [*batch, hidden])``."""
        check_input(self, params, x_t, name="x_t", min_rank=1)
        check_carry(self, params, carry, x_t.shape[:-1])
        params, carry = compute_params(params, x_t.dtype), cast_carry(carry, x_t.dtype)
        q, k, v = self._qkv(params, x_t)
        register = jnp.concatenate([k[..., None], carry["shift"][..., :-1]], axis=-1)
        s = jnp.sum(params["shift_c"] * register, axis=-1) + params["shift_d"] * k
        diagonal, ssm_params = self.diagonal, self.diagonal_params(params)
        pre = diagonal.prepare(ssm_params, self._heads_in(s, v))
        ssm, h = diagonal.recur(ssm_params, carry["ssm"], pre)
        z = diagonal.readout(ssm_params, h, pre)
        return {"shift": register, "ssm": ssm}, self._heads_out(params, q, z, x_t.dtype)

    def sequence(
        self,
        params: Params,
        xs: Array,
        *,
        mask: Array | None,
        carry: Carry | None,
        reverse: bool,
        mode: str,
    ) -> tuple[Array, Carry]:
        """The training face: ``xs [B, T, d_in] -> (ys [B, T, hidden], carry)``.

        Called by :func:`memjax.scan`, which validates ``xs``, ``mask`` (bool ``[B, T]``, a
        valid prefix then padding) and ``carry``. ``mode`` is the diagonal SSM's
        (:func:`memjax.scan`'s "sequential", "parallel", "pallas" or "auto"). Padded outputs
        are exactly zero and the returned carry is the state after each sequence's last valid
        step; ``reverse`` runs each valid prefix backwards, outputs in the original order.
        """
        if mode not in MODES or mode == "chunked":
            allowed = [m for m in MODES if m != "chunked"]
            raise ValueError(
                f"mode must be one of {allowed} for H3 ('h3'), whose diagonal SSM has no "
                f"chunked form; got mode={mode!r}"
            )
        params = compute_params(params, xs.dtype)
        batch, time, _ = xs.shape
        if carry is None:
            carry = self.initial_carry(params, (batch,))
        carry = cast_carry(carry, xs.dtype)
        if reverse:
            xs = reverse_valid(xs, mask)
        q, k, v = self._qkv(params, xs)
        conv, ext = shift_conv(k, carry["shift"], params["shift_c"])
        s = conv + params["shift_d"] * k
        kv = self._heads_in(s, v)
        diagonal, ssm_params = self.diagonal, self.diagonal_params(params)
        z, ssm = scan(diagonal, ssm_params, kv, mode=mode, mask=mask, carry=carry["ssm"])
        ys = self._heads_out(params, q, z, xs.dtype)
        lengths = jnp.full((batch,), time) if mask is None else mask.sum(axis=1)
        register = last_keys(ext, lengths, self.shift)
        if mask is not None:
            ys = jnp.where(mask[..., None], ys, jnp.zeros((), ys.dtype))
        if reverse:
            ys = reverse_valid(ys, mask)
        return ys, {"shift": register, "ssm": ssm}
