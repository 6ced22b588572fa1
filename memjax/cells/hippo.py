"""HiPPO-LegS and its normal part's eigendecomposition: the S5 initialisation (Smith et al. 2023).

The HiPPO-LegS matrix (Gu et al. 2020) of size ``n``, with ``q_k = sqrt(2k + 1)``::

    A[j, k] = -q_j q_k   (j > k),     -(j + 1)   (j == k),     0   (j < k)

is not normal, but ``A + p p^T`` with ``p_k = sqrt(k + 1/2)`` is: it equals ``-I / 2 + K`` with
``K`` real skew-symmetric (``K[j, k] = -q_j q_k / 2`` for ``j > k``, ``+q_j q_k / 2`` for
``j < k``), so it is unitarily diagonalisable, ``S = V diag(Lambda) V^H`` with
``Re Lambda = -1/2`` and ``Im Lambda`` the (real) eigenvalues of the Hermitian ``-i K``.
S5 (``s5/ssm_init.py: make_DPLR_HiPPO``) initialises its diagonal state matrix with this
``Lambda`` (the normal part, "HiPPO-N") and transforms its sampled ``B`` and ``C`` with ``V``:
``B~ = V^-1 B``, ``C~ = C V``.

Everything here is float64 / complex128 NumPy, computed once at initialisation. The eigenvalues
come in conjugate pairs ``(-1/2 + i w, -1/2 - i w)``; sorted by ``w`` ascending, as
``numpy.linalg.eigh`` returns them, the first ``n // 2`` hold one of every pair (for even ``n``),
which is what S5's ``conj_sym`` keeps.
"""

from __future__ import annotations

import numpy as np


def legs(n: int) -> np.ndarray:
    """The HiPPO-LegS matrix ``A [n, n]`` (float64); see the module docstring."""
    q = np.sqrt(2.0 * np.arange(n) + 1.0)
    return -(np.tril(q[:, None] * q[None, :]) - np.diag(np.arange(n, dtype=np.float64)))


def legs_normal(n: int) -> np.ndarray:
    """The normal part ``S = A + p p^T``, ``p_k = sqrt(k + 1/2)`` (float64 ``[n, n]``)."""
    p = np.sqrt(np.arange(n) + 0.5)
    return legs(n) + p[:, None] * p[None, :]


def legs_normal_eig(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Lambda [n], V [n, n])`` complex128 with ``S = V diag(Lambda) V^H``, ``V`` unitary.

    ``Re Lambda`` is the mean of ``S``'s diagonal (exactly ``-1/2``) and ``Im Lambda`` the
    eigenvalues of ``-i S`` (its skew part), ascending, as in S5's ``make_DPLR_HiPPO``.
    """
    s = legs_normal(n)
    real = np.mean(np.diagonal(s))
    skew = s - np.diag(np.diagonal(s))
    imag, v = np.linalg.eigh(-1j * skew)
    return real + 1j * imag, v


def block_init(
    modes: int, blocks: int, conj_sym: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S5's block-diagonal HiPPO-N initialisation for ``modes`` stored complex modes.

    Each of the ``blocks`` diagonal blocks is the HiPPO-N eigendecomposition of size
    ``m = 2 * modes / blocks`` (``conj_sym``: keep the first ``m / 2`` eigenvalues, one of each
    conjugate pair, and the matching columns of ``V``) or ``m = modes / blocks`` (all kept).
    Returns ``(Lambda [modes], V [P, modes], V_inv [modes, P])`` with ``P = blocks * m`` (S5's
    ``ssm_size``): ``V`` and ``V_inv = V^H`` are block diagonal, ``blocks`` copies each.
    """
    if modes % blocks:
        raise ValueError(f"blocks={blocks} must divide the number of modes {modes}")
    kept = modes // blocks
    size = 2 * kept if conj_sym else kept
    lam, v = legs_normal_eig(size)
    lam, v = lam[:kept], v[:, :kept]
    identity = np.eye(blocks)
    big_v, big_v_inv = np.kron(identity, v), np.kron(identity, v.conj().T)
    return np.tile(lam, blocks), big_v, big_v_inv
