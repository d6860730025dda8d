"""TrainConfig and the training loop shared by every stage: checkpoints, resume, autocast, DDP under torchrun.

Resumption is exact by construction: the batch at step s and every random draw inside step s are pure
functions of (seed, s, rank), the learning rate is a function of s, and the checkpoint holds the model,
the optimizer state and s. So a resumed run replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import signal
import socket
import tempfile
import time
import traceback
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn as nn

from t2i_cli.devices import cuda_bf16, native_bf16, resolve_device
from t2i_cli.errors import DataError, T2IError, UsageError, WeightsError, counted, option, said_value, spoken
from t2i_cli.files import (
    STAGES,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_set,
    check_folder_path,
    finish_set,
    folder_lock,
    folder_locked,
    is_whole_run,
    make_folder,
    missing_folders,
    read_own_json,
    refuse_dash,
    remove_empty,
    remove_temporaries,
    shell_word,
    signals_held,
    stop_signals,
)
from t2i_cli.images import IMAGE_SUFFIXES
from t2i_cli.sampling_config import finite
from t2i_cli.weights import (
    EXPORT_JOURNAL,
    FILES,
    FORMAT,
    SECOND_CLIP,
    _holds_pictures,
    checked_model,
    load_model,
    load_tensors,
    load_tokenizer,
    misfits,
    non_finite,
    read_metadata,
    save_model,
    save_tensors,
    tensor_bytes,
    tensors_of,
    upgrade_config,
)

CHECKPOINT = "checkpoint.safetensors"
RUN_CONFIG = "train_config.json"  # its presence makes a folder a run
WATCHDOG_WARMUP = 50  # steps before the watchdog judges the codes: a fresh model's carry little yet
BEST = "best.safetensors"  # transformer and CLIP runs: the model at the lowest validation loss so far
BEST_STAGES = ("transformer", "clip")  # no later stage is trained on their output, so export may pick any step
OVERFIT_MARGIN = 0.02  # export the best model when the final validation loss is this much (relative) worse


# What a run may ask for (the command line and a run folder's train_config.json alike); float fields not
# named here must be finite and 0 or more, those in POSITIVE above 0.
CONFIG_LIMITS: dict[str, tuple[float, float]] = {
    "lr": (0.0, 1.0), "steps": (1, 10**9), "batch_size": (1, 65_536), "warmup": (0, 10**9), "seed": (0, 2**63 - 1),
    "num_workers": (0, 64), "log_every": (1, 10**9), "sample_every": (0, 10**9), "ckpt_every": (1, 10**9),
    "image_side": (1, 4096), "text_len": (1, 4096), "vocab_size": (1, 1_048_576),
    "tokenizer_captions": (1, 10**8), "lr_min_ratio": (0.0, 1.0), "cond_drop": (0.0, 1.0), "tau_end": (1e-6, 1.0),
    "kl_warmup": (0.0, 1.0), "val_fraction": (0.0, 0.5), "patience": (0, 10**6),
    "crop": (0.5, 1.0), "ema": (0.0, 0.99999),
}
# What a resume may change (the command line's --steps, --lr, --workers, ...): a run's other settings are its own.
RESUMABLE_FIELDS = frozenset({"steps", "lr", "num_workers", "ckpt_every", "sample_every", "log_every", "patience"})
POSITIVE = frozenset({"lr", "grad_clip"})  # at 0 a run would train nothing (no step, or every gradient cut to 0)
# The text fields that name one of a few choices (models.dvae.RECON_LOSSES for recon_loss)
CONFIG_CHOICES: dict[str, tuple[str, ...]] = {"stage": STAGES, "precision": ("auto", "bf16", "fp32"),
                                              "recon_loss": ("l1", "mse", "logit_laplace")}


MAX_PLAIN_ITEMS = 4096  # the largest array a setting's value is read from (plain); no setting holds more


def plain(value: Any) -> Any:
    """A model setting as Python's own kind: numpy's (or torch's) numbers, booleans and arrays as int, float, bool
    and lists (np.array([4, 4, 4]) for fsq_levels, np.int64(8) for n_hid), lists and tuples item by item; the
    rest as given."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if callable(getattr(value, "tolist", None)):  # a numpy array, np.bool_, a tensor
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and math.prod(shape) > MAX_PLAIN_ITEMS:  # (no setting holds so many: as given,
            # for its check to refuse; a sweep passed by mistake, np.arange(10**8) as steps, was made into lists of
            # Python ints, gigabytes, before that)
            return value
        try:
            return plain(value.tolist())
        except (TypeError, ValueError):
            return value
    return value


# What a TrainConfig field of each type takes, as its refusal says it
WANTED = {int: "an integer", float: "a number", str: "a str", bool: "True or False", dict: "a dict"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved in the run folder so --resume needs nothing else."""

    stage: str  # tokenizer, dvae, transformer or clip
    data: str  # a data.py source: world:train, a folder, a manifest.jsonl
    steps: int = 1000  # optimizer steps
    batch_size: int = 32  # global batch, split evenly over processes
    lr: float = 1e-3  # peak learning rate (AdamW)
    warmup: int = 100  # linear warm-up steps (at most a quarter of the run), then cosine decay to lr_min_ratio * lr
    lr_min_ratio: float = 0.1  # floor of the cosine decay
    weight_decay: float = 0.01  # AdamW decoupled weight decay on matrices
    grad_clip: float = 1.0  # max global gradient norm
    seed: int = 0  # every random draw derives from (seed, step, rank)
    precision: str = "auto"  # auto (bf16 autocast where the device has native bf16, else fp32), bf16 or fp32
    num_workers: int = 1  # DataLoader worker processes rendering/loading batches ahead
    log_every: int = 25  # steps between metrics.jsonl lines
    sample_every: int = 500  # steps between sample grids and loss-curve PNGs (0 = only at the end)
    ckpt_every: int = 250  # steps between checkpoints (and always at exit)
    image_side: int = 64  # pixels on a side
    model: dict[str, Any] = field(default_factory=dict)  # the stage's model config fields
    dvae: str = ""  # transformer stage (and finetune_decoder): the dVAE it starts from, as given (copied into the run)
    tokenizer: str = ""  # transformer and clip stages: the tokenizer.json, as given (copied into the run)
    init: str = ""  # clip stage: the trained CLIP whose weights it starts from, as given (copied into the run)
    text_len: int = 24  # text tokens per caption (transformer and clip)
    vocab_size: int = 512  # tokenizer stage: BPE vocabulary size
    tokenizer_captions: int = 50_000  # tokenizer stage: captions to learn from
    cond_drop: float = 0.1  # transformer stage: share of captions replaced by the empty prompt
    tau_end: float = 1 / 16  # dVAE: Gumbel-softmax temperature annealed from 1 to this (cosine)
    kl_max: float = 1e-3  # dVAE: weight of KL(q || uniform), ramped up from 0
    kl_warmup: float = 0.3  # dVAE: share of steps over which the KL weight ramps up
    finetune_decoder: bool = False  # dVAE: train only the decoder of --dvae on its argmax codes
    recon_loss: str = "l1"  # dVAE: reconstruction term, one of models.dvae.RECON_LOSSES
    val_fraction: float = 0.05  # share of a folder or manifest held out for validation (world: world:val)
    hard_negatives: bool = False  # clip stage on the world: every scene comes with its hard-negative twin
    flip: bool = False  # a folder or manifest: mirror half the training pictures (data.Augment)
    crop: float = 1.0  # a folder or manifest: each training picture a random square of crop to 1 of its side
    # Stop once the validation loss has not improved on its best for this many validations in a row (0: never);
    # the run's steps then become the step it stopped at, so it is finished.
    patience: int = 0
    ema: float = 0.0  # the decay of an average of the weights that validation, samples and model files use (0: off)

    def __post_init__(self) -> None:
        for name in ("data", "dvae", "tokenizer", "init"):  # (a Path from Python, as the other calls take: as typed)
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        for f in dataclasses.fields(self):  # numpy's numbers (a sweep's np.arange, np.float32, np.bool_) as plain
            # ones (plain, as the model's settings below): they were refused ("steps must be int, got np.int64(75)";
            # "flip must be True or False"), and train_config.json could not hold them
            value, kind = getattr(self, f.name), type(f.default)
            if isinstance(value, (bool, int, float)) or kind not in (bool, int, float):
                continue
            made = plain(value)
            if kind is float and type(made) is int:  # (np.int64(1) as an lr)
                made = float(made)
            if type(made) is kind:  # (else refused by check, as given: np.float64(2.5) as steps)
                object.__setattr__(self, f.name, made)
        if isinstance(self.model, dict):  # (and in the model's settings: "n_hid is "np.int64(8)", not an integer")
            object.__setattr__(self, "model", {k: plain(v) for k, v in self.model.items()})

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict of the config."""
        return dataclasses.asdict(self)

    def settled(self) -> dict[str, Any]:
        """The settings a resume cannot change (all but RESUMABLE_FIELDS), as train_config.json holds them (a
        model's tuples are lists there): what two configs of one run must share."""
        return json.loads(json.dumps({k: v for k, v in self.to_json().items() if k not in RESUMABLE_FIELDS}))

    def check(self, name: Callable[[str], str] = str) -> None:
        """Raise TypeError for a value of the wrong type and ValueError for one outside CONFIG_LIMITS, naming the
        field as name(field) does: a config read back from a run folder can ask for no more than the command line
        can."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "")
            kind = (int, float) if isinstance(default, float) else type(default)
            if not isinstance(value, kind) or (isinstance(value, bool) and not isinstance(default, bool)):
                # (a TypeError, no range to choose from: it said "steps must be int, got '10'; choose a value in
                # range")
                raise TypeError(f"{name(f.name)} must be {WANTED[type(default)]}, got {said_value(value)}")
            lo, hi = CONFIG_LIMITS.get(f.name, (None, None))
            if isinstance(default, float):
                lo, hi = (0.0, math.inf) if lo is None else (lo, hi)
                wanted = ("above 0" + (f" and at most {hi:g}" if hi < math.inf else "")) if f.name in POSITIVE \
                    else f"between {lo} and {hi}" if hi < math.inf else f"{lo} or more"
                if not finite(value):  # (the range said: lr=nan was told "must be a finite number, got nan; choose
                    # a value in range", a range it did not name)
                    raise ValueError(f"{name(f.name)} must be a finite number {wanted}, got {said_value(value)}")
                if f.name in POSITIVE and not (0 < value <= hi):
                    raise ValueError(f"{name(f.name)} must be {wanted}, got {said_value(value)}")
                if hi == math.inf and value < lo:  # ("must be between 0.0 and inf")
                    raise ValueError(f"{name(f.name)} must be {wanted}, got {said_value(value)}")
            if lo is not None and not lo <= value <= hi:
                raise ValueError(f"{name(f.name)} must be between {lo} and {hi}, got {said_value(value)}")
            if f.name in CONFIG_CHOICES and value not in CONFIG_CHOICES[f.name]:
                raise ValueError(f"{name(f.name)} must be one of {', '.join(CONFIG_CHOICES[f.name])}, "
                                 f"got {value[:40]!r}")


PF_EXITING = 0x4  # Linux: a process's flag (the 9th field of /proc/PID/stat) once it has begun to end


@dataclass
class Dist:
    """Where this process sits in a torchrun job (a single process is rank 0 of 1)."""

    rank: int = 0
    n_procs: int = 1  # processes in the job (torchrun's WORLD_SIZE)
    device: torch.device = torch.device("cpu")
    main_pid: int | None = None  # rank 0's process id, where it runs on this machine (under torchrun)
    pids: tuple[int | None, ...] = ()  # each rank's process id, where it runs on this machine (None elsewhere)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def main_gone(self) -> bool:
        """Whether rank 0, on this machine, has ended (killed: a kill -9, the out-of-memory killer), so that it
        cannot say why the run stopped. Not looked for outside POSIX: on Windows os.kill(pid, 0) is no probe but
        TerminateProcess, which ended a live rank 0 (exit code 0) wherever rank 1 met an error of its own."""
        return self.rank != 0 and _ended(self.main_pid)

    def speaks_for_main(self) -> bool:
        """Whether this process says what rank 0, gone (main_gone), cannot: the checkpoint a resume starts from. The
        lowest rank still running on this machine does (every other rank said it too: 7 lines alike of 8
        processes); a lower rank elsewhere is not looked for."""
        return self.main_gone() and not any(
            not _ended(self.pids[r]) for r in range(1, min(self.rank, len(self.pids))) if self.pids[r] is not None)

    def main_says_it(self) -> bool:
        """Whether rank 0 runs on, on this machine, to say why the job stopped (the connection it lost too, or
        torchrun's SIGTERM, with the checkpoint a resume starts from), so that this rank, which lost a connection,
        leaves it to rank 0: each other rank said a bare `rank N stopped: ...` (6 lines of 8 processes, rank 3
        killed). Not known of a rank 0 on another machine, nor outside POSIX (Dist.main_gone): that rank says its
        own."""
        return self.rank != 0 and self.main_pid is not None and os.name == "posix" and not _ended(self.main_pid)

    def another_says_it(self) -> bool:
        """Whether another process of this machine says why the job stopped where this one lost a connection:
        rank 0 running (main_says_it), or, rank 0 gone, a lower rank still running (speaks_for_main), where the
        lost connection came outside the training loop too (rank 0 killed as it checked the data: each other rank
        said a bare line)."""
        return self.main_says_it() or (self.main_gone() and not self.speaks_for_main())


# What rank 1 says of torchrun's stop once rank 0 has ended (killed: it cannot say it), as a stop's line begins
MAIN_ENDED = ("interrupted; SIGTERM (torchrun's, once rank 0 of this run had ended: killed, or out of memory; its "
              "report says how)")
JOB: Dist | None = None  # this process's place in its torchrun job, once joined (setup_distributed)
_FIRST_STOP: list[bool] = []  # this process's first stop outside the step loop: whether it was torchrun's SIGTERM
# once rank 0 had ended, this process to say it (Dist.speaks_for_main), noted as it came


def stopped_for_main() -> bool:
    """Whether this torchrun process was stopped outside the training loop (before step 1: the data's check, a
    whole run between stages) by torchrun's SIGTERM once rank 0 had ended (a kill -9, out of memory), and says so:
    rank 0 cannot, and it stopped silently, leaving torchrun's report alone. (Inside the loop its stop says it.)"""
    return bool(_FIRST_STOP and _FIRST_STOP[0])


def _stop_noting(signum, frame) -> None:
    """A stop (KeyboardInterrupt, as files.stop_on_sigterm makes SIGTERM one) that notes, as it comes, whether it is
    torchrun's once rank 0 had ended (looked at later, rank 0 might have ended after the stop: a Ctrl-C it said)."""
    if not _FIRST_STOP:
        _FIRST_STOP.append(signum == signal.SIGTERM and JOB is not None and JOB.speaks_for_main())
    raise KeyboardInterrupt


def _ended(pid: int | None) -> bool:
    """Whether the process of pid, on this machine, has ended or is ending (False where it is not known, or not
    looked for: outside POSIX; Dist.main_gone)."""
    if pid is None or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:  # (ended, not yet reaped by torchrun; or ending: the kernel closes its sockets, which rank 1 may see first,
        # before it is a zombie)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)
    except OSError:  # (no /proc, or the process was reaped since os.kill found it, as torchrun reaps a killed rank:
        # it was taken for running, and rank 1 for no rank 0 killed, or rank 2 for a rank 1 running that had ended)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False
    except (IndexError, ValueError):
        return False


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux: a random id the kernel draws at each boot
PID_NAMESPACE = Path("/proc/self/ns/pid")  # Linux: this process's process-id namespace (its inode names it)


def _host_id() -> int:
    """Where a process id names the same process as in this one, as a number a tensor holds: on Linux the
    kernel's boot id and the process-id namespace (two machines, or two containers, of one host name differ; it
    was the host name's hash, which they share, so rank 1 could take a process of its own machine for rank 0);
    elsewhere the host name."""
    try:
        ident = f"{BOOT_ID.read_text().strip()}:{PID_NAMESPACE.stat().st_ino}"
    except OSError:
        ident = socket.gethostname()
    return int.from_bytes(hashlib.sha256(ident.encode()).digest()[:7], "big")


def setup_distributed(device: str = "auto") -> Dist:
    """Join the torchrun process group if launched by torchrun: gloo on CPU, nccl on CUDA. The device is
    resolved like every other command's (--device cuda without a GPU is refused, never a silent CPU run)."""
    use_cuda = resolve_device(device).type == "cuda"
    # WORLD_SIZE read as train_options.n_processes reads it for every other torchrun check (not imported: it
    # imports stages, which imports this module)
    world = os.environ.get("WORLD_SIZE", "")
    n_procs = int(world) if world.isascii() and world.isdigit() and int(world) > 1 else 1
    if n_procs == 1:
        return Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    if "RANK" not in os.environ:  # (it read as an internal error, KeyError: 'RANK')
        raise UsageError(f"WORLD_SIZE={n_procs} is set but RANK is not: start the processes with torchrun, which "
                         f"sets both, or unset WORLD_SIZE to train in one process")
    rank, local = os.environ["RANK"], os.environ.get("LOCAL_RANK", "0")
    for name, value in (("RANK", rank), ("LOCAL_RANK", local)):  # (RANK=x was an internal error, ValueError)
        if not (value.isascii() and value.isdigit() and int(value) < n_procs):
            refused = T2IError(f"{name}={value} is not a process of WORLD_SIZE={n_procs} (0 to {n_procs - 1}): start "
                               f"the processes with torchrun, which sets them, or unset WORLD_SIZE to train in one "
                               f"process")
            refused.exit_code = 2  # (a usage error, said by this process: a UsageError off rank 0 is left to rank 0
            raise refused  # to say, and a RANK that is no rank is not rank 0)
    rank, local = int(rank), int(local)
    if not dist.is_initialized():
        # Imported before the group exists: its functions take `group=group.WORLD` as a default argument, evaluated
        # at import, and imported later (DDP's constructor imports it, through torch.distributed._shard) they would
        # hold the default group until the interpreter's own teardown. destroy_process_group() then freed nothing:
        # gloo's worker and socket threads ran on into interpreter exit, where the group was torn down with Python
        # half gone and a process could abort ("terminate called without an active exception") after a
        # complete run. Imported here, the default is None (the default group, looked up at each call).
        from torch.distributed.nn import functional  # noqa: F401  (a bare `import torch.…` would make torch local)

        dist.init_process_group("nccl" if use_cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    # every rank's process, for the others to see whether rank 0 has ended where torchrun stops them (it cannot say
    # why), and which of them is the lowest still running, to say it once
    here = _host_id()
    ident = torch.tensor([os.getpid(), here], dtype=torch.int64, device=dev)
    every = [torch.zeros_like(ident) for _ in range(n_procs)]
    dist.all_gather(every, ident)
    pids = tuple(int(i[0]) if int(i[1]) == here else None for i in every)
    global JOB
    JOB = Dist(rank, n_procs, dev, main_pid=pids[0], pids=pids)
    import threading

    if rank and threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is signal.default_int_handler:  # (the stop files.stop_on_sigterm set)
        signal.signal(signal.SIGTERM, _stop_noting)
    return JOB


def step_seed(cfg: TrainConfig, step: int, rank: int) -> int:
    """The seed of every random draw in one step of one process."""
    return (cfg.seed * 1_000_003 + step) * 1_009 + rank


def lr_warmup(cfg: TrainConfig) -> int:
    """The steps of lr_at's linear warm-up: cfg.warmup, or the first quarter of a shorter run."""
    return min(cfg.warmup, cfg.steps // 4)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay to lr_min_ratio * lr. The warm-up is cfg.warmup steps or the first
    quarter of the run, whichever is shorter, so that a short run also reaches its peak and decays."""
    warmup = lr_warmup(cfg)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def training_precision(cfg: TrainConfig, device: torch.device) -> str:
    """What the run's --precision means on this device: bf16 (autocast) or fp32. auto is bf16 where the device
    computes bf16 itself (a CPU with AVX-512 BF16 or AMX: the default preset's dVAE and CLIP 1.7-1.9x faster than
    fp32; a GPU of Ampere or later) and fp32 elsewhere: on a CPU with AVX2 only, emulated bf16 trained the same
    models 17-20x slower than fp32 (BENCHMARKS.md "Training on a CPU without native bf16")."""
    if cfg.precision != "auto":
        return cfg.precision
    native = cuda_bf16() if device.type == "cuda" else device.type == "cpu" and native_bf16()
    return "bf16" if native else "fp32"


def precision_change(metrics: Path, cfg: TrainConfig, precision: str, start: int) -> list[str]:
    """A warning when a resumed run trains in another precision than its last start did (its metrics.jsonl's
    last "precision" line; a run from before t2i 0.12.0 has none and trained with auto as bf16): --precision
    auto follows the machine, so a run resumed on another kind of CPU goes on, not bit for bit as it began."""
    before = "bf16" if cfg.precision == "auto" else cfg.precision
    if metrics.is_file():
        said = [r["precision"] for r in read_metrics(metrics) if isinstance(r.get("precision"), str)]
        before = said[-1] if said else before
    if before == precision:
        return []
    return [f"this run trained in {before} until step {start}; here {option('precision', cfg.precision)} means "
            f"{precision}, "
            f"so it goes on in {precision} (not bit for bit what an uninterrupted run on the first machine would "
            f"give)"]


def autocast(precision: str, device: torch.device):
    """bf16 autocast for a run whose precision (training_precision) is bf16; nothing for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and convolutions only (not biases, norms or embeddings' gains)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


EMA_WARMUP = 10  # the average's decay is at most (1 + n) / (EMA_WARMUP + n) after n steps


class Ema:
    """An exponential moving average of a model's floating-point weights (parameters and float buffers), kept in
    float32: after the n-th optimizer step, avg <- avg + (1 - d) (w - avg) with d = min(decay, (1 + n) / (10 + n)),
    so a short run's average forgets its random start (TensorFlow's ExponentialMovingAverage with num_updates).
    Validation, sample grids and the run's model files (hence `t2i export`) use the average; the checkpoint
    carries it ("ema." tensors), so a resume goes on with it. The weights are the same on every process, so is
    the average."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        # state_dict() tensors share storage with the model's: the optimizer's in-place updates show through
        self.live = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.avg = {k: v.detach().float().clone() for k, v in self.live.items()}

    def update(self, done: int) -> None:
        """Fold the weights after optimizer step number `done` (1 for the first) into the average."""
        d = min(self.decay, (1 + done) / (EMA_WARMUP + done))
        torch._foreach_lerp_(list(self.avg.values()), [v.float() for v in self.live.values()], 1.0 - d)

    @contextlib.contextmanager
    def applied(self, hold: Callable[[], typing.ContextManager] = contextlib.nullcontext) -> typing.Iterator[None]:
        """The model holds the average inside the block and its own weights again after it, also when the block
        raises. Each copy runs inside hold() (training's deferral of Ctrl-C and SIGTERM), so a stop never leaves
        some tensors averaged and the rest not, for the checkpoint to save."""
        kept = {k: v.clone() for k, v in self.live.items()}
        try:
            with hold():
                for k, v in self.live.items():
                    v.copy_(self.avg[k])
            yield
        finally:
            with hold():
                for k, v in self.live.items():
                    v.copy_(kept[k])

    def covers(self, steps: int) -> str | None:
        """Why the decay asked for changes nothing in a run of `steps` steps (the warm-up bound stays below it
        to the end), or None."""
        bound = (1 + steps) / (EMA_WARMUP + steps)
        if self.decay <= bound:
            return None
        window = (EMA_WARMUP + steps) // (EMA_WARMUP - 1)
        return (f"{option('ema', self.decay)}: in a run of {steps} steps the average's decay is at most (1 + n) / "
                f"({EMA_WARMUP} + n) = {bound:.4f} at its last step, below {self.decay:g}, so it averages about the "
                f"last {window} steps whatever the decay; any decay above {bound:.4f} trains the same bytes here")

    def load(self, tensors: dict[str, torch.Tensor], path: Path) -> None:
        """Take the average from a checkpoint's "ema." tensors, which must be whole and of the model's shapes."""
        got = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        if set(got) != set(self.avg) or any(got[k].shape != self.avg[k].shape or got[k].dtype != torch.float32
                                            for k in got):
            raise T2IError(f"{path} does not hold this run's average of the weights ({option('ema')}); start a new "
                           f"run")
        for k, v in got.items():
            self.avg[k].copy_(v)


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig, step: int,
                    kind: str, extra: dict[str, Any] | None = None, ema: Ema | None = None) -> None:
    """One safetensors file with model and optimizer tensors (and the weights' average, with --ema); step and
    configs in its metadata (atomic)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors |= {f"ema.{k}": v for k, v in ema.avg.items()}
    state = opt.state_dict()
    for pid, st in state["state"].items():
        for key, value in st.items():
            tensors[f"optim.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps(dataclasses.asdict(model.cfg)),
            "step": str(step), "train_config": json.dumps(cfg.to_json(), sort_keys=True),
            "param_groups": json.dumps(state["param_groups"]), "extra": json.dumps(extra or {}),
            "optim_entries": json.dumps(sorted(state["state"]))}  # which parameters have state (checked at load)
    save_tensors(path, tensors, meta)


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    ema: Ema | None = None) -> tuple[int, dict[str, Any]]:
    """Restore model and optimizer (and the weights' average, with --ema) from a checkpoint; returns (step,
    extra)."""
    tensors, meta = load_tensors(path)
    if ema is not None:
        ema.load(tensors, path)
    elif any(k.startswith("ema.") for k in tensors):
        raise T2IError(f"{path} holds an average of the weights ({option('ema')}) that this run's config does not "
                       f"ask for; "
                       f"start a new run")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as e:
        raise T2IError(f"{path} does not match this run's model ({str(e).splitlines()[0]}); start a new run") from e
    try:
        optim_state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, key = k.split(".", 2)
                # a copy: the optimizer keeps a tensor of its own dtype as given, a view of the file's memory map
                # (the replaced checkpoint stayed mapped the whole run; Windows cannot replace a mapped file)
                optim_state.setdefault(int(pid), {})[key] = v.clone()
        step, extra = int(meta["step"]), json.loads(meta.get("extra", "{}"))
        _check_optimizer_state(optim_state, opt, step, json.loads(meta.get("optim_entries", "null")))
        groups = json.loads(meta["param_groups"])
        _check_param_groups(groups, opt)
        opt.load_state_dict({"state": optim_state, "param_groups": groups})
    except (KeyError, ValueError, TypeError, RecursionError) as e:
        raise T2IError(f"{path}: its optimizer state or step does not fit this run ({type(e).__name__}: {e}); "
                       f"start a new run") from e
    if step < 0 or not isinstance(extra, dict):
        raise T2IError(f"{path}: step {step} or its extra data is not valid; start a new run")
    return step, extra


def _same_kind(saved: Any, own: Any) -> bool:
    """Whether a saved optimizer setting is of the kind of the optimizer's own (a finite number for a number, a
    list of as many for betas, true or false for a flag, ...)."""
    if isinstance(own, bool) or own is None or isinstance(own, str):
        return type(saved) is type(own)
    if isinstance(own, (int, float)):
        return type(saved) in (int, float) and math.isfinite(saved)
    if isinstance(own, (list, tuple)):
        return isinstance(saved, list) and len(saved) == len(own) and all(map(_same_kind, saved, own))
    return False


def _check_param_groups(groups: Any, opt: torch.optim.Optimizer) -> None:
    """ValueError unless a checkpoint's optimizer settings (JSON anyone can edit) are as many groups as this
    optimizer's, each setting of its kind, each group naming as many parameters: an edited `betas` resumed and
    then failed inside the optimizer's step. Settings only one side has are left to PyTorch (another version may
    add one)."""
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups):
        raise ValueError("its parameter groups are not this optimizer's")
    for saved, own in zip(groups, opt.param_groups, strict=True):
        if not isinstance(saved, dict):
            raise ValueError("a parameter group is not a JSON object")
        ids = saved.get("params")
        if not isinstance(ids, list) or len(ids) != len(own["params"]) or any(type(i) is not int for i in ids):
            raise ValueError("a parameter group names other parameters than this run's model has")
        for key in set(saved) & set(own) - {"params"}:
            if not _same_kind(saved[key], own[key]):
                raise ValueError(f"its setting {key} is {json.dumps(saved[key])[:40]}, not like {own[key]!r}")


def _check_optimizer_state(state: dict[int, dict[str, torch.Tensor]], opt: torch.optim.Optimizer, step: int,
                           entries: list[int] | None = None) -> None:
    """A checkpoint's optimizer state is whole: after a step, some; an entry for each parameter its metadata says
    had one (entries; checkpoints before t2i 0.9.2 do not say), each for a parameter of this optimizer, with the
    keys the others have and moments of its parameter's shape (a checkpoint stripped of its optimizer tensors
    resumed silently with a fresh optimizer). ValueError otherwise."""
    params = [p for group in opt.param_groups for p in group["params"]]
    if step > 0 and not state:
        raise ValueError(f"no optimizer state after {step} steps")
    missing = sorted(set(entries or ()) - set(state))
    if missing:
        raise ValueError(f"the optimizer state of parameter {missing[0]} is missing")
    keys = set().union(*state.values())  # what every entry holds (Adam: step, exp_avg, exp_avg_sq)
    for pid, entry in state.items():
        if not 0 <= pid < len(params) or set(entry) != keys:
            raise ValueError(f"the optimizer state of parameter {pid} is not whole")
        if any(v.dim() and v.shape != params[pid].shape for v in entry.values()):
            raise ValueError(f"the optimizer state of parameter {pid} has another shape than it")


def read_run_config(run_dir: Path, fix: str = "check the --resume path") -> TrainConfig:
    """The TrainConfig saved in a run folder (for --resume, and export); fix says what to do when run_dir is
    not a run folder, in the words of the command that was given it."""
    path = Path(run_dir) / RUN_CONFIG
    if not Path(run_dir).exists():
        raise UsageError(f"{run_dir} does not exist; {fix}")
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a t2i run folder (no {RUN_CONFIG}); {fix}")
    try:
        cfg = TrainConfig(**upgrade_config("train", read_own_json(path)))
        cfg.check()
        return cfg
    except (ValueError, TypeError, OSError, RecursionError) as e:
        raise UsageError(f"{path} is not a readable run config ({e}); the run cannot be resumed") from e


class Logger:
    """metrics.jsonl lines and an in-memory loss history for the loss-curve PNG (main process only)."""

    def __init__(self, run_dir: Path, is_main: bool, start: int = 0, curve: str = "loss"):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.is_main, self.curve = is_main, curve  # curve: the training metric drawn beside val_loss
        self.history: list[tuple[int, float]] = []
        if is_main and self.path.is_file():
            # A resumed run replays the steps after its checkpoint: drop their old lines.
            # Lines cut by a kill, or without a step, are dropped too.
            rows = [r for r in read_metrics(self.path) if isinstance(r.get("step"), int) and r["step"] <= start]
            atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in rows).encode())
            self.history = [(r["step"], r.get(curve, r["loss"])) for r in rows
                            if _is_number(r.get("loss")) and _is_number(r.get(curve, r["loss"]))]
            self.val_history = [(r["step"], r["val_loss"]) for r in rows if _is_number(r.get("val_loss"))]
        else:
            self.val_history: list[tuple[int, float]] = []

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Append one metrics line (training metrics, validation metrics "val_*", or a "warning")."""
        if not self.is_main:
            return
        if "loss" in metrics:
            self.history.append((step, metrics.get(self.curve, metrics["loss"])))
        if "val_loss" in metrics:
            self.val_history.append((step, metrics["val_loss"]))
        line = (json.dumps({"step": step, "time": round(time.time(), 3), **metrics}) + "\n").encode()
        with open(self.path, "ab", buffering=0) as f:  # unbuffered: nothing is left to write at close
            end = f.seek(0, os.SEEK_END)
            try:
                rest = memoryview(line)
                while rest:
                    rest = rest[f.write(rest):]
            except BaseException as e:  # a full disk (or a file-size limit) took part of it: the file ends as it was
                with contextlib.suppress(OSError):
                    f.truncate(end)
                if isinstance(e, OSError) and e.filename is None:  # a write's error names no file: name it
                    raise OSError(e.errno, e.strerror, str(self.path)) from e
                raise


COLLAPSED_PERPLEXITY = 2.0  # a dVAE's codebook perplexity below this: nearly every cell uses one code (collapsed)


def dvae_remedy(recon_loss: str, finetune: bool = False) -> str:
    """What a dVAE's collapse suggests (the watchdog's words): not the --recon-loss logit_laplace it trains with
    already. finetune: a --finetune-decoder run, whose codes are its --dvae's (encoder and codebook frozen): it
    was told "more --steps or a lower --lr", which change nothing of them; the dVAE it starts from is retrained."""
    lower = f"a lower {option('lr')}"
    remedy = (f"more {option('steps')} or {lower}" if recon_loss == "logit_laplace"
              else f"{option('recon_loss', 'logit_laplace')} or {lower}")
    if finetune:
        return (f"retraining the {option('dvae')} model it fine-tunes ({remedy}), then fine-tuning that one's "
                f"decoder: a {option('finetune_decoder')} run keeps the encoder and codebook, which make the codes, "
                f"as they were")
    return remedy


def watchdog_warmup(cfg: TrainConfig) -> int:
    """The steps before the watchdog judges a run's codes (a fresh model's carry little yet), nor during the lr's
    warm-up."""
    return max(WATCHDOG_WARMUP, cfg.steps // 10, lr_warmup(cfg))


def collapsed_codebook(rows: list[dict], cfg: TrainConfig, n_codes: int | None = None) -> str | None:
    """A dVAE run's codebook as its latest measure left it (that of the latest step measured, by a validation or by
    a logged training step; the validation's where both measured that step: a validation long past is no measure of
    the run's end), said in the watchdog's words where it has collapsed (perplexity below COLLAPSED_PERPLEXITY); None
    where it has not, or nothing measured it past the watchdog's warm-up (a fresh dVAE uses one code). The watchdog
    says a symptom once, at the step it first shows (step 75 of 150): a run that ended so said nothing at its end,
    nor did `t2i info`. A run shorter than that warm-up is judged on the measure of its last step (it said nothing
    at all: a dVAE of 40 steps ended using one code, unsaid, and a transformer trained on its codes drew noise).
    n_codes: the codebook's size, for "4 of 64 codes"."""
    after = watchdog_warmup(cfg)
    every = [(r["step"], int(val), r[f"{pre}perplexity"], r.get(f"{pre}codes_used"))
             for r in rows for val, pre in ((True, "val_"), (False, ""))
             if isinstance(r.get("step"), int) and _is_number(r.get(f"{pre}perplexity"))]
    measured = [m for m in every if m[0] > after]
    short = not measured and cfg.steps <= after  # (a run that ends inside the warm-up: its end's measure)
    if short:
        measured = [m for m in every if m[0] == cfg.steps]
    if not measured:
        return None
    step, val, perplexity, used = max(measured, key=lambda m: m[:2])
    if perplexity >= COLLAPSED_PERPLEXITY:
        return None
    share = used if _is_number(used) and 0 <= used <= 1 else None
    codes = "" if share is None else f"{round(share * n_codes)} of {n_codes} codes" if n_codes else \
        f"{share:.0%} of its codes"
    where = " on its validation pictures" if val else ""
    return (f"the dVAE's codebook has collapsed: at step {step} its codebook perplexity is {perplexity:.2f}"
            f"{f' ({codes} used{where})' if codes else where}: nearly every cell uses one code; try "
            + (f"more {option('steps')} (a run of {cfg.steps:,} steps ends inside the first {after:,}, where a fresh "
               f"dVAE's codes have not spread yet)" if short and not cfg.finetune_decoder
               else dvae_remedy(cfg.recon_loss, cfg.finetune_decoder)))


class Watchdog:
    """Notices when training has stopped learning and says so once per symptom, naming what to try."""

    PATIENCE = 8  # logged losses that must all agree to four digits before the loss counts as stuck

    def __init__(self, warmup_steps: int, patience: int = 0, recon_loss: str = "", finetune: bool = False):
        self.warmup_steps, self.seen, self.losses, self.patience = warmup_steps, set(), [], patience
        # what a dVAE's symptoms suggest: not the --recon-loss logit_laplace it trains with already (a run of the
        # default or tiny preset, whose codebook collapsed, was told to try the loss it used)
        # (and more steps: a tiny dVAE on maps, mostly white, drew white from step 25 to 125 and left it by step 175 of
        # 600; told at step 75 of 150 to try a lower --lr, it did so at 1e-4 and was told again, ending collapsed)
        self.remedy = dvae_remedy(recon_loss, finetune)
        self.finetune = finetune
        self.perplexity = math.inf  # the codebook's latest measure (a --finetune-decoder run's codes never change)

    def check(self, step: int, metrics: dict[str, float]) -> list[str]:
        """New warnings for the metrics logged at a step."""
        found = {}
        self.losses.append(metrics.get("loss", math.nan))
        self.perplexity = metrics.get("perplexity", self.perplexity)
        if step > self.warmup_steps:
            if metrics.get("kl", 1.0) < 0.01:
                found["kl"] = (f"step {step}: the dVAE's codes carry almost no information (KL to the uniform prior "
                               f"{metrics['kl']:.4f} nats: posterior collapse); try {self.remedy}")
            if metrics.get("out_std", 1.0) < 1e-3:  # (a --finetune-decoder run trains the decoder alone: where its
                # codes are not collapsed, the same image whatever they are is its own lr's)
                found["constant"] = (f"step {step}: the decoder draws the same image whatever the input (spread "
                                     f"{metrics['out_std']:.1e}); try "
                                     + (f"a lower {option('lr')}" if self.finetune
                                        and not self.perplexity < COLLAPSED_PERPLEXITY else self.remedy))
            if metrics.get("perplexity", 100.0) < COLLAPSED_PERPLEXITY:
                found["codebook"] = (f"step {step}: codebook perplexity {metrics['perplexity']:.2f}: nearly every "
                                     f"cell uses one code; try {self.remedy}")
        recent = self.losses[-self.PATIENCE:]
        if len(recent) == self.PATIENCE and all(math.isfinite(v) for v in recent) \
                and max(recent) - min(recent) <= 1e-4 * max(abs(sum(recent) / len(recent)), 1e-8):
            found["stuck"] = (f"step {step}: the loss has not moved in {self.PATIENCE} logs ({recent[-1]:.4g}); "
                              f"check the data, or try another {option('lr')}")
        return self._new(found)

    def check_val(self, step: int, history: list[tuple[int, float]]) -> list[str]:
        """New warnings from the validation losses so far: rising twice in a row is overfitting."""
        found = {}
        v = [loss for _, loss in history[-3:]]
        if len(v) == 3 and v[0] < v[1] < v[2]:
            found["overfit"] = (f"step {step}: the validation loss rose twice in a row ({v[0]:.4g} -> {v[2]:.4g}) "
                                f"while training went on: the model is memorising its data; fewer {option('steps')} "
                                + ("" if self.patience else f"(or {option('patience', 2)}, which stops such a run) ")
                                + "or more pictures")
        return self._new(found)

    def _new(self, found: dict[str, str]) -> list[str]:
        new = [text for key, text in found.items() if key not in self.seen]
        self.seen |= set(found)
        return new


Progress = Callable[[int, dict[str, float]], None]
Warn = Callable[[str], None]


def split_refusal(cfg: TrainConfig, n_procs: int) -> str | None:
    """Why cfg's batch cannot be split over n_procs torchrun processes (an uneven share, or with --hard-negatives an
    odd one: a scene and its twin go to one process), or None."""
    if cfg.batch_size % n_procs:
        return f"{option('batch_size', cfg.batch_size)} must be a multiple of the {n_procs} processes"
    if cfg.hard_negatives and cfg.batch_size // n_procs % 2:  # a scene and its twin in one process's batch
        return (f"{option('hard_negatives')} with {n_procs} processes: {option('batch_size', cfg.batch_size)} gives "
                f"each "
                f"{cfg.batch_size // n_procs} samples, which must be even so that every scene meets its twin; use a "
                f"multiple of {2 * n_procs}")
    return None


class StepBatches(torch.utils.data.Dataset):
    """Batch number `step` of one process: a pure function of (seed, step, rank), so resume is exact.

    Global sample positions run step * batch_size + rank * per_rank + j, so the samples of a step are the
    same whatever the number of processes; each epoch of a finite source is a seeded permutation.
    """

    def __init__(self, dataset, cfg: TrainConfig, rank: int, n_procs: int, procedural: bool):
        if (why := split_refusal(cfg, n_procs)) is not None:  # (refused before a run starts: run_stage, run_all)
            raise UsageError(why)
        self.dataset, self.cfg, self.rank, self.procedural = dataset, cfg, rank, procedural
        self.per_rank = cfg.batch_size // n_procs
        self._perm: tuple[int, torch.Tensor] | None = None  # (epoch, permutation) cache

    def __len__(self) -> int:
        return self.cfg.steps

    def _index(self, position: int) -> int:
        n = len(self.dataset)
        if self.procedural:  # every index is a fresh random scene already
            return position % n
        epoch = position // n
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + epoch)
            self._perm = (epoch, torch.randperm(n, generator=gen))
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = epoch
        return int(self._perm[1][position % n])

    def __getitem__(self, step: int) -> tuple[torch.Tensor, list[str]]:
        first = step * self.cfg.batch_size + self.rank * self.per_rank
        items = [self.dataset[self._index(first + j)] for j in range(self.per_rank)]
        return torch.stack([im for im, _ in items]), [cap for _, cap in items]  # (b, 3, H, W), b captions


def make_loader(batches: StepBatches, start: int, num_workers: int) -> torch.utils.data.DataLoader:
    """Load steps start..steps-1 in order, with worker processes rendering ahead of the training step."""
    return torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, batches.cfg.steps),
                                       num_workers=num_workers, prefetch_factor=4 if num_workers else None,
                                       worker_init_fn=_ignore_stop_signals if num_workers else None)


