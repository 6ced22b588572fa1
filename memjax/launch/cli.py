"""``memjax launch``: run a memjax command on a Cloud TPU or GPU VM made for it, then delete it.

memjax launch tpu --tpu NAME --zone ZONE --accelerator-type v4-32 --bucket gs://BUCKET
                  [--project P] [--runtime-version V] [--spot] [--queued] [--keep]
                  [--timeout-hours H] [--dry-run]
                  -- train --config configs/mqar.py:lstm [--workdir runs/mqar-lstm] [--config.X=Y]
memjax launch gpu --vm NAME --zone ZONE --machine-type g2-standard-8 --bucket gs://BUCKET
                  [--accelerator type=nvidia-l4,count=1] [--image-family F] [--project P]
                  [--spot] [--keep] [--timeout-hours H] [--dry-run] -- train --config ...

Steps, each one gcloud command (``--dry-run`` prints them instead): create the VM (or queue
a request for a TPU and wait until it is ACTIVE), copy a tarball of this checkout's sources
to every worker, install memjax and jax there, start ``memjax ...`` detached on all workers at
once (each TPU host joins through ``jax.distributed``), poll it (worker 0) until it ends while
its log streams here, copy the run's ``summary.json``, ``metrics.jsonl`` and ``config.json``
back, and delete the VM. A dropped ssh connection does not stop the run: the poll is retried.
The delete runs whenever the create succeeded, also after a failed step, Ctrl-C or SIGTERM,
unless ``--keep``.

The run's ``--workdir`` moves into the bucket: ``--workdir runs/mqar-lstm`` becomes
``gs://BUCKET/runs/NAME/runs/mqar-lstm`` (without ``--workdir``: ``gs://BUCKET/runs/NAME``), and
its files come back to the local ``runs/mqar-lstm`` (``runs/NAME``). Running the same launch
again resumes from the checkpoints in the bucket.
"""

from __future__ import annotations

import argparse
import dataclasses
import posixpath
import re
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from memjax import paths
from memjax.launch import gcloud, remote
from memjax.launch.steps import (
    Follow,
    LaunchError,
    Plan,
    Step,
    execute,
    message,
    say,
    sigterm_interrupts,
)

# Tries of the first copy, while ssh on a new VM comes up; of the start of the detached run.
COPY_ATTEMPTS = 5
START_ATTEMPTS = 3
# The longest VM name Compute Engine and Cloud TPU accept.
VM_NAME_MAX = 63
FETCHED = ("summary.json", "metrics.jsonl", "config.json")
# memjax commands that take a --workdir (of which only train writes summary.json).
WORKDIR_COMMANDS = ("train", "eval")
SOURCES = ("pyproject.toml", "README.md", "memjax", "configs")


@dataclasses.dataclass(frozen=True)
class Job:
    """What to run and where its files go.

    ``command`` is the memjax command with its workdir in the bucket; ``remote_workdir`` and
    ``local_workdir`` are None for commands without a workdir, and ``local_workdir`` is also
    None when nothing is fetched (only ``train`` writes ``summary.json``).
    """

    name: str
    command: tuple[str, ...]
    remote_workdir: str | None
    local_workdir: Path | None
    tarball: Path


# ----------------------------------------------------------------------------- arguments


def _pattern(regex: str, expectation: str) -> Callable[[str], str]:
    """An argparse ``type`` that accepts strings matching ``regex``."""

    def check(value: str) -> str:
        if not re.fullmatch(regex, value):
            raise argparse.ArgumentTypeError(f"got {value!r}; expected {expectation}")
        return value

    return check


_vm_name = _pattern(
    rf"[a-z]([-a-z0-9]{{0,{VM_NAME_MAX - 2}}}[a-z0-9])?",
    f"a lowercase name of letters, digits and '-' that starts with a letter (at most "
    f"{VM_NAME_MAX})",
)
_zone = _pattern(r"[a-z]+-[a-z]+[0-9]+-[a-z]", "a zone such as us-central2-b or europe-west4-a")
_tpu_type = _pattern(
    rf"({'|'.join(gcloud.TPU_RUNTIMES)})-[0-9]+",
    f"GENERATION-SIZE with GENERATION one of {', '.join(gcloud.TPU_RUNTIMES)}, such as v4-32",
)
_machine_type = _pattern(
    r"[a-z][a-z0-9]*-[a-z]+-[0-9]+[a-z]*", "a machine type such as g2-standard-8 or a3-highgpu-1g"
)
_gpu_accelerator = _pattern(
    r"type=[a-z0-9-]+,count=[1-9][0-9]*", "type=GPU,count=N such as type=nvidia-l4,count=1"
)


