"""memjax launch against a fake gcloud on PATH: the calls in order, failures, dry runs, bad input.

The fake appends its argv as one JSON line to ``calls.jsonl``, "copies" files (scp into a fake
remote home, ``storage cp`` writes a stub per source), prints queued-resource states, answers
polls of the detached run with the states in ``FAKE_GCLOUD_POLLS`` (and a log line each), exits
1 when its argv contains a substring listed in ``FAKE_GCLOUD_FAIL``, and blocks (until the file
``release`` appears) when it contains ``FAKE_GCLOUD_HANG``. Nothing reaches a network. The
remote scripts themselves run in bash against fake ``curl``/``uv``/``nvidia-smi``/``memjax``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from etils import epath

from memjax import launch
from memjax.checkpoint import Checkpointer
from memjax.cli import COMMANDS
from memjax.launch import gcloud as launch_gcloud
from memjax.launch import remote as launch_remote
from memjax.launch import steps as launch_steps
from memjax.metrics_log import MetricsLog

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/mqar.py:lstm,smoke"
POLL_MARK = launch_remote.POLL_MARK

FAKE_GCLOUD = """#!{python} -S
import json, os, shutil, sys, time

argv = sys.argv[1:]
state = os.environ["FAKE_GCLOUD_DIR"]


def bump(name):
    path = os.path.join(state, name)
    count = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(count + 1))
    return count


with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps(argv) + "\\n")
line = " ".join(argv)
for i, (needle, times) in enumerate(json.loads(os.environ.get("FAKE_GCLOUD_FAIL", "[]"))):
    if needle in line and (times is None or bump(f"failed-{{i}}") < times):
        sys.exit(1)
