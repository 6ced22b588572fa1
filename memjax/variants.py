"""The model variants a config names (``configs/TASK.py:VARIANT``): one table, used everywhere.

A variant is a memory from the registry (:func:`memjax.cells.get`) with fixed options, the name
tables print for it, and, per published table family, the published row of the same model
(``lra``: LRA, S4, S5 and LRU's rows; ``h3``: H3's Table 2). ``memjax train``, ``table`` and
``compare`` take variant names; ``bench`` and ``probe`` take registry names with options.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model variant."""

    name: str
    mixer: str
    options: Mapping[str, Any]
    display: str
    published: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Table family -> the published row of the same model (``"lra"``, ``"h3"``,
    ``"mnist1d"``)."""
    decoder_attention: str = ""
    """For sequence-to-sequence tasks: the attention of the decoder over the encoder states
    (``"bahdanau"``, Bahdanau et al. 2014); empty for none (or the Transformer's own)."""


def _variant(name, mixer, display, options=None, decoder_attention="", **published) -> Variant:
    options = MappingProxyType(dict(options or {}))
    return Variant(name, mixer, options, display, published, decoder_attention)


VARIANTS: Mapping[str, Variant] = MappingProxyType(
    {
        v.name: v
        for v in (
            _variant(
                "transformer",
                "attention",
                "Transformer",
                {"causal": False, "heads": 4},
                lra="Transformer",
                h3="Attention",
            ),
            _variant("lstm", "lstm", "LSTM"),
            _variant("gru", "gru", "GRU", mnist1d="GRU"),
            _variant("lstm_attention", "lstm", "LSTM + attention", decoder_attention="bahdanau"),
            _variant("gru_attention", "gru", "GRU + attention", decoder_attention="bahdanau"),
            _variant("rnn", "rnn", "RNN-Tanh", {"activation": "tanh"}, lra="RNN-Tanh"),
            _variant("rnn_relu", "rnn", "RNN-ReLU", {"activation": "relu"}, lra="RNN-ReLU"),
            _variant("mingru", "mingru", "minGRU"),
            _variant("minlstm", "minlstm", "minLSTM"),
            _variant("lru", "lru", "LRU", lra="LRU"),
            _variant("s5", "s5", "S5-style", lra="S5"),
            _variant("s4d", "s4d", "S4D", h3="S4D"),
            _variant("h3", "h3", "H3", h3="H3"),
            _variant("linear_attention", "linear_attention", "Linear attention"),
        )
    }
)

TABLE_DEFAULT = ("transformer", "lstm", "gru", "mingru", "lru", "s5")
"""The variants ``memjax table`` trains unless ``--variants`` says otherwise."""

COMPARE_DEFAULT = ("lstm", "mingru", "lru", "transformer")
"""The variants ``memjax compare`` (and ``make demo``) trains unless told otherwise."""


def get(name: str) -> Variant:
    """The variant ``name``; ValueError listing the variants (and the closest) otherwise."""
    if name not in VARIANTS:
        close = difflib.get_close_matches(name, list(VARIANTS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model variant {name!r}; expected one of {sorted(VARIANTS)}{hint}"
        )
    return VARIANTS[name]


def parse_list(text: str, argument: str = "--variants") -> tuple[str, ...]:
    """``"lstm,lru"`` -> ``("lstm", "lru")``; ValueError naming ``argument`` and the bad name."""
    names = tuple(item.strip() for item in text.split(",") if item.strip())
    if not names:
        raise ValueError(f"{argument}: got {text!r}; expected variant names separated by commas")
    for name in names:
        try:
            get(name)
        except ValueError as error:
            raise ValueError(f"{argument}: {error}") from None
    return names
