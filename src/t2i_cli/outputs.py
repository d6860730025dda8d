"""Writing generated images: safe new file names, provenance text chunks, contact sheets."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from t2i_cli import __version__
from t2i_cli.errors import OutputError
from t2i_cli.files import safe_stem, write_new
from t2i_cli.images import contact_sheet, encode_png, image_from_tensor
from t2i_cli.pipeline import Generated
from t2i_cli.sampling import SamplingConfig

SHEET_KEY = "t2i_sheet"  # PNG text key that marks a contact sheet t2i wrote (its value says which kind)


def provenance(g: Generated, seed: int, n: int, sampling: SamplingConfig, identity: str) -> dict[str, str]:
    """The PNG text chunks that let anyone (and `t2i rerank`) know and reproduce an image."""
    settings = {k: v for k, v in asdict(sampling).items() if k != "use_cache"}
    meta = {"prompt": g.prompt, "seed": str(seed), "n": str(n), "index": str(g.index),
            **{k: str(v) for k, v in settings.items()}, "weights": identity, "t2i_version": __version__,
            "software": f"t2i {__version__}"}
    if g.score is not None:
        meta.update(clip_score=f"{g.score:.6f}", clip_rank=str(g.rank))
    meta["t2i"] = json.dumps({k: meta[k] for k in sorted(meta)}, sort_keys=True)
    return meta


def prepare_folder(folder: Path) -> Path:
    """Create the output folder if needed; fail clearly if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {folder}: {e.strerror}; choose another with --out") from e
    if not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; choose another with --out")
    return folder


def write_image(g: Generated, folder: Path, meta: dict[str, str]) -> Path:
    """Write one generated image as a new PNG named after its prompt; never overwrites."""
    data = encode_png(image_from_tensor(g.image), meta)
    return write_new(folder, safe_stem(g.prompt), ".png", lambda tmp: tmp.write_bytes(data))


def write_sheet(results: list[Generated], folder: Path, meta: dict[str, str]) -> Path:
    """Write one contact sheet of every image as a new PNG."""
    labels = [f"#{g.index}" + (f" {g.score:.3f}" if g.score is not None else "") for g in results]
    sheet = contact_sheet([image_from_tensor(g.image) for g in results], labels, columns=4, label_height=14)
    data = encode_png(sheet, {**meta, SHEET_KEY: "grid"})  # marked, so `t2i rerank` never ranks it
    return write_new(folder, safe_stem(results[0].prompt) + "-grid", ".png", lambda tmp: tmp.write_bytes(data))
