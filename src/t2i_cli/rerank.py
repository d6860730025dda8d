"""Score a folder of images against their prompts with CLIP and order them, best first."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from t2i_cli.data import (
    FOLDER_MANIFESTS,
    PARQUET,
    RERANK_COPIES,
    caption_beside,
    files_under,
    is_copies_record,
    manifest_prompts,
    parquet_manifests,
    rerank_copies,
)
from t2i_cli.errors import DataError, OutputError, UsageError, counted
from t2i_cli.files import (
    NEW_FILE_NAME,
    STALE_AFTER,
    atomic_write_json,
    check_replaceable,
    fitted_stem,
    is_own_json,
    recorded_by_018,
    remove_temporaries,
    sha256_of,
    signals_held,
    write_new,
)
from t2i_cli.images import (
    IMAGE_SUFFIXES,
    UNREAD_SUFFIXES,
    attention_strip,
    check_picture,
    contact_sheet,
    encode_png,
    image_from_tensor,
    load_rgb,
    load_rgbs,
    read_png,
    rgbs_of,
    tensor_from_image,
    unread_picture,
)
from t2i_cli.outputs import SHEET_KEY, is_t2i_sheet, sheet_label
from t2i_cli.pipeline import TextToImage
from t2i_cli.prompt_file import as_read, blank

# captions, specs, manifests and notes beside pictures: counted as text files
TEXT_SUFFIXES = (".txt", ".json", ".jsonl", ".csv", ".md")
MAX_PROMPT_CHARS = 1000  # a prompt read from a file is cut to this many characters (prompts are ~10 words)
CUT = "prompt cut"  # the key under which collect() counts prompts it had to cut: read from PNG text ...
CUT_CAPTION = "caption prompt cut"  # ... read from a caption file beside the picture (NAME.txt) ...
CUT_OPTION = "--prompt cut"  # ... or --prompt, each picture it was cut for (the CLI says these three apart)
CUT_MANIFEST = "manifest prompt cut"  # ... read from the folder's metadata.jsonl or metadata.csv ...
CUTS = (CUT, CUT_CAPTION, CUT_OPTION, CUT_MANIFEST)
# ... and t2i PNGs drawn by other weights than the ones whose CLIP scores them (said, not skipped)
OTHER_WEIGHTS = "drawn by other weights"
# a picture whose NAME.txt beside it is empty (or blank lines): "without a prompt (pass --prompt)" said nothing of it
EMPTY_CAPTION = "picture with an empty caption file (write its caption there, or pass --prompt)"
# ... or whose NAME.txt is a folder (as training names it: data.FOLDER_CAPTION)
FOLDER_CAPTION = "picture whose NAME.txt is a folder (rename it and write the caption as the file NAME.txt, or pass " \
                 "--prompt)"
# a folder's metadata.jsonl or metadata.csv that holds no captions (a classification's "file_name,label"), as data
# preview names it: it was counted among "text files", as if captions beside the pictures
NO_CAPTIONS = "metadata.jsonl or metadata.csv without captions t2i reads (not read; t2i data preview FOLDER " \
              "says why)"
# ... and a metadata.parquet without a metadata.jsonl or .csv beside it (a Hugging Face imagefolder's third format),
# which t2i cannot read: it was "file not a picture", and its pictures "without a prompt", unsaid why
PARQUET_UNREAD = (f"{PARQUET} (its prompts are not used: convert it to a metadata.jsonl; t2i data preview FOLDER "
                  f"says how)")
RANKING = "ranking.json"  # what write_ranking writes in the folder it ranks
RANKING_KEYS = {"rank", "score", "file", "prompt"}  # the fields of each of its rows ...
BITS_KEY = "bits_per_code"  # ... and, with --bits, this one
BEST = "best"  # the folder link_best copies into
NO_CODES: dict[str, str] = {}  # (Squares.keep_text: a picture that records no codes --bits reads; never changed)


@dataclass
class Ranked:
    """One scored image."""

    path: Path  # the input file (never modified)
    prompt: str  # the prompt it was scored against
    score: float  # the reranker's score (TextToImage.score: the CLIPs' mean, word-region and crop scores included)
    rank: int = 0  # 1 = best within its prompt
    bits: float | None = None  # with --bits: the transformer's mean bits per code of the picture given its prompt


def check_folder(folder: Path) -> None:
    """The folder to rank exists and is a folder (said before any model loads)."""
    if not Path(folder).exists():
        raise DataError(f"{folder} does not exist; give the folder of images to rank")
    if not Path(folder).is_dir():
        raise DataError(f"{folder} is not a folder; give the folder of images to rank")


SCORE_BATCH = 64  # images decoded and scored at a time: a folder of any size ranks in bounded memory
KEPT_BYTES = 32 << 20  # the most bytes of pictures Squares keeps between reading a PNG's text and using its pixels
# (512 at 128 px: with 256 MiB, 2,178 icons ranked at a peak of 707 MB against 559 MB, in the same time)
PIXEL_BYTES = 4  # what a pixel of an RGB picture takes in Pillow's memory (it stores RGB as 4 bytes: counted as 3,
# the budget held a third more than KEPT_BYTES)


class Squares:
    """The pictures rerank reads (load_rgb(path, side): the scoring's side, the --top sheet's, --explain's), made
    from the one decode that reads a PNG's text (collect: its text chunks may follow its pixels) and kept until
    they are used: each PNG was decoded two or three times (its text, its score, its tile on the sheet). later:
    side -> the best K per prompt whose pictures of that side are used once scored (the sheet's, --explain's);
    the others are let go as each prompt is ranked. Up to budget bytes in all (a folder of any size ranks in
    bounded memory): a picture not kept is read again where it is used, as before. Each is load_rgb's, the same
    bytes, so no score or sheet changes."""

    def __init__(self, later: dict[int, int] | None = None, budget: int | None = None):
        self.later = dict(later or {})
        self.sides = set(self.later)  # the sides a PNG's decode makes pictures at (rank_folder adds its own)
        self.kept: dict[tuple[Path, int], object] = {}
        self.budget, self.used = KEPT_BYTES if budget is None else budget, 0
        self.codes: tuple[int, int] | None = None  # with --bits: the dVAE's side, and its codes' text length ...
        self.texts: dict[Path, dict[str, str]] = {}  # ... and the codes each picture records, read by collect

    def for_bits(self, dvae) -> None:
        """Keep what rerank --bits reads of each picture (image_prompt.source_codes: its picture at the dVAE's side
        and the codes a t2i PNG records) from the decode that read its text: each was decoded again, a PNG twice."""
        from t2i_cli.image_prompt import codes_text_length

        side = dvae.cfg.image_side
        self.later.setdefault(side, 0)  # (every rank's used after scoring, by add_bits: ranked() keeps them all)
        self.sides.add(side)
        self.codes = side, codes_text_length(dvae.cfg.grid * dvae.cfg.grid)

    def keep_text(self, path: Path, png, chunks: dict[str, str]) -> None:
        """With --bits: keep the codes path's PNG records at the dVAE's side, counted in the budget (NO_CODES where
        it records none it could use: another format, size or length, as source_codes reads them)."""
        from t2i_cli.image_prompt import CODES_KEY

        if self.codes is not None:
            side, length = self.codes
            raw = chunks.get(CODES_KEY) if png is not None and png.size == (side, side) else None
            if raw is None or len(raw) != length:
                self.texts[path] = NO_CODES
            elif self.used + length <= self.budget:
                self.texts[path] = {CODES_KEY: raw}
                self.used += length

    def text(self, path: Path) -> dict[str, str] | None:
        """The codes keep_text kept for path, let go (None where none were kept: source_codes reads them)."""
        text = self.texts.pop(path, None)
        if text:
            self.used -= self.codes[1]
        return text

    def keep(self, path: Path, side: int, picture) -> None:
        """Keep path's picture at side, where the budget has room for it."""
        if (path, side) not in self.kept and self.used + side * side * PIXEL_BYTES <= self.budget:
            self.kept[path, side] = picture
            self.used += side * side * PIXEL_BYTES

    def _room(self, path: Path, sides) -> list[int]:
        """Those of sides (smallest first) whose pictures of path the budget has room for, up to the first it has
        none for."""
        fit, used = [], self.used
        for side in sorted(sides):
            if (path, side) in self.kept:
                continue
            if used + side * side * PIXEL_BYTES > self.budget:
                break
            fit.append(side)
            used += side * side * PIXEL_BYTES
        return fit

    def keep_decoded(self, path: Path, png) -> None:
        """Keep path's pictures at each side, made from the PNG read_png decoded (its transparent colour read once
        for them all; where that fails none is kept: read again where it is used, it fails as before, in the same
        place)."""
        if not (sides := self._room(path, self.sides)):
            return
        try:
            pictures = rgbs_of(png, sides)
        except DataError:
            return
        for side in sides:
            self.keep(path, side, pictures[side])

    def load(self, path: Path, side: int, also=()):
        """path's picture at side: the one kept, else load_rgb's (DataError where it cannot be read). also: the
        sides of the pictures used later (the --top sheet's) made from the same decode and kept, where the budget
        has room (a JPEG was decoded again for its tile on the sheet)."""
        picture = self.kept.get((path, side))
        if picture is not None:
            return picture
        sides = self._room(path, [s for s in also if s != side])
        pictures = load_rgbs(path, (side, *sides))
        for s in sides:
            self.keep(path, s, pictures[s])
        return pictures[side]

    def drop(self, path: Path, side: int) -> None:
        if self.kept.pop((path, side), None) is not None:
            self.used -= side * side * PIXEL_BYTES

    def ranked(self, ranked: list[Ranked]) -> None:
        """Let go of the pictures of one prompt's ranked pictures that nothing uses any more (with --bits, those at
        the dVAE's side are add_bits's to let go: it reads every rank's)."""
        for r in ranked:
            for side in self.sides:
                if r.rank > self.later.get(side, 0) and (self.codes is None or side != self.codes[0]):
                    self.drop(r.path, side)


def _loops(path: Path) -> bool:
    """Whether a link that leads to nothing is a loop of links (ELOOP: `ln -s lp lp`, or a -> b -> a)."""
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def collect(folder: Path, prompt: str | None, scorer: tuple[str, str] | None = None,
            squares: Squares | None = None) -> tuple[list[tuple[Path, str]], Counter]:
    """Images of a folder and its sub-folders, as training reads a folder (data.files_under: through links to
    folders, each folder once, t2i run folders and folders that cannot be listed counted, not read), with their
    prompt (the given one, else the PNG's text chunk, else the first line of a caption file beside it, NAME.txt,
    as a training folder holds them, else its first caption in a metadata.jsonl or metadata.csv of the folder that
    names it, as training reads them: data.manifest_prompts); skipped files are counted. rerank's own outputs are
    passed over silently: ranking.json, its --top sheets, best/'s record and the copies it names. Pixels
    are read later, a batch at a time (rank_folder): a folder of 2,178 pictures held 4.0 GB when every one was
    decoded here first. With scorer, the (identity, generator) of the weights that score, t2i PNGs that record
    other weights are counted under OTHER_WEIGHTS: a user's own model's pictures scored by the shipped CLIP, a
    model of the procedural world, is a ranking no one asked for. With squares, the pictures of each PNG to rank are
    made from the decode that read its text, and kept there (Squares)."""
    check_folder(folder)
    items, skipped = [], Counter()
    captions: set[Path] = set()  # the caption files read as a picture's prompt (not counted as text files)
    entries, runs, unreadable = files_under(Path(folder))
    entries.sort()
    if runs:
        skipped["t2i run folder (its samples are not ranked)"] = len(runs)
    if unreadable:
        skipped["folder that cannot be read (permission?)"] = len(unreadable)
    # a link to nothing (a picture moved or deleted) is counted, not passed over: it looked like one to rank; a
    # loop of links (`ln -s lp lp`) is counted as one, not as a link to a missing file
    dangling = [p for p in entries if p.is_symlink() and not p.exists()]
    loops = sum(map(_loops, dangling))
    if len(dangling) > loops:
        skipped["link to a missing file"] = len(dangling) - loops
    if loops:
        skipped["loop of links"] = loops
    copies = rerank_copies(entries)  # --link-best's copies in a best/ (of FOLDER or a sub-folder)
    listed: dict[Path, str] = {}  # a picture's first caption in the folder's metadata.jsonl or .csv (as training)
    no_captions: set[Path] = set()  # the folder's metadata.jsonl and .csv it does not read: no caption columns
    parquets: set[Path] = set()  # ... and its metadata.parquet files (PARQUET_UNREAD)
    if not prompt:
        # (one that cannot be read is counted as such, and not as a text file too; the others' prompts are read:
        # one broken metadata.csv of a sub-folder left every picture of the folder's without a prompt)
        listed, manifests, broken = manifest_prompts(Path(folder), entries, runs)
        captions.update(manifests)  # (read: not counted as text files)
        no_captions = {p for p in entries if p.name.lower() in FOLDER_MANIFESTS and p.is_file()} - set(manifests)
        parquets = set(parquet_manifests(entries))
        if broken:
            skipped["metadata.jsonl or metadata.csv that cannot be read (t2i data preview FOLDER says why)"] += \
                len(broken)
    for path in (p for p in entries if p.is_file()):
        if path.name == RANKING or path in copies or (path.name == BEST_RECORD and is_own_json(path, is_record)):
            continue  # what an earlier rerank wrote is not an input (its --top sheets are known by their PNG text)
        if path.suffix.lower() in UNREAD_SUFFIXES:
            skipped[unread_picture(path.suffix)] += 1
            continue
        if path in no_captions:
            skipped[NO_CAPTIONS] += 1
            continue
        if path in parquets:
            skipped[PARQUET_UNREAD] += 1
            continue
        if path.suffix.lower() in TEXT_SUFFIXES:  # captions beside a folder's pictures: named as what they are (a
            # captioned folder said "skipped 363 not an image", as if 363 pictures had failed)
            skipped["text file"] += 1
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES and not (path.suffix == "" and _picture_bytes(path)):
            skipped["file not a picture"] += 1  # (a file without a suffix is a picture by its first bytes, as
            continue  # vary and --from read one)
        try:
            chunks, png = read_png(path)  # a PNG by its content, whatever its name
        except DataError:
            skipped["unreadable picture"] += 1
            continue
        if chunks.get("ranking") == "top-k contact sheet":
            continue  # an earlier rerank's --top sheet: its own output, passed over silently (by content: a
            # picture of yours named ranking-top-* is ranked)
        if is_t2i_sheet(chunks, path):
            skipped["contact sheet t2i wrote"] += 1
            continue
        text, cut = (prompt, CUT_OPTION) if prompt else (chunks.get("prompt"), CUT)
        empty = False  # (a caption file beside it that holds none: it was "without a prompt", the file a "text file")
        if not text and (beside := caption_beside(path, empty=True)) is not None:  # a folder of pairs, as training
            captions.add(beside[0])  # reads it
            text, cut, empty = beside[1], CUT_CAPTION, not beside[1]
        if not text and path in listed:
            text, cut = listed[path], CUT_MANIFEST
        if not text or blank(text):
            skipped[EMPTY_CAPTION if empty else FOLDER_CAPTION if path.with_suffix(".txt").is_dir()
                    else "picture without a prompt (pass --prompt)"] += 1
            continue
        if scorer is not None and "t2i" in chunks and "weights" in chunks and not (
                chunks["weights"] == scorer[0] or chunks.get("generator", "") == scorer[1] != ""):
            skipped[OTHER_WEIGHTS] += 1  # (the files that draw decide; the rerankers beside them may differ)
        if len(text) > MAX_PROMPT_CHARS:
            text = text[:MAX_PROMPT_CHARS]
            skipped[cut] += 1
        items.append((path, text))
        if squares is not None:
            squares.keep_text(path, png, chunks)
        if squares is not None and png is not None:
            squares.keep_decoded(path, png)
        del png  # (decoded: let go before the next picture is)
    if captions:
        skipped["text file"] -= len(captions)
        if skipped["text file"] <= 0:
            del skipped["text file"]
    return items, skipped


# The first bytes of the picture formats t2i reads (PNG, JPEG, GIF, BMP, WebP's RIFF, TIFF both ways)
PICTURE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF", b"II*\x00",
                 b"MM\x00*")


