"""Writing generated images: safe new file names, provenance text chunks, contact sheets."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from t2i_cli import __version__
from t2i_cli.errors import DataError, T2IError
from t2i_cli.files import safe_stem, write_new
from t2i_cli.image_prompt import CODES_KEY, codes_text
from t2i_cli.images import contact_sheet, encode_png, image_from_tensor
from t2i_cli.pipeline import PRECISIONS, Generated
from t2i_cli.sampling import SamplingConfig

MAX_RECORDED_N = 256  # the largest --n (cli.MAX_N): a PNG cannot ask --from for more work than a command could
MAX_RECORDED_PROMPT = 128 << 10  # characters of a recorded prompt (the longest argument Linux passes a command)
SHEET_KEY = "t2i_sheet"  # PNG text key that marks a contact sheet t2i wrote (its value says which kind)
# (CODES_KEY, from image_prompt: the PNG text key of the dVAE codes an image was decoded from, which `vary` and
# `--image` start from where they still decode to the picture, not from the dVAE's reading of it)
_NUMBERED = re.compile(r"-\d{3,}$")  # the counter write_new puts after a stem


def is_t2i_sheet(text: dict[str, str], path: Path) -> bool:
    """Whether a PNG (its text chunks, its path) is a contact sheet t2i wrote: marked, or a grid of an older t2i,
    which carries t2i's settings and the name write_sheet gives (its prompt's stem, then -grid-NNN: an image of
    the prompt "a grid" is a-grid-000, its sheet a-grid-grid-000)."""
    if text.get(SHEET_KEY):
        return True
    stem = _NUMBERED.sub("", Path(path).stem)
    return "t2i" in text and "prompt" in text and stem in (safe_stem(text["prompt"]) + "-grid",
                                                           _stem_without_hash(text["prompt"]) + "-grid")


def _stem_without_hash(prompt: str) -> str:
    """safe_stem as the t2i that wrote unmarked grids wrote it: letters without an ASCII form left out, no hash
    ("红色的鸟" -> image), so that such a grid is still known by its name."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:48].rstrip("-") or "image"


def provenance(g: Generated, seed: int, n: int, sampling: SamplingConfig, identity: str,
               made_from: dict[str, str] | None = None, device: str | None = None,
               generator: str = "") -> dict[str, str]:
    """The PNG text chunks that let anyone (and `t2i rerank`, `t2i generate --from`) know and reproduce an
    image; made_from adds what else it was drawn from (a negative prompt, an image prompt's hashes), device
    the kind of device that drew it (cpu and cuda draw different random streams), generator the identity of
    the weights files that draw (weights.GENERATOR_FILES; `weights` covers the rerankers too)."""
    # jacobi only when on, so outputs of plain decoding keep their bytes; regional with the regions it drew
    # (made_from), since a prompt without them draws the same images at any weight
    settings = {k: v for k, v in asdict(sampling).items()
                if k not in ("use_cache", "regional") and v is not None and not (k == "jacobi" and v == 0)}
    meta = {"prompt": g.prompt, "seed": str(seed), "n": str(n), "index": str(g.index),
            **{k: str(v) for k, v in settings.items()}, **(made_from or {}),
            **({"device": device} if device else {}), "weights": identity,
            **({"generator": generator} if generator else {}),
            "t2i_version": __version__, "software": f"t2i {__version__}"}
    if g.score is not None:
        meta.update(clip_score=f"{g.score:.6f}", clip_rank=str(g.rank))
    meta["t2i"] = json.dumps({k: meta[k] for k in sorted(meta)}, sort_keys=True)
    if g.codes is not None and (text := codes_text(g.codes)) is not None:  # (not a setting: outside the t2i chunk)
        meta[CODES_KEY] = text
    return meta


def made_from(request, image=None, precision: str = "fp32") -> dict[str, str]:
    """What an output was drawn from besides its prompt, seed and sampling settings (the transformer's
    precision only when it is not fp32, so fp32 outputs keep their bytes; regional guidance's weight and region
    prompts when it drew with them)."""
    meta = {"negative": request.negative} if request.negative is not None else {}
    if request.regions:
        meta |= {"regional": str(request.sampling.regional),
                 "regions": json.dumps([list(r) for r in request.regions])}
    meta |= {"precision": precision} if precision != "fp32" else {}
    return meta | (image.provenance() if image is not None else {})