def _bucket(value: str) -> str:
    """A ``gs://BUCKET[/PREFIX]`` URL, without a trailing ``/``."""
    if not re.fullmatch(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?", value):
        raise argparse.ArgumentTypeError(
            f"got {value!r}; expected a Cloud Storage URL gs://BUCKET[/PREFIX]"
        )
    return value.rstrip("/")


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if not hours > 0:
        raise argparse.ArgumentTypeError(f"got {value!r}; expected a number of hours > 0")
    return hours


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True, type=_zone, help="e.g. us-central2-b")
    parser.add_argument("--bucket", required=True, type=_bucket, help="gs://BUCKET for runs")
    parser.add_argument("--project", help="Google Cloud project (default: gcloud's)")
    parser.add_argument("--spot", action="store_true", help="a Spot VM (cheaper, preemptible)")
    parser.add_argument("--keep", action="store_true", help="do not delete the VM at the end")
    parser.add_argument(
        "--timeout-hours",
        type=_hours,
        help="stop the run (and delete the VM) after this long (default: no limit)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memjax launch",
        description="Run a memjax command on a Cloud TPU or GPU VM.",
        epilog="memjax launch tpu|gpu OPTIONS -- COMMAND; see memjax launch tpu --help",
    )
    kinds = parser.add_subparsers(dest="kind", required=True)
    epilog = "After '--' the memjax command, e.g. -- train --config configs/mqar.py:lstm"
    tpu = kinds.add_parser("tpu", help="a Cloud TPU VM (all hosts of a slice)", epilog=epilog)
    tpu.add_argument("--tpu", dest="name", required=True, type=_vm_name, help="TPU VM name")
    tpu.add_argument("--accelerator-type", required=True, type=_tpu_type, help="e.g. v4-32")
    tpu.add_argument("--runtime-version", help="default: the newest for the TPU generation")
    tpu.add_argument("--queued", action="store_true", help="queue the request until capacity")
    _common(tpu)
    gpu = kinds.add_parser("gpu", help="a Compute Engine VM with NVIDIA GPUs", epilog=epilog)
    gpu.add_argument("--vm", dest="name", required=True, type=_vm_name, help="VM name")
    gpu.add_argument("--machine-type", required=True, type=_machine_type, help="g2-standard-8")
    gpu.add_argument("--accelerator", type=_gpu_accelerator, help="type=...,count=N (N1 only)")
    gpu.add_argument("--image-family", default=gcloud.GPU_IMAGE_FAMILY, help="Deep Learning VM")
    _common(gpu)
    return parser


def _parse_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    args = parser.parse_args(list(argv))
    if args.kind == "gpu" and args.machine_type.startswith("n1-") and args.accelerator is None:
        parser.error(
            f"--accelerator: got nothing for --machine-type {args.machine_type}; expected "
            "type=GPU,count=N (N1 machine types have no built-in GPU)"
        )
    return args


def parse_options(argv: Sequence[str]) -> argparse.Namespace:
    """The launcher's options without a command: ``tpu|gpu OPTIONS`` (what comes before
    ``--``), as :func:`submit` takes them; usage errors exit with status 2."""
    return _parse_options(_parser(), argv)