def _picture_bytes(path: Path) -> bool:
    """Whether a file starts as a picture does (its first 12 bytes; AVIF's box is not checked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(PICTURE_MAGIC) and (not head.startswith(b"RIFF") or head[8:12] == b"WEBP")


def read_side(pipe: TextToImage) -> int:
    """The side pictures are read at to be scored: the side t2i draws at (its dVAE's) where that is larger than the
    CLIP's, so that a t2i PNG is scored from its own pixels, shrunk by the CLIP itself as `generate`'s reranking
    shrinks them (read at the CLIP's side, a Lanczos resize gave other scores than the PNG records, and could
    put another picture first)."""
    return max(pipe.bundle.clip.cfg.image_side, pipe.bundle.dvae.cfg.image_side)


def rank_folder(pipe: TextToImage, folder: Path, prompt: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                squares: Squares | None = None) -> tuple[list[Ranked], Counter]:
    """Score every image against its prompt; ranks are within each prompt, best first. Images are read and
    scored SCORE_BATCH at a time; progress(done, total) is called after each batch. squares: where the pictures
    are kept from the decode that read a PNG's text (a new Squares where not given: each PNG decoded once), and
    those the --top sheet and --explain use, once scored (Squares.later)."""
    clip = pipe.bundle.clip
    if clip is None:
        raise DataError(f"{pipe.bundle.folder} has no clip.safetensors; reranking needs a CLIP model")
    side = read_side(pipe)
    squares = Squares() if squares is None else squares
    squares.sides.add(side)
    items, skipped = collect(folder, prompt, (pipe.bundle.identity, pipe.bundle.generator), squares)
    ranked: list[Ranked] = []
    done = 0
    # prompt -> its pictures, in the files' order; prompts the model reads alike (letter case and spacing aside, a
    # decomposed accent: prompt_file.as_read, as a --prompts file's repeats) are one prompt, named as first met:
    # "café" in composed and decomposed form, drawn by two generates, were two blocks headed alike, ranked apart
    groups: dict[str, list[Path]] = {}
    named: dict[tuple, str] = {}
    read: dict[str, tuple] = {}  # (each text read once: a folder holds many pictures of one prompt)
    for path, text in items:
        key = read[text] if text in read else read.setdefault(text, as_read(text))
        groups.setdefault(named.setdefault(key, text), []).append(path)
    for text, group in groups.items():
        scored: list[tuple[Path, float]] = []
        for start in range(0, len(group), SCORE_BATCH):
            paths, images = [], []
            for path in group[start:start + SCORE_BATCH]:
                try:
                    picture = squares.load(path, side, squares.later)
                    images.append(tensor_from_image(picture))
                    paths.append(path)
                except DataError:
                    skipped["unreadable picture"] += 1
                    continue
                if side in squares.later:  # (a picture of another format than PNG, decoded here: the sheet's too)
                    squares.keep(path, side, picture)
            if images:
                scored += zip(paths, pipe.score(torch.stack(images), text).tolist(), strict=True)
            done += len(group[start:start + SCORE_BATCH])
            if progress is not None:
                progress(done, len(items))
        scored.sort(key=lambda ps: -ps[1])  # stable: equal scores keep the files' order
        ranked += [Ranked(p, text, s, r) for r, (p, s) in enumerate(scored, start=1)]
        squares.ranked(ranked[len(ranked) - len(scored):])
    if not ranked:
        left_out = {k: v for k, v in skipped.items() if k not in CUTS}
        raise DataError(f"nothing to rank in {folder}: no readable image with a prompt"
                        + (f" ({', '.join(counted(v, k) for k, v in left_out.items())})" if left_out else ""))
    return ranked, skipped


def add_bits(pipe: TextToImage, ranked: list[Ranked], progress: Callable[[int, int], None] | None = None,
             squares: Squares | None = None) -> None:
    """rerank --bits: each picture's mean bits per code under the transformer given its prompt, -log2 p(code |
    prompt, the codes before it) over the grid (what `t2i eval --data` reports for a val split, per picture): of
    the codes a t2i PNG records where they still decode to its pixels (image_prompt.source_codes), else of the
    dVAE's reading of the picture (TextToImage.bits, averaged). Lower: a picture the model finds likelier for that
    prompt. SCORE_BATCH pictures at a time; progress(done, total) after each. squares: where rank_folder kept each
    picture at the dVAE's side and the codes it records (Squares.for_bits; each read again where not kept)."""
    from t2i_cli.image_prompt import source_codes

    b = pipe.bundle
    side = b.dvae.cfg.image_side
    squares = Squares() if squares is None else squares
    for start in range(0, len(ranked), SCORE_BATCH):
        part = ranked[start:start + SCORE_BATCH]
        with torch.inference_mode():
            codes = torch.stack([source_codes(b.dvae, r.path, squares.kept.get((r.path, side)), squares.text(r.path))
                                 for r in part])
        for r in part:  # (used: let go, but for the sheet's and --explain's)
            if r.rank > squares.later.get(side, 0):
                squares.drop(r.path, side)
        for r, value in zip(part, pipe.bits([r.prompt for r in part], codes).mean(dim=1).tolist(), strict=True):
            r.bits = value
        if progress is not None:
            progress(start + len(part), len(ranked))


