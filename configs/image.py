"""Image (LRA): CIFAR-10 in grayscale as a sequence of 1024 pixel tokens, 10 classes.

Paper setup: LRA's released cifar10 config (batch 256, 200 epochs of 45k examples = 35k steps,
lr 5e-4, warmup one epoch, cosine decay, no weight decay, 1 layer of width 32, MLP 64, dropout
0.3, learned positions). ``s5``: the S5 release's run_lra_cifar.sh (6 layers, H=512, P=384,
batch 50, 250 epochs, lr 0.0045, SSM lr 0.001, wd 0.07, dropout 0.1).
"""

from memjax.config import task_config


def get_config(arg=None):
    return task_config(
        "image",
        arg,
        options={},
        paper=dict(
            batch_size=256,
            steps=35_000,
            lr=5e-4,
            schedule="cosine",
            warmup_steps=175,
            weight_decay=0.0,
            clip_norm=0.0,
            d_model=32,
            depth=1,
            mlp="mlp",
            mlp_expand=2,
            heads=1,
            dropout=0.3,
            positional="learned",
        ),
        per_variant={
            "s5": dict(
                batch_size=50,
                steps=225_000,
                lr=0.0045,
                recurrence_lr=0.001,
                schedule="cosine",
                warmup_steps=900,
                weight_decay=0.07,
                d_model=512,
                depth=6,
                state_size=384,
                bidirectional=True,
                dropout=0.1,
            ),
        },
        smoke_options={},
    )
