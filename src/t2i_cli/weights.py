"""The only reader and writer of safetensors: models carry their config and a format version inside."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from t2i_cli.errors import WeightsError, brief, counted, said_value
from t2i_cli.files import (  # noqa: F401 (FORMAT and META_KEY: weights' own names too)
    FORMAT,
    MAX_DIM,
    META_KEY,
    REPO_WEIGHTS,
    STAGES,
    atomic_write_bytes,
    folder_locked,
    is_whole_run,
    not_utf8,
    read_own_json,
    sha256_of,
    shell_word,
    shipped_weights,
    unfinished_whole_run,
)
from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.models.transformer import Transformer, TransformerConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "dvae": (DVAE, DVAEConfig),
    "transformer": (Transformer, TransformerConfig),
    "clip": (Clip, ClipConfig),
    "judge": (ObjectClassifier, JudgeConfig),  # evaluation only; never part of a generating model
}
MAX_PARAMS = 1 << 30  # most state elements a model may have (4 GiB in fp32)
MAX_ACTIVATION_BYTES = 1 << 30  # most fp32 activations one image (or one decoded sequence) may need
MAX_TOKENIZER_FILE = 64 << 20  # bytes of tokenizer.json read (a 1,048,576-token BPE vocabulary and its merges fit)
MAX_DEPTH = 256  # most blocks a config may stack: layers, residual blocks per level, stages (each one a module built)
MAX_UNBACKED = 1 << 24  # a config may describe more elements than its file holds only up to this (then refused)
FILES = ("tokenizer.json", "dvae.safetensors", "transformer.safetensors", "clip.safetensors")
# A second reranker beside clip.safetensors (optional): reranking averages the two CLIPs' scores, an ensemble
# of one recipe trained from another seed (BENCHMARKS.md "Two rerankers").
SECOND_CLIP = "clip-2.safetensors"
EXPORT_JOURNAL = ".t2i-export.json"  # in a weights folder while an export renames its files (files.atomic_write_set)
GENERATOR_FILES = FILES[:3]  # tokenizer, dVAE, transformer: the files that draw an image
# Config fields renamed since files were first written, per kind (old name -> new), so older files (the
# shipped weights among them) load unchanged: `side` is always pixels, a code grid's side is `grid`.
RENAMED_FIELDS: dict[str, dict[str, str]] = {
    "dvae": {"image_size": "image_side"}, "clip": {"image_size": "image_side"},
    "transformer": {"image_side": "grid"}, "train": {"image_size": "image_side"},
}


def upgrade_config(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A config dict of a kind read from a file, with fields of an older name given their current name."""
    if not isinstance(fields, dict):
        raise TypeError(f"a config is a JSON object, not {type(fields).__name__}")
    renamed = RENAMED_FIELDS.get(kind, {})
    return {renamed.get(k, k): v for k, v in fields.items()}


def tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file of these tensors and string metadata."""
    # The safetensors library writes metadata keys in a random (hash map) order, so all of ours travel
    # as one sorted JSON string: the same model always gives the same bytes, hence the same identity.
    data = {k: tensors[k].detach().contiguous().cpu() for k in sorted(tensors)}
    return st_save(data, metadata={META_KEY: json.dumps(metadata, sort_keys=True)})


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write tensors and string metadata to a safetensors file atomically."""
    return atomic_write_bytes(Path(path), tensor_bytes(tensors, metadata))


@dataclass(frozen=True)
class Header:
    """What a safetensors file declares, read without loading any tensor."""

    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape
    meta: dict[str, str]  # t2i metadata (format, kind, config, ...)

    @property
    def numel(self) -> int:
        """Elements of every tensor together (the file really holds them: safetensors checks the sizes)."""
        return sum(math.prod(s) for s in self.shapes.values())


def _open(path: Path, with_tensors: bool) -> tuple[Header, dict[str, torch.Tensor]]:
    """The header (and, if asked, every tensor) of a safetensors file; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; check the path (or run `make weights` / `t2i export`)")
    fd = None
    try:
        name = str(path)
        if not_utf8(name):  # a name of bytes that are not UTF-8 (Linux): safetensors
            fd = os.open(path, os.O_RDONLY)  # opens UTF-8 paths alone ("... is not valid UTF-8"), so it opens
            name = f"/proc/self/fd/{fd}"  # the file this process holds open
        with safe_open(name, framework="pt") as f:
            names = sorted(f.keys())
            shapes = {k: tuple(int(d) for d in f.get_slice(k).get_shape()) for k in names}
            tensors = {k: f.get_tensor(k) for k in names} if with_tensors else {}
            raw = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise WeightsError(f"{path} is not a readable safetensors file ({e}); re-export or re-download it") from e
    finally:
        if fd is not None:
            os.close(fd)
    return Header(shapes, _t2i_meta(raw, path)), tensors


def _t2i_meta(raw: dict[str, str], path: Path) -> dict[str, str]:
    """The t2i metadata in a safetensors file's string metadata (raw)."""
    try:
        meta = json.loads(raw[META_KEY]) if META_KEY in raw else raw
    except (ValueError, RecursionError) as e:  # nested thousands deep: RecursionError
        raise WeightsError(f"{path} has unreadable t2i metadata ({e}); re-export it") from e
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise WeightsError(f"{path} has unreadable t2i metadata; re-export it")
    return meta