hang = os.environ.get("FAKE_GCLOUD_HANG")
if hang and hang in line:
    open(os.path.join(state, "hanging-" + str(os.getpid())), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(state, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)
if {poll_mark!r} in line:
    states = os.environ.get("FAKE_GCLOUD_POLLS", "0").split(",")
    poll = bump("polls")
    chunk = "log line " + str(poll) + "\\n"
    path = os.path.join(state, "log-bytes")
    size = (int(open(path).read()) if os.path.exists(path) else 0) + len(chunk)
    open(path, "w").write(str(size))
    print({poll_mark!r}, states[min(poll, len(states) - 1)], size)
    print(chunk, end="")
if "describe" in argv:
    states = os.environ.get("FAKE_GCLOUD_STATES", "ACTIVE").split(",")
    print(states[min(bump("describes"), len(states) - 1)])
if "scp" in argv:
    local = argv[argv.index("scp") + 1]
    home = os.path.join(state, "home")
    os.makedirs(home, exist_ok=True)
    shutil.copy(local, home)
if argv[:2] == ["storage", "cp"]:
    *sources, destination = [a for a in argv[2:] if not a.startswith("--")]
    for source in sources:
        with open(os.path.join(destination, os.path.basename(source)), "w") as f:
            json.dump({{"fetched": source}}, f)
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake gcloud first on PATH; work happens in tmp_path. Returns its state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "gcloud-state"
    bin_dir.mkdir()
    state.mkdir()
    script = bin_dir / "gcloud"
    script.write_text(FAKE_GCLOUD.format(python=sys.executable, poll_mark=POLL_MARK))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GCLOUD_DIR", str(state))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(launch_steps, "POLL_S", 0.0)
    monkeypatch.setattr(launch_steps, "RETRY_S", 0.0)
    assert shutil.which("gcloud") == str(script)  # never the real one
    return state


def calls(state: Path) -> list[list[str]]:
    log = state / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def verbs(recorded: list[list[str]]) -> list[str]:
    """The gcloud verb of each call: create, describe, scp, ssh, cp or delete."""
    words = {"create", "describe", "scp", "ssh", "cp", "delete"}
    return [next(word for word in argv if word in words) for argv in recorded]


def run_launch(argv: list[str]) -> None:
    """``memjax launch ARGV`` with the commands memjax.cli offers."""
    launch.main(argv, commands=sorted(set(COMMANDS) - {"launch"}))


def tpu_args(*extra: str, command: tuple[str, ...] = ()) -> list[str]:
    command = command or ("train", "--config", CONFIG, "--workdir", "runs/mqar-lstm")
    return [
        "tpu", "--tpu", "mq-lstm", "--zone", "us-central2-b", "--accelerator-type", "v4-32",
        "--bucket", "gs://my-bucket", *extra, "--", *command,
    ]  # fmt: skip


def gpu_args(*extra: str) -> list[str]:
    return [
        "gpu", "--vm", "mq-gpu", "--zone", "us-central1-a", "--machine-type", "g2-standard-8",
        "--bucket", "gs://my-bucket/memjax", *extra, "--", "train", "--config", CONFIG,
    ]  # fmt: skip


REMOTE = "gs://my-bucket/runs/mq-lstm/runs/mqar-lstm"
TPU = ["compute", "tpus", "tpu-vm"]
ZONE = "--zone=us-central2-b"


# ----------------------------------------------------------------------------- happy paths


def test_tpu_happy_path_records_every_step_in_order(fake, tmp_path, capsys):
    run_launch(tpu_args())
    recorded = calls(fake)
    assert len(recorded) == 7
    create, copy, install, start, poll, fetch, delete = recorded
    assert create == [*TPU, "create", "mq-lstm", ZONE, "--accelerator-type=v4-32",
                      "--version=tpu-ubuntu2204-base"]  # fmt: skip
    assert copy == [*TPU, "scp", str(tmp_path / "tmp" / "memjax-mq-lstm-src.tar.gz"),
                    "mq-lstm:memjax-src.tar.gz", ZONE, "--worker=all", "--quiet"]  # fmt: skip
    for ssh in (install, start):
        assert ssh[:9] == [*TPU, "ssh", "mq-lstm", ZONE, "--worker=all", "--quiet", "--command"]
    assert '"jax[tpu]"' in install[-1] and "tar -xzf memjax-src.tar.gz" in install[-1]
    remote_command = f"memjax train --config {shlex.quote(CONFIG)} --workdir {REMOTE}"
    assert start[-1] == launch_remote.start_script("tpu", shlex.split(remote_command)[1:])
    assert 'setsid nohup bash -c \'echo $$ > "$HOME/memjax-run.pid"; ' in start[-1]
    assert f'../memjax-venv/bin/{remote_command} > "$HOME/memjax-run.log" 2>&1' in start[-1]
    assert "MEMJAX_COORDINATOR" in start[-1]
    # Only worker 0 is polled, from log byte 0 on.
    assert poll == [*TPU, "ssh", "mq-lstm", ZONE, "--worker=0", "--quiet", "--command",
                    launch_remote.poll_script(0)]  # fmt: skip
    files = [f"{REMOTE}/summary.json", f"{REMOTE}/metrics.jsonl", f"{REMOTE}/config.json"]
    assert fetch == ["storage", "cp", *files, f"{tmp_path / 'runs/mqar-lstm'}/"]
    assert delete == [*TPU, "delete", "mq-lstm", ZONE, "--quiet"]
    summary = json.loads((tmp_path / "runs/mqar-lstm/summary.json").read_text())
    assert summary == {"fetched": f"{REMOTE}/summary.json"}
    out = capsys.readouterr().out
    assert out.startswith("log line 0\n")  # the run's log, streamed
    assert json.loads(out.removeprefix("log line 0\n")) == summary
    assert not (tmp_path / "tmp" / "memjax-mq-lstm-src.tar.gz").exists()  # removed afterwards


def test_the_tarball_holds_the_sources_the_vm_needs(fake):
    run_launch(tpu_args())
    with tarfile.open(fake / "home" / "memjax-mq-lstm-src.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"pyproject.toml", "README.md", "memjax/launch/cli.py", "configs/mqar.py"} <= names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_gpu_happy_path(fake, tmp_path):
    run_launch(gpu_args("--spot"))
    create, copy, install, start, poll, fetch, delete = calls(fake)
    zone = "--zone=us-central1-a"
    assert create == [
        "compute", "instances", "create", "mq-gpu", zone, "--machine-type=g2-standard-8",
        f"--image-family={launch_gcloud.GPU_IMAGE_FAMILY}",
        "--image-project=deeplearning-platform-release", "--boot-disk-size=200GB",
        "--maintenance-policy=TERMINATE", "--metadata=install-nvidia-driver=True",
        "--scopes=cloud-platform", "--provisioning-model=SPOT",
        "--instance-termination-action=DELETE",
    ]  # fmt: skip
    assert copy[:3] == ["compute", "scp", str(tmp_path / "tmp" / "memjax-mq-gpu-src.tar.gz")]
    assert install[:6] == ["compute", "ssh", "mq-gpu", zone, "--quiet", "--command"]
    assert "nvidia-smi" in install[-1] and '"jax[cuda12]"' in install[-1]
    remote_workdir = "gs://my-bucket/memjax/runs/mq-gpu"
    assert f"--workdir {remote_workdir}" in start[-1]
    assert "MEMJAX_COORDINATOR" not in start[-1]
    assert poll == ["compute", "ssh", "mq-gpu", zone, "--quiet", "--command",
                    launch_remote.poll_script(0)]  # fmt: skip
    assert fetch[-1] == f"{Path.cwd() / 'runs/mq-gpu'}/"
    assert fetch[2] == f"{remote_workdir}/summary.json"
    assert delete == ["compute", "instances", "delete", "mq-gpu", zone, "--quiet"]
    assert (tmp_path / "runs/mq-gpu/summary.json").exists()


def test_queued_tpu_waits_until_active(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_STATES", "WAITING_FOR_RESOURCES,PROVISIONING,ACTIVE")
    run_launch(tpu_args("--queued", "--spot", "--project", "proj-1"))
    recorded = calls(fake)
    queued = ["compute", "tpus", "queued-resources"]
    assert recorded[0] == [*queued, "create", "mq-lstm", ZONE, "--project=proj-1",
                           "--node-id=mq-lstm", "--accelerator-type=v4-32",
                           "--runtime-version=tpu-ubuntu2204-base", "--spot"]  # fmt: skip
    describe = [*queued, "describe", "mq-lstm", ZONE, "--project=proj-1",
                "--format=value(state.state)"]  # fmt: skip
    assert recorded[1:4] == [describe] * 3
    assert verbs(recorded)[4] == "scp"
    assert recorded[-2][:3] == ["storage", "cp", "--project=proj-1"]
    assert recorded[-1] == [*queued, "delete", "mq-lstm", ZONE, "--project=proj-1", "--force",
                            "--quiet"]  # fmt: skip


def test_eval_runs_in_the_bucket_and_fetches_nothing(fake):
    run_launch(tpu_args(command=("eval", "--workdir=runs/mqar-lstm")))
    recorded = calls(fake)
    assert verbs(recorded) == ["create", "scp", "ssh", "ssh", "ssh", "delete"]
    assert f"memjax eval --workdir {REMOTE} >" in recorded[3][-1]


# ----------------------------------------------------------------------------- failures


def test_failure_half_way_names_the_step_and_still_deletes(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["uv pip install", None]]))
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args())
    message = str(raised.value.code)
    assert "step 'install' failed (exit status 1)" in message
    assert "gcloud compute tpus tpu-vm ssh mq-lstm" in message
    assert verbs(calls(fake)) == ["create", "scp", "ssh", "delete"]
    assert not (tmp_path / "tmp" / "memjax-mq-lstm-src.tar.gz").exists()


