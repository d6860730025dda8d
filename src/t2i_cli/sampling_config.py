"""SamplingConfig, how image codes are drawn, with its checks: torch-free, so that `generate --prompts -` refuses an
out-of-range setting before it reads standard input (sampling.py, which draws with it, imports torch)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from t2i_cli.errors import UsageError, option, said_float, said_value

MAX_JACOBI = 64  # largest --jacobi window
# Images one call draws for a prompt: --n and --candidates (cli.MAX_N), and pipe(prompt, n=...) with its batches
# and redraw (pipeline.check_count_and_seed: check_count), so no count a user gives draws (and holds) without bound.
MAX_IMAGES = 256
# Prompts per task an eval scores (`t2i eval --n`, world.evaluate's n_per_task and scenes), and val pictures it
# measures (`eval --data`'s --n, with --n x --draws at most this too; data_eval.evaluate_data's n)
MAX_PER_TASK = 10_000
# The choices of a draw's other settings, here for the same reason (re-exported where they are used:
# pipeline.PRECISIONS, devices.DEVICES, image_prompt.MAX_REDRAWS)
PRECISIONS = ("fp32", "bf16", "int8")  # the transformer's inference weights (pipeline.py: what each costs)
DEVICES = ("auto", "cpu", "cuda")
MAX_REDRAWS = 16  # --redraws bound: each image costs K decodes


def scalar(value: object) -> object:
    """A 0-d numpy array or torch tensor (np.array(3), an item of torch.arange) as the Python number it holds, as
    TrainConfig takes them (train.plain); any other value as it is. (Duck-typed: this module stays torch-free.)"""
    if not isinstance(value, (numbers.Number, str)) and getattr(value, "shape", None) == () \
            and callable(getattr(value, "tolist", None)):
        try:
            item = value.tolist()
        except (TypeError, ValueError, RuntimeError):
            return value
        return item if isinstance(item, numbers.Number) else value
    return value


def whole(value: object) -> int | None:
    """value as a plain int where it is a whole number (an int, or numpy's np.int64 and any numbers.Integral, as
    SamplingConfig's top_k takes them, or a 0-d array or tensor of one: scalar), else None (a bool, a float, a
    str): the API's counts, seeds and indices take what a script's np.arange gives (np.int64(3) was refused as "not
    a whole number"), and torch.arange's (torch.tensor(3) was told "n must be a whole number ..., got tensor(3)",
    where TrainConfig takes it)."""
    value = scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def check_count(value: object, what: str, most: int | None = None, error: type[Exception] = ValueError,
                unit: str = "", per: str = "", hint: str = "") -> int:
    """A count a caller gives (images, prompts, scenes, val pictures, results) as a plain int (numpy's np.int64 too:
    whole): a whole number, 1 or more (0 scored every task 0% out of 0, -1 drew nothing without a word), and at most
    `most` where one is given, so no count draws (and holds) without bound; else error, in one sentence for every
    count: "WHAT must be a whole number of UNIT, 1 or more, got V" or "WHAT must be at most MOST UNIT PER, got V HINT"
    (per: what the bound is of, " a call (as --n)"; hint: what to do instead)."""
    unit_of, unit = (f" of {unit}", f" {unit}") if unit else ("", "")
    if (number := whole(value)) is None or number < 1:
        raise error(f"{what} must be a whole number{unit_of}, 1 or more, got {said_value(value)}")
    if most is not None and number > most:
        raise error(f"{what} must be at most {most}{unit}{per}, got {said_value(value)}{hint}")
    return number


def plain_number(value: object, name: str, error: type[Exception] = UsageError) -> int | float:
    """A setting's number as a plain Python one: an int or a float as it is, numpy's (np.float32(0.5), np.int64(1),
    and np.float64, a float whose repr, "np.float64(0.5)", was written into a PNG's provenance) and any other
    numbers.Real as a float (UsageError where it is past a float's range); a bool (True was taken as 1) or anything
    else ("0.5") is refused as error. What SamplingConfig's numbers and an image prompt's keep_top and strength take;
    a 0-d array or tensor as the number it holds (scalar: torch.tensor(0.5) was refused as "must be a number", where
    TrainConfig takes it)."""
    value = scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number, got {said_value(value)}")
    if type(value) in (int, float):
        return value
    if isinstance(value, int):  # (a subclass of int as the int it is)
        return int(value)
    return float_of(value, name)


def float_of(value: int | float | numbers.Real, name: str) -> float:
    """A number as a float, refused (UsageError) where it is past a float's range: a whole number (10**400 raised
    "int too large to convert to float" in SamplingConfig) or another real (Fraction(10**400): a raw "integer
    division result too large for a float" in plain_number), in one sentence for both."""
    try:
        return float(value)
    except OverflowError:
        raise UsageError(f"{option(name)} must be a number within a float's range, got {said_value(value)}") from None


def whole_seed(seed: object, error: type[Exception] = ValueError) -> int:
    """A seed as a plain int: a whole number in 0..2**63-1, what `--seed` and a torch.Generator take (-1, 1.5 and
    True drew from seeds the command refuses, True not seed 1's images; 1.5 was a raw torch error); else error."""
    if (number := whole(seed)) is None or not 0 <= number < 2 ** 63:
        raise error(f"seed must be a whole number in 0..2**63-1, got {said_value(seed)}")
    return number


def finite(value: float) -> bool:
    """Whether a number is finite as a float (a whole number past float's range is not: math.isfinite(10**400)
    raised OverflowError, not the setting's refusal)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def refuse_greedy_copies(name: str, count: int, also: str = "", keyword: bool = False, top_p: float | None = None,
                         vocab: int | None = None) -> None:
    """Refuse drawing count > 1 images of one prompt with top-k 1 (or a top-p at or below 1/codebook): it takes the
    most likely code at every step, so
    each draw is the same image (in bf16 a tie between two codes may split them into two near copies), and a
    reranker has nothing to choose among. The one rule of the command line's counts (cli: --n, --candidates,
    --keep, --redraws, --draws; vary's --n with `also`, " and --strength 1") and of the Python API's
    (sampling.refuse_greedy_copies: n=, candidates=, draws=), in the caller's words: name is the flag the user
    typed ("--n"; leave it out), or with keyword the keyword the caller passed ("n", said as errors.option says
    it; ask for n=1). top_p and vocab: the greedy setting is that top_p, at or below 1/vocab (SamplingConfig.greedy),
    not top_k 1."""
    if count <= 1:
        return
    if keyword:
        named, one = option(name, count), f"ask for {option(name, 1)}"
    else:
        named, one = f"{name} {count}", f"leave {name} out for one image"
    greedy, why, other = greedy_words(keyword, top_p, vocab)
    raise UsageError(f"{named} with {greedy}{also} draws {count} copies of one image ({why}); {one}, or give {other} "
                     f"to draw different ones")


def greedy_bound(vocab: int) -> str:
    """The top_p at or below which a codebook of vocab codes draws greedily, as a refusal says it: 1/vocab and its
    value unrounded ("1/512 (0.001953125)"; "(0.00195)" was below it, so a --top-p of 0.001952, above what was said,
    was refused again). The value is the largest float SamplingConfig.greedy takes (top_p * vocab <= 1), so that any
    --top-p above it draws different images: 1/24's float is one below it."""
    bound = 1 / vocab
    for _ in range(4):  # (a step or two of rounding either way)
        if bound * vocab > 1:
            bound = math.nextafter(bound, 0)
        elif math.nextafter(bound, 1) * vocab <= 1:
            bound = math.nextafter(bound, 1)
    return f"1/{vocab} ({bound!r})"


def greedy_words(keyword: bool, top_p: float | None = None, vocab: int | None = None) -> tuple[str, str, str]:
    """A greedy draw's words, for refusing copies of one image (refuse_greedy_copies, and sampling.
    refuse_greedy_copies' redraws): the setting as the caller gave it (keyword: the keyword, else the flag), why it
    draws one image, and what would draw others. top_p and vocab: the greedy setting is that top_p, at or below
    1/vocab (SamplingConfig.greedy), not top_k 1."""
    if top_p is not None and vocab is not None:
        p = option("top_p") if keyword else "--top-p"  # (a command's check through the API's keyword: --top-p too)
        return (option("top_p", top_p) if keyword else f"--top-p {said_float(top_p)}",
                f"a {p} at or below 1/{vocab}, this model's {vocab} codes, keeps only the most likely code",
                f"a {p} above {greedy_bound(vocab)}")
    greedy = option("top_k", 1) if keyword else "--top-k 1"
    return (greedy, f"{greedy} always takes the most likely code",
            f"a {option('top_k')} of 0 or above 1" if keyword else "--top-k 0 or above 1")


def int8_off_cpu() -> UsageError:
    """The refusal of int8 weights on a GPU (pipeline.from_folder's, and generate's before a --prompts pipe is read
    where --device cuda is given)."""
    return UsageError(f"{option('precision', 'int8')} runs on the CPU only (its kernel is PyTorch's CPU int8 matmul); "
                      f"use bf16 on a GPU")


def no_cuda() -> UsageError:
    """The refusal of a CUDA device on a machine without one (devices.resolve_device's, and generate's before a
    --prompts pipe is read)."""
    return UsageError(f"{option('device', 'cuda')} was asked for but no CUDA GPU is available; use "
                      f"{option('device', 'cpu')} or auto")


@dataclass(frozen=True)
class SamplingConfig:
    """How image codes are drawn from the transformer's logits."""

    temperature: float = 1.0  # divides the logits; below 1 is more conservative
    top_k: int = 0  # keep only the k most likely codes; 0 keeps all
    top_p: float = 1.0  # keep the smallest set of codes whose probability reaches p; 1 keeps all
    guidance: float = 3.0  # classifier-free guidance scale; 1 is the prompt alone, 0 ignores it (3 measured best)
    use_cache: bool = True  # reuse keys and values between steps (False recomputes; for tests/benchmarks)
    guidance_start: float | None = None  # guidance at the first code, moving linearly to `guidance` at the last
    # (None: constant). A schedule, not a different cost: every step still runs one batch.
    jacobi: int = 0  # speculative Jacobi decoding: drafted codes checked per forward pass (0: one code per pass)
    regional: float = 2.0  # regional guidance: the weight of each region's own prompt in its half of the grid
    # (Regions; 0 turns it off; 2 measured best, BENCHMARKS.md "Regional guidance")
    guidance_stop: float | None = None  # the share of the codes (in raster order) after which guidance and regional
    # guidance stop and their rows leave the batch (None: guided to the last code)

    def __post_init__(self) -> None:
        """Refuse an out-of-range setting when the config is made, so a SamplingConfig is always valid."""
        for name in ("top_k", "jacobi"):  # (top_k=1.5 was taken, and failed in the decode loop's topk)
            if (value := whole(getattr(self, name))) is None:
                raise UsageError(f"{name} must be a whole number, got {said_value(getattr(self, name))}")
            object.__setattr__(self, name, value)  # (numpy's: a plain int, as every field is plain)
        for name in ("temperature", "top_p", "guidance", "regional", "guidance_start", "guidance_stop"):
            value = getattr(self, name)
            if value is None and name in ("guidance_start", "guidance_stop"):
                continue
            object.__setattr__(self, name, float_of(plain_number(value, name), name))
        if not isinstance(self.use_cache, bool):
            raise UsageError(f"use_cache must be True or False, got {self.use_cache!r}")
        # Bounds keep the float32 arithmetic finite: a temperature of 1e-40 or guidance of 1e40 overflows.
        if not (1e-3 <= self.temperature <= 100):
            greedy = f"; for the most likely code at every step, use {option('top_k', 1)}" \
                if self.temperature < 1e-3 else ""
            raise UsageError(f"{option('temperature')} must be between 0.001 and 100, got {self.temperature}; try "
                             f"1.0{greedy}")
        if self.top_k < 0:
            raise UsageError(f"{option('top_k')} must be 0 or more (0 = off), got "
                             f"{said_value(self.top_k, plain=True)}")
        if not (0 < self.top_p <= 1):
            raise UsageError(f"{option('top_p')} must be in (0, 1], got {self.top_p}; 1 turns it off")
        if not (0 <= self.guidance <= 100):
            raise UsageError(f"{option('guidance')} must be between 0 and 100, got {self.guidance}; 1 turns it off")
        if self.guidance_start is not None and not (0 <= self.guidance_start <= 100):
            raise UsageError(f"{option('guidance_start')} must be between 0 and 100, got {self.guidance_start}")
        if not (0 <= self.regional <= 100):
            raise UsageError(f"{option('regional')} must be between 0 and 100, got {self.regional}; 0 turns it off")
        if not (0 <= self.jacobi <= MAX_JACOBI):
            raise UsageError(f"{option('jacobi')} must be in 0..{MAX_JACOBI} (0 = off), got "
                             f"{said_value(self.jacobi, plain=True)}")
        if self.guidance_stop is not None and not (0 < self.guidance_stop <= 1):
            raise UsageError(f"{option('guidance_stop')} must be in (0, 1], got {self.guidance_stop}")
        if self.guidance_stop is not None and self.jacobi:
            raise UsageError(f"{option('guidance_stop')} does not combine with {option('jacobi')}; leave one of them "
                             f"out")
        if self.guidance_stop is not None and not self.guided and self.regional == 0:
            raise UsageError(f"{option('guidance_stop')} stops guidance, which {option('guidance', 1)} and "
                             f"{option('regional', 0)} turn off; leave it out")

    def guidance_at(self, i: int, n: int) -> float:
        """The guidance scale of code i of n."""
        if self.guidance_start is None or n < 2:
            return self.guidance
        return self.guidance_start + (self.guidance - self.guidance_start) * i / (n - 1)

    def guidance_stops_at(self, n: int) -> int:
        """The first of n codes drawn without guidance and regional guidance (n where guidance_stop is None)."""
        return n if self.guidance_stop is None else math.ceil(round(self.guidance_stop * n, 9))

    @property
    def guided(self) -> bool:
        """Whether any step is guided (so each step runs the unconditional rows too)."""
        return self.guidance != 1.0 or self.guidance_start not in (None, 1.0)

    def greedy(self, image_vocab: int | None = None) -> bool:
        """Whether every code drawn is the most likely one: top_k 1, or (the codebook's size given) a top_p at or
        below 1/image_vocab, which keeps the most likely code alone (its probability is at least 1/image_vocab:
        `--top-p 1e-9 --n 4` drew 4 copies of one image, which `--top-k 1 --n 4` is refused for)."""
        return self.top_k == 1 or (image_vocab is not None and image_vocab > 0 and self.top_p * image_vocab <= 1)

    def check_vocab(self, vocab: int) -> None:
        """Raise UsageError when top-k asks for more codes than the model's codebook has."""
        if self.top_k > vocab:
            raise UsageError(f"{option('top_k')} must be in 0..{vocab} (0 = off), got "
                             f"{said_value(self.top_k, plain=True)}")