# Ctrl-C, `kill` (a scheduler's pre-emption) and a closed terminal (SIGHUP, where the system has it: it ended a run
# silently, exit 129, losing every step since the last checkpoint)
STOP_SIGNALS = stop_signals()


@contextlib.contextmanager
def _stops_blocked() -> typing.Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP blocked in this thread while the loader's workers start, where the system blocks
    signals (not Windows). A worker inherits the mask, so a stop sent to the process group while it starts waits
    in it until _ignore_stop_signals has taken it out of the stop's way: under spawn (macOS' start method, and
    Windows') a worker imports torch for seconds first, and a SIGTERM then killed it (the run ended in the
    loader's "worker killed" internal error, no checkpoint), a Ctrl-C printed a traceback per worker. Under fork
    the window is short but the same. The main process takes its own stop when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    import multiprocessing

    # blocked before the resource tracker starts, too: it unblocks only the SIGINT and SIGTERM it ignores, so a
    # SIGHUP to the group stays blocked in it (it killed the tracker, whose death printed tracebacks at the stop)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        if multiprocessing.get_start_method() != "fork":
            import sys
            from multiprocessing import resource_tracker

            # Started here, not by the loader. It runs without its UserWarnings: a stop while a worker still
            # starts ends the run before that worker, which removes the loader's semaphores as it ends, and the
            # tracker said them "leaked" (two lines after the stop's own).
            quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
            sys.warnoptions.append(quiet)  # (what the tracker's command line is made from)
            try:
                resource_tracker.ensure_running()  # (which unblocks SIGINT and SIGTERM as it returns)
            finally:
                sys.warnoptions.remove(quiet)
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _ignore_stop_signals(_worker_id: int) -> None:
    """Ctrl-C (SIGINT), `kill -- -PGID` (SIGTERM) and a closed terminal (SIGHUP) reach the whole process group:
    each worker leaves it, so
    only the main process gets them and checkpoints (a worker killed first made the run end in DataLoader's
    "worker killed" error with no checkpoint). The loader's own terminate() still ends a worker, and a worker
    ends on its own if the main process dies (DataLoader's watchdog). A stop that came while the worker started
    waits blocked (_stops_blocked): ignored as it is unblocked, it is dropped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    later = [s for s in STOP_SIGNALS if s != signal.SIGINT]  # SIGTERM, SIGHUP
    if hasattr(signal, "pthread_sigmask"):
        for s in later:
            signal.signal(s, signal.SIG_IGN)  # a pending SIGTERM or SIGHUP is discarded as it is ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    # SIGTERM (and SIGHUP) end a worker, as in a spawned one: a forked worker kept the main process's training
    # handler, which waits for a stop it never sees (the loader's terminate() at exit, and the process waiting on
    # it, hung)
    for s in later:
        signal.signal(s, signal.SIG_DFL)
    import sys

    sys.excepthook = _quiet_hang_ups(sys.excepthook)


def _quiet_hang_ups(previous: Callable[..., None]) -> Callable[..., None]:
    """A worker's sys.excepthook that says nothing of the main process hanging up while it took a batch: a batch's
    tensors reach it through the worker's resource-sharing thread, which prints each error it meets through
    sys.excepthook and goes on; a stop (Ctrl-C, SIGTERM) that ended the main process's read mid-way printed that
    thread's EOFError or ConnectionResetError traceback under the stop's one line."""
    def hook(kind, value, tb) -> None:
        if issubclass(kind, (EOFError, ConnectionError)) and any(
                frame.f_code.co_filename.endswith("resource_sharer.py") for frame, _ in traceback.walk_tb(tb)):
            return
        previous(kind, value, tb)
    return hook


def _ended_workers(loaded, wait: bool = False) -> list[tuple[int, int]]:
    """(pid, signal) of each of the loader's worker processes that a signal ended: a stop (SIGTERM, SIGHUP,
    SIGINT) from a kill of each of the run's processes (a scheduler's, systemd's, `pkill`), not of the main process
    alone, or a SIGKILL (the system's out-of-memory killer). Its loader then raised "DataLoader worker (pid N) is
    killed by signal: Terminated" (or the main process's read of its batch "Connection reset by peer"), an
    internal error, wherever the main process was. wait: up to a second for a worker to be seen ended (a read
    that failed as the worker died may fail before the system has it ended)."""
    workers = list(getattr(loaded, "_workers", ()))
    deadline = time.monotonic() + (1.0 if wait else 0.0)
    while True:
        ended = []
        for worker in workers:
            try:
                code = worker.exitcode
            except (OSError, ValueError):  # (a process already reaped, or closed)
                continue
            if code is not None and code < 0:
                ended.append((worker.pid, -code))
        if ended or not workers or time.monotonic() >= deadline:
            return ended
        time.sleep(0.02)


def _close_loader(loaded) -> None:
    """End the loader's worker processes now (DataLoader's own shutdown: each is told to stop and joined), where a
    run stops or fails: not at some later collection of the iterator, after the run's handlers are gone."""
    shutdown = getattr(loaded, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


class Interrupted(T2IError):
    """Training stopped by Ctrl-C (or SIGTERM) after writing a checkpoint. Under torchrun every process gets
    the signal and stops alike: rank 0 alone says so (every_rank). every_rank False: this process alone had the
    stop (its loader's worker stopped; rank 1 once rank 0 was killed), so it says it itself."""

    exit_code = 130

    def __init__(self, message: str, step: int | None = None, why: str = "interrupted", every_rank: bool = True,
                 saved: int | None = -1, own: bool = True):
        super().__init__(message)
        self.step = step  # the step it stopped at (None: stopped outside a stage's steps)
        # the step of the checkpoint a resume starts from (-1: step's; None: none written yet); own: this process
        # wrote it (rank 1 names the one rank 0 left). A whole run's line says it as the stage's did: it said
        # "at step N; checkpoint saved" of a step no process had saved (a worker's stop inside an optimizer step,
        # rank 1 once rank 0 was killed)
        self.saved = step if saved == -1 else saved
        self.own = own
        self.why = why  # what stopped it, as its message begins (a whole run's says it too)
        self.every_rank = every_rank


class MainFailed(T2IError):
    """Under torchrun, a process other than rank 0 whose run stopped because rank 0 failed at work of a step that
    rank 0 alone does (its samples, validation and best model): rank 0's own error says why, once."""

    every_rank = True  # (said by rank 0 alone, as its own error)


class CheckpointFailed(MainFailed):
    """Under torchrun, a process other than rank 0 whose run stopped because rank 0 could not write a checkpoint:
    rank 0's own error says why, once."""


class Diverged(T2IError):
    """Training stopped at a step whose loss or gradient norm was NaN or infinite, before that step changed
    the model; the last checkpoint is kept. Every process of a torchrun job raises it at the same step."""

    every_rank = True  # the same error on every process: only rank 0 reports it


def _number(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)  # nan, inf, -inf


def diverged_message(run_dir: Path, cfg: TrainConfig, step: int, what: str, saved: int | None) -> str:
    """The one line that stops a diverged run: where, what was kept, and what to change. (A --resume with the
    same settings would replay the same steps into the same divergence, since resumption is exact: it takes a
    lower --lr.)"""
    if saved is None:
        return (f"training diverged at step {step} ({what}) before its first checkpoint "
                f"({option('ckpt_every', cfg.ckpt_every)}), so there is no model to keep; start again with a lower "
                f"{option('lr')} (this run's is {cfg.lr:g}) in a new run")
    return (f"training diverged at step {step} ({what}); the last checkpoint (step {saved}) is kept in {run_dir}, "
            f"and t2i export can use it; to go on from it, resume with a lower {option('lr')} (this run's is "
            f"{cfg.lr:g}): " + spoken(f"t2i train --resume {shell_word(run_dir)} --lr {cfg.lr / 10:g}",
                                      f"run_stage with lr={cfg.lr / 10:g} and resume=True"))


def train_loop(stage, cfg: TrainConfig, run_dir: Path, dd: Dist, progress: Progress | None = None,
               warn: Warn | None = None) -> dict:
    """Run (or resume) the optimizer steps of a model stage; checkpoints atomically, also on Ctrl-C. Watches
    itself: a symptom of training that has stopped learning is logged as a "warning" line and passed to
    warn once; validation metrics ("val_*") are logged with every sample grid and at the end. A step whose loss
    or gradient norm is NaN or infinite (on any process) raises Diverged before it changes the model, on every
    process at once; the checkpoint on disk is kept."""
    model = stage.model
    wrapped = nn.parallel.DistributedDataParallel(model) if dd.n_procs > 1 else model
    opt = make_optimizer(model, cfg)
    ema = Ema(model, cfg.ema) if cfg.ema > 0 else None
    # what validation, samples and model files see: the average, swapped in and out where no stop can split it
    published = (lambda: ema.applied(stops.held)) if ema is not None else contextlib.nullcontext
    ckpt = Path(run_dir) / CHECKPOINT
    start = load_checkpoint(ckpt, model, opt, ema)[0] if ckpt.is_file() else 0
    logger = Logger(run_dir, dd.is_main, start, getattr(stage, "curve", "loss"))
    # auto follows the device; every process trains as rank 0 resolves it (torchrun over unlike machines)
    precision = "bf16" if _on_every_rank(training_precision(cfg, dd.device) == "bf16", dd) else "fp32"
    notes = [] if start == 0 else precision_change(logger.path, cfg, precision, start)
    if precision == "bf16" and dd.device.type == "cpu" and not native_bf16():
        notes.append(f"{option('precision', 'bf16')} on a CPU without native bf16 (AVX-512 BF16 or AMX) is emulated: "
                     f"training runs about 17-20x slower than fp32 here (BENCHMARKS.md); "
                     f"{option('precision', 'auto')} picks fp32 on this CPU")
    too_short = ema.covers(cfg.steps) if ema is not None and start == 0 else None
    if too_short:
        notes.append(too_short)
    if start == 0 and getattr(stage, "val", None) is not None and len(stage.val) \
            and (unused := patience_unused(cfg)):  # (a run without validation is said so where it opens its data)
        notes.append(unused)
    # what --precision meant at this start, and the thread count it trained at (--threads: a resume may change it,
    # and a step's bytes can depend on it)
    logger.log(start, {"precision": precision, "threads": torch.get_num_threads()})
    for text in notes if dd.is_main else ():
        logger.log(start, {"warning": text})
        if warn is not None:
            warn(text)
    batches = StepBatches(stage.dataset, cfg, dd.rank, dd.n_procs, stage.procedural)
    done, metrics = start, {}
    saved = start if ckpt.is_file() else None  # the step of the checkpoint on disk
    # (nor during the lr's warm-up: a tiny dVAE on maps and charts, mostly white, draws white whatever its input while
    # its lr still rises, and leaves that after; it was told at step 75 of 600, lr 0.00075 on its way to 0.001, to
    # "try a lower --lr", which left the same collapse at the end of a shorter run)
    watchdog = Watchdog(warmup_steps=watchdog_warmup(cfg), patience=cfg.patience,
                        recon_loss=cfg.recon_loss if cfg.stage == "dvae" else "",
                        finetune=cfg.stage == "dvae" and cfg.finetune_decoder)

    def samples_and_validation() -> None:
        with published():
            validate_and_sample()

    def validate_and_sample() -> None:
        if getattr(stage, "val", None) is not None and len(stage.val):
            logger.log(done, stage.validate())
            if stage.kind in BEST_STAGES and logger.val_history[-1][1] <= min(v for _, v in logger.val_history):
                save_model(model, Path(run_dir) / BEST, stage.kind, step=done)  # the lowest validation loss yet
            for text in watchdog.check_val(done, logger.val_history):
                logger.log(done, {"warning": text})
                if warn is not None:
                    warn(text)
        stage.write_samples(run_dir, done, logger.history, logger.val_history)

    def checkpoint(agreed: bool = False) -> None:
        """agreed: every process calls it at this step (a --ckpt-every step, the run's last), and learns from
        rank 0 whether its writes succeeded (on_rank_0: where they failed, every process stops there, rank 0 alone
        saying why, the others raising CheckpointFailed)."""
        nonlocal saved
        # Never a NaN model over a good checkpoint. The weights are the same on every process, so every
        # process decides alike (a step's loss and gradient norm are checked first: this is a backstop).
        if non_finite(model.state_dict()) or (ema is not None and non_finite(ema.avg)):
            stop(done, "NaN or infinite weights")

        def write() -> None:  # the model alone too, so other stages and `t2i export` can use the run folder
            save_checkpoint(ckpt, model, opt, cfg, done, stage.kind, ema=ema)
            # Both carry the step: a kill between the two writes is repaired by sync_model_file.
            with published():
                save_model(model, Path(run_dir) / f"{stage.kind}.safetensors", stage.kind, step=done)

        if agreed:
            on_rank_0(write, "the checkpoint", CheckpointFailed)
        elif dd.is_main:
            write()
        saved = done

    def log_step() -> None:
        logger.log(done, metrics)
        for text in watchdog.check(done, metrics):
            logger.log(done, {"warning": text})
            if warn is not None:
                warn(text)

    def early_stop() -> None:  # (rank 0's, with cfg's steps made the step it stops at)
        best_step, best = min(logger.val_history, key=lambda sv: sv[1])
        text = (f"step {done}: the validation loss has not improved on step {best_step}'s {best:.4g} "
                f"for {counted(cfg.patience, 'validation')}: stopping early ({option('patience', cfg.patience)}); "
                f"the run ends here")
        if done % cfg.log_every:
            logger.log(done, metrics)  # the last step's training loss, as at a planned end
        logger.log(done, {"early_stop": text})
        if warn is not None:
            warn(text)
        atomic_write_json(Path(run_dir) / RUN_CONFIG, cfg.to_json())

    def on_rank_0(work: Callable[[], None], what: str, failed: type[MainFailed] = MainFailed) -> None:
        """Rank 0's own work of a step (its metrics line, samples and validation, a --patience stop's record, an
        agreed checkpoint's writes), every process calling this at the same step: where it fails (a full disk, a
        read-only folder, a folder that became a file) every process stops there, rank 0 alone saying why; the
        others raise failed (the others waited in the next step, or at the run's last checkpoint, and each said
        "rank N stopped: another torchrun process of this run stopped first", a second line for one failure)."""
        if dd.is_main:
            try:
                work()
            except Exception:
                _on_every_rank(False, dd)
                raise
        if not _on_every_rank(True, dd):
            raise failed(f"rank 0 could not write {what} of step {done} (its line says why)")

    def stop(step: int, what: str) -> typing.NoReturn:
        text = diverged_message(run_dir, cfg, step, what, saved)
        logger.log(step, {"diverged": text})  # main process only; a resume drops it with the steps after `saved`
        raise Diverged(text)

    def stopped(e: KeyboardInterrupt | None, worker: tuple[int, int] | None = None) -> Interrupted:
        """What a stop says once its checkpoint is written (or the one on disk is the step's). worker: (pid,
        signal) of the loader worker whose stop stopped the run (e None)."""
        why = "torchrun, which started this run's processes, has ended (killed?): stopped" \
            if isinstance(e, LauncherGone) else "interrupted"
        if worker is not None:  # (this process's alone: it says it, every_rank False)
            why = (f"interrupted; {signal.Signals(worker[1]).name} to its data loader's worker process (pid "
                   f"{worker[0]}, as a kill of each of the run's processes sends)")
        elif stops.signum == signal.SIGTERM and dd.n_procs > 1 and not isinstance(e, LauncherGone):  # torchrun's
            # stop of every process once one has failed (killed, out of memory), or a kill's: not a Ctrl-C
            why = ("interrupted; SIGTERM (torchrun's, once a process of the run has failed: its report names "
                   "which; or a kill, a timeout, a scheduler's)")
        kept = "checkpoint saved" if saved == done else f"its checkpoint is step {saved}'s" if saved else \
            "no checkpoint yet"
        if stops.signum == signal.SIGTERM and worker is None and not isinstance(e, LauncherGone) \
                and dd.speaks_for_main():
            # torchrun's stop once rank 0 was killed: no process said anything (rank 0 says a stop), torchrun's
            # report alone. Rank 1 says it, with the checkpoint rank 0 left (whole: it is written atomically).
            try:
                on_disk = int(read_metadata(ckpt)["step"]) if ckpt.is_file() else None
            except (WeightsError, KeyError, ValueError, OSError):
                on_disk = None
            why = MAIN_ENDED
            # (none on disk: a resume starts at step 0, as the lost connection's line says it; this one said "no
            # checkpoint was written" alone, as if nothing could go on)
            return Interrupted(f"{why} at step {done}; "
                               + (f"the run's checkpoint is step {on_disk}'s" if on_disk else
                                  "no checkpoint was written yet, so a resume starts at step 0")
                               + f". Resume with: t2i train --resume {shell_word(run_dir)}",
                               step=done, saved=on_disk, own=False, why=why, every_rank=False)  # (rank 1 says
            # it: rank 0 cannot)
        return Interrupted(f"{why} at step {done}; {kept}. Resume with: t2i train --resume {shell_word(run_dir)}",
                           step=done, saved=saved, why=why, every_rank=worker is None)

    stops = _Stops()  # (published() reads it when called, inside the try below)
    failing: BaseException | None = None  # the error leaving the loop, whose finished frames the finally clears
    stepping = False  # inside opt.step() and the average's update
    loaded = None
    try:
        # The loader's workers start (fork) here: a stop raised inside Python's after-fork hooks was swallowed
        # ("Exception ignored"), and the run went on to finish with exit 0. Held, it stops the run just after.
        with stops.held(), _stops_blocked():
            loaded = iter(make_loader(batches, start, cfg.num_workers))
            stops.guard_workers()
        for step, (images, captions) in zip(range(start, cfg.steps), loaded, strict=True):
            torch.manual_seed(step_seed(cfg, step, dd.rank))
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step)
            with autocast(precision, dd.device):
                loss, metrics = stage.loss(wrapped, images.to(dd.device), captions, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            # One reduction for both: a NaN or infinity on any process makes the mean non-finite on every
            # process, so all of them stop at this step together, before opt.step() could spread it. (And
            # whether any process has lost its torchrun, so that all stop at this step together.)
            lost = loss.detach().float().new_tensor(float(stops.orphaned()))
            mean_loss, mean_norm, gone = _mean_over_ranks(torch.stack([loss.detach().float(), norm.float(), lost]),
                                                          dd)
            if gone:
                raise LauncherGone
            if not math.isfinite(mean_loss):
                stop(step + 1, f"loss {_number(mean_loss)}")
            if not math.isfinite(mean_norm):  # a finite loss whose gradient is not
                stop(step + 1, f"loss {mean_loss:.4g}, gradient norm {_number(mean_norm)}")
            with stops.held():  # a stop inside opt.step() would checkpoint a step's update it did not count
                stepping = True  # (an error in here may leave the update half made: nothing is saved of it)
                opt.step()
                if ema is not None:
                    ema.update(step + 1)
                done = step + 1
                stepping = False
                # the step's line with it: a stop just after the count saved the step without its loss line
                # (and the resume starts after it)
                metrics = {"loss": mean_loss, **metrics, "lr": lr_at(cfg, step)}
                if done % cfg.log_every == 0 or done == cfg.steps:
                    on_rank_0(log_step, "the metrics")
            if done % cfg.ckpt_every == 0 and done < cfg.steps:
                with stops.held():  # a stop waits for it (one as its temporary file was made left that behind,
                    checkpoint(agreed=True)  # and the stop wrote the checkpoint again)
            if cfg.sample_every and done % cfg.sample_every == 0:
                on_rank_0(samples_and_validation, "the samples or validation")
                # (at the run's last step it ends as planned: a stop there was said as "stopping early" and recorded
                # as an early stop, though it trained every step)
                if cfg.patience and done < cfg.steps and \
                        _on_every_rank(dd.is_main and stalled(logger.val_history, cfg.patience), dd):
                    cfg = dataclasses.replace(cfg, steps=done)  # finished: a resume or a repeated --stage all
                    on_rank_0(early_stop, "the early stop")  # (a resume or a repeated --stage all sees a complete
                    # run, and the checkpoint below records it too)
                    if progress:
                        progress(done, {**metrics, "steps": done})  # "steps": the run's new length
                    break
            if progress:
                progress(done, metrics)
        with stops.held():  # the run's last checkpoint is written whole: a stop waits for it, then stops below
            _close_loader(loaded)  # (its workers have ended already, unless --patience stopped the run early)
            checkpoint(agreed=True)
    except KeyboardInterrupt as e:
        failing = e
        stops.stopping = stops.holding = True  # a second stop waits for this checkpoint too (the steps since the last)
        if saved != done:
            checkpoint()
        raise stopped(e) from None
    except BaseException as e:
        failing = e
        stops.stopping = stops.holding = True  # the run ends with it: a worker that ends now is not another error,
        # and a stop now waits for the steps' save below (it ended the run here, those steps lost)
        ended = _ended_workers(loaded, wait=isinstance(e, (ConnectionError, EOFError))) \
            if isinstance(e, Exception) and not isinstance(e, Diverged) else []
        if stop_ended := [w for w in ended if w[1] in STOP_SIGNALS]:
            # a stop that reached a worker (before the main process, or alone) stops the run as a stop does
            if saved != done and not stepping:
                checkpoint()
            raise stopped(None, stop_ended[0]) from None  # (every_rank False: under torchrun this process alone
            # had it, and says so itself)
        if ended:  # (a SIGKILL: out of memory, or a kill -9) said as what it is, not as an internal error
            pid, signum = ended[0]
            e = failing = DataError(
                f"the data loader's worker process (pid {pid}) was ended by {signal.Signals(signum).name}"
                + (f" (the system's out-of-memory killer sends it, or a kill -9; lower "
                   f"{option('num_workers', cli='--workers')} or {option('batch_size')} if memory ran out)"
                   if signum == getattr(signal, "SIGKILL", None) else ""))
        if isinstance(e, (Exception, SystemExit)) and not isinstance(e, Diverged) and not stepping \
                and done > start and saved != done and dd.is_main:
            # An error (a picture gone unreadable, a full disk, out of memory) keeps the steps trained since the
            # last checkpoint, as a stop does: the model is that of step `done`, whole. So does a SystemExit: Rich
            # raises one where a line of the run meets a broken pipe (`t2i train ... 2>&1 | head`, a dead `tee`),
            # which ended the run quietly with every step since the last --ckpt-every lost.
            if not non_finite(model.state_dict()) and not (ema is not None and non_finite(ema.avg)):
                try:
                    with stops.held():  # (weights gone NaN are not saved, nor said as a divergence: the error is)
                        _save_on_error(e, checkpoint, done, run_dir)
                except KeyboardInterrupt as stop:  # a stop held through the save (torchrun's SIGTERM, once
                    # another process failed) is said as a stop, with the step it saved
                    raise stopped(stop) from None
        if isinstance(e, Exception) and dd.main_gone():
            # rank 0 has ended (a kill -9, the out-of-memory killer) and cannot say where a resume starts: this
            # process's line (the connection it lost) says it, with the checkpoint rank 0 left (it named none),
            # where it is the lowest rank still running; the others leave it to that one (said_elsewhere)
            if dd.speaks_for_main():
                _say_kept(e, ckpt, run_dir, none=True)
            else:
                e.said_elsewhere = True
        if stops.pending:  # a stop while the error was handled, nothing saved: it ends the run, as it did
            stops.pending = False
            raise KeyboardInterrupt from e
        if ended:
            raise e from None
        raise
    finally:
        if failing is not None:  # the workers end with the run, a stop now waiting for them (the run's own is said)
            stops.holding = True
            _close_loader(loaded)
        stops.restore()
        # The DDP wrapper goes now, before its stage destroys the process group: a traceback keeps this frame's
        # locals, and a wrapper freed after the group (a diverged run's, as the error was handled) hung its
        # process until torchrun killed it.
        wrapped = None  # noqa: F841
        _drop_frames(failing)  # the frames below this one (a stage's loss(model=wrapper)) keep it too
        failing = None  # (only the error leaving here: a caller's own, in sys.exc_info on a normal return, is kept)
    try:
        if dd.is_main and not (cfg.sample_every and done % cfg.sample_every == 0 and done > start):
            samples_and_validation()
        if dd.is_main and cfg.stage == "dvae" and (collapsed := collapsed_codebook(
                _metrics_or_none(logger.path), cfg, getattr(stage.model.cfg, "n_codes", None))):
            logger.log(done, {"warning": collapsed})  # said at the end, whatever the watchdog said before
            if warn is not None:
                warn(collapsed)
        logger.log(done, {"finished": True})  # the last step's validation and samples are written too (finished)
    except KeyboardInterrupt:  # (it said "finished files are kept", and not that a resume finishes the run)
        raise Interrupted(f"interrupted at step {done}, the run's last, before its final validation and samples; "
                          f"checkpoint saved. Finish them with: t2i train --resume {shell_word(run_dir)}",
                          step=done) from None
    return {"step": done, **metrics}


def finished(run_dir: Path, steps: int) -> bool:
    """Whether a run of a trained stage has finished at `steps`: its checkpoint is at that step and the final
    validation, best model and samples after it were written (a stop or a full disk between the two left a
    checkpoint at the last step without them). Runs from before t2i 0.12.1 wrote no such line: a whole run
    resumes each of their trained stages once, which finds nothing left to train and validates again."""
    ckpt, metrics = Path(run_dir) / CHECKPOINT, Path(run_dir) / "metrics.jsonl"
    if not ckpt.is_file() or read_metadata(ckpt).get("step") != str(steps) or not metrics.is_file():
        return False
    return any(r.get("finished") is True and r["step"] == steps for r in read_metrics(metrics))


def stopped_early(run_dir: Path, steps: int) -> bool:
    """Whether a run stopped early (--patience) at `steps`, the total its config then took (metrics.jsonl's
    early_stop line at that step)."""
    metrics = Path(run_dir) / "metrics.jsonl"
    return metrics.is_file() and any(r.get("early_stop") and r["step"] == steps for r in read_metrics(metrics))


def patience_unused(cfg: TrainConfig) -> str | None:
    """Why cfg.patience cannot stop a new run of cfg.steps steps early, or None: it looks at the validation loss at
    every --sample-every step and stops after `patience` validations without a new best, so it needs more than
    `patience` of them before the run's last step (a stop at the last step stops nothing: `--steps 1500 --patience
    2`, validated at 500, 1000 and 1500, trained its every step, unsaid; the final validation of a run whose steps
    are not a multiple of sample_every is not looked at). A run of too few (`--steps 300 --patience 2`, validated
    every 500 steps) trained its every step, unsaid."""
    if not cfg.patience or not cfg.sample_every:
        return None
    looks, shown = (cfg.steps - 1) // cfg.sample_every, cfg.steps // cfg.sample_every  # before the last step; all
    if looks > cfg.patience:
        return None
    return (f"{option('patience', cfg.patience)} stops after {counted(cfg.patience, 'validation')} without a new "
            f"best, and a run of {cfg.steps:,} steps validated every {option('sample_every')} "
            f"{cfg.sample_every:,} steps looks at "
            f"{counted(shown, 'validation')}"
            + (", the last at its last step, where a stop saves nothing" if shown > looks else "")
            + ": it cannot stop early; "
            + (f"give {option('sample_every')} at most {(cfg.steps - 1) // (cfg.patience + 1):,} for it to act"
               if cfg.steps - 1 > cfg.patience else f"a run of more than {cfg.patience + 1} steps can"))


def stalled(val_history: list[tuple[int, float]], patience: int) -> bool:
    """Whether none of the last `patience` validation losses is at or below the best one before them (a NaN
    loss counts as no better)."""
    if len(val_history) <= patience:
        return False
    earlier = [v for _, v in val_history[:-patience] if not math.isnan(v)]
    if not earlier:
        return False
    best = min(earlier)
    return not any(v <= best for _, v in val_history[-patience:])


def _on_every_rank(flag: bool, dd: Dist) -> bool:
    """Rank 0's flag, on every process (validation runs on rank 0 alone)."""
    if dd.n_procs > 1:
        t = torch.tensor([int(flag)], device=dd.device)
        dist.broadcast(t, src=0)
        return bool(t.item())
    return flag


# torchrun's agent, this process's parent, as it was when the process started (this module is imported in its
# first second): killed (kill -9, an out-of-memory kill), it left its processes training on, unseen and holding
# the run's lock, until their last step. (Recorded once: a _Stops made after the kill, a whole run's next stage,
# would take the orphan's new parent for it.)
LAUNCHER = os.getppid() if "TORCHELASTIC_RUN_ID" in os.environ else None


class LauncherGone(KeyboardInterrupt):
    """torchrun, which started this torchrun process, has ended: every process stops at one step, as at a Ctrl-C
    (a checkpoint, the resume line)."""


class _Stops:
    """Ctrl-C (SIGINT), SIGTERM (a scheduler's pre-emption, `kill`) and SIGHUP (a closed terminal) stop training as
    KeyboardInterrupt:
    checkpoint, then stop. At once, except inside `held()` (an optimizer step and the count of steps done),
    where a stop waits for the block to end: one that landed inside opt.step() checkpointed weights updated by
    a step it had not counted, and the resume applied that step twice. Handlers are installed from the main
    thread only (elsewhere Python cannot), and restore() puts back what was there."""

    def __init__(self) -> None:
        import threading

        self.holding = self.pending = False
        self.stopping = False  # a stop has been raised: the run is ending
        self.worker_ended = False  # a SIGCHLD held back (guard_workers)
        self.workers_handler: typing.Any = None  # the loader's SIGCHLD handler, while guard_workers holds it
        self.signum: int | None = None  # the last stop's signal
        self.parent = LAUNCHER
        self.previous: dict[int, typing.Any] = {}
        if threading.current_thread() is threading.main_thread():  # a signal ignored (`nohup`, `cmd &`) stays so
            self.previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS
                             if signal.getsignal(s) is not signal.SIG_IGN}

    def _handler(self, signum, frame) -> None:
        self.signum = signum
        if self.holding:
            self.pending = True
        else:
            self.stopping = True
            raise KeyboardInterrupt

    def guard_workers(self) -> None:
        """Once the loader's workers have started: DataLoader's SIGCHLD handler raises "DataLoader worker (pid N) is
        killed by signal" wherever the main process is when a worker ends. A kill of each of the run's processes
        (a scheduler's, `pkill`) ended a worker while the main process wrote the checkpoint of its own stop: the
        run ended in that internal error, the checkpoint unwritten (the steps since the last lost), or inside
        opt.step(), where nothing is saved. So it waits where a stop waits (held()), and once the run is stopping
        it is not raised at all (the loader is closed as the run ends)."""
        import threading

        if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
            return
        handler = signal.getsignal(signal.SIGCHLD)
        if not callable(handler) or handler == self._worker_ended:
            return
        self.workers_handler = handler
        self.previous.setdefault(signal.SIGCHLD, handler)  # (restore() puts it back)
        signal.signal(signal.SIGCHLD, self._worker_ended)

    def _worker_ended(self, signum, frame) -> None:
        if self.holding or self.stopping:
            self.worker_ended = True
        else:
            self.workers_handler(signum, frame)

    def orphaned(self) -> bool:
        """Whether torchrun, which started this process, has ended (this process has another parent now)."""
        return self.parent is not None and os.getppid() != self.parent

    @contextlib.contextmanager
    def held(self) -> typing.Iterator[None]:
        self.holding = True
        try:
            yield
        except BaseException:
            self.holding = self.pending = False
            raise
        self.holding = False
        if self.pending:
            self.pending = False
            self.stopping = True
            raise KeyboardInterrupt
        if self.worker_ended and not self.stopping:  # a worker ended while held: the loader's check, now
            self.worker_ended = False
            self.workers_handler(signal.SIGCHLD, None)

    def restore(self) -> None:
        for s, handler in self.previous.items():
            if handler is not None:  # None: set outside Python, which Python cannot put back
                signal.signal(s, handler)