def parse(argv: Sequence[str], commands: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Options before ``--`` and the memjax command after it (one of ``commands``); usage
    errors exit with status 2."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = _parser()
    args = _parse_options(parser, argv[:split])
    command = argv[split + 1 :]
    commands = sorted(commands)
    if not command or command[0] not in commands:
        got = repr(shlex.join(command)) if command else "nothing"
        parser.error(
            f"the memjax command after '--': got {got}; expected one of {commands}, "
            "e.g. -- train --config configs/mqar.py:lstm"
        )
    return args, command


# ----------------------------------------------------------------------------- the job


def source_root() -> Path:
    """The checkout this memjax is installed from (its sources go to the VM)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise LaunchError(
            f"memjax launch needs memjax installed from a source checkout (pip install -e .); "
            f"{root} has no pyproject.toml"
        )
    return root


def _option(command: Sequence[str], name: str) -> tuple[list[str], str | None]:
    """``command`` without option ``name`` (``--name V`` or ``--name=V``), and its value."""
    rest: list[str] = []
    value = None
    tokens = iter(command)
    for token in tokens:
        if token == name:
            value = next(tokens, None)
            if value is None:
                raise ValueError(f"{name}: got nothing after it; expected a value")
        elif token.startswith(f"{name}="):
            value = token.split("=", 1)[1]
        else:
            rest.append(token)
    return rest, value


def _workdirs(given: str | None, bucket_url: str, name: str) -> tuple[str, Path]:
    """The run's workdir in the bucket and the absolute local folder its files are copied to."""
    default_local = Path(paths.resolve(posixpath.join("runs", name)))
    if given is not None and given.startswith("gs://"):
        return given, default_local
    base = f"{bucket_url}/runs/{name}"
    if given is None:
        return base, default_local
    relative = posixpath.normpath(given).lstrip("/")
    if relative == ".." or relative.startswith("../"):
        raise ValueError(f"--workdir: got {given!r}; expected a path that does not climb out")
    return (base if relative == "." else f"{base}/{relative}"), Path(paths.resolve(given))


def _check_config(command: Sequence[str], root: Path) -> None:
    """``--config FILE[:ARG]`` must name a file inside the checkout, since only that is shipped."""
    _, spec = _option(command, "--config")
    if spec is None:
        return
    path = Path(spec.split(":", 1)[0])
    if path.is_absolute() or not (root / path).is_file():
        raise ValueError(
            f"--config: got {spec!r}; expected a config file relative to {root} (the sources "
            "copied to the VM), such as configs/mqar.py:lstm"
        )


def make_job(name: str, command: Sequence[str], bucket_url: str, root: Path) -> Job:
    """Moves the command's ``--workdir`` into the bucket; raises ValueError on a bad command."""
    tarball = Path(tempfile.gettempdir()) / f"memjax-{name}-src.tar.gz"
    if command[0] not in WORKDIR_COMMANDS:
        return Job(name, tuple(command), None, None, tarball)
    _check_config(command, root)
    rest, given = _option(command, "--workdir")
    remote_workdir, local_workdir = _workdirs(given, bucket_url, name)
    fetch_to = local_workdir if command[0] == "train" else None
    return Job(name, (*rest, "--workdir", remote_workdir), remote_workdir, fetch_to, tarball)


# ----------------------------------------------------------------------------- the plan


def _fetch(job: Job, where: gcloud.Where) -> list[Step]:
    if job.local_workdir is None:
        return []
    sources = [f"{job.remote_workdir}/{file}" for file in FETCHED]
    command = gcloud.storage_copy(sources, f"{job.local_workdir}/", where)
    hint = (
        f"No summary.json in {job.remote_workdir}: if the VM was preempted, run the same "
        "launch again to resume from the checkpoints there."
    )
    return [Step("fetch", command, hint=hint)]


RUN_HINT = (
    f"The run's output is above; on the VM it is in ~/{remote.LOG} (--keep keeps the VM). If "
    "the VM was preempted, run the same launch again to resume from the checkpoints in the bucket."
)


def _timeout_s(args: argparse.Namespace) -> float | None:
    hours = getattr(args, "timeout_hours", None)
    return None if hours is None else hours * 3600.0


def tpu_plan(args: argparse.Namespace, job: Job) -> Plan:
    """Create (or queue and wait), copy, install, start, follow the run, fetch; delete."""
    where = gcloud.Where(args.zone, args.project)
    runtime = args.runtime_version or gcloud.tpu_runtime(args.accelerator_type)
    create = (gcloud.queued_create if args.queued else gcloud.tpu_create)(
        job.name, where, args.accelerator_type, runtime, args.spot
    )
    hint = "Check the zone offers this TPU type, your quota, and that the name is not in use."
    steps = [Step("create", create, hint=hint)]
    if args.queued:
        state = gcloud.queued_state(job.name, where)
        steps.append(
            Step("wait", state, until="ACTIVE", fail_on=("FAILED", "SUSPENDING", "SUSPENDED"))
        )
    copy = gcloud.tpu_copy(job.name, where, str(job.tarball), remote.TARBALL)
    start = remote.start_script("tpu", job.command)
    steps += [
        Step("copy", copy, attempts=COPY_ATTEMPTS),
        Step("install", gcloud.tpu_ssh(job.name, where, remote.install_script("tpu"))),
        Step("start", gcloud.tpu_ssh(job.name, where, start), attempts=START_ATTEMPTS),
        Follow(
            "run",
            lambda offset: gcloud.tpu_ssh(job.name, where, remote.poll_script(offset), "0"),
            report=gcloud.tpu_ssh(job.name, where, remote.report_script()),
            timeout_s=_timeout_s(args),
            hint=RUN_HINT,
        ),
        *_fetch(job, where),
    ]
    delete = (gcloud.queued_delete if args.queued else gcloud.tpu_delete)(job.name, where)
    return Plan(tuple(steps), Step("delete", delete))


def gpu_plan(args: argparse.Namespace, job: Job) -> Plan:
    """Create, copy, install, start, follow the run, fetch; delete."""
    where = gcloud.Where(args.zone, args.project)
    create = gcloud.gpu_create(
        job.name, where, args.machine_type, args.accelerator, args.image_family, args.spot
    )
    hint = "Check the zone has this machine type, your GPU quota, and that the name is free."
    copy = gcloud.gpu_copy(job.name, where, str(job.tarball), remote.TARBALL)
    start = remote.start_script("gpu", job.command)
    steps = (
        Step("create", create, hint=hint),
        Step("copy", copy, attempts=COPY_ATTEMPTS),
        Step("install", gcloud.gpu_ssh(job.name, where, remote.install_script("gpu"))),
        Step("start", gcloud.gpu_ssh(job.name, where, start), attempts=START_ATTEMPTS),
        Follow(
            "run",
            lambda offset: gcloud.gpu_ssh(job.name, where, remote.poll_script(offset)),
            timeout_s=_timeout_s(args),
            hint=RUN_HINT,
        ),
        *_fetch(job, where),
    )
    return Plan(steps, Step("delete", gcloud.gpu_delete(job.name, where)))


def commands(plan: Plan, keep: bool) -> list[str]:
    """The plan's commands as shell lines, in the order they run."""
    steps = plan.steps if keep else (*plan.steps, plan.delete)
    return [shlex.join(step.command) for step in steps]


# ----------------------------------------------------------------------------- sources and main


def build_tarball(root: Path, path: Path) -> None:
    """Writes the sources the VM needs (package, configs, project files) as a .tar.gz."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if "__pycache__" in parts or info.name.endswith(".pyc"):
            return None
        return info

    with tarfile.open(path, "w:gz") as archive:
        for name in SOURCES:
            archive.add(root / name, arcname=name, filter=keep)


def main(argv: Sequence[str], commands: Sequence[str]) -> None:
    """``memjax launch tpu|gpu OPTIONS -- COMMAND``; see the module docstring. ``commands``:
    the memjax commands that may run on the VM (given by :mod:`memjax.cli`)."""
    args, command = parse(argv, commands)
    try:
        job = make_job(args.name, command, args.bucket, source_root())
    except (ValueError, LaunchError) as error:
        raise SystemExit(f"memjax launch: {error}") from error
    submit(args, job)


def submit(args: argparse.Namespace, job: Job) -> None:
    """Run ``job`` on the VM that ``args`` (the launcher's parsed options) describe.

    Creates the VM, installs, runs, fetches and deletes; prints the gcloud commands instead
    with ``args.dry_run``. Exits (SystemExit) with the failed step's message. May run in any
    thread: a SIGTERM to a process whose main thread is within
    :func:`~memjax.launch.steps.sigterm_interrupts` stops it and deletes the VM.
    """
    plan = (tpu_plan if args.kind == "tpu" else gpu_plan)(args, job)
    if args.dry_run:
        print("\n".join(commands(plan, args.keep)))
        return
    gcloud_path = shutil.which("gcloud")
    if gcloud_path is None:
        raise SystemExit(
            "memjax launch: gcloud not found on PATH; install the Google Cloud CLI "
            "(https://cloud.google.com/sdk/docs/install) or use --dry-run"
        )
    build_tarball(source_root(), job.tarball)
    if job.local_workdir is not None:
        job.local_workdir.mkdir(parents=True, exist_ok=True)
    try:
        with sigterm_interrupts():
            execute(plan, gcloud_path, args.keep)
    except (LaunchError, KeyboardInterrupt) as error:
        raise SystemExit(f"memjax launch: {message(error)}") from error
    finally:
        job.tarball.unlink(missing_ok=True)
    if job.local_workdir is not None:
        say(f"fetched {', '.join(FETCHED)} into {job.local_workdir} from {job.remote_workdir}")
        print((job.local_workdir / "summary.json").read_text())