def is_ranking(obj: object) -> bool:
    """Whether parsed JSON is a ranking write_ranking wrote: a list of rows of exactly RANKING_KEYS (and
    BITS_KEY, with --bits)."""
    return isinstance(obj, list) and all(isinstance(row, dict) and set(row) - {BITS_KEY} == RANKING_KEYS
                                         for row in obj)


BEST_RECORD = RERANK_COPIES  # in DIR/best/: the copies t2i made there and their sha256 (data passes them over)
is_record = is_copies_record  # whether parsed JSON is the BEST_RECORD link_best wrote: file name -> sha256


def check_outputs(folder: Path, link_best: bool, force: bool = False) -> None:
    """Before any work or write, refuse what a rerank would otherwise overwrite or fail on halfway: a
    FOLDER/ranking.json that is not a ranking t2i wrote (replaced only with force), and, with --link-best, a
    FOLDER/best that is not a folder (a file of the user's is never replaced, not even with force), and a FOLDER
    that cannot be written to (a read-only disk), where every file it writes goes."""
    folder = Path(folder)
    if not os.access(folder, os.W_OK):  # (a read-only disk or folder): said before the scoring, not after it
        raise OutputError(f"cannot write to {folder} (a read-only disk or folder); rerank writes {RANKING} into "
                          f"the folder it ranks: copy the pictures into a writable folder and rank that")
    check_replaceable(folder / RANKING, is_ranking, str(folder / RANKING), "a ranking t2i wrote", force)
    best = folder / BEST
    if link_best and (best.exists() or best.is_symlink()) and not best.is_dir():
        raise UsageError(f"{best} is a file; --link-best copies the best images into a folder of that name and "
                         f"never replaces your file: move or rename it")
    if link_best and best.is_dir():
        check_replaceable(best / BEST_RECORD, is_record, str(best / BEST_RECORD), "the record of t2i's copies", force)