def _save_on_error(e: BaseException, checkpoint: Callable[[], None], step: int, run_dir: Path) -> None:
    """Write the checkpoint of a run an error is ending, after its last whole step, and say so in a note on the
    error (`saved_step` and `saved_note` too, for a whole run to say its own resume). A checkpoint that cannot be
    written (the disk the error filled, weights gone NaN) leaves the one on disk, which the note names then."""
    try:
        checkpoint()
    except Exception:  # noqa: BLE001 (the error the run ended with is the one to say)
        _say_kept(e, Path(run_dir) / CHECKPOINT, run_dir)
        return
    e.saved_step, e.saved_note = step, saved_note(step, run_dir)
    e.add_note(e.saved_note)


def _say_kept(e: BaseException, ckpt: Path, run_dir: Path, none: bool = False) -> None:
    """Where the save of an error's steps failed too (the disk the error filled), a note on the error naming the
    checkpoint on disk, whole, and the resume from it: the line said "free space or choose another folder"
    alone, as if the run were lost. Nothing where there is none, unless none (then the note says so: a resume
    starts the run again)."""
    try:
        step = int(read_metadata(ckpt)["step"]) if ckpt.is_file() else 0
    except (WeightsError, KeyError, ValueError, OSError):
        return
    if step > 0 or none:
        e.saved_step, e.saved_note, e.kept = step, saved_note(step, run_dir, kept=True), True
        e.add_note(e.saved_note)