def test_failed_run_and_failed_delete_are_both_reported(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_POLLS", "running,3")
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["tpu-vm delete", None]]))
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args())
    message = str(raised.value.code)
    assert "step 'run' failed (the run's exit status 3)" in message
    assert "~/memjax-run.log" in message  # where the whole log is
    assert "Deleting the VM failed too" in message and "step 'delete' failed" in message
    recorded = calls(fake)
    assert verbs(recorded)[-3:] == ["ssh", "ssh", "delete"]
    # After the failure every worker shows its exit status and last lines.
    report = recorded[-2]
    assert report == [*TPU, "ssh", "mq-lstm", ZONE, "--worker=all", "--quiet", "--command",
                      launch_remote.report_script()]  # fmt: skip


def test_a_failed_start_is_retried_and_then_fails(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["memjax-venv/bin/memjax", None]]))
    with pytest.raises(SystemExit, match="step 'start' failed"):
        run_launch(tpu_args())
    assert verbs(calls(fake)) == ["create", "scp", "ssh", "ssh", "ssh", "ssh", "delete"]


def test_failed_create_deletes_nothing_and_says_how(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["tpu-vm create", None]]))
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args())
    message = str(raised.value.code)
    assert "step 'create' failed" in message and "quota" in message
    assert "delete it with: gcloud compute tpus tpu-vm delete mq-lstm" in message
    assert len(calls(fake)) == 1