def write_ranking(folder: Path, ranked: list[Ranked]) -> Path:
    """DIR/ranking.json, atomically (check_outputs first: it replaces only a ranking t2i wrote)."""
    rows = [{"rank": r.rank, "score": round(r.score, 6), "file": shown(folder, r.path), "prompt": r.prompt}
            | ({BITS_KEY: round(r.bits, 6)} if r.bits is not None else {}) for r in ranked]
    # a killed rerank's temporaries (of ranking.json, a sheet, an --explain map): removed once a minute old (one
    # newer may be another t2i's write in progress)
    # (and t2i 0.18.0's of an --explain map of a long name, its record the name's first 64 bytes alone)
    maps = {f"{fitted_stem(f'explain-{r.path.stem}', '.png')}-NNN.png" for r in ranked}
    remove_temporaries(Path(folder), lambda name: name == RANKING or NEW_FILE_NAME.fullmatch(name)
                       or recorded_by_018(name, maps), STALE_AFTER)
    return atomic_write_json(Path(folder) / RANKING, rows)


def shown(folder: Path, path: Path) -> str:
    """A ranked picture's name in ranking.json and the printed table: its path within the folder ranked
    (sub/grey.png; a picture of the folder itself, its name)."""
    return Path(path).relative_to(folder).as_posix()


