"""ListOps (LRA): 10-way classification of nested MAX/MIN/MED/SUM_MOD expressions, length 2000.

Paper setup: LRA's released listops config (batch 32, 5k steps, rsqrt schedule, lr 0.05, warmup
1000, weight decay 0.1, 6 layers of width 512, MLP 2048, CLS pooling in LRA, mean here).
``s5``: the S5 release's run_lra_listops.sh (8 layers, H=128, P=16, batch 50, 40 epochs,
lr 0.003, SSM lr 0.001, weight decay 0.04). Usage: ``--config configs/listops.py:lstm``.
"""

from memjax.config import task_config


def get_config(arg=None):
    return task_config(
        "listops",
        arg,
        options={"source": "generate"},
        paper=dict(
            batch_size=32,
            steps=5000,
            lr=0.05,
            schedule="rsqrt",
            warmup_steps=1000,
            weight_decay=0.1,
            d_model=512,
            depth=6,
            mlp="mlp",
            mlp_expand=4,
            heads=8,
            positional="sinusoidal",
        ),
        per_variant={
            "s5": dict(
                batch_size=50,
                steps=76_800,
                lr=0.003,
                recurrence_lr=0.001,
                schedule="cosine",
                warmup_steps=1920,
                weight_decay=0.04,
                d_model=128,
                depth=8,
                state_size=16,
                bidirectional=True,
                dropout=0.0,
            ),
        },
        smoke_options=dict(
            num_train=2000,
            num_validation=200,
            num_test=200,
            min_length=20,
            max_length=120,
            max_depth=4,
        ),
    )
