"""Induction heads (Fu et al. 2023, H3, Table 2):
after the trigger, output the token that followed its earlier occurrence.

Paper scale: H3's setup, HazyResearch/safari
``configs/experiment/synthetics/induction_head/base.yaml`` (with ``h3.yaml``, ``s4d.yaml``,
``transformer.yaml`` for the models), ``configs/pipeline/induction_head.yaml``,
``configs/dataset/icl_synthetics.yaml`` and ``configs/optimizer/adamw.yaml``: 30 body tokens
over 18 symbols then the trigger (31 inputs; safari's vocabulary of 20 counts ``=>`` and
``.``), 5,000 training and 500 test sequences, a language-model loss on every position in
training and the last position scored at test, batch 32 for 400 epochs (157 steps each: 62,800
steps), AdamW (betas 0.9/0.999, weight decay 0.1) at lr 5e-4 with 6,280 warmup steps then
cosine decay, no clipping, 2 layers of width 32 with a GELU MLP of width 128 (``d_inner: 4 *
d_model``), no residual dropout, one attention head with learned positions.

Still different from safari: its timm cosine warms up from 1e-6 and decays to 5e-5 (0.1 * lr);
memjax's warms up from 0 and decays to 0; its embedding dropout (0.1) and attention dropout
(0.1) are not modelled; safari validates on its test set, memjax draws a separate validation
split of the same size; safari makes its sequences distinct within a split, memjax draws each
independently. H3's and S4D's layers are memjax's ``h3`` and ``s4d``; what differs from safari's
is in each variant's ``config.provenance``. Usage: ``--config configs/induction.py:lstm``.
"""

from memjax.config import safari_setup, task_config
from memjax.provenance import H3_LAYER_DIFFERENCES, S4D_LAYER_DIFFERENCES, h3_table_2

DIFFERENCES = (
    "safari's timm cosine schedule warms up from 1e-6 and decays to 5e-5; memjax's warms up "
    "from 0 and decays to 0",
    "no embedding dropout (0.1) and no attention dropout (0.1) as in safari's lm_simple model",
    "a separate validation split of 500 (safari selects its checkpoint on the test split)",
    "sequences are drawn independently; safari makes them distinct within a split",
)
SOURCES = {
    "transformer": h3_table_2("Attention", "induction_head/transformer.yaml", DIFFERENCES),
    "h3": h3_table_2("H3", "induction_head/h3.yaml", (*DIFFERENCES, *H3_LAYER_DIFFERENCES)),
    "s4d": h3_table_2("S4D", "induction_head/s4d.yaml", (*DIFFERENCES, *S4D_LAYER_DIFFERENCES)),
}


def get_config(arg=None):
    return task_config(
        "induction",
        arg,
        options=dict(
            length=30,
            num_symbols=18,
            lm_loss=True,
            num_train=5_000,
            num_validation=500,
            num_test=500,
        ),
        paper=safari_setup(epochs=400),
        smoke_options=dict(num_train=2000, num_validation=128, num_test=128),
        sources=SOURCES,
        shared="H3's induction-head setup (HazyResearch/safari configs/experiment/synthetics/"
        "induction_head/base.yaml)",
    )