def test_failed_queued_request_is_deleted(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_STATES", "WAITING_FOR_RESOURCES,FAILED")
    with pytest.raises(SystemExit, match="step 'wait' failed \\(state FAILED\\)"):
        run_launch(tpu_args("--queued"))
    recorded = calls(fake)
    assert verbs(recorded) == ["create", "describe", "describe", "delete"]


def test_first_copy_is_retried_while_ssh_comes_up(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["tpu-vm scp", 2]]))
    run_launch(tpu_args())
    assert verbs(calls(fake))[:4] == ["create", "scp", "scp", "scp"]


def test_missing_summary_hints_at_resuming(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["storage cp", None]]))
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args())
    assert "step 'fetch' failed" in str(raised.value.code)
    assert "run the same launch again to resume" in str(raised.value.code)
    assert verbs(calls(fake))[-1] == "delete"


def test_keep_skips_the_delete(fake, capsys):
    run_launch(tpu_args("--keep"))
    assert "delete" not in verbs(calls(fake))
    assert "delete it with: gcloud compute tpus tpu-vm delete mq-lstm" in capsys.readouterr().err


def test_keep_after_a_failure_leaves_the_vm(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([["memjax-venv/bin/memjax", None]]))
    with pytest.raises(SystemExit, match="The VM is kept"):
        run_launch(tpu_args("--keep"))
    assert verbs(calls(fake))[-1] == "ssh"


def wait_for_hanging(state: Path, count: int = 1, timeout: float = 15) -> None:
    """Until ``count`` fake gcloud calls hang."""
    deadline = time.monotonic() + timeout
    while len(list(state.glob("hanging-*"))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} gcloud calls hang"
        time.sleep(0.02)


def test_sigterm_during_the_run_still_deletes(fake, tmp_path):
    code = f"from memjax import cli; cli.main(['launch', *{tpu_args()!r}])"
    env = {**os.environ, "FAKE_GCLOUD_HANG": POLL_MARK, "TMPDIR": tempfile.tempdir}
    launcher = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )
    wait_for_hanging(fake)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=15)
    assert launcher.returncode == 1
    assert "memjax launch: stopped by signal 15\nDeleted the VM: gcloud" in stderr
    assert verbs(calls(fake)) == ["create", "scp", "ssh", "ssh", "ssh", "delete"]