def read_header(path: Path) -> Header:
    """Tensor names, shapes and metadata of a safetensors file, without loading a tensor."""
    return _open(path, with_tensors=False)[0]


def read_metadata(path: Path) -> dict[str, str]:
    """The t2i metadata of a safetensors file, without loading a tensor."""
    return read_header(path).meta


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read every tensor and the metadata of a safetensors file; never unpickles."""
    header, tensors = _open(path, with_tensors=True)
    return tensors, header.meta


def tensors_of(data: bytes, path: Path) -> tuple[dict[str, torch.Tensor], Header]:
    """Every tensor and the header of a safetensors file's bytes, already read (path: the file they were read
    from, named in errors), as load_tensors and read_header give them from the file; never unpickles."""
    try:
        tensors = st_load(data)  # (it checks the header, and that the bytes hold every tensor it declares)
        head = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    except (SafetensorError, ValueError, RuntimeError, TypeError, RecursionError) as e:
        raise WeightsError(f"{path} is not a readable safetensors file ({e}); re-export or re-download it") from e
    raw = head.get("__metadata__") if isinstance(head, dict) else None  # (str -> str: st_load checked it)
    shapes = {k: tuple(int(d) for d in tensors[k].shape) for k in sorted(tensors)}
    return {k: tensors[k] for k in sorted(tensors)}, Header(shapes, _t2i_meta(raw or {}, path))


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors holding a NaN or an infinity. One float32 sum per tensor (a NaN or an
    infinity makes it NaN or infinite; fp16 or bf16 values cannot overflow it, and where large fp32 ones do,
    the closer look decides), then a closer look only when a sum says so: cheaper than isfinite() over every
    tensor (a cold generate: BENCHMARKS.md, "The finiteness check"). Load and training's checkpoints use it."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return []
    sums = torch.stack([tensors[k].sum(dtype=torch.float32) for k in names])
    if bool(torch.isfinite(sums).all()):
        return []
    return [k for k in names if not bool(torch.isfinite(tensors[k]).all())]


# Config fields that count something a model is built of: none of them may be 0 (a width of 0 fails deep in torch).
SIZES = frozenset({"n_hid", "n_embd", "n_head", "n_layer", "code_dim", "n_codes", "embed_dim", "downsample",
                   "image_side", "crop", "grid", "text_len", "text_vocab", "image_vocab", "n_classes", "widths"})


DEPTHS = frozenset({"n_layer", "n_res"})  # config fields that count stacked blocks (and every list field: its length)


def check_budget(cfg: Any, python: bool = False) -> None:
    """Raise ValueError when a model config is bigger than t2i builds: more than MAX_PARAMS elements, more
    than MAX_ACTIVATION_BYTES of activations per image, more than MAX_DEPTH stacked blocks (a model of tiny
    width and 100,000 layers is small in elements but not in Python objects: 4.6 GB before its file was found
    not to match); or when a setting is NaN or infinite, or one of SIZES is below 1 (load_model checks a
    file's config against the tensors it holds). Computed from the config alone, before
    anything is allocated. Every field must first be of its declared type (check_types; python: the settings a
    caller passed, said as Python spells them)."""
    check_types(cfg, python)
    fields = dataclasses.asdict(cfg)
    for key, v in fields.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{key} is {v}, not a finite number")
        if key in SIZES and any(x < 1 for x in (v if isinstance(v, (list, tuple)) else [v])):
            raise ValueError(f"{key} is {json.dumps(v)}; a size must be at least 1")
    for key, v in fields.items():  # each named: "a dimension is negative or above 1048576" left model={'n_hid':
        # 10**5000} (a whole number of 5,001 digits) to be guessed among the settings given
        for x in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(x, int) and not 0 <= x <= MAX_DIM:
                held = f"{key} is" if x is v else f"{key} holds"
                raise ValueError(f"{held} {said_value(x, plain=True)}" + (
                    f", above {MAX_DIM}, the largest dimension t2i builds" if x > 0 else "; a dimension is 0 or more"))
    numel, act = cfg.state_numel(), cfg.activation_bytes()
    if numel > MAX_PARAMS:
        raise ValueError(f"the model would have {numel:,} parameters, above the limit of {MAX_PARAMS:,}")
    if act > MAX_ACTIVATION_BYTES:
        raise ValueError(f"one image would need {act / 2**20:,.0f} MiB of activations, above the limit of "
                         f"{MAX_ACTIVATION_BYTES // 2**20:,} MiB")
    for key, v in fields.items():  # each block is a module built before the file's tensors are checked against it
        depth = len(v) if isinstance(v, (list, tuple)) else v if key in DEPTHS else 0
        if depth > MAX_DEPTH:
            raise ValueError(f"{key} stacks {depth:,} blocks, above the limit of {MAX_DEPTH}")


def check_types(cfg: Any, python: bool = False) -> None:
    """Raise ValueError unless every field of a model config holds a value of its declared type: an int field
    an integer (not a bool, not 32.0), a float field a number, a bool field true or false, a tuple[int, ...]
    field a list of integers. A config read from a file is JSON anyone can edit; a wrong type would otherwise
    fail deep in torch, or only when the model runs. python: the config was built of a caller's settings
    (TrainConfig.model), said as Python spells them ("n_hid is True, not an integer"), not as JSON ("true")."""
    check_setting_types(type(cfg), {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}, python)


def check_setting_types(config: type, settings: dict[str, Any], python: bool = False) -> None:
    """check_types of some settings of a model config class (config) before one is built: a run's model settings
    as its train_config.json holds them (stages.check_run_file), said in JSON's words. A key that is no field of
    config is left to its own check."""
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        if f.name not in settings:
            continue
        kind, v = hints[f.name], settings[f.name]
        if kind is bool:
            ok, want = isinstance(v, bool), "True or False" if python else "true or false"
        elif kind is int:
            ok, want = type(v) is int, "an integer"
        elif kind is float:
            ok, want = type(v) in (int, float), "a number"
        elif typing.get_origin(kind) is tuple:
            ok, want = isinstance(v, (list, tuple)) and all(type(x) is int for x in v), "a list of integers"
        else:
            continue
        if not ok:
            # (a file's value to its first characters and its length: a 3,000-character string in a run's
            # train_config.json was said whole, a line of 3 KB)
            raise ValueError(f"{f.name} is {brief(said_value(v) if python else json.dumps(v, default=repr))}, not "
                             f"{want}")


def save_model(model: nn.Module, path: Path, kind: str, half: bool = False, step: int | None = None) -> Path:
    """Save a model's parameters with its config and the format version (fp16 storage if half); a run's
    model file also records the training step it holds."""
    own = [k for k, (c, _) in MODELS.items() if isinstance(model, c)]  # (none: a stand-in of a test, taken)
    if kind not in MODELS or (own and kind not in own):  # (a file no load of either kind could read)
        raise ValueError(f"kind must name the model's own kind ({' or '.join(own) or ', '.join(MODELS)} for a "
                         f"{type(model).__name__}), got {kind!r}")
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps(dataclasses.asdict(model.cfg))}
    if step is not None:
        meta["step"] = str(step)
    return save_tensors(path, state, meta)


Casts = dict[str, torch.dtype]  # tensor-name prefix ("" for every tensor) -> the dtype to load it in


def file_config(path: Path, kind: str, header: Header | None = None) -> tuple[Any, Header]:
    """The config of the `kind` model a file holds, and the file's header, read from the header alone and checked
    as load_model checks it: format, kind, a config present, one its class accepts and within the budget
    (check_budget: a config's codebook of 10**400 codes, read before the load for generate's greedy --top-p
    check, overflowed a float there, an internal error) (header: the file's, when the caller has read it)."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {', '.join(MODELS)}, got {kind!r}")
    header = read_header(path) if header is None else header
    meta = header.meta
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise WeightsError(f"{path} is not a t2i {kind} file (format {meta.get('format')!r}, kind "
                           f"{meta.get('kind')!r}); expected format {FORMAT!r}, kind {kind!r}")
    if "config" not in meta:
        raise WeightsError(f"{path} carries no {kind} config (a t2i model file records the model it holds); "
                           f"re-export it")
    try:
        cfg = MODELS[kind][1](**upgrade_config(kind, json.loads(meta["config"])))
        check_budget(cfg)
        return cfg, header
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise WeightsError(f"{path} carries an unusable {kind} config ({e}); re-export it") from e


def load_model(path: Path, kind: str, device: str | torch.device = "cpu", cast: Casts | None = None) -> nn.Module:
    """Build a model of `kind` from a file's own config and load its parameters with strict checks.

    Everything is checked from the header before the model is built: the format and kind, every config
    dimension, the parameter count and activation memory the config implies (against the limits and
    against the tensors the file really holds), and every tensor's name and shape. cast loads the floating
    tensors whose name starts with a prefix in that dtype (the longest prefix wins) instead of the model's
    own: a model meant to run in bf16 is converted from the file's fp16 once, without an fp32 copy on the
    way (the same values: fp16 -> fp32 is exact)."""
    model = checked_model(path, kind)
    tensors, _ = load_tensors(path)
    bad = non_finite(tensors)
    if bad:  # a NaN weight draws black or noisy pictures, or fails deep in sampling
        raise WeightsError(f"{path} holds NaN or infinite weights ({counted(len(bad), 'tensor')}, e.g. {bad[0]}): its "
                           f"training diverged or the file is damaged; export it again from a good checkpoint")
    state = model.state_dict()
    # assign: the module takes the converted tensors themselves (its own, never initialised, are dropped
    # untouched), instead of copying each into memory it would first have to fault in. copy: a tensor of
    # the model's dtype would otherwise stay a view of the file's memory map (a file copied over it later
    # would change the loaded model).
    def dtype(name: str) -> torch.dtype:
        prefixes = [p for p in (cast or {}) if name.startswith(p)]
        if not prefixes or not state[name].is_floating_point():
            return state[name].dtype
        return cast[max(prefixes, key=len)]

    model.load_state_dict({k: v.to(dtype(k), copy=True) for k, v in tensors.items()}, assign=True)
    del tensors  # the file's memory map goes before the model moves
    return model.to(device).eval()


def checked_model(path: Path, kind: str, header: Header | None = None) -> nn.Module:
    """The `kind` model a file holds, built (its parameters not read, nor initialised) after every check load_model
    makes from the header: format, kind, config, budget, and each tensor's name and shape. header: the file's,
    when the caller has read it (`t2i export`, which reads each model file's bytes once)."""
    cfg, header = file_config(path, kind, header)  # (checked against the budget there)
    try:
        # Checked before building: what is allocated is bounded by the file's own tensors (or a small model,
        # built only to name the missing and unexpected tensors below).
        if cfg.state_numel() > max(header.numel, MAX_UNBACKED):
            raise WeightsError(f"{path} does not match its model (shape: its config describes "
                               f"{cfg.state_numel():,} parameters, its tensors hold {header.numel:,}); "
                               f"it belongs to another model or config")
        with skipped_init():  # every parameter is then read from the file (check_state: all of them)
            model = MODELS[kind][0](cfg)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise WeightsError(f"{path} carries an unusable {kind} config ({e}); re-export it") from e
    check_state(model, header.shapes, path)
    return model


INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                  "xavier_normal_", "zeros_", "ones_", "constant_", "orthogonal_")


@contextlib.contextmanager
def skipped_init() -> Iterator[None]:
    """Build modules without drawing their random initial weights (torch.nn.init's functions do nothing
    inside), for a model whose every tensor is loaded right after: a tenth of a second of a cold start
    (BENCHMARKS.md). Its tensors hold whatever memory they got until then, and torch's global generator is left
    as it was: nn.MultiheadAttention (the CLIP's text encoder) calls the xavier_uniform_ it imported by name,
    which is not swapped (loading a CLIP drew from the global generator), so the generator's state is put back.
    Swapping that name too skipped the draw but made a cold load slower (`t2i info` 0.255 s against 0.187 s,
    BENCHMARKS.md "Work done once"). Not thread-safe: it swaps torch.nn.init's functions for the whole process
    while a model is built (t2i builds models on one thread)."""
    saved = {name: getattr(nn.init, name) for name in INIT_FUNCTIONS}
    state = torch.random.get_rng_state()
    try:
        for name in INIT_FUNCTIONS:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)
        torch.random.set_rng_state(state)