def saved_note(step: int, run_dir: Path, where: str = "", kept: bool = False) -> str:
    """The note an error that ended a training run carries once the steps it trained are saved (kept: the
    checkpoint on disk, of step 0 where none was written yet)."""
    done = f"checkpoint{where} saved at step {step}" if not kept else f"its checkpoint{where} of step {step} is kept" \
        if step else f"no checkpoint{where} was written yet, so a resume starts at step 0"
    return f"{done}; once that is mended, resume with: t2i train --resume {shell_word(run_dir)}"


def _drop_frames(e: BaseException | None) -> None:
    """Clear the locals of the finished frames an error's traceback (and those of the errors it was raised from)
    keeps: there a stage's loss(model=...) held the DDP wrapper until the error was handled, after the process
    group was destroyed. Its Reducer then dropped the group's last reference and the group's destructor joined
    gloo's worker threads with the GIL held, while one, ending the step's last all_reduce late (a loaded machine),
    waited for the GIL to drop that work: a deadlock no stop could end (torchrun killed the process 30 s later)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)  # (a frame still running, this one, is skipped)
        e = e.__cause__ or e.__context__


def _mean_over_ranks(x: torch.Tensor, dd: Dist) -> list[float]:
    """The mean of each value of a 1-d tensor over every process (itself when alone), in one reduction."""
    if dd.n_procs > 1:
        x = x.clone()
        dist.all_reduce(x)
        x /= dd.n_procs
    return x.tolist()


def clean_stale_temporaries(run_dir: Path, idle: float = 0.0) -> list[Path]:
    """Remove the temporary files (.NAME.XXXX.tmp) that a killed write left in a run folder; with idle, only
    those unchanged for that many seconds (another process may be writing one now)."""
    return [p for folder in (run_dir, run_dir / "samples") for p in remove_temporaries(folder, idle=idle)]


def sync_model_file(run_dir: Path, kind: str, to: Path | None = None) -> bool:
    """Make RUN/KIND.safetensors hold the checkpoint's model when a kill left them at different steps (the
    checkpoint is written first); returns whether it was rewritten. to: write that model there instead (export,
    which leaves the run folder as it is)."""
    ckpt, path = Path(run_dir) / CHECKPOINT, Path(run_dir) / f"{kind}.safetensors"
    if not ckpt.is_file():
        return False
    step = read_metadata(ckpt).get("step")
    if path.is_file():
        try:
            if read_metadata(path).get("step") == step:
                return False
        except WeightsError:
            pass  # unreadable: rewrite it from the checkpoint
    path = path if to is None else to
    tensors, meta = load_tensors(ckpt)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    # with --ema the model file holds the average (float32, as the model's own weights are in training)
    state |= {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    save_tensors(path, state, {"format": FORMAT, "kind": kind, "config": meta["config"], "step": meta["step"]})
    return True


def exported_model(run_dir: Path, stage: str) -> tuple[Path, str | None]:
    """The model file a run exports, and why when it is not the final one: a transformer or CLIP run whose
    final validation loss is more than OVERFIT_MARGIN above its lowest exports the model at the lowest
    (it had overfitted; written at that validation as best.safetensors)."""
    final = Path(run_dir) / f"{stage}.safetensors"
    best = Path(run_dir) / BEST
    metrics = Path(run_dir) / "metrics.jsonl"
    if stage not in BEST_STAGES or not best.is_file() or not metrics.is_file():
        return final, None
    val = [(r["step"], r["val_loss"]) for r in read_metrics(metrics) if _is_number(r.get("val_loss"))]
    if not val:
        return final, None
    low_step, low = min(val, key=lambda sv: (sv[1], -sv[0]))  # ties: the later, as written
    last_step, last = val[-1]
    try:
        best_step = int(read_metadata(best).get("step", -1))
    except (WeightsError, ValueError):
        return final, None
    if best_step != low_step or low_step == last_step or last <= low * (1 + OVERFIT_MARGIN):
        return final, None
    # ("its latest", not "the final": a run being trained now, or stopped, has not reached its last step)
    return best, (f"exported the step-{low_step} {stage} (validation loss {low:.4g}), not its latest, the "
                  f"step-{last_step} one ({last:.4g}): validation rose after step {low_step}, the model overfitted; "
                  f"train on more pictures, or for fewer {option('steps')}")


MAX_METRICS_FILE = 256 << 20  # metrics.jsonl is read back (on resume, export) up to this size
MAX_METRICS_LINE = 1 << 16  # a line t2i writes is well under 1 KB; a longer one was not written by t2i
MAX_METRICS_ROWS = 2_000_000  # rows kept (a million steps logged every step, with validations)


def _is_number(value: object) -> bool:
    """Whether a value read from metrics.jsonl is a number, as t2i writes its losses: a line edited to hold null,
    text or a list there ended export and resume in an internal error (a comparison of a float and None)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics_or_none(path: Path) -> list[dict]:
    """A finished dVAE run's metrics for its end's codebook judgement (collapsed_codebook), or none where the file has
    grown past what t2i reads back: the run has trained and saved its steps, and a file its resume accepted (the
    rows of this run's last steps added) failed the run at its end, unsaid until then (the next resume names it)."""
    try:
        return read_metrics(path)
    except DataError:
        return []