def write_top_sheet(folder: Path, ranked: list[Ranked], k: int, side: int, squares: Squares | None = None) -> Path:
    """A contact sheet of the best k per prompt with their scores, as a new PNG in folder: one row per prompt (k
    columns, at most 8, a prompt's row filled out with blank tiles; a prompt with fewer pictures than k shifted
    every later prompt's into the wrong columns), prompts in ranking.json's order. squares: the pictures rank_folder
    kept (each tile one of them, where kept, else read)."""
    cols = max(1, min(k, 8))
    blank = image_from_tensor(torch.ones(3, side, side))  # white
    tiles, labels = [], []
    for prompt in dict.fromkeys(r.prompt for r in ranked):
        best = [r for r in ranked if r.prompt == prompt and r.rank <= k]
        tiles += [load_rgb(r.path, side) if squares is None else squares.load(r.path, side) for r in best] \
            + [blank] * (-len(best) % cols)
        labels += [sheet_label(r.rank, r.score) for r in best] + [""] * (-len(best) % cols)
    sheet = contact_sheet(tiles, labels, columns=cols, label_height=14)
    data = encode_png(sheet, {"ranking": "top-k contact sheet", SHEET_KEY: "ranking"})
    # the same ranking again: its sheet is there (each rerun added another copy, while ranking.json is replaced)
    return _written_before(folder, "ranking-top", data) or write_new(
        folder, "ranking-top", ".png", lambda tmp: tmp.write_bytes(data), option="")