def test_sigterm_to_a_table_launching_runs_on_vms_deletes_every_vm_it_made(fake, tmp_path):
    table = [
        "table", "synthetic", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
        "--variants", "lstm", "--launch", "tpu", "--jobs", "3", "--",
        "--tpu", "mem", "--zone", "us-central2-b", "--accelerator-type", "v4-32",
        "--bucket", "gs://my-bucket",
    ]  # fmt: skip
    code = f"from memjax import cli; cli.main({table!r})"
    env = {**os.environ, "FAKE_GCLOUD_HANG": POLL_MARK, "TMPDIR": tempfile.tempdir}
    launcher = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_hanging(fake, 3)  # three VMs made, their runs going
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=15)
    assert launcher.returncode == 1, stderr
    assert "memjax table: stopped by SIGTERM" in stderr
    assert stderr.count("memjax launch: stopped by signal 15\nDeleted the VM") == 3
    recorded = calls(fake)
    created = [argv[4] for argv in recorded if argv[3] == "create"]
    deleted = [argv[4] for argv in recorded if argv[3] == "delete"]
    assert len(created) == 3 and sorted(deleted) == sorted(created)
    assert all(name.startswith("mem-") and name.endswith("-s0") for name in created)
    for name in created:  # each VM: made, polled, then deleted, and nothing after
        mine = [argv for argv in recorded if name in argv or f"{name}:memjax-src.tar.gz" in argv]
        assert verbs(mine) == ["create", "scp", "ssh", "ssh", "ssh", "delete"]
    assert not list((tmp_path / "tmp").glob("*.tar.gz"))


def test_a_dropped_poll_is_retried_and_the_vm_outlives_the_run(fake, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([[POLL_MARK, 1]]))  # ssh drops once
    monkeypatch.setenv("FAKE_GCLOUD_POLLS", "running,running,0")
    run_launch(tpu_args())
    recorded = calls(fake)
    assert verbs(recorded) == [
        "create", "scp", "ssh", "ssh", "ssh", "ssh", "ssh", "ssh", "cp", "delete",
    ]  # fmt: skip
    polls = [argv[-1] for argv in recorded[4:8]]
    line = len("log line 0\n")
    assert polls == [launch_remote.poll_script(offset) for offset in (0, 0, line, 2 * line)]
    out, err = capsys.readouterr()
    assert out.startswith("log line 0\nlog line 1\nlog line 2\n")  # streamed, in order
    assert "polling the run failed (exit status 1" in err and "keeps running on the VM" in err
    assert json.loads((Path.cwd() / "runs/mqar-lstm/summary.json").read_text())


@pytest.mark.parametrize(
    ("states", "extra", "expected"),
    [
        ("running,gone", (), "the run ended without an exit status"),
        ("running", ("--timeout-hours", "1e-9"), "still running after the timeout"),
    ],
)
def test_a_vanished_or_overdue_run_fails_and_deletes(fake, monkeypatch, states, extra, expected):
    monkeypatch.setenv("FAKE_GCLOUD_POLLS", states)
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args(*extra))
    assert f"step 'run' failed ({expected}" in str(raised.value.code)
    assert "run the same launch again to resume" in str(raised.value.code)
    assert verbs(calls(fake))[-1] == "delete"