def check_state(model: nn.Module, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """Raise WeightsError unless a file's tensors (name -> shape) are exactly the model's."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = [f"{k} {shapes[k]} != {expected[k]}" for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or extra or wrong:
        detail = "; ".join(filter(None, [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(extra[:3])}" if extra else "",
            f"shape {', '.join(wrong[:3])}" if wrong else ""]))
        raise WeightsError(f"{path} does not match its model ({detail}); it belongs to another model or config")


def _holds_pictures(folder: Path, look: int = 1000) -> bool:
    """Whether a folder holds a picture, in it or in one of its sub-folders (one level down, as a data folder of
    train/ and val/ or of one folder per class does), among the first `look` entries seen in all (a bounded look:
    a folder of a million)."""
    from itertools import islice

    from t2i_cli.images import IMAGE_SUFFIXES

    seen, subs = 0, []
    try:
        for p in islice(folder.iterdir(), look):
            seen += 1
            if p.suffix.lower() in IMAGE_SUFFIXES:
                return True
            if not p.name.startswith("."):  # (.git, .cache: not where pictures are kept)
                subs.append(p)
    except OSError:
        return False
    for sub in subs:
        if seen >= look:
            break
        try:
            if not sub.is_dir():
                continue
            for p in islice(sub.iterdir(), look - seen):
                seen += 1
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    return True
        except OSError:
            continue
    return False


def _missing_advice(folder: Path, name: str) -> str:
    """What to do about a weights folder without one of its files: a run folder is named as one (the advice
    to export into it would mix its models with the run's own files, or overwrite them)."""
    new = f"{folder.resolve().name}-weights"
    if is_whole_run(folder):  # a --stage all run: its weights/ is written when it finishes
        if (folder / "weights").is_dir():
            return f"it is a --stage all run, whose weights are {shell_word(folder / 'weights')}"  # (quoted: a path
            # with a space was two words, as its stage's sentence below and an unfinished run's quote it)
        return unfinished_whole_run(folder, new, "it")  # (or being trained now)
    whole = folder.parent
    if (folder / "train_config.json").is_file() and is_whole_run(whole) \
            and folder.name in STAGES:  # a stage of a --stage all run: it was
        # told to export TRANSFORMER_RUN [CLIP_RUN] into a new folder, of models the run exports itself
        alone = ("; without --candidates it draws with this stage's transformer alone"
                 if folder.name == "transformer" and name == "clip.safetensors" else "")
        if (whole / "weights").is_dir():
            return (f"it is the {folder.name} stage of the --stage all run {whole}, whose weights are "
                    f"{shell_word(whole / 'weights')}{alone}")
        return (f"it is the {folder.name} stage of the --stage all run {whole}, not a weights folder; the run writes "
                f"its weights to {shell_word(whole / 'weights')} when it finishes (t2i info {shell_word(whole)} says "
                f"how far it got){alone}")
    if (folder / "train_config.json").is_file():  # one stage's run folder (train.RUN_CONFIG)
        runs = shell_word(folder) if (folder / "transformer.safetensors").is_file() else "TRANSFORMER_RUN"
        return (f"it is a training run folder, not a weights folder; export the runs into a new one: "
                f"`t2i export {runs} [CLIP_RUN] --to {shell_word(new)}` (a transformer run holds its tokenizer and "
                f"dVAE too)")
    if not any((folder / f).is_file() for f in FILES) and _holds_pictures(folder):  # (rerank --weights DIR, the
        # folder of pictures to rank, was told to export a model into that folder)
        return ("it holds pictures, not a t2i model; --weights takes a weights folder (the shipped weights/, or one "
                "`t2i export` wrote)")
    if name == "clip.safetensors":
        return f"it is not a complete t2i weights folder; `t2i export CLIP_RUN --to {shell_word(folder)}` adds one"
    return (f"it is not a complete t2i weights folder; `t2i export TRANSFORMER_RUN --to {shell_word(folder)}` writes "
            f"one (a transformer run holds its tokenizer and dVAE too)")


@dataclass
class Bundle:
    """A loaded weights folder: everything TextToImage needs."""

    folder: Path  # where it was loaded from
    tokenizer: TextTokenizer  # prompt -> ids
    dvae: DVAE  # codes <-> pixels
    transformer: Transformer  # text -> codes
    clip: Clip | None  # optional reranker
    identity: str  # short hash of the folder's files
    clips: tuple[Clip, ...] = ()  # every reranker: clip, and SECOND_CLIP when the folder has one
    generator: str = ""  # short hash of the files that draw (GENERATOR_FILES): the rerankers only choose

    def __post_init__(self) -> None:
        if not self.clips and self.clip is not None:
            self.clips = (self.clip,)


def folder_hash(folder: Path) -> str:
    """A short sha256 over the weights files present in folder (name and content)."""
    return folder_hashes(folder)[0]


def folder_hashes(folder: Path, each: dict[str, str] | None = None) -> tuple[str, str]:
    """(identity, generator): short sha256s over the weights files present in folder (name and content), all of
    them and GENERATOR_FILES alone (what an image's pixels depend on once its candidate is chosen), in one read:
    the generator's files come first, so its hash is the identity's state after them. each: filled with every
    file's own sha256 (hex), from the same read (`t2i info` read and hashed each file twice)."""
    h = hashlib.sha256()

    def add(names: tuple[str, ...]) -> None:
        for name in names:
            p = Path(folder) / name
            if p.is_file():
                h.update(name.encode())
                own = () if each is None else (hashlib.sha256(),)
                sha256_of(p, h, also=own)  # in pieces: a whole file read at once stays in the process's peak memory
                if own:
                    each[name] = own[0].hexdigest()

    add(GENERATOR_FILES)
    generator = h.hexdigest()[:16]
    add(tuple(n for n in (*FILES, SECOND_CLIP) if n not in GENERATOR_FILES))
    return h.hexdigest()[:16], generator


def load_tokenizer(path: Path, advice: str = "re-export the weights folder") -> TextTokenizer:
    """Load tokenizer.json with a clear error if it is missing or broken (ending in advice)."""
    if not Path(path).is_file():
        raise WeightsError(f"{path} does not exist; a weights folder needs tokenizer.json")
    size = Path(path).stat().st_size
    if size > MAX_TOKENIZER_FILE:  # parsed whole, at several times its size
        raise WeightsError(f"{path} holds {size:,} bytes, more than the {MAX_TOKENIZER_FILE >> 20} MB a tokenizer "
                           f"file may hold (t2i's largest vocabulary fits well under it); {advice}")
    try:
        return TextTokenizer.from_file(path)
    except Exception as e:  # the tokenizers library raises a bare Exception on bad JSON
        raise WeightsError(f"{path} is not a valid tokenizer file ({e}); {advice}") from e


def needed_files(need_clip: bool = False) -> tuple[str, ...]:
    """The files a weights folder must hold to load (with need_clip, to rerank too)."""
    return FILES[:3] + (FILES[3:] if need_clip else ())


def missing_weights_folder(folder: Path) -> str:
    """Why a weights folder that is not there is missing, and what to do. A stage folder or the weights of a
    --stage all run that has not made them yet (`--weights runs/mine/transformer` while the run trains its dVAE,
    or `runs/mine/weights` of a stopped run) is said so, where it was told to run `make weights`, which trains the
    shipped model for an hour."""

    folder = Path(folder)
    run = folder.parent
    if folder.name in (*STAGES, "weights") and is_whole_run(run):
        what = "not finished" if folder.name == "weights" else f"not started its {folder.name} stage"
        return (f"{folder} does not exist yet: {run} is a --stage all run that has {what}; t2i info "
                f"{shell_word(run)} says how far it got, and once it finishes its weights are "
                f"{shell_word(run / 'weights')}")
    # (`make weights` trains into runs/default/weights, so `--weights weights` typed outside the checkout, as the
    # README's `t2i eval --weights weights` is, still found nothing after it: the shipped folder is the default)
    # (not where T2I_WEIGHTS is set: leaving --weights out loads its folder, not the shipped one)
    if shipped_weights() and os.path.abspath(folder) != str(REPO_WEIGHTS) and not os.environ.get("T2I_WEIGHTS"):
        return (f"weights folder {folder} does not exist; leave --weights out for the shipped weights "
                f"({shell_word(REPO_WEIGHTS)}), or pass --weights DIR, a folder `t2i export` or `t2i train --stage "
                f"all` wrote")
    return (f"weights folder {folder} does not exist; pass --weights DIR, a folder `t2i export` or `t2i train --stage "
            f"all` wrote (`make weights` trains one into runs/default/weights)")


def check_files(folder: Path, need_clip: bool = False) -> None:
    """Refuse a weights folder that is a file, is missing, or lacks a file it needs (load_folder's checks; generate
    --prompts makes them before it reads a pipe, where one of the files is missing)."""
    folder = Path(folder)
    if folder.is_file():
        raise WeightsError(f"{folder} is a file, not a weights folder; pass --weights with the folder that holds it")
    if not folder.is_dir():
        raise WeightsError(missing_weights_folder(folder))
    check_export_whole(folder)
    for name in needed_files(need_clip):
        if not (folder / name).is_file():
            raise WeightsError(f"{folder} has no {name}; {_missing_advice(folder, name)}")


def check_export_whole(folder: Path) -> None:
    """Refuse a weights folder an export was writing when it was killed (kill -9, a power cut) between two of its
    files' renames, or when a rename failed (a full disk): it may hold some files of the new export beside the old
    ones (generate drew with one run's dVAE and another's transformer where their shapes agreed, and `t2i info`
    described the folder as whole). While the export renames them now (it holds the folder's lock), it is said so."""
    folder = Path(folder)
    journal = folder / EXPORT_JOURNAL
    if not journal.is_file():
        return
    if folder_locked(folder):  # an export holds it: between writing its journal and removing it, now
        raise WeightsError(f"{folder} is being written by a t2i export now (it renames its files); wait for it to "
                           f"finish, then run this again")
    try:
        failed = read_own_json(journal, 1 << 20).get("failed")
    except (OSError, ValueError, AttributeError, RecursionError):
        failed = None
    run = folder.parent if folder.name == "weights" and is_whole_run(folder.parent) else None
    if isinstance(failed, str):  # (read from a file: printable, and short)
        failed = "".join(ch for ch in failed[:200] if ch.isprintable())
    what = (f"a rename failed ({failed}) while an export into it renamed its files" if isinstance(failed, str)
            else "an export into it was killed while it renamed its files")
    again = ("once that is fixed, " if isinstance(failed, str) else "") + (
        f"run `t2i train --resume {shell_word(run)}` (it finishes the export first)" if run is not None else
        f"run that export again (`t2i export ... --to {shell_word(folder)}` finishes it first)")
    raise WeightsError(f"{folder}: {what}, so it may hold files of two exports; {again}, or, where its run is gone, "
                       f"remove {shell_word(journal)} to use the folder as it is (perhaps mixed)")


def load_folder(folder: Path, device: str | torch.device = "cpu", need_clip: bool = False,
                casts: dict[str, Casts] | None = None, each: dict[str, str] | None = None) -> Bundle:
    """Load tokenizer, dVAE, transformer and (if present) CLIP from a folder, checking they fit together;
    casts holds load_model's cast per model ("dvae", "transformer", "clip"); each (folder_hashes') is filled with
    every file's sha256."""
    from t2i_cli.devices import resolve_device

    casts = casts or {}
    device = resolve_device(device)  # ("gpu", or cuda without one: a clear refusal, as from_folder's)
    folder = Path(folder)
    check_files(folder, need_clip)
    tok = load_tokenizer(folder / "tokenizer.json")
    dvae = load_model(folder / "dvae.safetensors", "dvae", device, casts.get("dvae"))
    tr = load_model(folder / "transformer.safetensors", "transformer", device, casts.get("transformer"))
    clip = (load_model(folder / "clip.safetensors", "clip", device, casts.get("clip"))
            if (folder / "clip.safetensors").is_file() else None)
    check_compatible(tok, dvae, tr, clip, folder)
    clips = () if clip is None else (clip,)
    if (folder / SECOND_CLIP).is_file():
        if clip is None:
            raise WeightsError(f"{folder} has a {SECOND_CLIP} but no clip.safetensors; a second reranker is "
                               f"averaged with the first: add clip.safetensors or remove {SECOND_CLIP}")
        second = load_model(folder / SECOND_CLIP, "clip", device, casts.get("clip"))
        try:
            check_compatible(tok, dvae, tr, second, folder)
        except WeightsError as e:
            raise WeightsError(f"{e} ({SECOND_CLIP})") from None
        if second.cfg.text_len != clip.cfg.text_len:
            raise WeightsError(f"{folder}: {SECOND_CLIP} reads {second.cfg.text_len} tokens, clip.safetensors "
                               f"{clip.cfg.text_len}; the two rerankers must read prompts alike")
        clips = (clip, second)
    identity, generator = folder_hashes(folder, each)
    return Bundle(folder, tok, dvae, tr, clip, identity, clips, generator)


def check_compatible(tok: TextTokenizer, dvae: DVAE, tr: Transformer, clip: Clip | None, folder: Path) -> None:
    """Raise WeightsError if the parts of a folder were not trained together."""
    problems = misfits(tok, dvae.cfg, tr.cfg, [clip.cfg] if clip is not None else [])
    if problems:
        raise WeightsError(f"{folder}: parts do not fit together: {'; '.join(problems)}")


def misfits(tok: TextTokenizer | None, dvae: DVAEConfig | None, tr: TransformerConfig | None,
            clips: list[ClipConfig]) -> list[str]:
    """What keeps these parts of a weights folder (by their configs; None for a part it lacks) from working
    together: each a phrase naming the two parts."""
    problems = []
    if tok is not None and tr is not None and tok.vocab_size(tr.text_len) != tr.text_vocab:
        problems.append(f"tokenizer has {tok.n_bpe} tokens but the transformer expects {tr.text_vocab - tr.text_len}")
    if dvae is not None and tr is not None and (dvae.n_codes != tr.image_vocab or dvae.grid != tr.grid):
        problems.append(f"dVAE makes {dvae.grid}x{dvae.grid} grids of {dvae.n_codes} codes, the "
                        f"transformer expects {tr.grid}x{tr.grid} of {tr.image_vocab}")
    # (A CLIP of another image side is fine: Clip.score resizes the images it is given to its own side.)
    if tok is not None and any(c.n_pad_start != tok.n_bpe or c.text_vocab != tok.vocab_size(c.text_len)
                               for c in clips):
        problems.append("the CLIP model was trained with another tokenizer")
    return problems


def config_dict(model: nn.Module) -> dict[str, Any]:
    """A model's config as a plain dict (for `t2i info`)."""
    return dataclasses.asdict(model.cfg)


def _entry(model: nn.Module | TextTokenizer, sha256: str) -> dict[str, Any]:
    """`t2i info`'s description of one file's model: its parameters, config and sha256 (a tokenizer: its BPE
    vocabulary)."""
    if isinstance(model, TextTokenizer):
        return {"parameters": 0, "config": {"bpe_vocab": model.n_bpe}, "sha256": sha256}
    return {"parameters": sum(p.numel() for p in model.parameters()), "config": config_dict(model), "sha256": sha256}


def folder_info(folder: Path) -> dict[str, Any]:
    """Configs, parameter counts and hashes of every file in a weights folder (for `t2i info`); missing: the files
    generate needs that it lacks (a folder of some of them: _partial_info)."""
    folder = Path(folder)
    if folder.is_dir() and any((folder / f).is_file() for f in (*FILES, SECOND_CLIP)) \
            and any(not (folder / f).is_file() for f in needed_files()):
        check_export_whole(folder)  # (load_folder checks a whole one: it was checked twice)
        return _partial_info(folder)
    digests: dict[str, str] = {}  # each file's sha256, from the read that makes the folder's identity
    bundle = load_folder(folder, each=digests)
    models: dict[str, Any] = {}
    parts = [("dvae", bundle.dvae), ("transformer", bundle.transformer), ("clip", bundle.clip)]
    parts += [("clip-2", c) for c in bundle.clips[1:]]
    for name, model in parts:
        if model is not None:
            models[name] = _entry(model, digests[f"{name}.safetensors"])
    models["tokenizer"] = _entry(bundle.tokenizer, digests["tokenizer.json"])
    judge = folder / "judge.safetensors"  # `t2i eval`'s judge of the world's tasks (not in the identity)
    if judge.is_file():
        models["judge"] = _entry(load_model(judge, "judge"), sha256_of(judge).hexdigest())
    return {"folder": str(folder), "identity": bundle.identity, "generator": bundle.generator, "models": models,
            "missing": []}


def _partial_info(folder: Path) -> dict[str, Any]:
    """folder_info of a folder holding some of a weights folder's files, not all generate needs (a dVAE exported
    alone, `t2i export DVAE_RUN --to DIR`; a tokenizer and a CLIP): each file there described as a whole folder's
    is, and what it lacks to generate (missing) with the export that writes it (next); the parts there that do not
    fit together said (problems). It was refused: "DIR has no tokenizer.json; it is not a complete t2i weights
    folder", naming one file missing and none of those there. No identity: that is a whole folder's."""
    models: dict[str, Any] = {}
    tok = load_tokenizer(folder / "tokenizer.json") if (folder / "tokenizer.json").is_file() else None
    loaded: dict[str, nn.Module] = {}
    for name, kind in (("dvae", "dvae"), ("transformer", "transformer"), ("clip", "clip"), ("clip-2", "clip"),
                       ("judge", "judge")):
        path = folder / f"{name}.safetensors"
        if path.is_file():
            loaded[name] = load_model(path, kind)
            models[name] = _entry(loaded[name], sha256_of(path).hexdigest())
    if tok is not None:
        models["tokenizer"] = _entry(tok, sha256_of(folder / "tokenizer.json").hexdigest())
    missing = [name for name in needed_files() if not (folder / name).is_file()]
    problems = misfits(tok, getattr(loaded.get("dvae"), "cfg", None), getattr(loaded.get("transformer"), "cfg", None),
                       [loaded[c].cfg for c in ("clip", "clip-2") if c in loaded])
    return {"folder": str(folder), "identity": None, "generator": None, "models": models, "missing": missing,
            "problems": problems, "next": f"generate cannot load it: {_missing_advice(folder, missing[0])}"}