def _written_before(folder: Path, stem: str, data: bytes) -> Path | None:
    """A file stem-NNN.png in folder that holds exactly data (what write_new wrote for an earlier run of the same
    ranking), or None."""
    stem = fitted_stem(stem, ".png")
    for old in sorted(Path(folder).iterdir()):
        if old.name.startswith(f"{stem}-") and old.suffix == ".png" and old.name[len(stem) + 1:-4].isdigit() \
                and old.is_file() and not old.is_symlink() and old.stat().st_size == len(data) \
                and old.read_bytes() == data:
            return old
    return None


def link_best(folder: Path, ranked: list[Ranked], k: int, held: dict[Path, Path] | None = None,
              removed: Callable[[int], None] | None = None) -> tuple[list[Path], int]:
    """DIR/best/ holds copies of the best k per prompt, new names (never overwriting; check_outputs first
    refuses a DIR/best that is a file); returns them and how many were copied now, and fills held, where given,
    with each of those pictures and its copy (two pictures of the same bytes share one: best_said says so,
    where "holds the best 10" hid that one prompt's best had no copy of its own name). A later --link-best makes
    best/ this ranking's: a copy t2i made there before (recorded in BEST_RECORD, updated after each change) that
    is no longer among the best is removed, but only while DIR still holds the same picture and the copy is
    unchanged; one still among the best stays, and no picture is copied twice. Anything else in best/ (the
    user's files, a copy changed since, a copy whose picture DIR no longer holds) is left alone. removed: told how
    many earlier copies were removed, as one step with their removal and the record's update (a stop waits for the
    three: what a stop says of them; a stop between a removal and the update left a record naming a copy gone)."""
    best = Path(folder) / BEST
    try:
        best.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot make {best}: {e.strerror or e}; choose a writable folder") from e
    # a killed run's (and t2i 0.18.0's of a copy of a long name, its record the name's first 64 bytes alone)
    copies = {f"{fitted_stem(r.path.stem, r.path.suffix)}-NNN{r.path.suffix}" for r in ranked}
    remove_temporaries(best, lambda name: name == BEST_RECORD or NEW_FILE_NAME.fullmatch(name)
                       or recorded_by_018(name, copies), STALE_AFTER)
    inputs: set[str] = set()  # every picture this ranking read
    wanted: dict[str, Path] = {}  # the best k per prompt, a picture held twice (same bytes) once
    best_of: dict[Path, str] = {}  # each of the best k per prompt -> its digest
    for r in ranked:
        h = sha256_of(r.path).hexdigest()
        inputs.add(h)
        if r.rank <= k:
            wanted.setdefault(h, r.path)
            best_of[r.path] = h
    made: dict[str, str] = {}
    record = best / BEST_RECORD
    if is_own_json(record, is_record):  # check_outputs let only t2i's own record (or, with --force, any) stand
        made = json.loads(record.read_bytes())
    have: dict[str, Path] = {}  # digest -> the copy in best/ that stays
    kept: dict[str, str] = {}  # the record from here on: name -> digest
    spares: list[Path] = []  # earlier copies no longer among the best, their picture still in DIR

    def save() -> None:
        atomic_write_json(record, dict(sorted(kept.items())))

    for name, h in made.items():
        path = best / Path(name).name
        if path.name in kept or not path.is_file() or path.is_symlink() or sha256_of(path).hexdigest() != h:
            continue  # gone, a second name for one file, or changed since: not t2i's copy any more
        if h in wanted and h not in have:
            have[h], kept[path.name] = path, h
        elif h in inputs:  # DIR still holds the picture: this copy is a spare
            spares.append(path)
        # else: the only copy left of a picture no longer in DIR stays, as the user's file
    with signals_held():  # the spares' removal and the record that no longer names them: one step
        for path in spares:
            path.unlink()
        save()
        if removed is not None:
            removed(len(spares))
    new = 0
    for h, src in wanted.items():
        if h not in have:
            # A copy and its line in the record are one change: a stop between them, or a record the disk had no
            # room for, left a copy no record named, which the next --link-best copied again beside it. The record
            # names the copy before it has its name: a kill -9 between the two (which no signal handler holds)
            # left such a copy too, which the next rerank also ranked as a picture of the folder and copied again
            # as img-000-000.png; now it leaves a record naming a file that is not there, which is passed over.
            named: list[str] = []  # the name the record gives this copy now (none yet)

            def naming(path: Path | None, h: str = h, named: list[str] = named) -> None:
                """The record names the copy path (None: no copy), saved where that changes it (a name tried
                again, as write_new's reserved name where the disk has no hard links, was saved twice alike)."""
                if named == ([] if path is None else [path.name]):
                    return
                if named:
                    del kept[named.pop()]
                if path is not None:
                    kept[path.name] = h
                    named.append(path.name)
                save()

            with signals_held():
                try:
                    path = write_new(best, src.stem, src.suffix, lambda tmp, src=src: shutil.copyfile(src, tmp),
                                     option="", naming=naming)
                except BaseException:
                    try:  # the record back to the copies there (a failing disk: as it can)
                        naming(None)
                    except OutputError:
                        pass
                    raise
            have[h] = path
            new += 1
    if held is not None:
        held.update({path: have[h] for path, h in best_of.items()})
    return [have[h] for h in wanted], new