def read_provenance(path: Path) -> dict[str, str]:
    """The settings a t2i PNG records (its `t2i` text chunk); DataError when it has none."""
    from t2i_cli.images import read_png_text

    text = read_png_text(path)
    if "t2i" not in text and is_t2i_sheet(text, path):  # rerank's --top sheet and --explain strip, a data preview
        # (a data preview shows a data source's pictures, which record no settings: none of them is a --from)
        fix = ("its pictures are a data source's; --from needs a PNG `t2i generate` or `t2i vary` wrote"
               if text[SHEET_KEY] == "preview" else "pass --from one of the images it shows")
        raise DataError(f"{path} is a contact sheet t2i wrote ({text[SHEET_KEY]}); {fix}")
    damaged = f"{path}: its t2i settings are not a JSON object of strings; was it edited?"  # (they are there:
    # "saved again by a program that drops a PNG's text" is not what happened to it)
    try:
        meta = json.loads(text["t2i"])
    except KeyError:
        raise DataError(f"{path} carries no t2i settings (it was not written by `t2i generate` or `t2i vary`, or "
                        "was saved again by a program that drops a PNG's text, as most editors and converters do); "
                        "--from needs one of their PNGs as they wrote it") from None
    except (ValueError, RecursionError):  # (RecursionError: arrays or objects nested thousands deep)
        raise DataError(damaged) from None
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise DataError(damaged)
    if is_t2i_sheet(text, path):
        raise DataError(f"{path} is a contact sheet; pass --from one of the images it shows")
    return meta


@dataclass(frozen=True)
class Recorded:
    """The settings a t2i PNG was drawn with, parsed and checked (`generate --from`)."""

    prompt: str
    seed: int
    n: int
    index: int
    sampling: SamplingConfig
    weights: str  # the identity of the weights folder that drew it
    version: str
    generator: str = ""  # the identity of its tokenizer, dVAE and transformer ("" before t2i 0.9.2)
    device: str = ""  # cpu or cuda ("" when not recorded)
    precision: str = "fp32"  # the transformer's weights (recorded when not fp32)
    negative: str | None = None
    image_mode: str | None = None  # complete, inpaint or vary, for an image prompt
    image_sha256: str | None = None
    mask_sha256: str | None = None
    keep_top: float | None = None
    strength: float | None = None
    redraws: int = 1


EDITED = "was the PNG edited? --from redraws only the settings t2i wrote"
IMAGE_MODES = {"complete": "keep_top", "inpaint": "mask_sha256", "vary": "strength"}  # and what each records
# The numbers t2i writes (str of an int or a float), and nothing else int() and float() would take
NUMBER = {int: re.compile(r"-?[0-9]+"),
          float: re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?(inf|nan)")}


def edited_setting(path: Path, e: T2IError, what: str = "a t2i setting it records is out of range") -> DataError:
    """A recorded setting that a check refused (its message names the command-line flag), as the PNG's setting:
    --from takes none of them from the command line."""
    detail = re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), str(e))  # --top-k -> top_k
    return DataError(f"{path}: {what} ({detail}); {EDITED}")


# Every key a t2i PNG's settings hold (provenance, made_from, ImagePrompt.provenance): --from refuses a PNG with
# any other, which a t2i with more settings drew (a fork, a later version): redrawn without them, its pixels
# would differ and nothing would say why.
RECORDED_KEYS = frozenset({
    "prompt", "seed", "n", "index", "weights", "generator", "t2i_version", "software", "device", "clip_score",
    "clip_rank", "negative", "regional", "regions", "precision", "image_mode", "image_sha256", "mask_sha256",
    "keep_top", "strength", "redraws", *(f.name for f in fields(SamplingConfig) if f.name != "use_cache")})


