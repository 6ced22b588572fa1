"""Hand-written Pallas kernels (Triton on GPUs, interpret mode on the CPU)."""

from memjax.kernels.linear_recurrence import linear_recurrence

__all__ = ["linear_recurrence"]