def best_said(folder: Path, copies: dict[Path, Path], new: int) -> str:
    """The line that says what best/ holds, given link_best's held (each best picture -> its copy) and how
    many it copied: the best pictures, and in how many files where some share a copy, naming them."""
    files = list(dict.fromkeys(copies.values()))
    said = f"{Path(folder) / BEST} holds the best {len(copies)}"
    if len(files) == len(copies):
        return f"{said} ({new} copied now)"
    first: dict[Path, Path] = {}  # copy -> the first picture it holds
    shared: list[tuple[Path, Path, Path]] = []  # (a picture, the first one its copy holds, the copy)
    for picture, copy in copies.items():
        if (held := first.setdefault(copy, picture)) != picture:
            shared.append((picture, held, copy))
    named = "; ".join(f"{shown(folder, p)} is the same picture as {shown(folder, q)}: {BEST}/{c.name} holds both"
                      for p, q, c in shared[:3]) + (f"; and {len(shared) - 3} more" if len(shared) > 3 else "")
    return f"{said} in {counted(len(files), 'file')} ({new} copied now; {named})"


def _one_picture(pipe: TextToImage, image: torch.Tensor, prompt: str, what: str) -> None:
    """explain's and explain_maps' inputs, refused in one line as pipe.score refuses its own: one picture (3, H, W)
    of floats in [0, 1] (a batch of one was "(B, 3, H, W); got (1, 1, 3, H, W)" or a raw conv2d error, 0..255
    pixels were attended over unsaid), one prompt (a str: a list was "'list' object has no attribute 'split'"), and
    weights with a CLIP (none: "'NoneType' object has no attribute 'cfg'")."""
    from t2i_cli.models.dvae import check_images

    if not isinstance(prompt, str):
        raise UsageError(f"{what} takes one prompt (a str), got {type(prompt).__name__}")
    check_picture(image, what)
    check_images(image[None])  # (floats in [0, 1]: a ValueError, as pipe.score's)
    if pipe.bundle.clip is None:
        raise UsageError(f"{pipe.bundle.folder} has no clip.safetensors: {what} needs a CLIP to score with")