def recorded_settings(path: Path) -> Recorded:
    """Parse what a t2i PNG records; DataError naming the first setting that is missing or invalid (as the
    PNG's setting, never as a command-line option: --from takes none of them from the command line)."""
    from t2i_cli.image_prompt import MAX_REDRAWS, check_keep_top, check_strength

    meta = read_provenance(path)
    unknown = sorted(meta.keys() - RECORDED_KEYS)
    if unknown:
        names = ", ".join(k[:40] for k in unknown[:4]) + (f" and {len(unknown) - 4} more" if len(unknown) > 4 else "")
        drew = f" ({meta['software'][:40]})" if meta.get("software") else ""
        raise DataError(f"{path} records settings that t2i {__version__} does not know: {names}; a t2i with more "
                        f"settings drew it{drew}, and --from without them would draw other pixels: redraw it with "
                        f"the t2i that drew it")

    def get(key: str, kind, default=None, required: bool = True):
        if key not in meta:
            if required:
                raise DataError(f"{path}: its t2i settings have no {key!r}; --from cannot redraw it")
            return default
        try:
            if kind in (int, float) and not NUMBER[kind].fullmatch(meta[key]):
                raise ValueError  # int() and float() also take ' 1 ', '0_1' and other scripts' digits ('١')
            return kind(meta[key])
        except ValueError:
            raise DataError(f"{path}: its t2i setting {key}={meta[key][:40]!r} is not valid; {EDITED}") from None

    values = dict(temperature=get("temperature", float), top_k=get("top_k", int), top_p=get("top_p", float),
                  guidance=get("guidance", float), guidance_start=get("guidance_start", float, None, False),
                  guidance_stop=get("guidance_stop", float, None, False),
                  jacobi=get("jacobi", int, 0, False), regional=get("regional", float, 0.0, False))
    try:  # read first, then checked: a value that does not parse is named as such, not as out of range
        sampling = SamplingConfig(**values)
    except T2IError as e:
        raise edited_setting(path, e) from None
    rec = Recorded(prompt=get("prompt", str), seed=get("seed", int), n=get("n", int), index=get("index", int),
                   sampling=sampling, weights=get("weights", str, "", False),
                   generator=get("generator", str, "", False),
                   version=get("t2i_version", str, "", False), device=get("device", str, "", False),
                   precision=get("precision", str, "fp32", False),
                   negative=get("negative", str, None, False),
                   image_mode=get("image_mode", str, None, False), image_sha256=get("image_sha256", str, None, False),
                   mask_sha256=get("mask_sha256", str, None, False), keep_top=get("keep_top", float, None, False),
                   strength=get("strength", float, None, False), redraws=get("redraws", int, 1, False))
    for key, text in (("prompt", rec.prompt), ("negative", rec.negative or "")):
        if len(text) > MAX_RECORDED_PROMPT:  # tokenizing it would take minutes
            raise DataError(f"{path}: its recorded {key} is {len(text):,} characters long, more than the "
                            f"{MAX_RECORDED_PROMPT:,} characters t2i redraws; {EDITED}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): not text the tokenizer takes
            raise DataError(f"{path}: its recorded {key} holds a lone surrogate (half of a UTF-16 pair), not "
                            f"text; {EDITED}") from None
    if not (0 <= rec.index < rec.n <= MAX_RECORDED_N) or not 0 <= rec.seed < 2**63:
        raise DataError(f"{path}: its recorded seed, n or index is out of range; {EDITED}")
    if rec.image_mode is not None and (rec.image_mode not in IMAGE_MODES or not rec.image_sha256):
        raise DataError(f"{path}: its recorded image prompt is incomplete (mode {rec.image_mode!r}); {EDITED}")
    if rec.image_mode is not None:  # each mode records its one setting, and none of the others'
        has = [k for k in IMAGE_MODES.values() if getattr(rec, k) is not None]
        if has != [IMAGE_MODES[rec.image_mode]]:
            said = " and ".join(has) or "none of keep_top, mask_sha256 or strength"
            raise DataError(f"{path}: its recorded image prompt ({rec.image_mode}) records {said}, where t2i "
                            f"records {IMAGE_MODES[rec.image_mode]} alone; {EDITED}")
    for key, value, known in (("precision", rec.precision, PRECISIONS), ("device", rec.device, ("", "cpu", "cuda"))):
        if value not in known:
            raise DataError(f"{path}: its t2i setting {key}={value[:40]!r} is not one t2i writes "
                            f"({', '.join(k for k in known if k)}); {EDITED}")
    try:
        if rec.keep_top is not None:
            check_keep_top(rec.keep_top)
        if rec.strength is not None:
            check_strength(rec.strength)
        if not 1 <= rec.redraws <= MAX_REDRAWS:
            raise DataError(f"--redraws must be in 1..{MAX_REDRAWS}, got {rec.redraws}")
    except T2IError as e:
        raise edited_setting(path, e) from None
    return rec


def write_image(g: Generated, folder: Path, meta: dict[str, str], stem: str | None = None,
                option: str = "--out") -> Path:
    """Write one generated image as a new PNG named after its prompt (or stem); never overwrites. option is the
    one that chose the folder, for an error's line."""
    data = encode_png(image_from_tensor(g.image), meta)
    return write_new(folder, stem or safe_stem(g.prompt), ".png", lambda tmp: tmp.write_bytes(data), option)


def sheet_label(index: int, score: float | None) -> str:
    """A contact sheet tile's label: its index (or rank) and score, apart (the built-in font's space is 2 pixels
    wide: "#0 0.445" read as one number); "#0 (0.445)"."""
    return f"#{index}" + (f" ({score:.3f})" if score is not None else "")


def write_sheet(results: list[Generated], folder: Path, meta: dict[str, str], stem: str | None = None) -> Path:
    """Write one contact sheet of every image as a new PNG, named after the images' stem (their prompt's, or
    vary's SOURCE-vary) and -grid."""
    labels = [sheet_label(g.index, g.score) for g in results]
    sheet = contact_sheet([image_from_tensor(g.image) for g in results], labels, columns=4, label_height=14)
    data = encode_png(sheet, {**meta, SHEET_KEY: "grid"})  # marked, so `t2i rerank` never ranks it
    return write_new(folder, (stem or safe_stem(results[0].prompt)) + "-grid", ".png",
                     lambda tmp: tmp.write_bytes(data))