def test_a_vm_unreachable_for_too_long_is_given_up_and_deleted(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GCLOUD_FAIL", json.dumps([[POLL_MARK, None]]))
    monkeypatch.setattr(launch_steps, "UNREACHABLE_S", 0.3)
    with pytest.raises(SystemExit, match="step 'run' failed \\(no answer for"):
        run_launch(tpu_args())
    recorded = verbs(calls(fake))
    assert recorded.count("ssh") >= 4 and recorded[-1] == "delete"  # install, start, polls


def test_gcloud_missing_from_path(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SystemExit, match="gcloud not found on PATH"):
        run_launch(tpu_args())


# ----------------------------------------------------------------------------- dry run


def test_dry_run_prints_the_commands_and_runs_nothing(fake, capsys, tmp_path):
    run_launch(tpu_args("--dry-run"))
    lines = capsys.readouterr().out.splitlines()
    assert calls(fake) == []
    assert not (tmp_path / "tmp" / "memjax-mq-lstm-src.tar.gz").exists()
    assert not (tmp_path / "runs").exists()
    argvs = [shlex.split(line) for line in lines]
    assert verbs(argvs) == ["create", "scp", "ssh", "ssh", "ssh", "cp", "delete"]
    assert all(argv[0] == "gcloud" for argv in argvs)
    assert argvs[4][-1] == launch_remote.poll_script(0)  # the first poll of the run
    run_launch(tpu_args("--dry-run", "--keep"))
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_dry_run_lines_are_exactly_what_runs(fake, capsys):
    run_launch(gpu_args("--dry-run"))
    printed = [shlex.split(line)[1:] for line in capsys.readouterr().out.splitlines()]
    run_launch(gpu_args())
    assert calls(fake) == printed


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (tpu_args("--zone", "us-central2"), ["--zone", "'us-central2'", "expected a zone"]),
        (
            [a.replace("v4-32", "v9-8") for a in tpu_args()],
            ["--accelerator-type", "'v9-8'", "expected GENERATION-SIZE"],
        ),
        (
            [a.replace("gs://my-bucket", "my-bucket") for a in tpu_args()],
            ["--bucket", "'my-bucket'", "expected a Cloud Storage URL"],
        ),
        ([a.replace("mq-lstm", "MQ") for a in tpu_args()], ["--tpu", "'MQ'", "expected"]),
        (tpu_args()[:-5], ["after '--'", "got nothing", "expected one of"]),
        (tpu_args(command=("trian",)), ["after '--'", "got 'trian'", "expected one of"]),
        (tpu_args(command=("launch", "tpu")), ["after '--'", "got 'launch tpu'"]),
        (
            [a.replace("g2-standard-8", "n1-standard-8") for a in gpu_args()],
            ["--accelerator", "got nothing", "n1-standard-8", "expected type=GPU,count=N"],
        ),
        (gpu_args("--accelerator", "nvidia-l4"), ["--accelerator", "'nvidia-l4'", "expected"]),
        (gpu_args("--machine-type", "big"), ["--machine-type", "'big'", "expected"]),
        (tpu_args("--timeout-hours", "0"), ["--timeout-hours", "'0'", "hours > 0"]),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(fake, capsys, args, expected):
    with pytest.raises(SystemExit) as raised:
        run_launch(args)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    for text in expected:
        assert text in error
    assert calls(fake) == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("train", "--config", "configs/nope.py:lstm"), "--config: got 'configs/nope.py:lstm'"),
        (("train", "--config", "/abs/mqar.py"), "expected a config file relative to"),
        (("train", "--config", CONFIG, "--workdir", "../up"), "--workdir: got '../up'"),
        (("train", "--config", CONFIG, "--workdir"), "--workdir: got nothing after it"),
    ],
)
def test_bad_memjax_command_fails_before_any_gcloud_call(fake, command, expected):
    with pytest.raises(SystemExit) as raised:
        run_launch(tpu_args(command=command))
    assert expected in str(raised.value.code)
    assert calls(fake) == []


# ----------------------------------------------------------------------------- workdirs


@pytest.mark.parametrize(
    ("command", "remote", "local"),
    [
        (("train",), "gs://b/runs/job", "runs/job"),
        (("train", "--workdir", "runs/x"), "gs://b/runs/job/runs/x", "runs/x"),
        (("train", "--workdir=./runs//x/"), "gs://b/runs/job/runs/x", "runs/x"),
        (("train", "--workdir", "/abs/x"), "gs://b/runs/job/abs/x", "/abs/x"),
        (("train", "--workdir", "gs://other/w"), "gs://other/w", "runs/job"),
        (("eval", "--workdir", "runs/x"), "gs://b/runs/job/runs/x", None),
        (("bench", "--length", "64"), None, None),
    ],
)
def test_workdir_moves_into_the_bucket(command, remote, local):
    job = launch.make_job("job", command, "gs://b", ROOT)
    assert job.remote_workdir == remote
    assert job.local_workdir == (None if local is None else Path(local).absolute())
    if remote is None:
        assert job.command == command
    else:
        assert job.command[-2:] == ("--workdir", remote)
        assert job.command.count("--workdir") == 1 and command[0] == job.command[0]