def explain_maps(pipe: TextToImage, image: torch.Tensor, prompt: str) -> list[tuple[str, torch.Tensor, float]]:
    """For each word of the prompt: (word, where it looks: its attention over the image's regions (h, w),
    averaged over the word's tokens, and how well it matched: the cosine between the word and what it
    attended to), for one image (3, H, W) in [0, 1]. Needs a CLIP with a word-region head."""
    _one_picture(pipe, image, prompt, "explain_maps")
    clip, tok = pipe.bundle.clip, pipe.bundle.tokenizer
    if not clip.cfg.word_region:  # (no CLIP at all: _one_picture)
        raise UsageError(f"{pipe.bundle.folder}'s CLIP has no word-region head, so it cannot show where each word "
                         f"looks; rerank with a CLIP trained with --model word_region=true")
    ids = torch.tensor(tok.encode(prompt, clip.cfg.text_len).ids, device=pipe.device)
    with torch.inference_mode():
        attn, match = clip.word_attention(image.to(pipe.device), ids)
    return [(word, attn[pos].float().mean(0).cpu(), float(match[pos].float().mean()))
            for word, pos in tok.words(prompt, clip.cfg.text_len)]


def write_explain(folder: Path, name: str, image: torch.Tensor, maps: list[tuple[str, torch.Tensor, float]]) -> Path:
    """FOLDER/explain-<name>-NNN.png, a new file: the image, then one panel per word (images.attention_strip),
    marked as a sheet so that rerank does not score it."""
    strip = attention_strip(image, [(f"{w} cos {m:+.2f}", a) for w, a, m in maps])
    data = encode_png(strip, {"explain": name, SHEET_KEY: "explain"})
    # the same picture explained again: its strip is there (each rerun added another identical one)
    return _written_before(folder, f"explain-{name}", data) or write_new(
        folder, f"explain-{name}", ".png", lambda tmp: tmp.write_bytes(data), option="")


def explain(pipe: TextToImage, image: torch.Tensor, prompt: str) -> list[tuple[str, float]]:
    """Each word's contribution: the drop in score when that word is removed from the prompt. A two-object
    prompt's crop scores stay those of its objects where a word's removal leaves it no two objects the scorer
    parses ("and", "red" of "a red bird"): else that word's drop was mostly the crop scores switching off (each
    such delta about twice as large; "and" still weighs about as much as a colour, README). Variants the scorer
    reads alike (the same tokens the CLIP reads, the same objects for its crop scores: a word past what the CLIP
    reads, or a repeated word) are scored once: a 400-word prompt encoded the picture 401 times. image: one
    picture (3, H, W) in [0, 1]."""
    from t2i_cli.world.captions import object_prompts

    _one_picture(pipe, image, prompt, "explain")

    words = prompt.split()
    variants = [prompt] + [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    held = object_prompts(prompt)  # (two objects, or None: a variant that parses to none keeps the prompt's)
    objects = [object_prompts(v) or held for v in variants]
    tokenizer, text_len = pipe.bundle.tokenizer, pipe.bundle.clip.cfg.text_len
    keys = [(tuple(tokenizer.encode(v, text_len).ids), tuple(o or ())) for v, o in zip(variants, objects, strict=True)]
    first = {k: (v, o) for k, v, o in zip(reversed(keys), reversed(variants), reversed(objects), strict=True)}
    score = dict(zip(first, torch.cat([pipe.score(image[None], v, o) for v, o in first.values()]).tolist(),
                     strict=True))
    return [(w, score[keys[0]] - score[keys[i + 1]]) for i, w in enumerate(words)]
