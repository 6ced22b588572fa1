"""Associative recall (Fu et al. 2023, H3, Table 2):
output the value bound earlier to the queried key.

Paper scale: H3's setup, HazyResearch/safari
``configs/experiment/synthetics/associative_recall/vocab_size_10.yaml`` on ``base.yaml`` (with
``h3.yaml``, ``s4d.yaml``, ``transformer.yaml`` for the models),
``configs/pipeline/assoc_recall.yaml``, ``configs/dataset/icl_synthetics.yaml`` and
``configs/optimizer/adamw.yaml``: vocabulary 10 (4 keys, 4 values, ``=>`` and ``.``), 10
key-value pairs then ``=>`` and a query key (22 inputs), 5,000 training and 500 test sequences, a
language-model loss on every position in training and the last position scored at test, batch 32
for 200 epochs (157 steps each: 31,400 steps), AdamW (betas 0.9/0.999, weight decay 0.1) at lr
5e-4 with 3,140 warmup steps, no clipping, 2 layers of width 32 with a GELU MLP of width 128, no
residual dropout, one attention head with learned positions.

Still different from safari: its schedule (``linear_warmup``, transformers'
``get_linear_schedule_with_warmup``) decays linearly to 0, memjax's cosine decays as a cosine;
its embedding dropout (0.1) and attention dropout (0.1) are not modelled; safari validates on
its test set, memjax draws a separate validation split of the same size; safari makes its
sequences distinct within a split, memjax draws each independently. H3's and S4D's layers are
memjax's ``h3`` and ``s4d``; what differs from safari's is in each variant's
``config.provenance``. Usage:
``--config configs/associative_recall.py:lstm``.
"""

from memjax.config import safari_setup, task_config
from memjax.provenance import H3_LAYER_DIFFERENCES, S4D_LAYER_DIFFERENCES, h3_table_2

DIFFERENCES = (
    "safari's linear_warmup schedule decays linearly to 0; memjax's decays as a cosine",
    "no embedding dropout (0.1) and no attention dropout (0.1) as in safari's lm_simple model",
    "a separate validation split of 500 (safari selects its checkpoint on the test split)",
    "sequences are drawn independently; safari makes them distinct within a split",
)
SOURCES = {
    "transformer": h3_table_2("Attention", "associative_recall/transformer-vs10.yaml", DIFFERENCES),
    "h3": h3_table_2(
        "H3", "associative_recall/h3-vs10.yaml", (*DIFFERENCES, *H3_LAYER_DIFFERENCES)
    ),
    "s4d": h3_table_2(
        "S4D", "associative_recall/s4d-vs10.yaml", (*DIFFERENCES, *S4D_LAYER_DIFFERENCES)
    ),
}


def get_config(arg=None):
    return task_config(
        "associative_recall",
        arg,
        options=dict(
            vocab_size=10,
            length=20,
            allow_dot=False,
            lm_loss=True,
            num_train=5_000,
            num_validation=500,
            num_test=500,
        ),
        paper=safari_setup(epochs=200),
        smoke_options=dict(num_train=2000, num_validation=128, num_test=128),
        sources=SOURCES,
        shared="H3's associative-recall setup (HazyResearch/safari configs/experiment/"
        "synthetics/associative_recall/vocab_size_10.yaml)",
    )