def test_runtime_version_defaults_per_generation():
    assert launch_gcloud.tpu_runtime("v4-32") == "tpu-ubuntu2204-base"
    assert launch_gcloud.tpu_runtime("v5litepod-8") == "v2-alpha-tpuv5-lite"
    assert launch_gcloud.tpu_runtime("v6e-16") == "v2-alpha-tpuv6e"


# ----------------------------------------------------------------------------- remote scripts


def fake_tools(bin_dir: Path, tools: dict[str, str]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)


def run_remote(script: str, home: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    """``script`` as ssh runs it in ``home``; a detached run must not hold its output open."""
    env = {"HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}
    return subprocess.run(
        ["bash", "-c", script],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )


def wait_for_file(path: Path, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.02)
    return path.read_text()


def poll(home: Path, bin_dir: Path, offset: int) -> tuple[str, int, str]:
    """One poll of the detached run, parsed: state, log bytes, the log from ``offset``."""
    result = run_remote(launch_remote.poll_script(offset), home, bin_dir)
    assert result.returncode == 0, result.stderr
    parsed = launch_remote.parse_poll(result.stdout.encode())
    assert parsed is not None, result.stdout
    state, size, chunk = parsed
    return state, size, chunk.decode()


@pytest.mark.parametrize(
    ("endpoints", "coordinator"),
    [
        ("w0:1:10.0.0.2,w1:2:10.0.0.3", "10.0.0.2:8482"),
        ("t1v-n-0,t1v-n-1", "t1v-n-0:8482"),
    ],
)
def test_tpu_start_script_joins_jax_distributed_from_metadata(tmp_path, endpoints, coordinator):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    (home / "memjax").mkdir(parents=True)
    fake_tools(
        bin_dir,
        {
            "curl": f'case "$*" in *worker-network-endpoints*) printf {endpoints};; '
            "*agent-worker-number*) printf 1;; esac",
        },
    )
    fake_tools(
        home / "memjax-venv" / "bin",
        {"memjax": 'echo "$PWD|$MEMJAX_COORDINATOR|$MEMJAX_NUM_PROCESSES|$MEMJAX_PROCESS_ID|$*"'},
    )
    args = ["train", "--config", CONFIG, "--config.model.mixer_options={'heads': 2}"]
    result = run_remote(launch_remote.start_script("tpu", args), home, bin_dir)
    assert result.returncode == 0, result.stderr
    assert wait_for_file(home / launch_remote.STATUS) == "0\n"
    log = (home / launch_remote.LOG).read_text()
    assert log.strip() == f"{home / 'memjax'}|{coordinator}|2|1|{' '.join(args)}"


@pytest.mark.parametrize("platform", ["tpu", "gpu"])
def test_detached_start_returns_at_once_and_polls_stream_the_log_and_the_status(tmp_path, platform):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    (home / "memjax").mkdir(parents=True)
    fake_tools(bin_dir, {"curl": 'case "$*" in *endpoints*) printf w0;; *) printf 0;; esac'})
    # A run that prints a line, waits until told, prints another and fails with status 3.
    go = tmp_path / "go"
    fake_tools(
        home / "memjax-venv" / "bin",
        {"memjax": f'echo "first $*"; while [ ! -f {go} ]; do sleep 0.02; done; echo last; exit 3'},
    )
    start = launch_remote.start_script(platform, ["train", "--workdir", "gs://b/w x"])
    result = run_remote(start, home, bin_dir)  # returns while the run waits
    assert result.returncode == 0, result.stderr
    assert (home / launch_remote.PID).read_text().strip().isdigit()
    seen, offset, state = "", 0, "running"
    while "first" not in seen:
        state, offset, chunk = poll(home, bin_dir, offset)
        assert state == "running"
        seen += chunk
    assert seen == "first train --workdir gs://b/w x\n"
    # Started again while it runs (a retried start): left alone, not run twice.
    again = run_remote(start, home, bin_dir)
    assert again.returncode == 0 and "already going" in again.stdout
    go.touch()
    while state == "running":
        state, offset, chunk = poll(home, bin_dir, offset)
        seen += chunk
    assert state == "3"  # the run's exit status
    assert (home / launch_remote.STATUS).read_text() == "3\n"
    assert (
        seen
        == (home / launch_remote.LOG).read_text()
        == ("first train --workdir gs://b/w x\nlast\n")
    )
    assert offset == len(seen.encode())
    assert poll(home, bin_dir, offset) == ("3", offset, "")  # nothing new
    report = run_remote(launch_remote.report_script(), home, bin_dir)
    assert ": exit status 3" in report.stdout and report.stdout.rstrip().endswith(": last")


def test_a_poll_says_gone_when_the_run_vanished_without_a_status(tmp_path):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    fake_tools(bin_dir, {})
    assert poll(home, bin_dir, 0) == ("gone", 0, "")  # never started
    dead = subprocess.Popen(["true"])  # a process id that no longer runs
    dead.wait()
    (home / launch_remote.PID).write_text(f"{dead.pid}\n")
    (home / launch_remote.LOG).write_text("some output\n")
    assert poll(home, bin_dir, 5) == ("gone", 12, "output\n")


def test_parse_poll_skips_a_banner_and_refuses_output_without_a_state():
    parse = launch_remote.parse_poll
    assert parse(b"Welcome!\n" + POLL_MARK.encode() + b" running 4\nab\ncd") == (
        "running",
        4,
        b"ab\ncd",
    )
    assert parse(POLL_MARK.encode() + b" 0 0\n") == ("0", 0, b"")
    assert parse(b"ssh: connect to host: Connection refused\n") is None
    assert parse(POLL_MARK.encode() + b" what 3\n") is None


@pytest.mark.parametrize("platform", ["tpu", "gpu"])
def test_install_script_unpacks_and_installs(tmp_path, platform):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    launch.cli.build_tarball(ROOT, home / launch_remote.TARBALL)
    log = tmp_path / "tools.log"
    fake_tools(
        bin_dir,
        {
            "uv": f'echo "uv $*" >> {log}; [ "$1" = venv ] && mkdir -p "${{@: -1}}/bin"; true',
            "nvidia-smi": f'echo "nvidia-smi $*" >> {log}',
        },
    )
    result = run_remote(launch_remote.install_script(platform), home, bin_dir)
    assert result.returncode == 0, result.stderr
    assert (home / "memjax" / "memjax" / "launch" / "cli.py").exists()
    lines = log.read_text().splitlines()
    jax = "jax[tpu]" if platform == "tpu" else "jax[cuda12]"
    assert lines[-2:] == [
        "uv venv --quiet --python 3.12 memjax-venv",
        f"uv pip install --quiet --python memjax-venv/bin/python ./memjax {jax} etils[epath-gcs]",
    ]
    assert ("nvidia-smi --list-gpus" in lines) == (platform == "gpu")


# ----------------------------------------------------------------------------- epath workdirs


@pytest.mark.parametrize("as_epath", [False, True])
def test_checkpoints_and_metrics_go_through_epath(tmp_path, as_epath):
    """The code that writes gs:// workdirs, on a local path (a plain string or an epath.Path)."""
    workdir = epath.Path(tmp_path / "run") if as_epath else str(tmp_path / "run")
    state = {"w": jnp.arange(6.0).reshape(2, 3), "step": np.asarray(3, np.int64)}
    directory = workdir / "checkpoints" if as_epath else f"{workdir}/checkpoints"
    with Checkpointer(directory, best_metric=None) as checkpointer:
        checkpointer.save(3, state, data_state={"index": 24})
        checkpointer.wait()
        step, restored, data_state = checkpointer.restore(state)
    assert step == 3 and data_state == {"index": 24}
    np.testing.assert_array_equal(restored["w"], state["w"])
    log = MetricsLog(epath.Path(workdir))
    log.write(1, {"loss": 2.0})
    log.write(2, {"loss": 1.5})
    log.close()  # the lines are written by a thread
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5},
    ]
