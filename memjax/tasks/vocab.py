"""Readable decoding of token ids: named tokens, bytes, and pixel rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD = 0


class TokenDecoder:
    """Decodes ids [n] to names joined by ``sep``; padding (id 0) is dropped.

    Runs of more than three equal ids listed in ``compress`` print as ``name*count``, so a lag of
    a thousand blanks reads ``_*1000``.
    """

    def __init__(self, names: Sequence[str], sep: str = " ", compress: Sequence[int] = ()):
        self.names = tuple(names)
        self.sep = sep
        self.compress = frozenset(compress)

    def __call__(self, ids: np.ndarray) -> str:
        ids = [int(i) for i in np.asarray(ids).reshape(-1) if i != PAD]
        words, i = [], 0
        while i < len(ids):
            j = i
            while j < len(ids) and ids[j] == ids[i]:
                j += 1
            name = self.names[ids[i]] if ids[i] < len(self.names) else f"<{ids[i]}>"
            if ids[i] in self.compress and j - i > 3:
                words.append(f"{name}*{j - i}")
            else:
                words.extend([name] * (j - i))
            i = j
        return self.sep.join(words)


def decode_bytes(ids: np.ndarray) -> str:
    """Byte-level ids (byte + 1, padding 0 dropped) back to text, invalid UTF-8 replaced."""
    ids = np.asarray(ids).reshape(-1)
    return bytes((ids[ids != PAD] - 1).astype(np.uint8)).decode("utf-8", "replace")


def encode_bytes(text: str | bytes) -> np.ndarray:
    """Text to byte-level ids: int32 [n_bytes], byte + 1 so that 0 stays padding."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32) + 1


class PixelDecoder:
    """Draws a flattened square grayscale image as ASCII rows (10 shades, dark to light).

    Accepts pixel tokens (pixel + 1, int [side*side]) or normalised pixels (float [side*side, 1]
    in [0, 1]). Images wider than ``MAX_COLUMNS`` are block-averaged down to fit.
    """

    SHADES = " .:-=+*#%@"
    MAX_COLUMNS = 64

    def __init__(self, side: int):
        self.side = side

    def __call__(self, inputs: np.ndarray) -> str:
        x = np.asarray(inputs)
        if np.issubdtype(x.dtype, np.integer):
            x = (x.reshape(-1) - 1).clip(0, 255) / 255.0
        x = x.reshape(self.side, self.side)
        factor = -(-self.side // self.MAX_COLUMNS)
        if factor > 1:
            cut = self.side - self.side % factor
            x = x[:cut, :cut].reshape(cut // factor, factor, cut // factor, factor).mean((1, 3))
        levels = np.minimum((x * len(self.SHADES)).astype(int), len(self.SHADES) - 1)
        return "\n".join("".join(self.SHADES[v] for v in row) for row in levels)