def read_metrics(path: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl with an integer "step" (every line t2i writes has one): a line cut by
    a kill, one that is not UTF-8, nests too deep or is longer than MAX_METRICS_LINE (its newline included) is
    skipped; a file larger than MAX_METRICS_FILE, or with more than MAX_METRICS_ROWS rows, is refused
    (DataError) before it can fill memory."""
    size = path.stat().st_size
    advice = "move it aside (the run goes on without its history)"
    if size > MAX_METRICS_FILE:
        raise DataError(f"{path} holds {size:,} bytes, more than the {MAX_METRICS_FILE >> 20} MB a run's metrics "
                        f"file is read up to; {advice}")
    rows = []
    with open(path, "rb") as f:
        while line := f.readline(MAX_METRICS_LINE + 1):
            if len(line) > MAX_METRICS_LINE:  # skip the rest of an overlong line
                while line and not line.endswith(b"\n"):
                    line = f.readline(MAX_METRICS_LINE)
                continue
            try:
                row = json.loads(line.decode())
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                if len(rows) == MAX_METRICS_ROWS:
                    raise DataError(f"{path} holds more than {MAX_METRICS_ROWS:,} rows, more than t2i reads back; "
                                    f"{advice}")
                rows.append(row)
    return rows


def export_run(run_dir: Path, to: Path, half: bool = False, force: bool = False,
               note: Callable[[str], None] | None = None) -> list[Path]:
    """Copy the trained model of a run folder (and the tokenizer/dVAE it depends on) into a weights folder;
    note() hears when the exported model is not the final one (exported_model)."""
    return export_runs([run_dir], to, half, force, note)


def export_runs(run_dirs: list[Path], to: Path, half: bool = False, force: bool = False,
                note: Callable[[str], None] | None = None, say_unchanged: bool = False,
                option: str | None = None, wrote: Callable[[list[Path]], None] | None = None,
                finished: Callable[[list[Path]], None] | None = None) -> list[Path]:
    """export_run of several runs into one folder, every conflict checked before the first file is written:
    without force, a file two runs would write with different contents, or one already in the folder with
    other contents; with force the later run's file is written. Notes (which checkpoint was chosen, a second
    reranker kept) are given once every check has passed (a whole run's own refresh says which checkpoint it chose
    only when it writes that model); say_unchanged (`t2i export`) also notes an export that had
    nothing to write (a whole run refreshes its weights/ at every run: not said there). option: the folder's option
    as typed, named in refusals ("" a whole run's own RUN/weights; None: --to, or from Python the argument `to`, as
    half and force are named there: "pass force=True", not "--force"). wrote: told the files written as one step
    with their last rename (a stop waits for both); finished: told the files an export a kill cut had left in the
    folder, which this one renamed into place first (finish_set), as one step with those renames. Returns the files
    written."""
    if isinstance(run_dirs, (str, os.PathLike)):  # (a str was read as a list of one-letter run folders: "/")
        raise UsageError(f"export_runs takes a list of run folders, got one: {os.fspath(run_dirs)!r} (export_run "
                         f"exports one)")
    if option is None:
        option = spoken("--to", "to")
    own = not option  # "": a whole run's export into its RUN/weights (recipe), a folder no option names but --out RUN
    option = option or "--out"
    refuse_dash(to, option, "weights-mine")
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise UsageError(f"{option} {to} is a file; give the weights folder to write (a new or existing folder)")
    if to.is_symlink() and not to.exists():  # a link to nothing (an internal error: FileNotFoundError), or a loop
        check_folder_path(to, option)
    if (to / RUN_CONFIG).is_file() or is_whole_run(to):  # its models would be mixed with the run's
        raise UsageError(f"{option} {to} is a training run folder; export into a weights folder of its own (a new "
                         f"one, e.g. {option} {_weights_beside(to)})")
    _refuse_other_contents(to, option, own)
    new = missing_folders(to)  # the folders this export makes (to, and parents)
    with contextlib.ExitStack() as held:
        if new:  # the folder is locked, so it is made first; it (and parents made for it) go again if left empty
            make_folder(to, option)
            held.callback(remove_empty, new)
        # two exports into one folder at once both wrote it, the later one over the other unasked
        held.enter_context(folder_lock(to, f"{option} {to} is being written by another t2i export now; wait for it "
                                           f"to finish"))
        # the temporaries an export killed (kill -9) mid-write left: none is being written now (the lock)
        with signals_held():  # an export killed between its renames: finished first (and told, for what a stop says)
            if (done := finish_set(to / EXPORT_JOURNAL, (*FILES, SECOND_CLIP))) and finished is not None:
                finished(done)
        remove_temporaries(to, lambda name: name in (*FILES, SECOND_CLIP, EXPORT_JOURNAL))
        scratch = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="t2i-export-")))
        return _export_runs(run_dirs, to, half, force, note, scratch, say_unchanged, option, own, wrote)


def _refuse_other_contents(to: Path, option: str = "--to", own: bool = False) -> None:
    """Refuse a --to that exists, holds no t2i weights file and holds other things (a folder of pictures): the
    export wrote its models among them unremarked. An empty folder, or one holding weights, is taken; hidden
    files (.DS_Store, a killed export's temporaries) are not counted."""
    try:
        names = [p.name for p in to.iterdir()] if to.is_dir() else []
    except OSError:
        return  # (one that cannot be read is refused as not writable, naming --to)
    ours = (*FILES, SECOND_CLIP)
    if any(name in ours for name in names):
        return
    others = [name for name in names if not name.startswith(".")]
    if not others:
        return
    pictures = sum(Path(name).suffix.lower() in IMAGE_SUFFIXES for name in others)
    folders = [name for name in others if (to / name).is_dir()]  # (train/ and val/ were "2 other files")
    held = " and ".join(counted(n, what) for n, what in ((len(others) - len(folders), "other file"),
                                                         (len(folders), "folder")) if n)
    if folders and not pictures and len(folders) == len(others):  # pictures one level down: a data folder
        pictures = len(others) if _holds_pictures(to) else 0
    what = "pictures?" if pictures * 2 >= len(others) else f"e.g. {others[0]}"
    if own:  # (`t2i train --resume RUN` was told "--to RUN/weights ... e.g. --to weights-weights", an option train
        # does not have: the run's export folder is its own)
        raise UsageError(f"{to}, the folder this run exports its weights to, holds no t2i weights but {held} "
                         f"({what}); move them out of it, then run the command again")
    raise UsageError(f"{option} {to} is not a weights folder: it holds no t2i weights but {held} ({what}); give a new "
                     f"or empty folder to export into, e.g. {option} {_weights_beside(to)}")


def _unfinished(run_dir: Path, cfg: TrainConfig, said_which: bool = False) -> str | None:
    """What an export should say of a run that has not finished: one being trained now, or one stopped before
    its last step (its checkpoint's model is what is exported, unless said_which: another note names it); None
    for a finished run."""
    if folder_locked(run_dir):
        return (f"{run_dir} is being trained now: what it has saved so far is exported; export again once it "
                f"ends, with {_flag('force')} (to replace what this export writes)")
    if cfg.stage == "tokenizer" or not (run_dir / CHECKPOINT).is_file():
        return None
    try:
        step = int(read_metadata(run_dir / CHECKPOINT).get("step", ""))
    except (WeightsError, ValueError):
        return None  # a checkpoint export cannot read says so where it is read
    if step >= cfg.steps:
        return None
    which = "" if said_which else f": its step-{step:,} model is exported"
    # a stage of a --stage all run goes on with the whole run (as `t2i info RUN/STAGE` says): `--resume RUN/dvae`
    # was said, which trains that stage alone and leaves the rest of the run undone
    whole = run_dir.parent if run_dir.name in STAGES and is_whole_run(run_dir.parent) else None
    resume = whole if whole is not None else run_dir
    if not os.access(resume, os.W_OK):  # (a read-only disk): a resume there is refused, so is not advised
        return (f"{run_dir} stopped at step {step:,} of {cfg.steps:,}{which}; it cannot be written to (a read-only "
                f"disk or folder): copy the run folder to a writable place and `t2i train --resume` that copy to "
                f"finish the run")
    return (f"{run_dir} stopped at step {step:,} of {cfg.steps:,}{which}; `t2i train --resume "
            f"{shell_word(resume)}` finishes the {'whole ' if whole is not None else ''}run")


def _export_runs(run_dirs: list[Path], to: Path, half: bool, force: bool, note: Callable[[str], None] | None,
                 scratch: Path, say_unchanged: bool = False, option: str = "--to", own: bool = False,
                 wrote: Callable[[list[Path]], None] | None = None) -> list[Path]:
    """export_runs, with a scratch folder for the model a kill left only in a run's checkpoint (written there,
    not into the run folder); own: a whole run's export into its RUN/weights."""
    planned: dict[str, Path] = {}  # target name -> source file
    origin: dict[Path, str] = {}  # a scratch file -> what messages call it
    notes: list[str] = []
    chose: dict[str, str] = {}  # a note of which checkpoint was exported: the model file it is about
    clip_runs: list[Path] = []
    model_runs: list[Path] = []  # the transformer and CLIP runs: each read prompts with its own tokenizer.json
    seen: dict[Path, Path] = {}  # a run folder (resolved) -> how it was given
    owner: dict[str, Path] = {}  # a planned file's name -> the run it comes from
    conflict: UsageError | None = None  # two runs' files differ: --force picks the later, once nothing else refuses
    read = _reader()  # each file's bytes, read once: compared, checked and written from the same read
    for run_dir in map(Path, run_dirs):
        cfg = read_run_config(run_dir, "give export the folders of `t2i train` runs")
        if (first := seen.setdefault(run_dir.resolve(), run_dir)) is not run_dir:  # (a symlink or another spelling)
            again = "" if os.path.normpath(first) == os.path.normpath(run_dir) else f" (as {first} and {run_dir})"
            hint = (" a second reranker is another CLIP run (the same command with another --seed)"
                    if cfg.stage == "clip" else " give each run once")
            raise UsageError(f"{first} is given twice{again};{hint}")
        final = run_dir / f"{cfg.stage}.safetensors"
        synced = scratch / f"{len(model_runs) + len(clip_runs)}-{run_dir.name}-{cfg.stage}.safetensors"  # the
        # checkpoint's model, when the file lags
        if cfg.stage == "tokenizer" or not sync_model_file(run_dir, cfg.stage, to=synced):
            synced = final
        else:
            origin[synced] = f"{run_dir / CHECKPOINT}'s model"
        model_name = f"{cfg.stage}.safetensors"
        if cfg.stage == "clip":  # a second CLIP run is the second reranker, averaged with the first
            clip_runs.append(run_dir)
            if len(clip_runs) > 2:
                raise UsageError(f"{len(clip_runs)} CLIP runs given ({', '.join(map(str, clip_runs))}); a weights "
                                 f"folder holds two rerankers at most (clip.safetensors and {SECOND_CLIP})")
            model_name = "clip.safetensors" if len(clip_runs) == 1 else SECOND_CLIP
        if cfg.stage in ("transformer", "clip"):
            model_runs.append(run_dir)
        names = ["tokenizer.json", "dvae.safetensors", model_name]
        if cfg.stage != "tokenizer" and not synced.is_file():
            raise UsageError(f"{run_dir} has no trained {cfg.stage} model yet; train it first")
        chosen, why = exported_model(run_dir, cfg.stage) if cfg.stage != "tokenizer" else (None, None)
        if why:
            notes.append(why)
            chose[why] = model_name
        if (unfinished := _unfinished(run_dir, cfg, said_which=bool(why))) is not None:
            notes.append(unfinished)
        for name in dict.fromkeys(names):
            src = (synced if chosen in (None, final) else chosen) if name == model_name else run_dir / name
            if not src.is_file():
                continue
            if name in planned and not force and read(planned[name]) != read(src):
                if name == "tokenizer.json":  # --force would make a folder that does not load
                    raise UsageError(f"{origin.get(planned[name], planned[name])} and {origin.get(src, src)} differ: "
                                     f"these runs were trained on different tokenizers; export runs that share one "
                                     f"(the {spoken('--tokenizer', 'tokenizer')} they were trained with)")
                conflict = conflict or UsageError(
                    f"{origin.get(planned[name], planned[name])} and {origin.get(src, src)} differ; pass "
                    f"{_flag('force')} to "
                    f"export the later run's (as for a dVAE whose decoder was fine-tuned) or export runs that fit "
                    f"together")
            planned[name], owner[name] = src, run_dir  # with force, the later run's file
    if half and not any(src.suffix == ".safetensors" for src in planned.values()):  # (it was taken, and did nothing)
        raise UsageError(f"{_flag('half')} stores models' float tensors in fp16, and {', '.join(planned) or 'nothing'} "
                         f"holds none (a tokenizer run exports its tokenizer.json alone): {_unflag('half')}")
    configs, halved = {}, {}
    for name, src in planned.items():
        if src.suffix == ".safetensors":
            tensors, header = tensors_of(read(src), src)
            _refuse_non_finite(src, tensors)
            if half:  # (kept for the write below: the file's bytes are parsed once)
                halved[name] = (tensors, header)
            del tensors
            # and a model file that t2i could not load (a config missing or edited) is not exported either
            kind = "clip" if name == SECOND_CLIP else name.removesuffix(".safetensors")
            configs[name] = checked_model(src, kind, header).cfg
    _refuse_misfits(to, planned, configs, model_runs, read)
    _refuse_other_codes(planned, model_runs, to, owner, read)
    if len(clip_runs) == 2:
        lens = [configs[n].text_len for n in ("clip.safetensors", SECOND_CLIP)]
        if lens[0] != lens[1]:
            raise UsageError(f"the CLIP runs {clip_runs[0]} and {clip_runs[1]} read {lens[0]} and {lens[1]} prompt "
                             f"tokens; the two rerankers of a folder must read prompts alike (train them with one "
                             f"--text-len)")
    elif clip_runs and (to / SECOND_CLIP).is_file():
        notes.append(f"{to / SECOND_CLIP} is kept and will be averaged with the exported clip.safetensors; remove "
                     f"it if it belonged to the reranker this export replaces")
    if conflict is not None:  # said after the refusals --force would meet too, since it suggests --force
        raise conflict
    writes = []
    for name, src in planned.items():
        target = to / name
        if src.suffix == ".safetensors" and half:
            tensors, header = halved.pop(name)
            data = tensor_bytes({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, header.meta)
        else:
            data = read(src)
        if target.is_file() and read(target) == data:
            continue  # already there (the same export again)
        _refuse_overwrite(target, force, "" if force else _other_precision(target, src, half))
        writes.append((target, data))
    if writes:  # a path inside a file, or one that cannot be made, named as --to
        make_folder(to, option)
    elif say_unchanged:
        notes.append(f"{to} already holds these models; nothing to write")
    missing = [name for name in FILES[:3] if name not in planned and not (to / name).is_file()]
    if missing:  # a folder of a CLIP or a tokenizer alone: generate refuses it
        notes.append(f"{to} has no {' or '.join(missing)} yet, so generate cannot load it; export a transformer run "
                     f"into it too (a transformer run holds its tokenizer and dVAE)")
    written = {target.name for target, _ in writes}
    for text in notes if note is not None else ():
        if own and text in chose and chose[text] not in written:  # a whole run's refresh that left that model as
            # it was: every resume of a finished run repeated "exported the step-N clip ..." of an export made before
            continue
        note(text)
    # all or none: a stop between two files left one run's dVAE beside another's model (a kill -9: the journal)
    return atomic_write_set(writes, to / EXPORT_JOURNAL, wrote)


def _weights_beside(to: Path) -> str:
    """A weights folder to suggest in place of to: NAME-weights, as a shell word; weights-mine where NAME starts with
    '-' or is none (a folder named '-', or /: 'e.g. --to --weights' read as an option)."""
    name = to.resolve().name
    return shell_word(f"{name}-weights" if name and not name.startswith("-") else "weights-mine")


def _reader() -> Callable[[Path], bytes]:
    """A read of a file's bytes that reads each path once (an export compares, checks and writes each file from
    one read: it read each model file three times, a tokenizer six). For the files of one export, under its lock."""
    held: dict[Path, bytes] = {}

    def read(path: Path) -> bytes:
        if path not in held:
            held[path] = Path(path).read_bytes()
        return held[path]

    return read


def _refuse_other_codes(planned: dict[str, Path], model_runs: list[Path], to: Path | None = None,
                        owner: dict[str, Path] | None = None,
                        read: Callable[[Path], bytes] = Path.read_bytes) -> None:
    """Refuse to export a transformer beside another dVAE than the one it was trained on, unless that dVAE encodes
    the same codes (its encoder and codebook are the same tensors: a decoder fine-tune of it, what `--force` is
    for). The conflict's message suggested --force for any dVAE, and with it a transformer run and an unrelated
    dVAE run of the same shape made a folder that drew noise. to: the folder exported into, judged as a whole: a
    new dVAE beside the transformer it keeps is held to the same test against the dVAE kept there so far (the one
    that transformer was exported with; a dVAE run exported alone with --force into a weights folder made one that
    drew noise). owner: the run each planned file comes from (named in messages)."""
    dvae = planned.get("dvae.safetensors")
    if dvae is None:  # (a transformer run brings the dVAE it was trained on: one kept beside it is replaced)
        return
    named = (owner or {}).get("dvae.safetensors", dvae)
    for run_dir in model_runs:
        own = run_dir / "dvae.safetensors"
        if not own.is_file() or own == dvae or read_run_config(run_dir).stage != "transformer":
            continue
        if _other_codes(own, dvae, read):
            raise UsageError(f"{named} encodes other codes than the dVAE {run_dir} was trained on (their encoders or "
                             f"codebooks differ), so the exported folder would draw noise; a dVAE fits beside this "
                             f"transformer only when its decoder alone was fine-tuned from it (`t2i train --stage dvae "
                             f"--finetune-decoder --dvae {run_dir}`); or train a transformer on this dVAE's codes")
    if to is None or "transformer.safetensors" in planned or not (to / "transformer.safetensors").is_file():
        return
    kept_dvae = to / "dvae.safetensors"
    if not kept_dvae.is_file():
        return  # (nothing tells which codes the kept transformer reads)
    try:
        differ = _other_codes(kept_dvae, dvae, read)
    except WeightsError:
        return  # a damaged dVAE there is load's to name (and an export's to replace)
    if differ:
        raise UsageError(f"{named} encodes other codes than {kept_dvae}, the dVAE of the transformer {to} keeps "
                         f"(their encoders or codebooks differ), so the folder would draw noise, even with "
                         f"{_flag('force')}; "
                         f"export the transformer run trained on this dVAE together with it, or export it into a new "
                         f"folder")


def _other_codes(own: Path, dvae: Path, read: Callable[[Path], bytes] = Path.read_bytes) -> bool:
    """Whether dVAE file dvae encodes other codes than own: their encoders or codebooks differ (compared at fp16: a
    transformer trained on an `export --half` copy of the dVAE has its encoder rounded to fp16, and a decoder
    fine-tune of the fp32 original still encodes its codes)."""
    if read(own) == read(dvae):
        return False
    mine, theirs = tensors_of(read(own), own)[0], tensors_of(read(dvae), dvae)[0]
    coding = [k for k in {*mine, *theirs} if k.startswith(("encoder.", "codebook."))]
    return not coding or any(k not in mine or k not in theirs or mine[k].shape != theirs[k].shape
                             or not torch.equal(mine[k].half(), theirs[k].half()) for k in coding)


def _refuse_misfits(to: Path, planned: dict[str, Path], configs: dict[str, Any], model_runs: list[Path],
                    read: Callable[[Path], bytes] = Path.read_bytes) -> None:
    """Refuse an export whose folder would not load, or would load a model beside another tokenizer than the one
    it was trained with: the files it writes and those of the folder it keeps (`export --force` of a transformer
    run and a CLIP run on another tokenizer wrote a folder that no command could use, or, with tokenizers of one
    size, one that read prompts with the wrong tokenizer; so did a new tokenizer beside a kept transformer).
    model_runs: the transformer and CLIP runs exported, each holding the tokenizer it was trained with. The files
    the folder keeps are named only where they are in the way."""
    def kept_part(name: str, kind: str):
        if name in planned or not (to / name).is_file():
            return None
        try:
            return load_tokenizer(to / name) if kind == "tokenizer" else load_model(to / name, kind).cfg
        except WeightsError:
            return None  # a damaged file there is load's to name (and an export's to replace)

    new_tok = load_tokenizer(planned["tokenizer.json"]) if "tokenizer.json" in planned else None
    names = {"tokenizer.json": "tokenizer", "dvae.safetensors": "dvae", "transformer.safetensors": "transformer",
             "clip.safetensors": "clip", SECOND_CLIP: "clip"}
    kept = {name: found for name, kind in names.items() if (found := kept_part(name, kind)) is not None}

    def fit(parts: dict[str, Any]) -> list[str]:
        clips = [parts[n] for n in ("clip.safetensors", SECOND_CLIP) if parts.get(n) is not None]
        return misfits(parts.get("tokenizer.json"), parts.get("dvae.safetensors"),
                       parts.get("transformer.safetensors"), clips)

    written = {**configs, **({"tokenizer.json": new_tok} if new_tok is not None else {})}
    problems, in_the_way = fit(written), []  # among what this export writes alone
    if not problems and (problems := fit({**kept, **written})):
        in_the_way = list(kept)
    final = planned.get("tokenizer.json", to / "tokenizer.json")
    if not problems and final.is_file():
        text = read(final)
        problems = [f"{run} was trained with another tokenizer than {final}" for run in model_runs
                    if (run / "tokenizer.json").is_file() and read(run / "tokenizer.json") != text]
        in_the_way = ["tokenizer.json"] if problems and "tokenizer.json" in kept else []
    old = to / "tokenizer.json"
    if not problems and new_tok is not None and "tokenizer.json" not in kept and old.is_file():
        models = [n for n in names if n != "tokenizer.json" and n in kept and n not in ("dvae.safetensors",)]
        if models and read(old) != read(planned["tokenizer.json"]):
            try:
                load_tokenizer(old)  # (a damaged one trained nothing: replacing it is a repair)
            except WeightsError:
                models = []
            if models:
                problems = [f"{planned['tokenizer.json']} replaces the tokenizer {', '.join(models)} "
                            f"{'was' if len(models) == 1 else 'were'} trained with"]
                in_the_way = models
    if problems:
        beside = f" beside what it keeps ({', '.join(in_the_way)}: remove or replace it)" if in_the_way else ""
        raise UsageError(f"the weights folder {to} would not load as trained ({'; '.join(problems)}){beside}; "
                         f"export runs that were trained together (a transformer or CLIP run with the tokenizer and "
                         f"dVAE it was trained on); nothing was written")


def _refuse_non_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """A model with NaN or infinite weights (a run that diverged before t2i stopped such runs) is not exported:
    it would draw blank or noisy pictures, or fail inside sampling. tensors: the file's."""
    bad = non_finite(tensors)
    if bad:
        raise WeightsError(f"{path} holds NaN or infinite weights ({counted(len(bad), 'tensor')}, e.g. {bad[0]}): "
                           f"its training diverged; train it again with a lower {option('lr')} (nothing was exported)")


def _other_precision(target: Path, src: Path, half: bool) -> str:
    """Why target differs from what an export of src writes, where it is only the precision: the same model stored
    with --half when this export has none, or the other way round ('' otherwise, or when target is unreadable)."""
    if target.suffix != ".safetensors" or not target.is_file():
        return ""
    try:
        there, mine = load_tensors(target)[0], load_tensors(src)[0]
    except WeightsError:
        return ""
    if there.keys() != mine.keys():
        return ""
    def same(a: torch.Tensor, b: torch.Tensor) -> bool:  # (torch.equal compares values alone, not dtypes)
        return a.dtype == b.dtype and torch.equal(a, b)

    # the file holds what `--half` would write: fp16 copies of the run's floats (and the same other tensors)
    as_half = all(same(there[k], v.half() if v.is_floating_point() else v) for k, v in mine.items())
    if not half and as_half:
        return (f" (it holds these models stored in fp16 by {_flag('half')}: pass {_flag('half')} to export them so "
                f"again)")
    if half and all(same(there[k], v) for k, v in mine.items()):
        return f" (it holds these models in full precision: {_unflag('half')} to export them so again)"
    return ""


def _refuse_overwrite(path: Path, force: bool, why: str = "") -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} already exists{why}; pass {_flag('force')} to replace it or export to another folder")


def _flag(name: str) -> str:
    """An export's switch as the caller gives it: "--force" to the command line, "force=True" to export_runs'
    Python caller (who has no --force to pass)."""
    return spoken(f"--{name}", f"{name}=True")


def _unflag(name: str) -> str:
    """Words that turn an export's switch off: "leave --half out" / "pass half=False"."""
    return spoken(f"leave --{name} out", f"pass {name}=False")
