"""Datasets behind one interface: a folder of image + .txt pairs (and its Hugging Face-style metadata.jsonl and
metadata.csv), a JSONL or CSV manifest, or the procedural world."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import os
import random
import re
import stat
import unicodedata
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import torch
from torch.utils.data import Dataset

from t2i_cli import images, world
from t2i_cli.errors import DataError, UsageError, brief, counted, said_value
from t2i_cli.files import (
    PLAN,
    STAGES,
    STALE_AFTER,
    atomic_write_bytes,
    check_folder_path,
    file_above,
    is_own_json,
    make_folder,
    missing_folders,
    read_own_json,
    remove_empty,
    remove_temporaries,
    sha256_of,
    shell_word,
    signals_held,
    train_command,
)
from t2i_cli.name_captions import SOURCES, CaptionPlan, caption_of, folder_caption, series_captions
from t2i_cli.prompt_file import blank
from t2i_cli.sampling_config import whole

SOURCE_HELP = ("a folder of image + same-name .txt caption pairs (or with a metadata.jsonl or metadata.csv), a "
               ".jsonl or .csv manifest, or world[:train|val|heldout]")


class CaptionDataset(Dataset):
    """Images with captions: dataset[i] -> (image (3, side, side) floats in [0, 1], caption)."""

    side: int  # images are side x side pixels
    skipped: dict[str, int]  # why files were left out when the source opened, and how many
    epoch: int = 0  # set by the trainer; picks among several captions of one image

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        raise NotImplementedError

    def captions_at(self, i: int) -> list[str]:
        """Every caption of item i, without loading its image."""
        raise NotImplementedError

    def file_of(self, i: int) -> str | None:
        """The file item i is read from (None: the world renders it)."""
        return None

    held_out: int = 0  # usable items of the source in its other part (the train part: those kept for validation)
    first: dict[str, str] = {}  # reason skipped -> the first file (or manifest line) of it (never mutated)
    every: dict[str, list[str]] = {}  # reason skipped -> every file (or manifest line) of it, when asked (list_skipped)
    record: dict | None = None  # a folder's or manifest's usable pairs, in brief (source_record); None: the world

    def skipped_message(self) -> str | None:
        """One line for the CLI about what was left out of the whole source, or None when nothing was."""
        if not self.skipped:
            return None
        first = self.first

        def example(why: str, n: int) -> str:
            return (": " if n == 1 else ", e.g. ") + first[why] if why in first else ""

        left_out = {why: n for why, n in self.skipped.items() if why not in (TOO_MANY_CAPTIONS, *NOTES)}
        reasons = "; ".join(f"{counted(n, why)}{example(why, n)}" for why, n in sorted(left_out.items()))
        kept = f" ({self.held_out} more held out for validation)" if self.held_out else ""
        said = f"skipped {counted(sum(left_out.values()), 'item')} ({reasons}); " if left_out else ""
        trimmed = self.skipped.get(TOO_MANY_CAPTIONS, 0)  # pictures that are used, with some of their captions
        shared = self.skipped.get(SHARED_CAPTION, 0)
        blank = self.skipped.get(BLANK_ON_WHITE, 0)
        clear = self.skipped.get(WHOLLY_TRANSPARENT, 0)
        return (f"{said}using {len(self)}{kept}"
                + (f"; {counted(trimmed, 'picture')} {'has' if trimmed == 1 else 'have'} over {MAX_CAPTIONS} captions: "
                   f"the first {MAX_CAPTIONS} of each are used{example(TOO_MANY_CAPTIONS, trimmed)}" if trimmed else "")
                + (f"; {counted(shared, 'picture')} {'shares' if shared == 1 else 'share'} the caption file of another "
                   f"picture of {'its' if shared == 1 else 'their'} name, each used (a copy in another format "
                   f"trains twice and may validate on itself)"
                   f"{example(SHARED_CAPTION, shared)}" if shared else "")
                + (f"; {counted(blank, 'picture')} {'is' if blank == 1 else 'are'} blank once "
                   f"{'its' if blank == 1 else 'their'} transparent pixels are made white (drawn in white, for a dark "
                   f"background: each trains as a white square){example(BLANK_ON_WHITE, blank)}; save "
                   f"{'it' if blank == 1 else 'them'} on a dark background" if blank else "")
                + (f"; {counted(clear, 'picture')} {'is' if clear == 1 else 'are'} wholly transparent (nothing "
                   f"drawn: each trains as a white square){example(WHOLLY_TRANSPARENT, clear)}; move "
                   f"{'it' if clear == 1 else 'them'} out of the folder" if clear else "")
                + _apart_note(self.skipped.get(CAPTION_APART, 0), first.get(CAPTION_APART, ""))
                + _wrapped_note(self.skipped.get(WRAPPED, 0), first.get(WRAPPED, ""))
                + _several_note(self.skipped.get(SEVERAL_PLACES, 0), first.get(SEVERAL_PLACES, ""))
                + _above_note(first.get(ABOVE))
                + _above_note(first.get(ABOVE_LINES))
                + _above_note(first.get(PARQUET))
                + _beside_note(first.get(BESIDE))
                + _column_notes(first)
                + _not_naming_note(first)
                + _sheet_note(first.get(SHEET_AMONG))
                + (f"; to caption those without one by their names: t2i data caption {first[BY_NAME]} (--dry-run "
                   f"shows the captions first)" if BY_NAME in first else "")
                + _once_fixed_note(first.get(BY_NAME_ONCE_FIXED)))


class WorldDataset(CaptionDataset):
    """Scenes 0..n_scenes-1 of a world split, rendered on the fly; index i is scene i, so samplers just work.

    With twins, index 2i is scene i and index 2i + 1 its hard negative (world.negatives: the same scene
    changed in one thing its caption says), so a batch that starts at an even position holds both."""

    def __init__(self, split: str, side: int, n_scenes: int, jitter: bool = True, twins: bool = False):
        if split not in world.SPLITS:
            raise DataError(f"unknown world split {split!r}; use world, world:train, world:val or world:heldout")
        self.split, self.side, self.n_scenes, self.jitter, self.skipped = split, side, n_scenes, jitter, {}
        self.twins = twins

    def __len__(self) -> int:
        return self.n_scenes * 2 if self.twins else self.n_scenes

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.twins and i % 2:
            from t2i_cli.world.negatives import twin_scene

            img, caption, _, _ = twin_scene(self.split, i // 2, self.side, self.jitter)
        else:
            img, caption, _ = world.scene(self.split, i // 2 if self.twins else i, self.side, self.jitter)
        return images.tensor_from_image(img), caption

    def captions_at(self, i: int) -> list[str]:
        if self.twins and i % 2:
            from t2i_cli.world.negatives import twin_caption

            return [twin_caption(self.split, i // 2)[0]]
        return [world.scene_caption(self.split, i // 2 if self.twins else i)[0]]


@dataclass(frozen=True)
class Augment:
    """How a training run varies its pictures each epoch, by (seed, epoch, picture): flip mirrors half of them
    (never against a caption that says left or right), crop < 1 shows each as a random square of crop to all of
    its side, resized to the training side (the file is decoded at side / crop, so a crop is resized down to the
    side unless the file itself is smaller than that)."""

    seed: int
    flip: bool = False
    crop: float = 1.0

    def decoded_side(self, side: int) -> int:
        """The side a picture is decoded at for a training side: larger by 1 / crop, and by a pixel at least (a
        crop near 1 at a small side still crops)."""
        return side if self.crop >= 1 else max(side + 1, round(side / self.crop))


class PairDataset(CaptionDataset):
    """Image files with their captions, checked once when the source opened. With cache_bytes set (a training
    run sets it), the pictures it decodes are kept, RGB bytes at the side it decodes them at, until that many
    bytes are held: a picture is decoded once a run by each process that reads it, not once an epoch (a
    12-megapixel JPEG takes tens of milliseconds even at a reduced scale); the pictures past the budget are
    decoded each time. The same pixels either way, unless a file changes on disk during the run (a kept picture
    keeps its first pixels). augment (a training run's --flip and --crop) varies them by epoch."""

    def __init__(self, pairs: list[tuple[Path, list[str]]], side: int, skipped: dict[str, int], held_out: int = 0,
                 first: dict[str, str] | None = None, every: dict[str, list[str]] | None = None,
                 record: dict | None = None):
        self.pairs, self.side, self.skipped, self.held_out, self.record = pairs, side, skipped, held_out, record
        self.first, self.every = first or {}, every or {}
        self.cache_bytes = 0  # decoded pictures kept by this process, at most (0: none)
        self._cache: dict[tuple[int, int], bytes] = {}  # (picture, side decoded at) -> its RGB bytes
        self._cached = 0
        self.augment: Augment | None = None  # a training run's (None: pictures as they are)

    def __len__(self) -> int:
        return len(self.pairs)

    def _pixels(self, i: int, side: int) -> bytes:
        pixels = self._cache.get((i, side))
        if pixels is None:
            pixels = images.load_rgb(self.pairs[i][0], side).tobytes()
            if self._cached + len(pixels) <= self.cache_bytes:
                self._cache[i, side] = pixels
                self._cached += len(pixels)
        return pixels

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        lines = self.pairs[i][1]
        # Cycle through an image's captions across epochs, so each is seen and the choice is reproducible.
        caption = lines[(i + self.epoch) % len(lines)]
        aug, side = self.augment, self.side
        decoded = side if aug is None else aug.decoded_side(side)
        pixels = self._pixels(i, decoded)
        if decoded != side:
            rng = random.Random(f"t2i-crop:{aug.seed}:{self.epoch}:{i}")
            c = rng.randint(side, decoded)  # the crop's side, in the decoded picture's pixels
            x0, y0 = rng.randint(0, decoded - c), rng.randint(0, decoded - c)
            pixels = images.crop_rgb(pixels, decoded, (x0, y0, c), side)
        x = images.tensor_from_rgb(pixels, side, side)
        if aug is not None and aug.flip and flips(aug.seed, self.epoch, i, caption):
            x = x.flip(-1)
        return x, caption

    def captions_at(self, i: int) -> list[str]:
        return list(self.pairs[i][1])

    def file_of(self, i: int) -> str | None:
        return str(self.pairs[i][0])


# Caption words a mirror image would contradict (English): left, rightmost, leftward(s), right-hand(ed), lefty...
SIDED = re.compile(r"\b(left|right)(most|wards?|hand(ed)?|y)?\b", re.IGNORECASE)


def as_stored(dataset: CaptionDataset, i: int) -> tuple[torch.Tensor, str]:
    """Item i of a dataset as its file holds it, never mirrored or cropped by --flip or --crop: what a sample
    sheet shows."""
    augment = getattr(dataset, "augment", None)
    if augment is None:
        return dataset[i]
    dataset.augment = None
    try:
        return dataset[i]
    finally:
        dataset.augment = augment


def flips(seed: int, epoch: int, i: int, caption: str) -> bool:
    """Whether `--flip` mirrors picture i in this epoch: half the time, a pure function of (seed, epoch, i) (the
    same in any loader worker, process or resumed run); never when its caption says left or right."""
    return not SIDED.search(caption) and random.Random(f"t2i-flip:{seed}:{epoch}:{i}").random() < 0.5


# Decoded training pictures a run keeps in memory on one machine (PairDataset.cache_bytes), divided among the
# loader workers that read them (each meets every picture) and the ranks: 87,000 pictures at 64 px, 21,000 at 128,
# with one worker.
TRAINING_CACHE_BYTES = 1 << 30
VAL_FRACTION = 0.05  # share of a folder or manifest held out for validation (at least one image)
PARTS = ("all", "train", "val")


def val_score(digest: str) -> float:
    """Where an image falls in [0, 1) for the train/val split: the first 8 bytes of the sha256 of its file's
    bytes (the hex digest the duplicate check computes), so every pair showing the same image bytes, under any
    file name, manifest line or caption, falls in the same place."""
    return int(digest[:16], 16) / 2**64


def is_val(digest: str, fraction: float) -> bool:
    """Whether an image (by the sha256 hex digest of its bytes) belongs to the validation split; it depends on
    the image alone, so the split is stable as a folder grows (a new file never moves an old one, except in
    the small-source fallback of split_pairs)."""
    return val_score(digest) < fraction


def split_pairs(pairs: list[tuple[Path, list[str]]], digests: list[str], fraction: float, part: str,
                ) -> list[tuple[Path, list[str]]]:
    """The train or val part of a folder's or manifest's usable pairs, decided per image content: digests[i]
    is the sha256 hex digest of pairs[i]'s image, and every pair of an image goes where is_val sends that
    image, so the same picture (several manifest lines, or a copy under another name and caption) never sits
    in both parts. With two or more distinct images and none hashed into val, the image of smallest digest is
    held out, all of its pairs, so the split is never empty. That fallback is the one case where a new file
    moves an old one: while no image hashes into val, adding an image whose digest is smaller than the
    held-out one's (whether or not it hashes into val) holds the new image out instead, and the old one goes
    back to train. With a single distinct image nothing is held out."""
    distinct = set(digests)
    if part == "all" or fraction <= 0 or len(distinct) < 2:
        return pairs if part != "val" else []
    val = {d for d in distinct if is_val(d, fraction)} or {min(distinct)}  # hex of one length: min is numeric
    return [pair for pair, d in zip(pairs, digests, strict=True) if (d in val) == (part == "val")]


def check_source_name(source: str) -> None:
    """Raise DataError unless source names a world split or a path that exists (what is in it is open_source's
    to check): before a command checks its own outputs, so a mistyped source is named as such."""
    source = os.fspath(source)  # (a Path, from Python)
    if source == "world" or source.startswith("world:"):
        named = source.partition(":")[2]
        if source != "world" and named not in world.SPLITS:
            raise DataError(f"unknown world split {named!r}; use world, world:train, world:val or world:heldout")
        return
    if not source:  # (a Path reads '' as the current folder)
        raise DataError(f"the data source is an empty name; give {SOURCE_HELP}")
    if not Path(os.path.expanduser(source)).exists():  # (a str's ~: Path reads ./~ as ~, the home folder)
        raise DataError(f"data source {source} does not exist; give {SOURCE_HELP}")


# An archive given as the source (a Kaggle or Hugging Face download is a .zip; a folder sent by mail a .tar.gz), said
# with how to unpack it, and a picture, said with its folder: both were "cannot use X as a data source". The command
# unpacks it into a new folder beside it, named after it, which is then the source to give: "tar xf X" unpacked into
# the folder the command ran in, replacing a file there of a name the archive holds (GNU tar does, unasked), and an
# archive of loose pictures made no "folder it makes" to give
_TAR = "mkdir {d} && tar xf {a} -C {d}"
ARCHIVES = {".zip": "unzip {a} -d {d}", ".tar": _TAR, ".tgz": _TAR, ".tar.gz": _TAR, ".tar.bz2": _TAR,
            ".tbz2": _TAR, ".tar.xz": _TAR, ".txz": _TAR, ".tar.zst": _TAR, ".7z": "7z x {a} -o{d}",
            ".rar": "unrar x {a} {d}/"}


def _packed(path: Path) -> str | None:
    """The archive suffix (an ARCHIVES key) path's name ends in, in any letter case, or None."""
    name = path.name.lower()
    return next((k for k in sorted(ARCHIVES, key=len, reverse=True) if name.endswith(k)), None)


def _unpacked(path: Path) -> Path:
    """The folder _unpack's command unpacks an archive into: beside it, its name without the archive's suffix."""
    return path.with_name(path.name[:-len(_packed(path))] or "unpacked")


def _unpack(path: Path) -> str:
    """The command that unpacks an archive (its suffix one of ARCHIVES) into _unpacked(path), and that folder given:
    'unpack it (unzip x.zip -d x) and give x'."""
    command = ARCHIVES[_packed(path)].format(a=shell_word(path), d=shell_word(_unpacked(path)))
    return f"unpack it ({command}) and give {shell_word(_unpacked(path))}"


MAX_LOOKED = 10_000  # entries of a folder _archive_in reads


def _archive_in(folder: Path) -> Path | None:
    """The first archive (by name) in folder itself, where a folder without a usable picture holds one (the
    download, not unpacked): looked at only then, at most MAX_LOOKED entries."""
    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path) for e in itertools.islice(entries, MAX_LOOKED) if _packed(Path(e.name))
                     and e.is_file()]
    except OSError:
        return None
    return min(found, default=None)


def _not_a_source(path: Path) -> str:
    """The one line for a data source t2i does not read (a file neither a folder nor a manifest)."""
    if packed := _packed(path):
        return f"{path} is an archive ({packed}), and t2i reads a folder: {_unpack(path)}"
    if path.suffix.lower() in (*images.IMAGE_SUFFIXES, *images.UNREAD_SUFFIXES):
        return (f"{path} is one picture, and a data source is a folder of pictures with their captions: give its "
                f"folder, {shell_word(path.parent)}")
    return f"cannot use {path} as a data source; give {SOURCE_HELP}"


def open_source(source: str, side: int, *, n_scenes: int = 100_000, part: str = "all",
                val_fraction: float = VAL_FRACTION, twins: bool = False, list_skipped: bool = False,
                checking: Callable[[int, int], None] | None = None, keep: int = 0,
                keep_side: int | None = None) -> CaptionDataset:
    """Open a data source by name: world[:split] (its first n_scenes scenes), a folder of image/.txt pairs (and the
    pictures its metadata.jsonl and metadata.csv name), or a .jsonl or .csv manifest; images are side x side
    pixels. part "train" or "val" picks a folder's or manifest's
    split (val_fraction of the images by a hash of their contents, all pairs of one image on one side:
    split_pairs); the world has its own splits, so its "val" part is world:val. twins (world only) pairs
    every scene with its hard negative (WorldDataset). list_skipped keeps every file left out (`every`), not only
    the first of each reason (a large folder's list is not kept for a training run that only warns).
    checking(done, total) is called as a folder's or manifest's pictures are checked (each is decoded once).
    keep: the first `keep` usable pictures are checked at `side` (or keep_side: the side a preview's --crop decodes
    them at) and the pixels of that decode kept, so a preview that shows them does not decode them again (a large
    PNG takes seconds)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if (pixels := whole(side)) is None or not 1 <= pixels <= MAX_SIDE:  # (0 blamed each picture: "cannot read
        # image ...: height and width must be > 0; give a complete PNG"; 16.5 failed in Pillow's resize)
        raise UsageError(f"side must be a whole number of pixels in 1..{MAX_SIDE}, got {said_value(side)}")
    side = pixels
    source = os.fspath(source)  # (a Path, from Python)
    check_source_name(source)
    if source == "world" or source.startswith("world:"):
        split = "val" if part == "val" else source.partition(":")[2] or "train"
        return WorldDataset(split, side, n_scenes, twins=twins)
    if twins:
        raise UsageError("--hard-negatives needs --data world: it changes the scene a caption describes, and a "
                         "folder of pictures has no scenes to change; leave it out")
    path = Path(os.path.expanduser(source))  # (./~, a folder named ~ here, read as home by Path.expanduser)
    if path.is_dir():
        pairs, skipped = _scan_folder(path, list_skipped)
        looked_for = (f"images ({', '.join(images.IMAGE_SUFFIXES)}) with a same-name .txt caption, or a row in a "
                      f"metadata.jsonl or metadata.csv, under {path}")
    elif path.suffix.lower() == ".jsonl":
        if not path.is_file():  # a pipe or a device (a link to /dev/zero) was read forever
            raise DataError(f"manifest {source} is not a regular file (a device, pipe or socket); save the manifest "
                            f"to a file and give that")
        pairs, skipped = _scan_manifest(path, list_skipped)
        looked_for = (f'lines {{"image": path, "caption": text}} (or {{"file_name": ..., "text": ...}}, its "text" '
                      f'named "caption" or "prompt" too) in {path}')
    elif path.suffix.lower() == ".csv":
        if not path.is_file():
            raise DataError(f"manifest {source} is not a regular file (a device, pipe or socket); save the manifest "
                            f"to a file and give that")
        pairs, skipped = _scan_csv(path, list_skipped)
        looked_for = f'rows of columns {KEYS_SAID} in {path}'
    else:
        raise DataError(_not_a_source(path))
    # Every pair is checked before the split, so the split holds only usable pairs (a val part is never left
    # empty by files that do not load) and the counts are the whole source's, whichever part is opened.
    usable: list[tuple[Path, list[str]]] = []
    digests: list[str] = []  # the sha256 of each usable pair's image, which decides its side of the split
    seen: dict[tuple[str, tuple[str, ...]], Path] = {}  # (the image's sha256, its captions) -> the first such pair
    kept: dict[Path, bytes] = {}  # the first `keep` usable pictures' RGB bytes at keep_side, from their check
    keep_side = side if keep_side is None else keep_side
    listings: dict[Path, dict[str, list[str]]] = {}  # a folder a missing picture's path goes through: its names, folded
    rows_from = len(pairs) - skipped.rows_left  # (a folder's: its manifests' rows naming none of its pictures)
    miscased = set(skipped.miscased)  # the files on disk that rows name in other letter case (_key)
    for done, (image, lines) in enumerate(pairs):
        if checking is not None and done % 16 == 0:
            checking(done, len(pairs))
        # such a row's picture left out is named with the manifest line naming it (--list-skipped named the picture)
        named_in = f"named in {skipped.rows_left_at[done - rows_from]}" if done >= rows_from \
            else f"named in {skipped.empty_rows[image]}" if not lines and image in skipped.empty_rows else ""
        if not lines:
            skipped.add("empty caption", f"{image} ({named_in})" if named_in else image)
            continue
        try:  # (a path the file system cannot look up, a name over 255 bytes, is that row's alone: it ended the
            # whole source, "File name too long", where each line stands alone)
            if not image.exists() and (other := _in_other_form(image)) is not None:
                image = other
            if not image.is_file() and not image.exists() and (other := _in_other_case(image, listings)) is not None:
                skipped.add(MISCASED, f"{image} ({named_in + '; ' if named_in else ''}on disk: {other})")
                miscased.add(_key(other))
                continue
            if not image.is_file():
                skipped.add("image path naming a folder" if image.is_dir() else
                            windows if (windows := _windows_path(image)) and not image.exists() else
                            BACKSLASHED if "\\" in str(image) and os.sep == "/" and not image.exists()
                            else "missing image",
                            f"{image} ({named_in})" if named_in else image)
                continue
        except OSError as e:
            skipped.add(f"image path the file system cannot look up ({e.strerror or e})",
                        f"{image} ({named_in})" if named_in else image)
            continue
        digest, why_not, pixels, blank = _readable_digest(image, keep_side if len(usable) < keep else None)
        if why_not:
            skipped.add(why_not, image)
        elif (digest, tuple(lines)) in seen:  # a copy adds only weight (the split sets it beside its original)
            # which one it copies: the first in path order is kept, which may be the user's original
            skipped.add("copy of another pair (same image bytes and captions)",
                        f"{image} (the same as {seen[digest, tuple(lines)]}, which is used)")
        else:
            seen[digest, tuple(lines)] = image
            usable.append((image, lines))
            digests.append(digest)
            if blank:
                skipped.add(WHOLLY_TRANSPARENT if blank == WHOLLY_TRANSPARENT else BLANK_ON_WHITE, image)
            if pixels is not None:
                kept[image] = pixels
    if checking is not None:
        checking(len(pairs), len(pairs))
    if skipped.uncaptioned and skipped.uncaptioned <= miscased:
        # every picture without a caption is one a manifest row names in other letter case: its caption is there
        # (fix the row), not in its name (`t2i data caption --from folder` was said, which captions 6,000 "train"),
        # and the manifest does name it ("names none of those without a caption" was said)
        for note in (BY_NAME, NOT_NAMING, NOT_NAMING_READ, BY_NAME_ONCE_FIXED):
            if note in skipped:
                del skipped[note]
                del skipped.first[note]
    if not usable:  # each reason with its first file, as the warning names them (the user has to find them)
        found = "; ".join(counted(n, why) + (": " if n == 1 else ", e.g. ") + skipped.first[why]
                          for why, n in sorted(skipped.items()) if why not in NOTES)
        manifest = next((m for m in sorted(path.glob("*.jsonl")) if m.name.lower() not in FOLDER_MANIFESTS
                         and _looks_like_manifest(m)), None) if path.is_dir() else None  # (not one it read)
        if manifest is None and BESIDE in skipped.first:  # one in a sub-folder, or a metadata.csv
            manifest = Path(skipped.first[BESIDE])
        fix = (_above_note(skipped.first[ABOVE]) + _above_note(skipped.first.get(ABOVE_LINES))
               if ABOVE in skipped.first
               else _above_note(skipped.first[PARQUET]) if PARQUET in skipped.first
               else _above_note(skipped.first[ABOVE_LINES]) if ABOVE_LINES in skipped.first
               else f"; it holds a manifest: give {shell_word(manifest)} as the source" if manifest is not None
               else _column_notes(skipped.first) + _sheet_note(skipped.first.get(SHEET_AMONG)) + (
                   f"; to caption them by their names: t2i data caption {skipped.first[BY_NAME]} (--dry-run shows "
                    f"the captions first)" if BY_NAME in skipped.first
                   else _once_fixed_note(skipped.first[BY_NAME_ONCE_FIXED]) if BY_NAME_ONCE_FIXED in skipped.first
                   else "" if {NO_CAPTION_COLUMN, NO_PICTURE_COLUMN, MISPAIRED, MISCASED} & skipped.first.keys()
                   else "" if CAPTION_APART in skipped.first
                   else f"; it holds an archive: {_unpack(archive)}"
                   if path.is_dir() and (archive := _archive_in(path)) is not None
                   else f"; to rename each PIC.caption to PIC.txt: find {shell_word(path)} -iname '*.caption' -exec "
                        f"sh -c 'mv -n \"$1\" \"${{1%.*}}.txt\"' _ {{}} \\;"  # (-iname, %.*: PIC.CAPTION is one too)
                   if OTHER_EXTENSION_CAPTION in skipped.first
                   else "; add some, or use the procedural world (world) as the source"))
        if CAPTION_APART in skipped.first:  # (before what else it says, `t2i data caption` for the others)
            fix = _apart_note(skipped[CAPTION_APART], skipped.first[CAPTION_APART]) + fix
        raise NothingUsable(f"no usable image-caption pairs: looked for {looked_for}"
                            + (f" (found only: {found})" if found else "") + fix, skipped.every)
    chosen = split_pairs(usable, digests, val_fraction, part)
    dataset = PairDataset(chosen, side, dict(skipped), held_out=len(usable) - len(chosen) if part == "train" else 0,
                          first=skipped.first, every=skipped.every if list_skipped else None,
                          record=None if part == "val" else source_record(usable, digests,
                                                                          path if path.is_dir() else path.parent))
    for i, (image, _) in enumerate(chosen):
        if image in kept:
            dataset._cache[i, keep_side] = kept[image]
            dataset._cached += len(kept[image])
    return dataset


DATA_RECORD = "data_record.json"  # in a run folder: what the run started on, when it read a folder or manifest
MAX_DATA_RECORD = 1 << 16  # bytes of a data record read back (t2i writes about 300, and at most 48 KB with its sketch)
RECORD_FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
# The sketch a record keeps of a source of up to SKETCH_PAIRS pairs, for a resume's warning to say what changed:
# each pair's picture (its digest's first 12 hex digits) and captions (8 of theirs), 20 characters a pair, sorted;
# and the words of its captions (casefolded runs of letters and digits, up to WORD_ROOM characters each, space
# separated), where they fit in SKETCH_WORDS characters as JSON writes them. Either is left out where it does not fit.
# A longer word is kept cut, its first WORD_ROOM - 1 characters and WORD_CUT (t2i 0.18.0 left it out, so a new word
# of 33 characters or more was never named); WORD_CUT alone, a word in every record that keeps them so (no word of
# letters and digits is one), tells a record of 0.18.0, whose captions' long words went unrecorded, from one whose
# captions held none.
SKETCH_PAIRS = 1500
SKETCH_WORDS = 16384
WORD_ROOM = 32
WORD_CUT = "\u2026"
_PAIR = 20
_SKETCH = re.compile(r"(?:[0-9a-f]{20})*")
_WORD = re.compile(r"\w+")


def _sketch(pairs: list[tuple[Path, list[str]]], digests: list[str]) -> dict[str, str]:
    """The record's "each" and "words" (see SKETCH_PAIRS), those that fit."""
    sketch = {}
    if len(pairs) <= SKETCH_PAIRS:
        sketch["each"] = "".join(sorted(d[:12] + hashlib.sha256(json.dumps(lines).encode()).hexdigest()[:8]
                                        for (_, lines), d in zip(pairs, digests, strict=True)))
    words: set[str] = {WORD_CUT}
    room = SKETCH_WORDS - (len(json.dumps(WORD_CUT)) - 1)
    for at in range(0, len(pairs), 4096):  # (a slice's captions read as one text: bench/data_record_sketch.py)
        text = "\n".join(line for _, lines in pairs[at:at + 4096] for line in lines).casefold()
        for w in {w if len(w) <= WORD_ROOM else w[:WORD_ROOM - 1] + WORD_CUT for w in _WORD.findall(text)} - words:
            room -= len(json.dumps(w)) - 1  # (as written: a character outside ASCII is escaped, 6 or 12 bytes)
            if room < 0:  # (stops at the bound: a large source's vocabulary is not gathered whole)
                return sketch
            words.add(w)
    sketch["words"] = " ".join(sorted(words))
    return sketch


def source_record(pairs: list[tuple[Path, list[str]]], digests: list[str], base: Path) -> dict:
    """What a folder's or manifest's usable pairs are, in a few hundred bytes however many there are: their number
    and one sha256 each over, in the order a run reads them, their files' names (relative to base: the folder,
    or the manifest's folder), their pictures' bytes (digests: the sha256 the check of each picture computed, so
    nothing is read again) and their captions. A run trains on the sequence of pictures and captions alone
    (the split goes by picture bytes, the batches by position): equal "pictures" and "captions" mean the same
    training, whatever the files are called. A source of up to SKETCH_PAIRS pairs also gets a sketch of each pair,
    and one of few enough distinct caption words their list (at most 48 KB in all), for data_change to say what
    changed."""
    names, pictures, texts = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    prefix = os.path.join(base, "")  # (as text: Path.relative_to took 20 us a pair, 2 s for 100,000)
    for at in range(0, len(pairs), 4096):  # a slice at a time: never a second copy of every caption
        chunk = pairs[at:at + 4096]
        shown = [name[len(prefix):] if (name := os.fspath(image)).startswith(prefix) else name for image, _ in chunk]
        names.update(json.dumps(shown).encode())  # (a name that is not UTF-8 is escaped)
        pictures.update("\n".join(digests[at:at + 4096]).encode() + b"\n")
        texts.update(json.dumps([lines for _, lines in chunk]).encode())
    return {"format": RECORD_FORMAT, "pairs": len(pairs), "names": names.hexdigest(),
            "pictures": pictures.hexdigest(), "captions": texts.hexdigest(), **_sketch(pairs, digests)}


def is_record(obj: object) -> bool:
    """Whether obj is a data record as source_record makes it (one from before its sketch too). Keys it does not
    know are passed over, not refused: a record a newer t2i wrote, with more in it, is read for what this one reads
    (an older t2i, which refused them, said it "cannot tell whether the data changed"); a change of what the known
    keys mean is a new "format"."""
    return (isinstance(obj, dict) and {"format", "pairs", "names", "pictures", "captions"} <= set(obj)
            and type(obj["format"]) is int and obj["format"] == RECORD_FORMAT
            and type(obj["pairs"]) is int and obj["pairs"] >= 0
            and all(isinstance(obj[k], str) and _HEX64.fullmatch(obj[k]) for k in ("names", "pictures", "captions"))
            and ("each" not in obj or isinstance(obj["each"], str) and len(obj["each"]) == _PAIR * obj["pairs"]
                 and obj["pairs"] <= SKETCH_PAIRS and _SKETCH.fullmatch(obj["each"]) is not None)
            and ("words" not in obj or isinstance(obj["words"], str) and len(obj["words"]) <= SKETCH_WORDS))


def data_change(path: Path, now: dict | None, captions_read: bool = True) -> str | None:
    """The one warning line of a run resumed (or a whole run's stage started) on other data than the run started
    on: the record at path (DATA_RECORD, written when it started) against now (the source's record, None for
    the world, which never changes). None when the pictures and captions are the same, or when there is no
    record (a run started before t2i recorded one); a record that is not one t2i wrote (edited, cut, too
    large) is read as far as MAX_DATA_RECORD and said in the line, and the run goes on. Where both records
    hold a sketch, the line says what changed: pictures added and removed, captions edited, and words that no
    caption held then (a few of them named). captions_read False (a dVAE without --flip, which sees the pictures
    alone): captions edited on the same pictures are no change to it."""
    if now is None:
        return None
    path = Path(path)
    if not path.is_file():  # (a pipe there would be read forever)
        return _unknown_change(path, "is not a file") if path.exists() or path.is_symlink() else None
    try:
        then = read_own_json(path, MAX_DATA_RECORD)
    except FileNotFoundError:  # removed since
        return None
    except OSError as e:
        return _unknown_change(path, f"cannot be read ({e.strerror or e})")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _unknown_change(path, "is not JSON")
    except ValueError as e:  # larger than the bound
        return _unknown_change(path, str(e).replace("it holds", "holds", 1))
    if not is_record(then):
        return _unknown_change(path, "is not a record of the data as t2i writes it")
    if then["pictures"] == now["pictures"] and then["captions"] == now["captions"] and then["pairs"] == now["pairs"]:
        return None  # the same training (renamed files, or none changed)
    if not captions_read and then["pictures"] == now["pictures"] and then["pairs"] == now["pairs"]:
        return None  # (captions edited alone: "the result will differ" was said of a dVAE, whose result did not)
    n = then["pairs"]
    if n != now["pairs"]:
        what = f"{n:,} usable pictures then, {now['pairs']:,} now"
    elif then["pictures"] != now["pictures"] and then["names"] != now["names"]:
        what = f"{n:,} usable pictures then and now, but not the same files (or not in the same order)"
    else:  # (files renamed, in the same order, are the same training)
        edited = " and ".join(k for k in ("pictures", "captions") if then[k] != now[k])
        what = f"{n:,} usable pictures then and now, but some {edited} were edited"
    said = _what_changed(then, now, captions_read)
    if said and "each" in then and "each" in now:  # (what it says in place of "some captions were edited")
        what = f"{n:,} usable pictures then, {now['pairs']:,} now" if n != now["pairs"] else \
            f"{n:,} usable pictures then and now"
    if said:
        what += f": {said}"
    return (f"the data changed since this run started: {what}; a resume reads what is there now, so the result will "
            f"differ from an uninterrupted run")


WORDS_NAMED = 3  # new caption words a data change names (each cut to WORD_SHOWN characters)


def _what_changed(then: dict, now: dict, captions_read: bool = True) -> str:
    """What the sketches of two records say changed ('' where neither tells): pictures added and removed (an
    edited picture is both), pictures whose captions were edited, the words of the captions now that no caption
    held then, a few of them named (the captions' changes only where captions_read: a dVAE's run is told of its
    pictures alone)."""
    said = []
    if "each" in then and "each" in now:
        def pairs(record: dict) -> Counter:
            each = record["each"]
            return Counter(each[i:i + _PAIR] for i in range(0, len(each), _PAIR))

        def captions(record: Counter) -> dict[str, set[str]]:  # each picture's captions
            by: dict[str, set[str]] = {}
            for e in record:
                by.setdefault(e[:12], set()).add(e[12:])
            return by

        old, new = pairs(then), pairs(now)
        old_pictures, new_pictures = Counter(p[:12] for p in old.elements()), Counter(p[:12] for p in new.elements())
        added, removed = new_pictures - old_pictures, old_pictures - new_pictures
        old_captions, new_captions = captions(old), captions(new)
        recaptioned = sum(old_captions[p] != new_captions[p] for p in old_captions.keys() & new_captions.keys())
        if added:
            said.append(f"{counted(added.total(), 'picture')} added")
        if removed:
            said.append(f"{removed.total():,} removed" if added else f"{counted(removed.total(), 'picture')} removed")
        if added and removed:
            said[-1] += " (an edited picture is both)"
        if recaptioned and captions_read:
            said.append(f"captions of {counted(recaptioned, 'picture')} edited")
        if old == new:  # (and their sequence differs: the batches and the split's order do)
            said.append("the same pictures and captions in another order")
    if "words" in then and "words" in now and captions_read:
        known = set(then["words"].split())
        # (the longest first: 'quokka' is news, 'a' seldom; a long word cut is named only against a record that
        # keeps them, WORD_CUT: 0.18.0's left them out, and each would be "new")
        fresh = sorted((w for w in set(now["words"].split()) - known - {WORD_CUT}
                        if WORD_CUT in known or not w.endswith(WORD_CUT)), key=lambda w: (-len(w), w))
        if fresh:
            named = ", ".join(repr(brief(w)) for w in fresh[:WORDS_NAMED])
            more = f" and {len(fresh) - WORDS_NAMED:,} more" if len(fresh) > WORDS_NAMED else ""
            said.append(f"{len(fresh):,} new word{'' if len(fresh) == 1 else 's'} (in no caption then): {named}{more}")
    return ", ".join(said)


def _unknown_change(path: Path, why: str) -> str:
    return (f"cannot tell whether the data changed since this run started: {path} {why}; the run goes on with "
            f"the pictures there now")


UNREADABLE_IMAGE, EMPTY_FILE = "unreadable image", "empty file (0 bytes)"  # why a picture is left out (its check)


def _too_large() -> str:
    return f"image over {images.Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (scale it down)"


def _readable_digest(path: Path, side: int | None = None) -> tuple[str, str, bytes | None, bool | str]:
    """(sha256, why, rgb, blank): (the sha256 of an image file whose image decodes, "", None, blank) (the decode
    reads the whole file, at a reduced scale for a large JPEG, so it catches truncated files), else ("", why not:
    unreadable, or too large to decode, None, False); remembered for the file as it is (path, size, modification
    time), so the train and val parts of a source, and every stage of a whole run, read each image once. With side,
    the picture is decoded at that side (not remembered) and its RGB bytes are rgb, for a preview to show. blank:
    whether the picture is blank once its transparent pixels are made white (images.blank_on_white), looked at
    where its decode was white: WHOLLY_TRANSPARENT where it draws no pixel at all."""
    try:
        st = path.stat()
    except OSError:
        return "", UNREADABLE_IMAGE, None, False
    if not st.st_size:
        return "", EMPTY_FILE, None, False
    if side is not None:
        return _decoded_digest(str(path.resolve()), side)
    digest, why, blank = _digest_if_decodes(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return digest, why, None, blank


def _unopened(path: Path) -> str:
    """Why training cannot open an image file, as _readable_digest says it, from its header alone (empty, not a
    picture Pillow reads, over the pixel bound): "" where the header reads (a truncated file still passes: its
    decode, in training's check, finds it)."""
    try:
        if not path.stat().st_size:
            return EMPTY_FILE
        with images.opened(path):
            return ""
    except (images.Image.DecompressionBombError, images.Image.DecompressionBombWarning):
        return _too_large()
    except (OSError, SyntaxError, ValueError):
        return images.impostor(path) or UNREADABLE_IMAGE


@functools.lru_cache(maxsize=1 << 20)
def _digest_if_decodes(path: str, size: int, mtime_ns: int) -> tuple[str, str, bool | str]:
    digest, why, _, blank = _decoded_digest(path, 8)
    return digest, why, blank


def _decoded_digest(path: str, side: int) -> tuple[str, str, bytes | None, bool | str]:
    bombs = (images.Image.DecompressionBombError, images.Image.DecompressionBombWarning)
    try:
        pixels = images.load_rgb(Path(path), side).tobytes()
        blank = min(pixels) >= images.WHITE_ENOUGH and images.blank_on_white(Path(path))
        if blank and images.wholly_transparent(Path(path)):
            blank = WHOLLY_TRANSPARENT
        return sha256_of(Path(path)).hexdigest(), "", pixels, blank
    except DataError as e:
        if isinstance(e.__cause__, bombs):
            return "", _too_large(), None, False
        return "", images.impostor(Path(path)) or UNREADABLE_IMAGE, None, False
    except OSError:
        return "", images.impostor(Path(path)) or UNREADABLE_IMAGE, None, False


class NothingUsable(DataError):
    """A source without one usable pair; every file left out, by reason, when they were kept (--list-skipped)."""

    def __init__(self, message: str, every: dict[str, list[str]]):
        super().__init__(message)
        self.every = every


class Skips(Counter):
    """What a source left out, counted by reason, with the first file (or manifest line) of each reason, so
    a warning can name one for the user to look at."""

    def __init__(self, keep_every: bool = False) -> None:
        super().__init__()
        self.first: dict[str, str] = {}
        self.every: dict[str, list[str]] = {}  # only with keep_every (`data preview --list-skipped`)
        self.keep_every = keep_every
        self.rows_left = 0  # a folder's manifest rows naming no picture of it, last among its pairs (_scan_folder)
        self.rows_left_at: list[str] = []  # ... the manifest and line of each ("M line 3"), for what it names left out
        self.lines = array("L")  # a manifest reader's: the line of each of its pairs (a row's first line)
        # a folder's manifests' lines their readers left out (not JSON, without the names, ...): reason -> (count,
        # the first), for `data caption`, whose pictures to caption may be named there (_manifest_rows)
        self.manifest_lines: dict[str, tuple[int, str]] = {}
        self.uncaptioned: set[str] = set()  # a folder's pictures without a caption (_key), for open_source's hints
        # a folder's pictures that a manifest row of an empty caption names: its first such row ("M line 3"), for
        # open_source to name where a picture left out as an "empty caption" has it (it named the picture alone)
        self.empty_rows: dict[Path, str] = {}
        self.empty_named: list[Path] = []  # ... those without a caption file either: without any caption (_scan_folder)
        # a folder's pictures without a caption that a manifest above it names with one (_key; _manifest_above):
        # `t2i data caption` leaves them as they are
        self.above_named: set[str] = set()
        self.miscased: set[str] = set()  # a folder's pictures its manifests' rows name in other letter case (_key)
        self.above_source: Path | None = None  # ... and the folder that reads the first, a metadata.jsonl or .csv
        self.above_lines = ""  # what a manifest above whose lines left out may name its pictures says (_manifest_above)
        self.columns_source: Path | None = None  # the folder above whose metadata.* COLUMN_NOTES says (_scan_folder)
        self.parquet: Path | None = None  # a metadata.parquet in (or above) the folder that t2i cannot read (PARQUET)

    def add(self, why: str, where: object, n: int = 1, rest: tuple = ()) -> None:
        """n more items left out for why: where is the first of them, rest the others (when n > 1). Every one
        of them is kept only when asked: a million bad manifest lines held 80 MB for a warning that names one."""
        self[why] += n
        self.first.setdefault(why, str(where))
        if self.keep_every and why not in NOTES:  # (used: not among what --list-skipped says is left out)
            self.every.setdefault(why, []).extend(map(str, (where, *rest)))

    def line_left(self, why: str, where: str, n: int = 1) -> None:
        """n more of a folder's manifest lines left out for why (manifest_lines), where the first of them."""
        count, first = self.manifest_lines.get(why, (0, where))
        self.manifest_lines[why] = (count + n, first)

    def merge(self, other: Skips) -> None:
        """Count what another reader left out (a manifest's lines, read for a folder) as this source's own."""
        for why, n in other.items():
            self[why] += n
            if why in other.first:
                self.first.setdefault(why, other.first[why])
        if self.keep_every:
            for why, every in other.every.items():
                self.every.setdefault(why, []).extend(every)


MAX_CAPTION_FILE = 1 << 16  # bytes of a .txt caption file read (a larger one is skipped, not read whole)
MAX_MANIFEST_LINE = 1 << 20  # bytes of one manifest line parsed (a longer line is a bad line)
# Captions kept of one picture (a caption file's lines, a manifest line's list); the rest are counted as left
# out. Each kept caption is a string of its own, so 64 KB of three-byte lines held 1.5 MB per picture.
MAX_CAPTIONS = 64
TOO_MANY_CAPTIONS = f"captions past the first {MAX_CAPTIONS} of a picture"  # counted by picture (skipped_message)
# pic.webp and pic.tif beside one pic.txt: both used, with its captions, and said (counted past the first picture)
SHARED_CAPTION = "picture sharing its caption file with another picture of its name"
# a picture drawn in white on a transparent background (a sprite or icon made for a dark one: pygame's city.png), blank
# once its transparent pixels are made white: used, and said (it trained as a white square, unsaid)
BLANK_ON_WHITE = "picture blank once its transparent pixels are made white"
# ... and one with no pixel drawn at all (a widget skin's disabled state, a spacer GIF): said apart, since a dark
# background shows nothing there either (Qt's Fluent skins: 73 of 280 such pictures were told to be saved on one)
WHOLLY_TRANSPARENT = "wholly transparent picture"
# a picture without a caption whose name a .txt caption without a picture has, in another folder (images/x.png,
# captions/x.txt): said (not left out for it: it is counted as without a caption), t2i data caption not suggested
CAPTION_APART = "picture without a caption whose NAME.txt sits in another folder"


# What a folder's summary says beside what it left out (none of it is left out, nor listed by --list-skipped):
# caption files that look like one caption wrapped over several lines (_wrapped_at), counted by file, and a
# manifest of captions beside pictures without a .txt (a Hugging Face-style metadata.jsonl), named.
WRAPPED = "caption file whose lines look like one caption wrapped over several"
BESIDE = "manifest beside pictures without a caption"
UNREADABLE_FOLDER = "folder that cannot be read (permission?)"
UNCAPTIONED = "image without .txt caption"  # (`t2i data caption` writes captions for these: plan_captions)
# ... and where their names (or their folders') hold words, the `t2i data caption` command that captions them so
BY_NAME = "pictures without a caption that their names could caption"
# ... and a contact sheet t2i wrote among them under another name (`data preview --out sheet.png` inside the folder,
# known by its PNG text): `t2i data caption` declines it, so it is named (to move out), not sent there
SHEET_AMONG = "contact sheet t2i wrote among the pictures without a caption"
# A folder's Hugging Face-style manifests (imagefolder's metadata.jsonl and metadata.csv, any letter case), read for
# the pictures they name: a picture captioned in more than one place (its .txt and a manifest row, two manifests)
# has all of those captions, each once, and is counted in the summary; a manifest the folder read beside pictures
# without a caption that it does not name is named there too.
FOLDER_MANIFESTS = ("metadata.jsonl", "metadata.csv")
SEVERAL_PLACES = "picture captioned in more than one place (a .txt and a manifest, or two manifests)"
_NOT_NAMING = "manifest read beside pictures without a caption that {} name"
NOT_NAMING = _NOT_NAMING.format("it does not")
# ... where the folder's manifests have lines left out (not JSON, without a picture's name): its lines read name none,
# a line left out may (it said "names none of those without a caption", of a manifest whose bad line named one)
NOT_NAMING_READ = _NOT_NAMING.format("its lines read do not")
# ... and where such lines (the folder's, or a manifest's above it) are all that keeps `t2i data caption` from the
# pictures their names could caption (it refuses beside them): the command, said for once they are fixed (nothing
# in the warning pointed to it)
BY_NAME_ONCE_FIXED = "pictures without a caption that their names could caption once the lines left out are fixed"
# ... and a metadata.jsonl or metadata.csv beside (or above) pictures without a caption that names pictures but has no
# caption column the readers know (a classification folder's "file_name" and "label"; "description"): not read, named
# with its columns (it was passed over unsaid)
NO_CAPTION_COLUMN = "manifest beside pictures without a caption that has no caption column"
NO_PICTURE_COLUMN = "manifest beside pictures without a caption that has no picture column"
# ... or that has both, but not a pair the readers read ("image,text": "image" pairs with "caption" only)
MISPAIRED = "manifest beside pictures without a caption whose picture and caption columns do not pair"
# ... and a metadata.jsonl or metadata.csv in the folder above (or the one above that) that names pictures of the folder
# without a caption ("train/a.png" in ds/metadata.csv, the folder given ds/train): the folder to give instead
ABOVE = "manifest above the folder naming its pictures without a caption"
ABOVE_LEVELS = 2  # folders above the one given whose manifests are looked at
# ... and such a manifest with lines left out that may name the folder's pictures (or that its reader refuses whole),
# said as `t2i data caption`, which refuses beside it, says it (the summary was silent, and suggested that command)
ABOVE_LINES = "manifest above the folder with lines left out that may caption its pictures"
MAX_ABOVE = 16 << 20  # bytes of such a manifest read to count the rows naming the folder's pictures
# A Hugging Face imagefolder's third manifest format, metadata.parquet, where no metadata.jsonl or .csv sits beside it:
# t2i has no Parquet reader (and adds no dependency for one), so it is said, with a way to convert it (it was passed
# over unsaid, its pictures "without a caption" and captioned by their names)
PARQUET_MANIFEST = "metadata.parquet"
PARQUET = "metadata.parquet t2i cannot read"  # (rerank's reason for one too: rerank.PARQUET_UNREAD)
NOTES = (SHARED_CAPTION, BLANK_ON_WHITE, WHOLLY_TRANSPARENT, CAPTION_APART, WRAPPED, BESIDE, BY_NAME, SHEET_AMONG,
         SEVERAL_PLACES, NOT_NAMING, NO_CAPTION_COLUMN, NO_PICTURE_COLUMN, MISPAIRED, ABOVE, ABOVE_LINES, PARQUET,
         NOT_NAMING_READ, BY_NAME_ONCE_FIXED)
# a manifest line of a picture and a caption name that do not pair ({"image", "text"}), given as the source
MISPAIRED_LINE = ('manifest line whose picture and caption names do not pair ("image" pairs with "caption" only, '
                  '"file_name" with "text", "caption" or "prompt": rename one)')
# a manifest's picture given as a URL (a scraped dataset's "url" renamed file_name; https://...): it was a "missing
# image" at the manifest's folder / "https:/host/..." (a path made of the URL)
URL_ROW = "manifest line naming its picture by a URL (t2i reads pictures on disk: download them and write their paths)"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
# ... a file:// URL, though, names a file on disk (a path written as a URL: "download them" was said of it), which may
# be a picture of the folder (so a folder's such line is among its lines left out, as a Windows drive's path is)
FILE_URL_ROW = ("manifest line naming its picture by a file:// URL (a path written as a URL: write the path itself, "
                "relative to the manifest's folder)")


def _url_row(image: str) -> str:
    """Why a manifest line naming its picture by a URL (_URL) is left out: URL_ROW, or FILE_URL_ROW for a file URL."""
    return FILE_URL_ROW if image.lower().startswith("file:") else URL_ROW
# ... or by a Windows drive's path (C:\\Users\\me\\a.png, C:/data/a.png: a manifest written on Windows) where that means
# nothing: it was "missing image", or "write /" for the backslashes, after which it was still missing (the manifest's
# folder / "C:/data/a.png")
WINDOWS_DRIVE = ("missing image (its path starts with a Windows drive, C:, which is no path here: write it relative "
                 "to the manifest's folder)")
_DRIVE = re.compile(r"(?:^|/)[A-Za-z]:[\\/]")
# ... or by a Windows network path (\\\\server\\share\\a.png): it was told "write /" for its backslashes, after which
# it named a folder //server/share outside the manifest's folder; written with forward slashes (//server/share/a.png,
# as Windows reads it too) it was "missing", or, a folder's row, "a picture outside the folder"
NETWORK_PATH = ("missing image (its path is a Windows network path, \\\\server\\share\\..., which is no path here: "
                "write it relative to the manifest's folder)")
_NETWORK = re.compile(r"(?:^|/)\\\\[^\\/]|^//[^/]")


def _windows_path(image: Path) -> str | None:
    """Why a manifest row's picture path is no path here, where it is a Windows drive's (WINDOWS_DRIVE) or network
    path (NETWORK_PATH) on a system whose separator is /; else None (the manifest source and a folder's manifest
    rows say it alike)."""
    if os.sep != "/":
        return None
    return WINDOWS_DRIVE if _DRIVE.search(str(image)) else NETWORK_PATH if _NETWORK.search(str(image)) else None


OUTSIDE_ROW = "manifest row naming a picture outside the folder (give the manifest itself as the source to read it)"
RUN_ROW = "manifest row naming a picture inside a t2i run folder (its samples are not data)"
NOT_PICTURE_ROW = "manifest row naming a file that is no picture t2i reads (the file is counted as itself)"
# A picture whose caption file is there but left out (too large, unreadable, not UTF-8; named after the whole file
# name): it has a caption file, which `t2i data caption` never replaces (plan_captions counts it as captioned)
LARGE_CAPTION = f"caption file over {MAX_CAPTION_FILE // 1024} KB"
UNREADABLE_CAPTION = "unreadable caption"
NUL_CAPTION = ("caption holding a NUL character (UTF-16 without its byte-order mark, or not text: save it as "
               "UTF-8)")
NOT_UTF8_CAPTION = "caption not in UTF-8 or UTF-16 (save it as UTF-8)"
WHOLE_NAME_CAPTION = "image whose caption is named after its whole file name (PIC.jpg.txt: name it PIC.txt)"
# ... or is a PIC.caption file, as kohya-ss's sd-scripts' captioning writes them (its default extension): those
# pictures were "without .txt caption", and `t2i data caption` was suggested, which captioned them by their names
OTHER_EXTENSION_CAPTION = "image whose caption is a .caption file (kohya-ss's extension: name it PIC.txt)"
# ... or is a folder (pic.txt/ beside pic.png): the picture was "without .txt caption" and the folder went unsaid,
# though a caption that is not a regular file is named (`t2i data caption` names it too, and writes no caption there)
FOLDER_CAPTION = "folder named as a picture's caption (PIC.txt/: rename it, and write the caption as the file PIC.txt)"
# A text file's name that says it is a document, not a caption (a dataset's README.txt, LICENSE.txt, LICENSE-MIT.txt,
# credits.txt): one without a picture of its name is not "a .txt caption without image", and is not counted
_DOCUMENT = re.compile(r"(?:read[ _-]?me|licen[cs]e|copying|copyright|notice|authors|credits|attribution"
                       r"|change[ _-]?log|changes|contributors|citation)(?:[ _.-].*)?", re.IGNORECASE)
CAPTION_FILE_LEFT_OUT = (LARGE_CAPTION, UNREADABLE_CAPTION, NUL_CAPTION, NOT_UTF8_CAPTION, WHOLE_NAME_CAPTION,
                         OTHER_EXTENSION_CAPTION)
# A manifest line's picture and caption(s): t2i's own "image" and "caption", or a Hugging Face imagefolder's
# "file_name" beside the caption column its users name "text" (diffusers' default), "caption" or "prompt" (diffusers'
# convert_to_imagefolder); the first pair a line or header has is read (other columns are not).
CAPTION_COLUMNS = ("text", "caption", "prompt")
MANIFEST_KEYS = (("image", "caption"), *(("file_name", c) for c in CAPTION_COLUMNS))
FILE_COLUMNS = ("file_name", "image")
KEYS_SAID = '"file_name" and "text", "caption" or "prompt" (or "image" and "caption")'  # what the readers read


def _manifest_keys(names: object) -> tuple[str, str] | None:
    """The picture and caption columns a manifest line (a JSON object's names) or header (its column names) is
    read by: the first pair of MANIFEST_KEYS it has both of; None where it has none (or is no dict, list or set)."""
    if not isinstance(names, (dict, list, set, frozenset)):
        return None
    return next(((i, c) for i, c in MANIFEST_KEYS if i in names and c in names), None)
MAX_LOOKED_AT = 16  # .jsonl files beside pictures without a caption whose first line is read (up to 1 MB each)
# The end of a line that breaks a sentence off: a comma, colon, semicolon, dash, slash or ampersand, or a word
# that begins a phrase (an article, a conjunction, a preposition that needs its object, a possessive). A caption
# rarely ends so, and the procedural world's and the icons' never do (BENCHMARKS.md "Wrapped captions and
# unknown words").
_OPEN_END = re.compile(r"(?:[,;:/&\-\u2013\u2014]|(?<![\w'-])(?:a|an|the|and|or|but|nor|of|with|from|into|onto|to|in|"
                       r"at|for|than|its|their|his|my|your|our))\Z", re.IGNORECASE)


WRAP_WORDS = 4  # words of a line, at least, for _wrapped_at to read it as cut (a wrap leaves long lines)


def _wrapped_at(lines: list[str]) -> int | None:
    """Where a caption file's lines look like one caption wrapped over several (an editor's hard wrap, which
    makes each piece a caption of its own): the first line of WRAP_WORDS words or more that ends open
    (_OPEN_END) and is followed by a line starting with a lowercase letter and another word than it starts with;
    None when there is none (distinct captions, one a line, end whole; a short one may end in a particle, "zoom
    in"; captions of one pattern, "picture 1 caption a" / "picture 1 caption b", start alike)."""
    for i in range(len(lines) - 1):
        words, after = lines[i].split(), lines[i + 1].split()
        if after[0][:1].islower() and after[0] != words[0] and len(words) >= WRAP_WORDS \
                and _OPEN_END.search(lines[i]):
            return i
    return None


def _words(line: str, n: int) -> str:
    """The first n words of a line (the last -n when n < 0), with ... where more were left out."""
    words = line.split()
    if len(words) <= abs(n):
        return line
    return " ".join(words[:n]) + " ..." if n > 0 else "... " + " ".join(words[n:])


def _wrapped_note(n: int, example: str) -> str:
    """The summary's words for n caption files that look wrapped (_wrapped_at), example the first of them."""
    if not n:
        return ""
    return (f"; {counted(n, 'caption file')} {'looks' if n == 1 else 'look'} like one caption wrapped over several "
            f"lines, {'its' if n == 1 else 'their'} lines read as captions of their own "
            f"({'' if n == 1 else 'e.g. '}{example}): write each caption on one line")


def _several_note(n: int, example: str) -> str:
    """The summary's words for n pictures captioned in more than one place (a .txt and a manifest row, or two
    manifests), example the first of them."""
    if not n:
        return ""
    return (f"; {counted(n, 'picture')} {'is' if n == 1 else 'are'} captioned in more than one place (a .txt "
            f"caption and a manifest, or two manifests): {'its' if n == 1 else 'their'} captions from every place "
            f"are used, each once ({'' if n == 1 else 'e.g. '}{example})")


def parquet_manifests(files: list[Path]) -> list[Path]:
    """The metadata.parquet files (any letter case) among a folder's files (files_under) that no metadata.jsonl or
    metadata.csv sits beside: a Hugging Face imagefolder's captions in the one manifest format t2i cannot read."""
    beside = {p.parent for p in files if p.name.lower() in FOLDER_MANIFESTS}
    return sorted(p for p in files if p.name.lower() == PARQUET_MANIFEST and p.parent not in beside)


def _parquet_above(folder: Path) -> Path | None:
    """A metadata.parquet in one of the ABOVE_LEVELS folders above folder, with no metadata.jsonl or .csv beside it
    (the nearest); None where there is none."""
    for up in itertools.islice(Path(os.path.abspath(folder)).parents, ABOVE_LEVELS):
        try:
            names = os.listdir(up)
        except OSError:
            continue
        if not any(n.lower() in FOLDER_MANIFESTS for n in names) and (
                parquet := next((n for n in sorted(names) if n.lower() == PARQUET_MANIFEST), None)) is not None:
            return up / parquet
    return None


def parquet_said(parquet: Path, folder: Path) -> str:
    """What is said of a metadata.parquet in (or above) folder that t2i cannot read: that, what t2i reads meanwhile,
    and one command converting it to the metadata.jsonl beside it (with pandas and pyarrow)."""
    jsonl = parquet.with_name("metadata.jsonl")
    code = (f"import pandas; pandas.read_parquet({json.dumps(str(parquet))}).to_json({json.dumps(str(jsonl))}, "
            f'orient="records", lines=True, force_ascii=False)')
    above = Path(os.path.abspath(parquet.parent)) in Path(os.path.abspath(folder)).parents
    meanwhile = ", only the pictures' .txt captions"
    return (f"{parquet} is a Parquet manifest, which t2i cannot read (it reads metadata.jsonl and metadata.csv): its "
            f"captions are not used{'' if above else meanwhile}; convert it to a "
            f"metadata.jsonl beside it, with pandas and pyarrow: python -c {shell_word(code)}"
            + (f", then give {shell_word(parquet.parent)} as the source" if above else ""))


def _above_note(said: str | None) -> str:
    """The summary's words for a manifest above the folder naming its pictures without a caption (_rows_above)."""
    return "" if said is None else f"; {said}"


def _row_needles(folder: Path) -> tuple[str, ...]:
    """What a manifest above folder's row naming one of its pictures holds, whatever way it is written (relative to
    the manifest's folder, absolute, with backslashes): folder's name, its accents composed or decomposed; () where
    that cannot be told from the row's text (no name; one JSON writes escaped, a quote, a backslash, a control
    character)."""
    name = folder.name
    if not name or any(ch in '"\\' or ord(ch) < 0x20 for ch in name):
        return ()
    return tuple({unicodedata.normalize(form, name) for form in ("NFC", "NFD")})


def _not_utf8_manifest(manifest: Path) -> bool:
    """Whether a manifest's first MAX_ABOVE bytes are not UTF-8 (a spreadsheet's CSV saved as Latin-1 or Windows'
    code page); False where it cannot be read."""
    import codecs

    try:
        with open(manifest, "rb") as f:
            codecs.getincrementaldecoder("utf-8")().decode(f.read(MAX_ABOVE))  # (a character cut at the end: not final)
    except UnicodeDecodeError:
        return True
    except OSError:
        pass
    return False


NOT_JSON_LINE = "manifest line not JSON in UTF-8"
NO_KEYS_LINE = ('manifest line without both "image" and "caption" (or "file_name" and "text", "caption" or '
                '"prompt"; names are case-sensitive)')
LONG_LINE = f"manifest line over {MAX_MANIFEST_LINE >> 20} MiB"
CSV_SHORT_ROW = "manifest row without a picture or a caption column"


def _pieces_above(f: BinaryIO, raw_needles: tuple[bytes, ...], ended: list) -> Iterator[tuple[int, bytes]]:
    """(line, piece) for the pieces f.readline(MAX_MANIFEST_LINE) reads of a manifest above a folder, up to the one
    holding its byte MAX_ABOVE, that hold one of raw_needles or a JSON escape ("\\u"): the only ones that may name a
    picture of the folder (all of them without needles); ended[0] is set to whether more follows that last piece (it
    stays None where the manifest ends first). The pieces are found by a byte search of the first MAX_ABOVE bytes
    (and the rest of the last piece), not read a line at a time: four 20 MB parts of a scraped dataset above the
    folder, their lines naming other folders, were a readline each, 4 s of `data preview` (1 s now:
    bench/manifest_above_cost.py)."""
    if not raw_needles:
        line = 1
        for raw in iter(lambda: f.readline(MAX_MANIFEST_LINE), b""):
            yield line, raw
            line += raw.endswith(b"\n")
            if f.tell() > MAX_ABOVE:
                ended[0] = bool(f.read(1))
                return
        return
    most = MAX_MANIFEST_LINE
    data = f.read(MAX_ABOVE + most + 1)

    def piece_at(at: int) -> tuple[int, int]:  # the piece holding byte at, as readline(most) cuts the file
        start = data.rfind(b"\n", 0, at) + 1
        start += (at - start) // most * most
        end = data.find(b"\n", start, start + most)
        return start, start + most if end < 0 else end + 1

    stop = len(data)
    if len(data) > MAX_ABOVE:
        stop = min(piece_at(MAX_ABOVE)[1], len(data))
    # (in order, each needle's next place kept: every piece's start was held in a set, as many as the lines, several
    # dozen bytes each for 16 MiB of two-byte lines holding the folder's name, "a")
    needles = (*raw_needles, b"\\u")
    nexts = [data.find(needle, 0, stop) for needle in needles]
    line, counted_to = 1, 0
    while (found := [at for at in nexts if at >= 0]):
        start, end = piece_at(min(found))
        line += data.count(b"\n", counted_to, start)
        counted_to = start
        yield line, data[start:min(end, stop)]
        nexts = [at if at < 0 or at >= end else data.find(needle, end, stop)
                 for at, needle in zip(nexts, needles, strict=True)]
    if len(data) > MAX_ABOVE:
        ended[0] = len(data) > stop


class _Utf8Head:
    """A manifest open to read (readline, read, tell, as _rows_above reads it) that tells, as its bytes are read,
    whether its first MAX_ABOVE bytes are UTF-8 (what _not_utf8_manifest reads the file again for): not_utf8 is
    True or False once they are all read (or the file ended), else None."""

    def __init__(self, f: BinaryIO):
        import codecs

        self.f, self.seen, self.ended, self.bad = f, 0, False, False
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def _fed(self, data: bytes) -> bytes:
        if not data:
            self.ended = True
        elif self.seen < MAX_ABOVE and not self.bad:
            try:  # (a character cut at MAX_ABOVE: not final, as _not_utf8_manifest reads it)
                self.decoder.decode(data[:MAX_ABOVE - self.seen])
            except UnicodeDecodeError:
                self.bad = True
        self.seen += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        return self._fed(self.f.readline(size))

    def read(self, size: int = -1) -> bytes:
        data = self._fed(self.f.read(size))
        if size < 0 or len(data) < size:  # (a short read of a file: its end, _pieces_above reads it whole)
            self.ended = True
        return data

    def tell(self) -> int:
        return self.f.tell()

    @property
    def not_utf8(self) -> bool | None:
        return True if self.bad else False if self.ended or self.seen >= MAX_ABOVE else None


_JSON_ESCAPE = re.compile(r'\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])')
_HIGH_SURROGATE = re.compile("[\ud800-\udbff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as Python's surrogate escape holds it
_ESCAPED = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_strings(text: str) -> Iterator[tuple[int, int, bool]]:
    """Each JSON string of a line's text, in order: where its text begins and ends (after its opening quote, before
    its closing one, or the text's end) and whether it is closed; a quote after an odd run of backslashes is
    escaped. Found by find, in no more memory than the line's (a regular expression's repeat of one character or
    an escape held its place for each: 103-123 MiB traced for one string of 900 kB of a line that is not JSON in a
    manifest above a folder, 17 MiB now, its read buffer: bench/json_strings_memory.py)."""
    at = text.find('"')
    while at >= 0:
        i = at + 1
        close = text.find('"', i)
        while close >= 0 and (close - i - len(text[i:close].rstrip("\\"))) % 2:  # (escaped: an odd run of \ before)
            i = close + 1
            close = text.find('"', i)
        yield at + 1, len(text) if close < 0 else close, close >= 0
        at = -1 if close < 0 else text.find('"', close + 1)


def _unescaped(text: str) -> str:
    """A JSON string's text (or a line's) with JSON's escapes read as what they stand for, in either letter case
    (\\u00e9 and \\u00E9 as é, a pair of \\u escapes as the one character they make, \\/ as /), then its accents
    composed (NFC: e\\u0301 as é); another backslash is kept as written (a Windows path, train\\a.png, in a line that
    is not JSON). Text without a backslash is returned as it is."""
    if "\\" not in text:
        return text
    text = _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else _ESCAPED[m[2]], text)
    if _HIGH_SURROGATE.search(text):  # (a high surrogate: an escaped pair, made the one character it stands for)
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _rows_above(manifest: Path, wanted: set[str], needles: tuple[str, ...] = (),
                latin: bool = False, head: list[_Utf8Head | None] | None = None
                ) -> tuple[set[str], bool, dict[str, tuple[int, str]]]:
    """Those of wanted (pictures of the folder without a caption, by _key) that rows of a manifest above a folder
    name with a caption (a row whose caption is empty holds none: the folder given was refused, and the one
    named, read, left the picture out as an "empty caption"), in its first MAX_ABOVE bytes, whether it holds
    more, and its lines left out that may name pictures of the folder (holding one of needles: not JSON, without a
    picture and a caption, ...; what refuses the whole manifest, a CSV it cannot read, under its reader's words):
    reason -> (how many, the first), as a folder's own manifests' (Skips.manifest_lines); (set(), False, {}) where
    it is no caption manifest (it is read only to say where to look: training on it refuses what is wrong in it). A
    row without any of needles (_row_needles) names none of them, and is not parsed (_pieces_above): a folder's
    uncaptioned picture had every manifest above it parsed to 16 MiB each, a .jsonl of another name too (16 of a
    folder: a scraped dataset's parts beside the folder, 1.5 s each, to find nothing). head, where given: its first
    item set to the _Utf8Head the manifest is read through (whether its first MAX_ABOVE bytes are UTF-8, told from
    the bytes read; None where it could not be opened)."""
    import csv

    n: set[str] = set()
    left: dict[str, tuple[int, str]] = {}
    # ... also as Windows' Latin-1 writes it (a line of "\xe9t\xe9/..." in a manifest otherwise UTF-8 whose other
    # lines name pictures here, so that it is not read again as Latin-1: the line was not found, and its picture
    # captioned by name unsaid); a name of ASCII alone has one form
    raw_needles = tuple(dict.fromkeys([*(needle.encode("utf-8") for needle in needles),
                                       *filter(None, map(_cp1252, needles))]))
    # a line left out "may name" a picture of the folder where the folder's name is in it as a path's part: at the
    # start of a name (after no letter, digit, _, . or - of one: a quote, a separator, a space, a colon, ...) and
    # followed by / or \ (a caption's word, "a red train", made its lines left out refuse `data caption train`; a
    # name after a colon, the unquoted {"file_name":train/a.png} typed by hand, went unsaid); a parsed row, where one
    # of its strings names one of wanted (names_wanted)
    in_path = re.compile(b"|".join(rb"(?<![\w.\x80-\xff-])" + re.escape(needle) + rb"[/\\]"
                                   for needle in raw_needles)) if raw_needles else None

    # ... in a line that is not JSON, after its JSON escapes are read (a name JSON writes escaped, "\u00e9t\u00e9/",
    # as Python's json.dumps writes any accent, was not found by the bytes of "été/"); and a string of it that holds
    # the name, that is whole (its closing quote there) and names an existing file that is no picture wanted (one
    # with a caption: "train/red-bird.png" beside red-bird.txt) is no line that may caption a picture of the folder:
    # it refused `data caption` for a line that, fixed, captions a picture that has its caption, not one to write
    # (the needles as given, composed and decomposed, and the NFC form _unescaped gives an escaped name)
    # (and Latin-1's bytes of the name as the line's text holds them, each byte that is not UTF-8 as its surrogate
    # escape: "\xe9t\xe9\\blue-fish.png", a Windows path, was not found, the line's backslash sending it here)
    in_text = re.compile("|".join(r"(?<![\w.\u0080-\U0010ffff-])" + re.escape(needle) + r"[/\\]"
                                  for needle in sorted({*needles, *(unicodedata.normalize("NFC", needle)
                                                                    for needle in needles),
                                                        *(needle.decode("utf-8", "surrogateescape")
                                                          for needle in raw_needles)}))) if needles else None
    wanted_folded = {k.casefold() for k in wanted}
    wanted_ids: list[set[tuple[int, int]]] = []  # (device, inode) of each picture wanted, made once when first asked

    others: dict[str, bool] = {}  # path -> names_other's answer (a stat each path once: many lines name one)

    def existing_other(path: str) -> bool | None:  # (names_other's answer; None where no such file is there)
        key = _above_key(manifest, path.strip())
        if not path.strip() or key in wanted or key.casefold() in wanted_folded:
            return False
        if (st := _stat_or_none(key)) is None:
            return None
        if not stat.S_ISREG(st.st_mode):
            return False
        if not wanted_ids:
            wanted_ids.append({(w.st_dev, w.st_ino) for k in wanted if (w := _stat_or_none(k)) is not None})
        return (st.st_dev, st.st_ino) not in wanted_ids[0]

    def names_other(path: str) -> bool:  # (an existing picture, none of wanted by its path, its case or its inode)
        if not path.rstrip().lower().endswith(images.IMAGE_SUFFIXES):  # (a caption's words: no stat)
            return False
        if path in others:
            return others[path]
        other = existing_other(path)
        if other is None and _ESCAPED_BYTE.search(path):
            # ... a name of bytes that are not UTF-8, of no file, read as Windows' Latin-1, as a manifest all in it is
            # ("\xe9t\xe9/red-bird.png", beside red-bird.txt, refused in a manifest whose other lines are UTF-8)
            other = existing_other(path.encode("utf-8", "surrogateescape").decode("cp1252", "replace"))
        if len(others) < 4096:
            others[path] = bool(other)
        return bool(other)

    def may_name(raw: bytes) -> bool:
        if in_path is None or in_text is None:
            return True
        if b"\\" not in raw:  # (no escape: each mention of the folder is inside a string, or not, by the quotes before)
            return any(string is None or not names_other(string.decode("utf-8", "surrogateescape"))
                       for string in _strings_mentioning(raw, in_path))
        text, end = raw.decode("utf-8", "surrogateescape"), 0

        def mentions(part: str) -> bool:  # (as its escapes read, or as written: a Windows path, "train\new.png",
            # whose "\n" read as an escape is no "train\" any more, was not found, and the picture captioned unsaid)
            return in_text.search(_unescaped(part)) is not None or in_text.search(part) is not None

        for start, stop, closed in _json_strings(text):
            # (a name outside any string: {"file_name":train/a.png} typed unquoted)
            if mentions(text[end:start - 1]):
                return True
            end = stop + closed
            if mentions(text[start:stop]) and not (closed and names_other(_unescaped(text[start:stop]))):
                return True
        return mentions(text[end:])

    def names_wanted(row: dict) -> bool:  # (a row without a picture's name t2i reads: any of its strings, as a path)
        return any(isinstance(v, str) and v.strip() and _above_key(manifest, v.strip()) in wanted
                   for v in row.values())

    def line_left(why: str, line: int) -> None:
        count, first = left.get(why, (0, f"{manifest} line {line}"))
        left[why] = (count + 1, first)

    more_after = False
    try:
        with _open_manifest(manifest, "") as opened:
            f = opened if latin or head is None else _Utf8Head(opened)
            if head is not None and not latin:
                head[0] = f  # (read after, whatever way this returns)
            if latin:  # (one not UTF-8, read as Windows' Latin-1 to tell whether it names them: _not_utf8_manifest)
                text, more_after = f.read(MAX_ABOVE), bool(f.read(1))
                f = io.BytesIO(text.decode("cp1252", "replace").encode("utf-8"))
            if manifest.suffix.lower() == ".csv":
                fed = [0]
                lines = _csv_lines(f, manifest, fed)
                delimiter, names, first = _csv_header(lines, manifest)
                if (keys := _manifest_keys(names)) is None:
                    return set(), False, {}
                at = names.index(keys[0]), names.index(keys[1])
                reader = csv.reader(lines, delimiter=delimiter)
                for row in reader:
                    fed[0] = 0
                    # (a row's cells made paths only where it is short: each cell of every row, 2.83 s of CPU for a
                    # 16 MiB manifest above, 0.64 s now, bench/rows_above_csv.py)
                    if (len(row) <= max(at) or not row[at[0]].strip()) and any(cell.strip() for cell in row) and (
                            not needles or any(_above_key(manifest, cell.strip()) in wanted for cell in row
                                               if cell.strip())):  # (a blank row is passed over, as read)
                        line_left(CSV_SHORT_ROW, reader.line_num + first)
                    elif len(row) > max(at) and not blank(row[at[1]]) \
                            and (not needles or any(needle in row[at[0]] for needle in needles)) \
                            and (k := _above_key(manifest, row[at[0]].strip())) in wanted:
                        n.add(k)
                    if f.tell() > MAX_ABOVE:
                        return n, bool(f.read(1)), left
            else:
                ended: list = [None]
                counted_at = 0  # (the line last counted: a line over 1 MiB is read in pieces, in order)
                for line, raw in _pieces_above(f, raw_needles, ended):
                    try:  # (a line training leaves out is passed over here too: one ended the count, hint unsaid)
                        # (a name JSON escapes, "\u00e9", is looked for in the line parsed)
                        row = json.loads(raw) if raw.strip() and (not raw_needles or b"\\u" in raw or any(
                            needle in raw for needle in raw_needles)) else None
                    except (ValueError, RecursionError):
                        row = None
                        if line != counted_at and may_name(raw):
                            counted_at = line
                            line_left(LONG_LINE if len(raw) >= MAX_MANIFEST_LINE and not raw.endswith(b"\n")
                                      else NOT_JSON_LINE, line)
                    keys = _manifest_keys(row)
                    if keys is None and isinstance(row, dict) and line != counted_at \
                            and (not raw_needles or names_wanted(row)):
                        counted_at = line
                        line_left(MISPAIRED_LINE if _unread_kind(list(map(str, row))) == MISPAIRED else NO_KEYS_LINE,
                                  line)
                    if keys is not None and isinstance(row[keys[0]], str) and _holds_caption(row[keys[1]]) and \
                            (k := _above_key(manifest, row[keys[0]])) in wanted:
                        n.add(k)
                if ended[0] is not None:
                    return n, ended[0], left
    except DataError as e:  # (the whole manifest refused by its reader: said in its words)
        left[""] = (0, str(e))
    except (OSError, ValueError, RecursionError, csv.Error):
        pass
    return n, latin and more_after, left


def _strings_mentioning(raw: bytes, in_path: re.Pattern[bytes]) -> Iterator[bytes | None]:
    """For each mention of the folder in_path finds in raw (a manifest line without a backslash), in order: the
    whole string holding it (between its quotes), or None where it is outside a string (by the quotes before it) or
    in one cut (no closing quote). The quotes before each are counted on from the one before (a 1 MiB line of
    "train/red-bird.png", ... had them counted from its start at each mention: 6 s of CPU a line)."""
    quotes, counted = 0, 0
    for m in in_path.finditer(raw):
        quotes, counted = quotes + raw.count(b'"', counted, m.start()), m.start()
        if quotes % 2 == 0 or (end := raw.find(b'"', m.end())) < 0:
            yield None
        else:
            yield raw[raw.rfind(b'"', 0, m.start()) + 1:end]


def _cp1252(text: str) -> bytes | None:
    """text as Windows' code page 1252 (Latin-1) writes it; None where it holds a character that has no byte there."""
    try:
        return text.encode("cp1252")
    except UnicodeEncodeError:
        return None


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _above_key(manifest: Path, path: str) -> str:
    """A manifest above the folder's row's picture path, by _key; written with Windows' separators (train\\a.png)
    as it means there, where they are none (so its picture is left as it is, and the folder to give, where the row
    is told to write /, said)."""
    return _key(manifest.parent / (path.replace("\\", "/") if os.sep == "/" else path))


def _holds_caption(caption: object) -> bool:
    """Whether a JSONL manifest row's caption (a string or a list of strings) holds one that is not blank."""
    captions = [caption] if isinstance(caption, str) else caption if isinstance(caption, list) else []
    return any(isinstance(c, str) and not blank(c) for c in captions)


def _key(path: Path) -> str:
    """A path as a manifest's row is matched to a picture: absolute, its accents composed (NFC)."""
    return unicodedata.normalize("NFC", os.path.abspath(path))


# The summary's words for a metadata.jsonl or .csv beside pictures without a caption whose columns t2i does not read
# (_columns_unread), given the first such, with its columns: a picture column but no caption column; a caption column
# but no picture column ("filename,text"); a picture and a caption column that do not pair ("image,text")
COLUMN_NOTES = {
    NO_CAPTION_COLUMN: lambda m: (f"; {m} has no caption column t2i reads, so it is not read: a manifest's columns "
                                  f"are {KEYS_SAID}: name its caption column so (a classification's label is no "
                                  f"caption)"),
    NO_PICTURE_COLUMN: lambda m: (f"; {m} has no picture column t2i reads (\"file_name\" or \"image\"), so it is not "
                                  f"read: a manifest's columns are {KEYS_SAID}: name its picture column so"),
    MISPAIRED: lambda m: (f"; {m} is not read: its picture column \"image\" pairs with \"caption\" only, and "
                          f"\"file_name\" with \"text\", \"caption\" or \"prompt\": name its picture column "
                          f"\"file_name\" (as Hugging Face's imagefolder reads it) or its caption column \"caption\""),
}


def _column_notes(first: dict) -> str:
    """COLUMN_NOTES of the kinds a summary's first examples (Skips.first) hold, in that order."""
    return "".join(said(first[kind]) for kind, said in COLUMN_NOTES.items() if first.get(kind) is not None)


def _columns_unread(path: Path) -> tuple[str, str] | None:
    """A metadata.jsonl's (its first line's names) or metadata.csv's (its header's) columns, said, where it names
    pictures ("file_name" or "image") and a caption column it does not pair with ("image,text": MISPAIRED) or
    none the readers read (NO_CAPTION_COLUMN), or has a
    caption column but no picture column ("filename,text", "file,caption": NO_PICTURE_COLUMN, passed over unsaid);
    None otherwise, or where they cannot be read (one bounded line)."""
    try:
        if path.suffix.lower() == ".csv":
            with _open_manifest(path, "") as f:
                _, names, _ = _csv_header(_csv_lines(f, path, [0]), path)
        else:
            with open(path, "rb") as f:
                row = json.loads(f.readline(MAX_MANIFEST_LINE))
            names = [str(k) for k in row] if isinstance(row, dict) else []
    except (OSError, ValueError, RecursionError, DataError):
        return None
    kind = _unread_kind(names)
    return None if kind is None else (kind, _columns_said(path, names))


def _unread_kind(names: list[str]) -> str | None:
    """Which COLUMN_NOTES a manifest's column names (any letter case) are: a picture column and no caption column,
    a caption column and no picture column, or both but not a pair the readers read; None where they hold a pair,
    or neither."""
    lower = {n.lower() for n in names}
    if _manifest_keys(lower) is not None:
        return None
    if lower & set(FILE_COLUMNS):
        return MISPAIRED if lower & set(CAPTION_COLUMNS) else NO_CAPTION_COLUMN
    return NO_PICTURE_COLUMN if lower & set(CAPTION_COLUMNS) else None


def _columns_said(path: object, names: list[str]) -> str:
    return f"{path} (its columns: {', '.join(map(repr, names[:8]))}{', ...' if len(names) > 8 else ''})"


def _beside_note(manifest: str | None) -> str:
    """The summary's words for a manifest of captions found beside pictures without a .txt caption."""
    if manifest is None:
        return ""
    return (f"; {manifest} beside them is a manifest of captions, which a folder source does not read: give it "
            f"as the source to use it")


def _kept_captions(lines: list[str], where: object, skipped: Skips) -> list[str]:
    """The first MAX_CAPTIONS of a picture's captions; a picture with more counted in skipped (once: its lines
    counted as items read as if pictures were left out)."""
    if len(lines) > MAX_CAPTIONS:
        skipped.add(TOO_MANY_CAPTIONS, where)
    return lines[:MAX_CAPTIONS]


def _caption_lines(text: str) -> list[str]:
    """The non-empty lines of a caption text, each one caption (a UTF-8 byte-order mark is not text). Lines end
    at a line break only (LF, CR LF or CR): str.splitlines also splits at a form feed, U+2028 and other separators,
    which cut one caption into several. A line of characters that draw nothing (a zero-width space, the
    direction marks of Arabic or Hebrew text) is empty, as such a prompt is: it was a caption the tokenizer read as
    an unknown token or a mark, trained on as any other."""
    return [line.strip() for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")) if not blank(line)]


NUL_IN_CAPTION = "a NUL in a caption"


def _caption_text(raw: bytes) -> str:
    """A caption file's text: UTF-8, or UTF-16 where it starts with UTF-16's byte-order mark (what Windows'
    Notepad saves as "Unicode"), or UTF-32 with its own; anything else, or text holding a NUL (UTF-16 without a
    byte-order mark), raises UnicodeDecodeError (no guessing of legacy code pages)."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        text = raw.decode("utf-32")
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8")
    if "\x00" in text:
        raise UnicodeDecodeError("utf-8", raw, raw.find(b"\x00"), raw.find(b"\x00") + 1, NUL_IN_CAPTION)
    return text


def _looks_like_manifest(path: Path, unsure: bool = False, any_case: bool = False) -> bool:
    """Whether a .jsonl file's first line is a manifest's: an object with "image" and "caption", or a Hugging
    Face-style metadata.jsonl's "file_name" and "text" (a run's metrics.jsonl is not). unsure: what a first line
    that is not a JSON object (or a file that cannot be read) says; an object without those names is no manifest
    either way (a Hugging Face classification folder's metadata.jsonl: "file_name" and "label"). any_case: names in
    other letter case too ("File_Name", "Text": a manifest meant, whose reader then says its names are wrong). A
    pipe or a device is none (a pipe named captions.jsonl beside pictures without a caption: its first line was
    waited for, forever)."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            first = f.readline(MAX_MANIFEST_LINE)
        row = json.loads(first)
    except (OSError, ValueError, RecursionError):
        return unsure
    if not isinstance(row, dict):
        return unsure
    names = {str(k).lower() for k in row} if any_case else row
    return _manifest_keys(names) is not None


def caption_beside(picture: Path, empty: bool = False) -> tuple[Path, str] | None:
    """The caption file beside a picture, as a folder of pairs holds it (NAME.txt, or NAME.TXT, its name's accents
    composed or decomposed alike: a Mac's "café.png" beside a "café.txt" written elsewhere), and its first caption
    (line); None where there is none, or it is over MAX_CAPTION_FILE, unreadable or not text, or (unless empty) holds
    no caption, which empty gives as ''."""
    names = dict.fromkeys(picture.with_name(unicodedata.normalize(form, picture.stem) + suffix)
                          for form in ("NFC", "NFD") for suffix in (".txt", ".TXT"))
    for txt in sorted(names, key=lambda t: t.stem != picture.stem):  # its own form first
        try:
            if txt.is_file() and txt.stat().st_size <= MAX_CAPTION_FILE:
                lines = _caption_lines(_caption_text(txt.read_bytes()))
                return (txt, lines[0]) if lines else (txt, "") if empty else None
        except (OSError, UnicodeDecodeError):
            return None
    return None


# A t2i run folder (train.RUN_CONFIG of a stage, files.PLAN of a whole run) inside a data folder holds
# t2i's own samples and plots, not the user's data: a run written into the folder it trains on read them back.
# Recognised by content, not only by name (a folder of pictures may hold an all.json index of its own).
RUN_MARKERS = ("train_config.json", PLAN)


def _is_run_folder(top: Path, names: list[str]) -> bool:
    """Whether a folder holds a t2i run: a train_config.json of one stage or a whole run's all.json, as t2i
    writes them (a dict naming its data source, and its stage or its preset)."""
    stage, plan = RUN_MARKERS
    return ((stage in names and is_own_json(top / stage, lambda d: isinstance(d, dict) and "data" in d
                                            and d.get("stage") in STAGES))
            or (plan in names and is_own_json(top / plan, lambda d: isinstance(d, dict) and "data" in d
                                              and "preset" in d)))


# `t2i rerank --link-best` copies a folder's best pictures into its best/ and names each copy in this record (file
# name -> sha256) there: such a copy, read as data, was "an image without .txt caption" (rerank imports these)
RERANK_COPIES = "t2i-copies.json"


def is_copies_record(obj: object) -> bool:
    """Whether parsed JSON is the RERANK_COPIES record rerank --link-best wrote: file name -> sha256."""
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
                                         for k, v in obj.items())


def rerank_copies(files: list[Path]) -> set[Path]:
    """The files among files that a RERANK_COPIES record beside them names: rerank --link-best's copies."""
    copies: set[Path] = set()
    for record in {p for p in files if p.name == RERANK_COPIES}:
        try:
            made = read_own_json(record)
        except (OSError, ValueError, RecursionError):
            continue
        if is_copies_record(made):
            copies |= {record.parent / Path(name).name for name in made}
    return copies & set(files)


PREVIEW_NAME = "preview.png"  # what `t2i data preview` names its sheet by default (in a folder given as --out)


def _t2i_sheet(path: Path) -> bool:
    """Whether a picture is a contact sheet t2i wrote (rerank's --top sheets and --explain strips, --grid sheets:
    outputs.is_t2i_sheet, by its PNG text; data preview's sheets too: only a PNG named as t2i names a new file,
    NAME-NNN.png, or preview.png is opened)."""
    from t2i_cli.outputs import is_t2i_sheet

    if not (re.search(r"-\d{3,}\.png$", path.name, re.IGNORECASE) or path.name.lower() == PREVIEW_NAME):
        return False
    try:
        text = images.read_png_text(path)
    except DataError:
        return False
    # (a preview.png of t2i before 0.13.2 is known by its "source" text alone)
    return is_t2i_sheet(text, path) or (path.name.lower() == PREVIEW_NAME and "source" in text)


def _marked_sheet(path: Path) -> bool:
    """Whether a PNG of any name is marked as a contact sheet t2i wrote in the text before its pixels (where t2i
    writes it: nothing is decoded); _t2i_sheet opens only the names t2i gives."""
    from t2i_cli.outputs import SHEET_KEY

    if path.suffix.lower() != ".png":
        return False
    try:
        with images.opened(path) as im:
            return im.format == "PNG" and bool(im.info.get(SHEET_KEY))
    except (OSError, SyntaxError, ValueError, images.Image.DecompressionBombError,
            images.Image.DecompressionBombWarning):
        return False


def files_under(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Every file under folder, recursively, through symbolic links to folders too (a folder of links to
    where the pictures live is common); each real folder is read once, so a link back up the tree is no loop
    and two links to one folder do not list its pictures twice. Also the t2i run folders below folder
    (RUN_MARKERS), which are not read, and the folders that could not be listed (no permission). The files
    include what is not a regular file (a link to a missing file, a pipe, a device), never read."""
    seen, files, runs, unreadable = set(), [], [], []
    for top, dirs, names in os.walk(folder, followlinks=True,
                                    onerror=lambda e: unreadable.append(Path(e.filename or folder))):
        st = os.stat(top)
        # a folder is known by its number; some network and FAT file systems number every folder 0: by its real
        # path there (all but the first folder were skipped as read; a link up the tree is still no loop)
        key = (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(top)
        if key in seen:
            dirs.clear()  # already read through another path: not again, and not below it
            continue
        seen.add(key)
        if Path(top) != Path(folder) and _is_run_folder(Path(top), names):
            dirs.clear()
            runs.append(Path(top))
            continue
        files += [Path(top, name) for name in names]
    return files, runs, sorted(unreadable)


def _in_other_form(path: Path) -> Path | None:
    """path in the other Unicode form, where only that exists: a manifest written on Linux or Windows names "thé.png"
    composed (NFC) where macOS, or a zip made there, wrote the file decomposed (NFD), or the other way round; the
    two look alike everywhere, and the picture was a "missing image". Each part of the path is matched on its own:
    the folder above the manifest may be in one form and the picture's name in the other (a folder made on a Mac,
    the pictures saved again elsewhere), which a form of the whole path missed."""
    at = Path(path.anchor)
    for part in path.parts[1:] if path.anchor else path.parts:
        forms = dict.fromkeys((part, unicodedata.normalize("NFC", part), unicodedata.normalize("NFD", part)))
        at = next((at / f for f in forms if os.path.lexists(at / f)), None)
        if at is None:
            return None
    return at if at != path else None


# A manifest's path to a picture whose name on disk differs in letter case alone (a manifest written on macOS or
# Windows, whose file systems call them one name, read on Linux): not read, as Hugging Face's imagefolder does not
# read it there, but said with the file's name (it was "a missing image" beside the picture)
MISCASED = "missing image whose path differs from a file's in letter case alone (names are case-sensitive here: " \
           "write the file's name in the manifest)"
BACKSLASHED = "missing image (its path holds a \\, which is no folder separator here: write /)"


def _in_other_case(path: Path, listings: dict[Path, dict[str, list[str]]]) -> Path | None:
    """The one file whose path differs from path in letter case alone (or the Unicode form of its accents), each
    part matched on its own; None where there is none, or several (IMG.png and img.png: which one is not guessed).
    A folder's names are listed once (listings: its folded names -> names), so a manifest of many such rows stays
    linear."""
    at = Path(path.anchor)
    for part in path.parts[1:] if path.anchor else path.parts:
        if os.path.lexists(at / part):
            at = at / part
            continue
        if at not in listings:
            try:
                names = os.listdir(at)
            except OSError:
                names = []
            listings[at] = {}
            for name in names:
                listings[at].setdefault(_folded(Path(name)).name, []).append(name)
        alike = listings[at].get(_folded(Path(part)).name, [])
        if len(alike) != 1:
            return None
        at = at / alike[0]
    return at if at != path and at.is_file() else None


def _folded(stem: Path) -> Path:
    """A picture's or caption's stem as macOS' and Windows' file systems compare names: letter case aside, and
    composed (NFC) or decomposed (NFD) accents alike ("café.png" from a Mac beside a "café.txt" written elsewhere)."""
    return stem.parent / unicodedata.normalize("NFC", unicodedata.normalize("NFC", stem.name).casefold())


def _folded_path(path: Path) -> str:
    """A path as macOS' and Windows' file systems compare it, every part of it: absolute, letter case aside, composed
    (NFC) or decomposed accents alike."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", os.path.abspath(path)).casefold())


def _folder_manifests(files: list[Path]) -> list[Path]:
    """The Hugging Face-style manifests a folder source reads among its files (regular ones): metadata.jsonl and
    metadata.csv (any letter case), unless one holds no captions (a classification folder's "file_name" and
    "label"); one that cannot be read as a manifest is read all the same, so that its reader refuses it, naming
    what to fix, and so is a metadata.jsonl whose names are those in other letter case ("File_Name", "Text": it was
    passed over unsaid, and the folder's pictures were said to be without captions)."""
    return sorted(p for p in files if p.name.lower() in FOLDER_MANIFESTS
                  and (_looks_like_csv_manifest(p) if p.suffix.lower() == ".csv"
                       else _looks_like_manifest(p, True, any_case=True)))


def _manifest_rows(folder: Path, manifests: list[Path], pictures: list[Path], listed: list[Path], runs: list[Path],
                   skipped: Skips, unread: list[Path] | None = None,
                   ) -> tuple[dict[Path, list[tuple[Path, list[str]]]], list[tuple[Path, list[str]]]]:
    """The rows of a folder's manifests (each read by its own reader, what it leaves out counted in skipped): for
    each picture of the folder one names, (manifest, captions) of every such row; and the rows that name no
    picture of the folder, none of its files and nothing outside it or in a run folder below it (a missing
    picture, a folder), for open_source to count as a manifest source counts them. A row's picture is found by its
    path, relative to the manifest's folder, in a dictionary (its accents composed or decomposed alike, as
    open_source finds a manifest's picture): linear in rows and pictures. unread: where given, a manifest that cannot
    be read (DataError) is added to it and passed over, its rows unread (rerank: one broken metadata.csv in a
    sub-folder left every picture of the others without a prompt); else its DataError is raised."""
    key = _key
    real_dirs: dict[str, str] = {}

    def real(path: str) -> str:  # (a folder's real path once: a scan's pictures are in a few folders)
        head, name = os.path.split(path)
        if head not in real_dirs:
            real_dirs[head] = unicodedata.normalize("NFC", os.path.realpath(head))
        return os.path.join(real_dirs[head], name)

    # Two pictures whose names differ in the form of their accents alone (café.png composed and decomposed, which
    # Linux holds apart) are each found by their exact path, and by the other form by neither: they shared one
    # entry, the one a row named took both rows' captions and the other was "without a caption"
    exact = {os.path.abspath(p): p for p in pictures}
    by_key: dict[str, Path | None] = {}
    for p in pictures:
        by_key[key(p)] = p if key(p) not in by_key else None  # (None: several, none of which is guessed)
    # ... and by their real paths, made only when a row names none of them as listed: a row may name a picture
    # through another path to its folder (the source given as a link, ~/data -> /mnt/data, and the manifest's
    # paths absolute and real; a folder linked inside it) that the scan listed once, by the path it walked
    by_real: dict[str, Path] | None = None
    inside = os.path.join(key(folder), "")
    inside_real = os.path.join(unicodedata.normalize("NFC", os.path.realpath(folder)), "")
    run_keys = {key(r) for r in runs}
    listed_keys: set[str] | None = None  # every file the scan listed, made only when a row names none of its pictures
    # ... and its pictures by their paths folded (letter case, accents' form), made only when a row names none
    by_fold: dict[str, Path | None] | None = None
    named: dict[Path, list[tuple[Path, list[str]]]] = {}
    left: list[tuple[Path, list[str]]] = []
    for manifest in manifests:
        try:
            rows, said = _scan_csv(manifest, skipped.keep_every) if manifest.suffix.lower() == ".csv" else \
                _scan_manifest(manifest, skipped.keep_every, trim=False)  # (a CSV row holds one caption)
        except DataError:
            if unread is None:
                raise
            unread.append(manifest)
            continue
        skipped.merge(said)
        for why, n in said.items():
            if why not in NOTES and why not in (TOO_MANY_CAPTIONS, URL_ROW):  # (a URL names no picture to caption)
                skipped.line_left(why, said.first.get(why, str(manifest)), n)
        for (image, captions), line in zip(rows, said.lines, strict=True):
            at = key(image)
            picture = exact.get(os.path.abspath(image)) or by_key.get(at)
            if picture is None and by_key.get(at, False) is not None:  # (not where the folder holds several forms)
                if by_real is None:
                    by_real = {}
                    for p in pictures:
                        by_real[real(key(p))] = p if real(key(p)) not in by_real else None
                picture = by_real.get(real(at))
            if picture is not None:
                named.setdefault(picture, []).append((manifest, captions))
                if not captions:
                    skipped.empty_rows.setdefault(picture, f"{manifest} line {line}")
                continue
            where = f"{image} (named in {manifest} line {line})"
            if os.sep == "/" and str(image).startswith("//") and _NETWORK.match(str(image)) and not image.exists():
                # a network path written with forward slashes (//server/share/a.png) is no picture outside the folder
                # (give the manifest alone, which reads none either) but a Windows one, said as \\server\share is
                skipped.line_left(NETWORK_PATH, where)
                left.append((image, _kept_captions(captions, image, skipped)))
                skipped.rows_left_at.append(f"{manifest} line {line}")
            elif not (at.startswith(inside) or real(at).startswith(inside_real)) and at != key(folder):
                # (the folder itself: a path naming a folder)
                skipped.add(OUTSIDE_ROW, where)
            elif run_keys and any(str(q) in run_keys for q in Path(at).parents):
                skipped.add(RUN_ROW, where)
            else:
                if listed_keys is None:
                    listed_keys = {key(p) for p in listed}
                if by_fold is None:
                    by_fold = {}
                    for p in pictures:
                        folded = _folded_path(p)
                        by_fold[folded] = p if folded not in by_fold else None
                if at in listed_keys:
                    skipped.add(NOT_PICTURE_ROW, where)
                elif (other := by_fold.get(_folded_path(image))) is not None:
                    # a picture of the folder named in other letter case alone (IMG_1.PNG for img_1.png): told here,
                    # from the scan's names, as the file system of Linux tells it (_in_other_case); one of macOS or
                    # Windows, which finds img_1.png by either name, read the row's picture and counted the same
                    # picture as without a caption too
                    _row_of_a_picture(skipped, MISCASED, f"{image} (named in {manifest} line {line}; on disk: {other})",
                                      key(other))
                elif os.sep == "/" and "\\" in str(image) and (other := by_key.get(
                        key(Path(str(image).replace("\\", "/"))))) is not None:
                    # ... or with Windows' separators (train\a.png, a manifest written on Windows): it was a "missing
                    # image" whose picture was also "without a caption", and `data caption` captioned it by its name
                    _row_of_a_picture(skipped, BACKSLASHED, f"{image} (named in {manifest} line {line}; on disk: "
                                                            f"{other})", key(other))
                else:  # (read untrimmed: trimmed here, as the manifest source trims its rows)
                    if windows := _windows_path(image):
                        # a Windows drive's path (C:\\ds\\train\\a.png) or network path (\\\\server\\ds\\a.png) may
                        # name a picture of the folder: a line left out that `data caption` refuses to caption by
                        # name beside (counted as ever, below)
                        skipped.line_left(windows, where)
                    left.append((image, _kept_captions(captions, image, skipped)))
                    skipped.rows_left_at.append(f"{manifest} line {line}")
    return named, left


def _row_of_a_picture(skipped: Skips, why: str, where: str, picture: str) -> None:
    """A folder's manifest row left out (why) that names one of its pictures (by _key) in another form than its
    path (letter case, Windows' backslashes): counted, the picture among those whose caption is there (no "t2i data
    caption" suggested where all are such), and the row among the manifests' lines left out, which `t2i data
    caption` refuses to caption by name beside (it captioned the picture by its name: once the row was fixed, it
    trained under both captions)."""
    skipped.add(why, where)
    skipped.miscased.add(picture)
    skipped.line_left(why, where)


def manifest_prompts(folder: Path, files: list[Path],
                     runs: list[Path]) -> tuple[dict[Path, str], list[Path], list[Path]]:
    """The first caption of each picture among files (files_under(folder)) that the folder's Hugging Face-style
    manifests name, as training reads them (_folder_manifests, _manifest_rows: a row's path relative to its
    manifest's folder, its accents either way), those manifests, and those among them that cannot be read (each
    passed over alone: the others' prompts are still read); for rerank, whose prompt of a picture without PNG text
    or a caption file beside it is there."""
    manifests = _folder_manifests([p for p in files if p.name.lower() in FOLDER_MANIFESTS and p.is_file()])
    if not manifests:  # (a stat of each file only where there is one)
        return {}, [], []
    regular = [p for p in files if p.is_file()]
    unread: list[Path] = []
    named, _ = _manifest_rows(Path(folder), manifests, [p for p in regular if p.suffix.lower() in
                                                        images.IMAGE_SUFFIXES], regular, runs, Skips(), unread)
    return {picture: first for picture, rows in named.items()
            if (first := next((c for _, captions in rows for c in captions), None)) is not None}, manifests, unread


def _all_captions(image: Path, lines: list[str], txt: Path | None, rows: list[tuple[Path, list[str]]] | None,
                  skipped: Skips) -> list[str]:
    """A picture's captions: its caption file's lines, then those of the manifest rows naming it that are not
    among them yet (each once); a picture captioned in more than one place is counted (SEVERAL_PLACES), and one
    of over MAX_CAPTIONS captions, from all of those places, trimmed and counted once (the rows come untrimmed:
    a row of exactly MAX_CAPTIONS beside a .txt line was cut unsaid)."""
    if not rows:
        return _kept_captions(lines, txt, skipped)
    # (a row of an empty caption is no place a caption comes from: `t2i data caption`'s .txt beside it is no second)
    places = list(dict.fromkeys([*([txt] if txt is not None else []), *(m for m, captions in rows if captions)]))
    if len(places) > 1:  # (several rows of one manifest are one place: its way of giving several captions)
        skipped.add(SEVERAL_PLACES, f"{image} (captions in {', '.join(map(str, places))})")
    have = set(lines)
    lines = list(lines)
    for _, captions in rows:  # (each row's list as the manifest source reads it; only what came before, once)
        lines += [c for c in captions if c not in have]
        have.update(captions)
    return _kept_captions(lines, image, skipped)


def _manifest_above(folder: Path, wanted: set[str]) -> tuple[str | None, set[str], Path | None, str]:
    """Where a manifest in one of the ABOVE_LEVELS folders above folder names pictures of folder without a caption
    (wanted, by _key), what to say of the first such: how many it names and what to give, and those pictures, of
    every such manifest (`t2i data caption` leaves them as they are). A metadata.jsonl or metadata.csv (any letter
    case) is read by a folder source: the folder to give (Hugging Face's imagefolder reads a manifest above a
    split's folder: ds/metadata.csv naming "train/a.png"); a manifest of another name (ds/captions.jsonl, a .csv of
    a manifest's columns: MAX_LOOKED_AT of them a folder) is read as the source alone: it, to give (a manifest of
    that name beside the pictures is said, BESIDE; one above was not looked for); and the folder to give, where
    it is a metadata.jsonl or metadata.csv (a folder source reads the others' pictures too). Last, what to say of the
    first such manifest with lines left out that may name pictures of folder (holding its name), or that its reader
    refuses whole ('' none): `t2i data caption` refuses beside it, as beside a folder's own manifest's such lines
    (it captioned those pictures by name, unsaid, and once the lines were fixed they trained under both captions)."""
    at = Path(os.path.abspath(folder))
    said, named, give, needles, bad = None, set(), None, None, ""
    for up in itertools.islice(at.parents, ABOVE_LEVELS):
        try:
            names = os.listdir(up)
        except OSError:
            continue
        own = sorted(n for n in names if n.lower() in FOLDER_MANIFESTS)
        other = sorted(n for n in names if n.lower() not in FOLDER_MANIFESTS
                       and os.path.splitext(n)[1].lower() in (".jsonl", ".csv"))
        for name in [*own, *other[:MAX_LOOKED_AT]]:
            manifest = up / name
            if name in other and not (_looks_like_csv_manifest(manifest, False) if manifest.suffix.lower() == ".csv"
                                      else _looks_like_manifest(manifest)):
                continue  # (a run's metrics.jsonl, a spreadsheet of something else: not read 16 MiB into)
            if manifest.is_file():
                needles = _row_needles(at) if needles is None else needles  # (the folder's: made once)
                head: list[_Utf8Head | None] = [None]
                rows, more, left = _rows_above(manifest, wanted, needles, head=head)
                # ... one not UTF-8 (a spreadsheet's CSV saved as Latin-1) was passed over unsaid, where one beside
                # the pictures is refused as such: read as Latin-1 to tell whether it names them, and said (told from
                # the bytes just read where they were all of its first MAX_ABOVE: a manifest naming none of the
                # pictures was read twice to find nothing)
                seen = None if head[0] is None else head[0].not_utf8
                latin = not rows and (_not_utf8_manifest(manifest) if seen is None else seen)
                if latin:
                    rows, more, left = _rows_above(manifest, wanted, needles, latin=True)
                if left and not bad:
                    lister = shell_word(up if name in own else manifest)
                    bad = (f"{left[''][1]} (a manifest above the folder, which may caption pictures here)" if "" in left
                           else f"{manifest}, above the folder, has lines left out that may caption pictures here ("
                                + "; ".join(counted(k, why) + (": " if k == 1 else ", e.g. ") + first
                                            for why, (k, first) in sorted(left.items()))
                                + f"; t2i data preview {lister} --list-skipped lists them)")
                if rows and said is None:
                    resave = ' but is not UTF-8: save it as UTF-8 (a spreadsheet\'s "CSV UTF-8"), then' if latin \
                        else ":"
                    said = (f"{manifest} names {len(rows)}{' or more' if more else ''} of the pictures here without a "
                            f"caption{resave} give {shell_word(up if name in own else manifest)} as the source to read "
                            f"it")
                    give = up if name in own else None  # (a manifest alone reads none of the folder's other captions)
                named |= rows
    return said, named, give, bad


def _listed(folder: Path) -> list[str]:
    """The names in a folder; none where it cannot be listed."""
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _scan_folder(folder: Path, list_skipped: bool = False) -> tuple[list[tuple[Path, list[str]]], Skips]:
    """(image, captions) for every image under folder (recursively) that has a same-stem .txt file (.TXT and
    other cases too; an exact .txt first; a stem in other letter case where that is the one match), or a row in a
    Hugging Face-style metadata.jsonl or metadata.csv of the folder (_folder_manifests; both: _all_captions). The
    manifests' rows that name no picture of the folder come last (skipped.rows_left of them), for open_source to
    count."""
    pairs, skipped = [], Skips(list_skipped)
    files, runs, unreadable = files_under(folder)
    listed = files
    named = (*images.IMAGE_SUFFIXES, *images.UNREAD_SUFFIXES, ".txt")
    # a picture or caption that is not a regular file is never read (a pipe waited forever); said as itself (its
    # caption was blamed, "caption without image", and the picture went unsaid)
    regular = [p for p in files if p.is_file()]  # (one stat a file)
    # macOS' AppleDouble files (._IMG_1.JPG beside IMG_1.JPG on a FAT or network disk) hold metadata, not a picture
    forks = sorted(p for p in regular if p.name.startswith("._") and p.suffix.lower() in named)
    if forks:
        skipped.add("macOS metadata file (._NAME, not a picture)", forks[0], len(forks), tuple(forks[1:]))
        forked = set(forks)  # (once: a set made for each file was quadratic, 79 s for 15,000 of them)
        regular = [p for p in regular if p not in forked]
        files = [p for p in files if p not in forked]
    kept = set(regular)
    odd = sorted(p for p in files if p.suffix.lower() in named and p not in kept)
    if odd:
        skipped.add("non-regular file (a link to a missing file, a pipe or a device)", odd[0], len(odd),
                    tuple(odd[1:]))
    stems = {p.with_suffix("") for p in files if p.suffix.lower() in (*images.IMAGE_SUFFIXES, *images.UNREAD_SUFFIXES)}
    files = regular
    copies = rerank_copies(files)
    if runs:
        skipped.add("t2i run folder (its samples are not data)", runs[0], len(runs), tuple(runs[1:]))
    if unreadable:  # its pictures were left out silently
        skipped.add(UNREADABLE_FOLDER, unreadable[0], len(unreadable), tuple(unreadable[1:]))
    wrapped: set[Path] = set()  # caption files counted as WRAPPED (one read by two pictures counts once)
    texts: dict[Path, Path] = {}  # stem -> caption file: name.txt, else the first other case of it by name
    for p in sorted((p for p in files if p.suffix.lower() == ".txt"), key=lambda p: (p.suffix != ".txt", str(p))):
        if p.with_suffix("") in texts:
            skipped.add(f"second caption file of one name (read: {texts[p.with_suffix('')].name})", p)
        else:
            texts[p.with_suffix("")] = p
    # A caption whose name differs from its picture's in letter case alone (IMG_0001.JPG, img_0001.txt), or in the
    # Unicode form of its accents, is its caption when no picture has its exact name and it is the only such
    # caption (macOS' and Windows' file systems call them one name).
    fold = _folded
    folded: dict[Path, list[Path]] = {}
    for stem, txt in texts.items():
        if stem not in stems:
            folded.setdefault(fold(stem), []).append(txt)
    # ... and the one picture of that folded name without a caption of its exact name (IMG_1.JPG and img_1.jpg, two
    # pictures, both took Img_1.txt)
    pictures = {p.with_suffix("") for p in files if p.suffix.lower() in images.IMAGE_SUFFIXES}
    uncaptioned = Counter(fold(stem) for stem in pictures if stem not in texts)
    manifests = _folder_manifests(files)
    if parquets := parquet_manifests(files):
        skipped.parquet = parquets[0]
        skipped.add(PARQUET, parquet_said(parquets[0], folder))
    rows_of, rows_left = _manifest_rows(folder, manifests, [p for p in files if p.suffix.lower() in
                                                            images.IMAGE_SUFFIXES], listed, runs, skipped)
    captioned: dict[Path, Path] = {}  # caption file -> the first picture that reads it
    uncaptioned_in: set[Path] = set()  # the folders of the pictures without a caption
    uncaptioned_keys: set[str] = set()  # ... and those pictures (_key), for a manifest above the folder (_rows_above)
    by_name = by_folder = False  # whether a picture without a caption has words in its name, or in its folder's
    whole_names: dict[Path, Path] | None = None  # folded caption file name -> the first such caption file
    other_captions: dict[Path, Path] | None = None  # PIC -> PIC.caption (any case)
    uncaptioned_pictures: list[Path] = []
    for image in sorted(p for p in files if p.suffix.lower() in images.IMAGE_SUFFIXES):
        txt = texts.get(image.with_suffix(""))
        if txt is None and len(alike := folded.get(fold(image.with_suffix("")), [])) == 1 \
                and uncaptioned[fold(image.with_suffix(""))] == 1:
            txt = alike[0]
        rows = rows_of.get(image)
        if txt is None and rows is not None:  # captioned by manifests alone
            pairs.append((image, _all_captions(image, [], None, rows, skipped)))
            if not pairs[-1][1]:  # (rows of empty captions alone: `t2i data caption` may write it one)
                skipped.empty_named.append(image)
            continue
        if txt is None:
            whole_name = fold(image.with_name(image.name + ".txt"))  # photo.jpg.txt, as some captioning tools name it
            if whole_names is None:  # (once, for the first picture without a caption: a dict, not a search each)
                whole_names = {}
                for t in texts.values():
                    whole_names.setdefault(fold(t), t)
            whole = whole_names.get(whole_name)  # (any case)
            if other_captions is None:  # (once, as whole_names)
                other_captions = {p.with_suffix(""): p for p in files if p.suffix.lower() == ".caption"}
            if whole is not None and whole.with_suffix("") not in stems:
                skipped.add(WHOLE_NAME_CAPTION, image)
                captioned.setdefault(whole, image)  # (not a caption without image as well)
            elif (other := other_captions.get(image.with_suffix(""))) is not None:
                skipped.add(OTHER_EXTENSION_CAPTION, other)
            elif image in copies:  # rerank's own outputs, named as such (they are never a picture you captioned)
                skipped.add("copy rerank --link-best made (named in its t2i-copies.json)", image)
            elif _t2i_sheet(image):
                skipped.add("contact sheet t2i wrote", image)
            else:
                skipped.add(UNCAPTIONED, image)
                if (as_folder := image.with_suffix(".txt")).is_dir():
                    skipped.add(FOLDER_CAPTION, as_folder)
                uncaptioned_pictures.append(image)
                uncaptioned_in.add(image.parent)
                uncaptioned_keys.add(_key(image))
                # (only where `t2i data caption` could write NAME.txt: a folder, a link to nothing or a pipe of that
                # name makes it refuse, and the hint sent the user to a refusal)
                # (nor for a sheet t2i wrote, which it declines: the hint sent the user to a refusal; named instead,
                # wherever it is: one after a picture its name could caption went unsaid, a PNG's header read each)
                if _marked_sheet(image):
                    if SHEET_AMONG not in skipped:
                        skipped.add(SHEET_AMONG, image)
                elif not by_name and caption_of(image.stem) is not None and _caption_name_free(image):
                    by_name = True
                elif not by_name and not by_folder and image.parent != folder \
                        and folder_caption(image, folder) is not None and _caption_name_free(image):
                    by_folder = True
            continue
        if txt in captioned:
            skipped.add(SHARED_CAPTION, f"{image} ({captioned[txt].name} too reads {txt.name})")
        captioned.setdefault(txt, image)
        try:
            if txt.stat().st_size > MAX_CAPTION_FILE:
                skipped.add(LARGE_CAPTION, txt)
                continue
            lines = _caption_lines(_caption_text(txt.read_bytes()))
            if txt not in wrapped and (cut := _wrapped_at(lines)) is not None:
                wrapped.add(txt)
                skipped.add(WRAPPED, f"{txt}, whose line {cut + 1} ends {_words(lines[cut], -3)!r} and line "
                                     f"{cut + 2} goes on {_words(lines[cut + 1], 3)!r}")
            pairs.append((image, _all_captions(image, lines, txt, rows, skipped)))
        except OSError:
            skipped.add(UNREADABLE_CAPTION, txt)
        except UnicodeDecodeError as e:
            skipped.add(NUL_CAPTION if e.reason == NUL_IN_CAPTION else NOT_UTF8_CAPTION, txt)
    unread: dict[str, list[Path]] = {}
    for p in sorted(p for p in files if p.suffix.lower() in images.UNREAD_SUFFIXES):
        unread.setdefault(images.unread_picture(p.suffix), []).append(p)
    for why, kind in unread.items():
        skipped.add(why, kind[0], len(kind), tuple(kind[1:]))
    orphans = [p for p in files if p.suffix.lower() == ".txt" and p.with_suffix("") not in stems and p not in captioned]
    if orphans:
        orphans.sort()
        # (a dataset's README.txt or LICENSE.txt is no caption: it was counted among ".txt captions without image")
        captions_alone = [p for p in orphans if not _DOCUMENT.fullmatch(p.stem)]
        if captions_alone:
            skipped.add(".txt caption without image", captions_alone[0], len(captions_alone),
                        tuple(captions_alone[1:]))
        if uncaptioned_pictures:
            # images/x.png and captions/x.txt (a dataset's pictures and captions in folders side by side): each
            # caption is "without image", its picture "without .txt caption", and `t2i data caption` was suggested,
            # which captioned the pictures by their names beside their own captions
            # (matched against the captions alone, as `t2i data caption` matches them: images/credits.png beside
            # captions/credits.txt was "caption in another folder" here, and captioned by its name there)
            if apart := captions_apart(uncaptioned_pictures, captions_alone):
                skipped.add(CAPTION_APART, f"{apart[0][0]} ({apart[0][1]})", len(apart))
                if len(apart) == len(uncaptioned_pictures):  # (then none is for `t2i data caption`)
                    by_name = by_folder = False
    if uncaptioned_in or skipped.empty_named:
        # the manifests above the folder (and a metadata.parquet there) are looked at for every picture without a
        # caption, those a row of an empty caption alone names too, which `t2i data caption` captions by name: a
        # manifest above naming one with a caption went unsaid, and the caption by name trained beside it
        said, skipped.above_named, skipped.above_source, skipped.above_lines = _manifest_above(
            folder, uncaptioned_keys | {_key(p) for p in skipped.empty_named})
        if said is not None:
            skipped.add(ABOVE, said)
        if skipped.above_lines:
            skipped.add(ABOVE_LINES, skipped.above_lines)
        if skipped.parquet is None and (parquet := _parquet_above(folder)) is not None:
            skipped.parquet = parquet
            skipped.add(PARQUET, parquet_said(parquet, folder))
    if uncaptioned_in:  # a Hugging Face-style metadata.jsonl (or .csv) beside pictures that have no .txt
        # (or above them, up to folder: a metadata.csv naming "train/a.png", as Hugging Face's imagefolder reads it)
        above = {q for p in uncaptioned_in for q in (p, *p.parents) if q == folder or folder in q.parents}
        read = set(manifests)  # (those the folder read are not "a manifest it does not read")
        # (a .csv of another name, captions.csv, whose header names a manifest's columns, is one as a captions.jsonl is:
        # it went unsaid, and `t2i data caption` captioned its pictures by their names)
        beside = (p for p in sorted(files) if p.parent in above and p not in read
                  and p.suffix.lower() in (".jsonl", ".csv"))
        found = next((p for p in itertools.islice(beside, MAX_LOOKED_AT)
                      if (_looks_like_csv_manifest(p, p.name.lower() == "metadata.csv") if p.suffix.lower() == ".csv"
                          else _looks_like_manifest(p))), None)
        unread = (p for p in sorted(files)
                  if p.parent in above and p not in read and p.name.lower() in FOLDER_MANIFESTS)
        # ... and in the folders above it that a manifest above is looked for in (ds/metadata.csv of "filename,text",
        # `ds/train` given: passed over unsaid, and its pictures captioned by name)
        up = itertools.islice(Path(os.path.abspath(folder)).parents, ABOVE_LEVELS)
        above_own = (q / n for q in up for n in sorted(_listed(q))
                     if n.lower() in FOLDER_MANIFESTS and (q / n).is_file())
        for p in itertools.islice(itertools.chain(unread, above_own), MAX_LOOKED_AT):
            if (columns := _columns_unread(p)) is not None:
                skipped.add(*columns)
                skipped.columns_source = p.parent if p.parent in Path(os.path.abspath(folder)).parents else None
                break
        if found is not None:
            skipped.add(BESIDE, found)
        else:
            if (not_naming := next((m for m in manifests if m.parent in above), None)) is not None:
                skipped.add(NOT_NAMING_READ if skipped.manifest_lines else NOT_NAMING, not_naming)
            # (not those a manifest above captions, nor beside a metadata file of captions whose picture column is
            # misnamed: renaming it reads them; nor beside manifest lines left out, in the folder or above it, which
            # may caption them: `t2i data caption` refuses there until they are fixed, and is said for then)
            if (by_name or by_folder) and ABOVE not in skipped and NO_PICTURE_COLUMN not in skipped \
                    and MISPAIRED not in skipped and PARQUET not in skipped:
                skipped.add(BY_NAME_ONCE_FIXED if ABOVE_LINES in skipped or skipped.manifest_lines else BY_NAME,
                            f"{shell_word(folder)}" + ("" if by_name else " --from folder"))
    pairs += rows_left
    skipped.rows_left = len(rows_left)
    skipped.uncaptioned = uncaptioned_keys
    return pairs, skipped


def _not_naming_note(first: dict[str, str]) -> str:
    """'; M, read for the pictures it names, names none of those without a caption beside or below it (...)' of the
    manifest a folder read beside pictures it does not name (NOT_NAMING), or does not name in the lines it reads
    (NOT_NAMING_READ: a line left out may); '' where neither."""
    manifest = first.get(NOT_NAMING_READ, first.get(NOT_NAMING))
    if manifest is None:
        return ""
    left_out = " in the lines it reads (a manifest line left out may name some; " if NOT_NAMING_READ in first else " ("
    return (f"; {manifest}, read for the pictures it names, names none of those without a caption beside or below "
            f"it{left_out}a row's path is relative to the manifest's folder)")


def _once_fixed_note(folder: str | None) -> str:
    """'; once the manifest lines left out are fixed, t2i data caption FOLDER captions ...' (BY_NAME_ONCE_FIXED),
    as a folder's summary and its refusal (no usable pairs) say it; '' where folder is None."""
    if folder is None:
        return ""
    return (f"; once the manifest lines left out are fixed, t2i data caption {folder} captions those still without "
            f"one by their names (--dry-run shows the captions first)")


LABEL_BYTES = 512  # bytes of a .txt beside no picture read to tell an object detector's label file (captions_apart)


def _label_file(txt: Path) -> bool:
    """Whether a .txt file holds numbers alone (or nothing), as an object detector's label file does: YOLO's
    labels/x.txt beside images/x.jpg, `0 0.51 0.43 0.22 0.31` a line. Its first LABEL_BYTES bytes are read."""
    try:
        with open(txt, "rb") as f:
            head = f.read(LABEL_BYTES)
    except OSError:
        return False
    words = head.decode("utf-8", "replace").split()
    try:
        for word in words[:-1] if len(head) == LABEL_BYTES else words:  # (a last word cut at LABEL_BYTES: not read)
            float(word)
    except ValueError:
        return False
    return True


def captions_apart(pictures: list[Path], orphans: list[Path]) -> list[tuple[Path, Path]]:
    """(picture, its NAME.txt) for each of pictures without a caption whose name a caption without a picture
    (orphans, sorted) has in another folder (CAPTION_APART): the first such caption of each name. A file of numbers
    alone is no caption (a YOLO dataset's labels/x.txt beside images/x.jpg was said a caption to move beside its
    picture, where t2i would train on its boxes' numbers as a caption)."""
    by_stem: dict[str, Path] = {}
    for t in orphans:
        by_stem.setdefault(t.stem, t)
    return [(image, by_stem[image.stem]) for image in pictures
            if image.stem in by_stem and not _label_file(by_stem[image.stem])]


def _apart_note(n: int, first: str) -> str:
    """What is said of the pictures whose NAME.txt caption sits in another folder (CAPTION_APART; '' none)."""
    if not n:
        return ""
    return (f"; {counted(n, 'picture')} without a caption {'has' if n == 1 else 'have'} a NAME.txt in another "
            f"folder, e.g. {first}: t2i reads a picture's caption beside it, so move each caption next to its picture "
            f"(or write a metadata.jsonl of both paths)")


def _sheet_note(sheet: str | None) -> str:
    """What is said of a contact sheet t2i wrote among a folder's pictures without a caption ('' none)."""
    return (f"; {sheet} is a contact sheet t2i wrote (marked in its PNG text), which t2i data caption leaves without "
            f"a caption: move it out of the folder" if sheet else "")


def _caption_name_free(image: Path) -> bool:
    """Whether `t2i data caption` could write image's NAME.txt (plan_captions: nothing of that name, not even a
    link to nothing)."""
    txt = image.with_suffix(".txt")
    return not (txt.exists() or txt.is_symlink())


def plan_captions(folder: Path, source: str = "name",
                  checking: Callable[[int, int], None] | None = None) -> CaptionPlan:
    """The caption files `t2i data caption FOLDER --from SOURCE` would write: one NAME.txt for the pictures of
    one name in one folder (pic.png and pic.jpg read one pic.txt) that training reads as without a caption
    (data._scan_folder: sub-folders too; not t2i's sheets, rerank's copies or run folders), each picture
    opened as training opens it, its header read (one that does not open is left without: plan.undecodable);
    checking(k, n), if given, is told how many of those n pictures are checked."""
    if source not in SOURCES:  # (the command's one check of --from, before the folder is looked at)
        raise UsageError(f"--from must be name (the picture's file name) or folder (its folder's name, for a folder "
                         f"per class), got {source!r}")
    if not folder.is_dir():
        manifest = folder.suffix.lower() in (".csv", ".jsonl") and folder.is_file()  # captions already: train on it
        raise DataError(f"{folder} is not a folder" + ("" if folder.exists() else " (it does not exist)")
                        + (f" but a manifest of captions: train on it with {train_command(folder)}"
                           if manifest else "; give the folder of pictures to caption"))
    # FOLDER in a t2i run (its samples/, or the run itself); one below FOLDER is left out, as training leaves it
    run = next((p for p in (folder, *folder.resolve().parents)
                if _is_run_folder(p, [n for n in RUN_MARKERS if (p / n).is_file()])), None)
    if run is not None:
        where = "a t2i run folder" if run == folder else f"in a t2i run folder ({run})"
        raise DataError(f"{folder} is {where}: its loss curve and samples are no pictures to caption; give the folder "
                        f"of your pictures")
    pairs, skipped = _scan_folder(folder, list_skipped=True)
    # (a picture whose caption file training leaves out has one all the same, never replaced: "no pictures", before)
    left_out = sum(len(skipped.every.get(why, [])) for why in CAPTION_FILE_LEFT_OUT)
    # (a picture a manifest row names with an empty caption, and no caption file, has none: training leaves it out
    # as an "empty caption", and this said "every picture has a caption")
    # (a picture a manifest above names with a caption has it there: captioning it by name too trained it under
    # two captions, so the whole folder was refused, though the manifest named only some of its pictures)
    above = [p for p in [*map(Path, skipped.every.get(UNCAPTIONED, [])), *skipped.empty_named]
             if _key(p) in skipped.above_named]
    plan = CaptionPlan(folder, source, captioned=len(pairs) - skipped.rows_left + left_out - len(skipped.empty_named)
                       + len(above),
                       manifest=Path(skipped.first[BESIDE]) if BESIDE in skipped.first else None,
                       above=skipped.first.get(ABOVE, ""), above_source=skipped.above_source,
                       parquet=skipped.parquet, parquet_said=skipped.first.get(PARQUET, ""),
                       above_lines=skipped.above_lines, columns_source=skipped.columns_source,
                       unnamed_pictures=skipped.first.get(NO_PICTURE_COLUMN, ""),
                       mispaired=skipped.first.get(MISPAIRED, ""),
                       unreadable=list(map(Path, skipped.every.get(UNREADABLE_FOLDER, []))),
                       manifest_lines="; ".join(counted(n, why) + (": " if n == 1 else ", e.g. ") + first
                                                for why, (n, first) in sorted(skipped.manifest_lines.items())))
    plan.folders = {Path(image).parent for image, _ in pairs[:len(pairs) - skipped.rows_left]} | {
        Path(p).parent for p in (*skipped.every.get(UNCAPTIONED, []), *skipped.empty_named)}
    # (a HEIC or SVG picture beside those captioned went unsaid: named only where no picture t2i reads was there)
    unread = {images.unread_picture(suffix) for suffix in images.UNREAD_SUFFIXES}
    plan.unread_formats = [(why, n, skipped.first[why]) for why, n in sorted(skipped.items()) if why in unread]
    pending: list[tuple[Path, Path, str]] = []  # (picture, its caption file, caption) to check, then write
    # (a picture whose NAME.txt sits in another folder, images/x.png beside captions/x.txt, has its caption there:
    # it was captioned by its name, beside it, where the refusal to train said to move that caption)
    plan.apart = captions_apart(sorted(map(Path, skipped.every.get(UNCAPTIONED, []))),
                                sorted(map(Path, skipped.every.get(".txt caption without image", []))))
    apart = {picture for picture, _ in plan.apart}
    for picture in [*map(Path, skipped.every.get(UNCAPTIONED, [])), *skipped.empty_named]:
        if _key(picture) in skipped.above_named or picture in apart:
            continue
        if _marked_sheet(picture):  # (`data preview --out sheet.png` in the folder: captioned "sheet", then trained on)
            plan.sheets.append(picture)
            continue
        caption = folder_caption(picture, folder) if source == "folder" else caption_of(picture.stem)
        if caption is None:
            plan.nameless.append(picture)
            # (the other --from is said to try only where it captions one: "ds/train/IMG_0001.png" has no words in
            # its name and none in its split's folder's, and each source sent to the other)
            plan.other_words = plan.other_words or (caption_of(picture.stem) if source == "folder"
                                                    else folder_caption(picture, folder)) is not None
            continue
        txt = picture.with_suffix(".txt")
        if txt not in plan.writes and (txt.exists() or txt.is_symlink()):  # (a caption file would have been read)
            if txt not in plan.taken:
                plan.taken.append(txt)
            continue
        pending.append((picture, txt, caption))
    # (a file training cannot open, empty, not a picture or of a codec Pillow lacks, was captioned, then left out of
    # training as an "unreadable image": its header is read, as training's check begins; not decoded, which cost
    # 0.17 s a 12-megapixel JPEG and 0.77 s a PNG, a folder of 6,000 photos 17 minutes, to catch a truncated file
    # that training names anyway: BENCHMARKS.md "data caption's check")
    for k, (picture, txt, caption) in enumerate(pending):
        if checking is not None:
            checking(k, len(pending))
        if why := _unopened(picture):
            plan.undecodable.append((picture, why))
            continue
        plan.writes.setdefault(txt, (caption, []))[1].append(picture)
    if checking is not None and pending:
        checking(len(pending), len(pending))
    if source == "name":
        # "beach 10" .. "beach 12": a counter after all (those captioned already among them)
        series_captions(plan, (image for image, lines in pairs[:len(pairs) - skipped.rows_left] if lines))
    return plan


def _open_manifest(manifest: Path, saved_as: str) -> BinaryIO:
    """A manifest open to read as bytes; refused in one line where it cannot be read or is saved as UTF-16 or
    UTF-32 (Notepad's "Unicode"; saved_as says how to save it instead)."""
    try:
        f = open(manifest, "rb")
    except OSError as e:
        raise DataError(f"cannot read manifest {manifest}: {e.strerror or e}; check the path") from e
    if f.read(4).startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        f.close()
        how = f" ({saved_as})" if saved_as else ""  # (a manifest read only for what it names: no format to name)
        raise DataError(f"manifest {manifest} is saved as UTF-16 or UTF-32; save it as UTF-8{how}")
    f.seek(0)
    return f


def _scan_manifest(manifest: Path, list_skipped: bool = False,
                   trim: bool = True) -> tuple[list[tuple[Path, list[str]]], Skips]:
    """(image, captions) for every line of a JSONL manifest; image paths are relative to the manifest. Read a
    line at a time: a line that is not UTF-8 JSON (or nested too deeply), not an object with an "image" and a
    "caption" (or a Hugging Face-style metadata.jsonl's "file_name" and "text", read as those), whose "image"
    is not a string or "caption" not a string or a list of strings, or longer than MAX_MANIFEST_LINE is left
    out, counted by which of these it is."""
    pairs, skipped = [], Skips(list_skipped)
    with _open_manifest(manifest, "one JSON object per line") as f:
        for number, raw in enumerate(iter(lambda: f.readline(MAX_MANIFEST_LINE + 6), b"")):  # + BOM, CR LF
            if len(raw.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")) > MAX_MANIFEST_LINE:  # skip the rest unheld
                while raw and not raw.endswith(b"\n"):
                    raw = f.readline(MAX_MANIFEST_LINE)
                skipped.add(LONG_LINE, f"{manifest} line {number + 1}")
                continue
            if number == 0:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
            if not raw.strip():
                continue
            where = f"{manifest} line {number + 1}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
                skipped.add(NOT_JSON_LINE, where)
                continue
            keys = _manifest_keys(row)
            if keys is None and isinstance(row, dict) and _unread_kind(list(map(str, row))) == MISPAIRED:
                skipped.add(MISPAIRED_LINE, where)  # ({"image", "text"}: which name to change, as a folder's is told)
                continue
            if keys is None:
                skipped.add(NO_KEYS_LINE, where)
                continue
            image, caption = row[keys[0]], row[keys[1]]
            # (null: a missing caption as pandas' to_json and Hugging Face's datasets write one, an empty caption as a
            # CSV's empty field is; it was a line "whose caption is not a string", and the picture a folder's manifest
            # named so "without a caption" that the manifest "names none of")
            captions = [] if caption is None else [caption] if isinstance(caption, str) else caption
            if isinstance(captions, list):  # (... and a list's null entries, as its empty ones: the whole line was
                captions = [c for c in captions if c is not None]  # left out, "caption not ... a list of strings")
            if not isinstance(image, str) or not isinstance(captions, list) or \
                    not all(isinstance(c, str) for c in captions):
                skipped.add('manifest line whose "image" is not a string or "caption" not a string or a list of '
                            'strings', where)
                continue
            if _URL.match(image):
                skipped.add(_url_row(image), f"{where} ({image[:200]})")
                continue
            captions = [c.strip() for c in captions if not blank(c)]
            if sum(map(len, captions)) > MAX_CAPTION_FILE:  # what a caption file may hold
                skipped.add(f"manifest line whose captions hold over {MAX_CAPTION_FILE:,} characters", where)
                continue
            # (trim False: a folder's manifest, whose rows are one picture's captions with its .txt and other rows:
            # _all_captions keeps the first MAX_CAPTIONS of them all, and counts the picture once)
            pairs.append((manifest.parent / image, _kept_captions(captions, where, skipped) if trim else captions))
            skipped.lines.append(number + 1)
    return pairs, skipped


CSV_DELIMITERS = ",;\t"  # a spreadsheet's export: a comma, or a semicolon where the comma is the decimal mark


def _csv_lines(f, where: Path, fed: list[int]) -> Iterator[str]:
    """The lines of an open CSV file (UTF-8, its byte-order mark dropped) for csv.reader, each at most
    MAX_MANIFEST_LINE bytes and each row at most that many too (a quote left open reads the rest of the file as
    one field): bounded reads, not the whole file or a whole row held unread."""
    for number, raw in enumerate(iter(lambda: f.readline(MAX_MANIFEST_LINE + 6), b"")):
        if len(raw.rstrip(b"\r\n")) > MAX_MANIFEST_LINE:
            raise DataError(f"manifest {where} line {number + 1} is over {MAX_MANIFEST_LINE >> 20} MiB; is it a CSV "
                            f"of captions? (one row per picture)")
        if number == 0:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if b"\0" in raw:  # (as a caption file's: UTF-16 without its byte-order mark read as columns of NULs)
            raise DataError(f"manifest {where} line {number + 1} holds a NUL character (UTF-16 without its byte-order "
                            f"mark, or not text); save it as UTF-8 (a spreadsheet's \"CSV UTF-8\")")
        fed[0] += len(raw)  # since the last row (the reader's loop sets it to 0 at each)
        if fed[0] > MAX_MANIFEST_LINE + 6:
            raise DataError(f"manifest {where} has a row over {MAX_MANIFEST_LINE >> 20} MiB that ends at line "
                            f"{number + 1} or later (a quote left open?); check its quotes")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"manifest {where} line {number + 1} is not UTF-8; save it as UTF-8 (a spreadsheet's "
                            f"\"CSV UTF-8\")") from None


def _csv_header(lines: Iterator[str], manifest: Path) -> tuple[str, list[str], int]:
    """A CSV manifest's separator, its header row's column names (stripped, lowercased) and the header's line, read
    from its lines (_csv_lines); DataError where they cannot be read."""
    import csv

    header = next(lines, "")
    if "\r" in header.rstrip("\r\n"):  # Excel for Mac's "CSV (Macintosh)": a CR alone ends each line
        raise DataError(f"manifest {manifest} ends its lines with a carriage return alone (an old Mac's \"CSV "
                        f"(Macintosh)\"); save it as \"CSV UTF-8\"")
    first = 1  # the header's line
    if (sep := re.fullmatch(r"sep=(.)\r?\n?", header)) and sep.group(1) not in CSV_DELIMITERS:
        # (it was read as the header, "no columns ... line 1 (found: 'sep=|'); name them so there")
        raise DataError(f"manifest {manifest} line 1 names its separator as {sep.group(1)!r} (sep=), which t2i does "
                        f"not read; save it comma-, semicolon- or tab-separated")
    if sep:
        delimiter, header, first = sep.group(1), next(lines, ""), 2  # Excel's "sep=;" line names the separator
    else:
        delimiter = max(CSV_DELIMITERS, key=header.count)
    try:
        names = next(csv.reader([header], delimiter=delimiter), [])
    except csv.Error as e:
        raise DataError(f"manifest {manifest} line {first} is not CSV as t2i reads it ({e}); check its header "
                        f"row") from None
    return delimiter, [n.strip().lower() for n in names], first  # (a spreadsheet's "File_Name" is that column too)


def _looks_like_csv_manifest(path: Path, unsure: bool = True) -> bool:
    """Whether a metadata.csv's header row names a manifest's columns ("file_name" and "text", or "image" and
    "caption"): a Hugging Face classification folder's metadata.csv ("file_name", "label") holds no captions. One
    whose header cannot be read (UTF-16, a CR alone) is taken as one (unsure): training on it says what to fix. A
    pipe or a device is none, as for _looks_like_manifest (a pipe named other.csv above a folder given to `data
    caption`, `data preview` or `train`: its header was waited for, forever)."""
    if not path.is_file():
        return False
    try:
        with _open_manifest(path, "") as f:
            _, names, _ = _csv_header(_csv_lines(f, path, [0]), path)
    except DataError:
        return unsure
    return _manifest_keys(names) is not None


def _scan_csv(manifest: Path, list_skipped: bool = False) -> tuple[list[tuple[Path, list[str]]], Skips]:
    """(image, captions) for every row of a CSV manifest, a Hugging Face-style metadata.csv: a header row naming
    the columns "file_name" and "text" (or "image" and "caption"; other columns are not read), comma-,
    semicolon- or tab-separated; image paths are relative to the manifest. A row without a picture or whose
    caption is longer than a caption file may be is left out, counted."""
    import csv

    pairs, skipped = [], Skips(list_skipped)
    with _open_manifest(manifest, 'a spreadsheet\'s "CSV UTF-8"') as f:
        fed = [0]
        lines = _csv_lines(f, manifest, fed)
        delimiter, names, first = _csv_header(lines, manifest)
        fed[0] = 0  # (the header's bytes, and a sep= line's, are no row's: the first row was bounded by less)
        keys = _manifest_keys(names)
        if keys is None and _unread_kind(names) == MISPAIRED:
            # (given as the source, "image,text" was told "no columns ... name them so" of columns it has, not which
            # to rename: as a folder's metadata.csv is said; one without a picture or caption column is told that)
            raise DataError(COLUMN_NOTES[MISPAIRED](f"manifest {_columns_said(manifest, names)}").removeprefix("; "))
        if keys is None:
            raise DataError(f"manifest {manifest} has no columns {KEYS_SAID} in its header row, line {first} (found: "
                            f"{', '.join(map(repr, names[:8])) or 'none'}); name them so there")
        for key in keys:  # which of two same-named columns is meant is not guessed
            if (at := [k + 1 for k, name in enumerate(names) if name == key]) and len(at) > 1:
                raise DataError(f"manifest {manifest} names the column \"{key}\" {len(at)} times in its header row, "
                                f"line {first} (columns {', '.join(map(str, at[:8]))}); rename all but the one "
                                f"to read")
        image_at, caption_at = names.index(keys[0]), names.index(keys[1])
        old_limit = csv.field_size_limit(MAX_CAPTION_FILE + 1)  # a field past it raises csv.Error, unheld
        try:
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            while True:
                line = reader.line_num + first + 1  # (the row's first line)
                where = f"{manifest} line {line}"
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    why = (f"has a field over {MAX_CAPTION_FILE >> 10} KB, more than a caption file may hold (a quote "
                           f"left open?)" if "field limit" in str(e) else f"is not CSV as t2i reads it ({e})")
                    raise DataError(f"manifest {where} {why}; check its quotes") from None
                fed[0] = 0
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(image_at, caption_at) or not row[image_at].strip():
                    skipped.add(CSV_SHORT_ROW, where)
                    continue
                if any(cell.strip() for cell in row[len(names):]):  # its caption cut at the comma, unsaid
                    skipped.add(f"manifest row with more fields than its header row (a caption holding a "
                                f"{'tab' if delimiter == chr(9) else repr(delimiter)[1:-1]} not quoted? quote it)",
                                where)
                    continue
                if _URL.match(row[image_at].strip()):
                    skipped.add(_url_row(row[image_at].strip()), f"{where} ({row[image_at].strip()[:200]})")
                    continue
                caption = row[caption_at].strip()
                kept = [] if blank(caption) else [caption]
                pairs.append((manifest.parent / row[image_at].strip(), _kept_captions(kept, where, skipped)))
                skipped.lines.append(line)
        finally:
            csv.field_size_limit(old_limit)
    return pairs, skipped


def captions(dataset: CaptionDataset, limit: int | None = None) -> Iterator[str]:
    """The dataset's captions in order, without loading images (for tokenizer training): at most limit of them.
    The world's are its first scenes' (each one a fresh random scene); a folder's or manifest's, when it holds
    more than limit, are spread evenly over the whole source (its first ones, in path order, left whole
    sub-folders out)."""
    if limit is None or isinstance(dataset, WorldDataset):
        n = 0
        for i in range(len(dataset)):
            for caption in dataset.captions_at(i):
                if limit is not None and n >= limit:
                    return
                n += 1
                yield caption
        return
    total = caption_count(dataset)
    j = 0
    for i in range(len(dataset)):
        for caption in dataset.captions_at(i):
            if total <= limit or (j + 1) * limit // total > j * limit // total:  # exactly limit, evenly spaced
                yield caption
            j += 1


def caption_count(dataset: CaptionDataset) -> int:
    """How many captions a folder's or manifest's pictures have in all."""
    return sum(len(dataset.captions_at(i)) for i in range(len(dataset)))


MAX_WORLD_SCENES = 1_000_000  # `t2i data world --n` (file names: 6 digits)
MAX_SIDE = 4096  # pixels on a side of a rendered scene or sheet tile (as train's --image-side)


def check_world_size(n: int, side: int, max_n: int = MAX_WORLD_SCENES) -> None:
    """Refuse a scene count or side t2i cannot render within a bound."""
    if not 1 <= n <= max_n or not 16 <= side <= MAX_SIDE:
        raise UsageError(f"--n must be between 1 and {max_n:,} and --side between 16 and {MAX_SIDE}, "
                         f"got {n} and {side}")


def _scene_files(split: str, i: int, side: int, img: images.Image.Image | None = None) -> dict[str, bytes]:
    """The bytes write_world writes for scene i of split at side: its .txt and .json (and, given its rendered
    picture, its .png)."""
    caption, spec = world.scene_caption(split, i)
    files = {".txt": (caption + "\n").encode(),
             ".json": (json.dumps({"caption": caption, "split": split, "index": i, "side": side,
                                   "spec": spec.to_dict()}, indent=2, sort_keys=True) + "\n").encode()}
    return files if img is None else {".png": images.encode_png(img, {"caption": caption}), **files}


def _holds(path: Path, data: bytes) -> bool:
    """Whether path is a file holding exactly data (at most len(data) + 1 bytes read; a FIFO is not opened)."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def _scenes_written(split: str, n: int, side: int, out: Path) -> set[int]:
    """The scenes of a world split at side that an earlier `t2i data world` of the same split and side, stopped
    or killed, wrote whole into out (its picture, caption and spec: the spec is written last). A file of a scene
    it left unfinished (kill -9 between its picture and its spec) must be the one this run writes there; any
    other file under one of the n scenes' names is a DataError, raised before anything is written."""
    done: set[int] = set()
    if not out.is_dir():
        return done
    past = next((Path(f"{out / split}-{n:06d}{ext}") for ext in (".png", ".txt", ".json")
                 if os.path.lexists(f"{out / split}-{n:06d}{ext}")), None)
    if past is not None:  # a larger world's (no run of this --n writes it): `--n 50` into a world of 3,000 kept
        # them all and said "wrote 0 scenes (50 written before, kept)", the folder no world of 50
        raise DataError(f"{past} is past the {n:,} {split} scenes asked for: {out} holds a larger world (or more "
                        f"files); give the --n it was written with to finish it, or choose an empty folder with --out")
    for i in range(n):
        stem = out / f"{split}-{i:06d}"
        there = [ext for ext in (".png", ".txt", ".json") if os.path.lexists(f"{stem}{ext}")]
        if not there:
            continue
        files = _scene_files(split, i, side)
        if len(there) == 3 and all(_holds(Path(f"{stem}{ext}"), files[ext]) for ext in (".txt", ".json")):
            done.add(i)  # (its picture was written whole before them)
            continue
        if ".png" in there:
            files = _scene_files(split, i, side, world.scene(split, i, side)[0])
        clash = next((Path(f"{stem}{ext}") for ext in there if not _holds(Path(f"{stem}{ext}"), files[ext])), None)
        if clash is not None:
            raise DataError(f"{clash} already exists and is not what this command writes there; choose an empty "
                            f"folder with --out")
    return done


def write_world(split: str, n: int, side: int, out: Path,
                progress: Callable[[int], None] | None = None,
                kept: Callable[[int, int], None] | None = None) -> int:
    """Write scenes 0..n-1 of a world split as NAME.png, NAME.txt and NAME.json (spec); returns how many it
    wrote. The same command again finishes one that was stopped or killed: the scenes it wrote whole are kept,
    an unfinished one is completed, and the temporary files a kill left there are removed (once a minute old).
    kept: told (scenes written now, scenes written before) once the folder is checked, then as one step with each
    scene's write (a stop waits for both: what a stop says of it)."""
    if split not in world.SPLITS:
        raise UsageError(f"--split {split!r} is no world split; use one of {', '.join(world.SPLITS)}")
    check_world_size(n, side)
    out = Path(out)
    names = [f"{split}-{i:06d}" for i in range(n)]
    # checked before writing anything, so a refused run leaves the folder as it was
    done = _scenes_written(split, n, side, out) if file_above(out) is None else set()
    new = missing_folders(out)  # (those a stop before the first scene leaves empty: removed again)
    make_folder(out, "--out")  # a file, or a path inside one, is the command line's (exit 2)
    try:
        return _write_scenes(split, names, side, out, done, progress, kept)
    finally:
        remove_empty(new)


def _write_scenes(split: str, names: list[str], side: int, out: Path, done: set[int],
                  progress: Callable[[int], None] | None, kept: Callable[[int, int], None] | None) -> int:
    """write_world's scenes, once the folder is made."""
    scene_file = re.compile(rf"{re.escape(split)}-\d{{6}}\.(png|txt|json)")
    remove_temporaries(out, scene_file.fullmatch, STALE_AFTER)  # a killed run's (one newer may be writing now)
    written = 0
    if kept is not None:
        kept(0, len(done))
    for i, name in enumerate(names):
        if i not in done:
            img, caption, spec = world.scene(split, i, side)
            with signals_held():  # a stop waits for the scene's three files: never a picture without its spec
                for ext, data in _scene_files(split, i, side, img).items():  # (the spec last)
                    if not os.path.lexists(out / f"{name}{ext}"):  # (one a killed run wrote: the same bytes)
                        atomic_write_bytes(out / f"{name}{ext}", data)
                written += 1
                if kept is not None:
                    kept(written, len(done))
        if progress is not None:
            progress(i + 1)
    return written


MAX_PREVIEW_PIXELS = 1 << 25  # n * side * side of a preview sheet: 2 tiles of 4096, 128 of 512 (under 1 GB)


def check_preview_size(n: int, side: int) -> None:
    """Refuse a preview sheet of more tiles, larger tiles, or more pixels in all than t2i draws within a bound."""
    check_world_size(n, side, max_n=256)
    if n * side * side > MAX_PREVIEW_PIXELS:  # each tile is held as float tensors and images: ~20 bytes a pixel
        raise UsageError(f"--n {n} tiles of --side {side} are {n * side * side / 1e6:.0f} M pixels; a preview "
                         f"holds at most {MAX_PREVIEW_PIXELS / 1e6:.0f} M: lower --n or --side")


def preview_path(out: Path, force: bool = False) -> Path:
    """Where `t2i data preview --out OUT` writes: OUT, or OUT/preview.png for a folder; refuses a file that
    exists unless force (nothing a user made is replaced unasked)."""
    if os.fspath(out) == "-":  # (its refusal said "--out -/preview.png makes it": a folder named '-')
        raise UsageError("--out - would write a file named '-', not standard output; give a PNG file name, e.g. "
                         "--out preview.png")
    out = Path(out)
    if out.is_dir():
        out = out / "preview.png"
    if out.suffix.lower() != ".png":
        if out.is_symlink() and not out.exists():  # a link to nothing: "--out LINK/preview.png makes it" it did not
            check_folder_path(out, "--out")
        missing = "" if out.exists() or out.suffix else (f" ({out} is no folder yet: --out "
                                                         f"{shell_word(out / 'preview.png')} makes it)")
        raise UsageError(f"--out {out}: a preview is a PNG; give a name ending in .png, or a folder{missing}")
    if not force and (out.exists() or out.is_symlink()):
        raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out")
    blocker = file_above(out)
    if blocker is not None:  # as every command's --out: a usage error, before the folder's pictures are read
        raise UsageError(f"--out {out} is inside {blocker}, which is a file; choose another with --out")
    if not (out.exists() or out.is_symlink()):  # inside a link to nothing, or a loop of links ("cannot write to
        check_folder_path(out, "--out")  # LINK: File exists; choose a writable folder" was said)
    if out.parent.is_dir():  # one that refuses new files, said now and naming --out, not after reading the folder
        make_folder(out.parent, "--out")
    return out


def preview(source: str, out: Path, n: int = 16, side: int = 128, dataset: CaptionDataset | None = None,
            text: dict[str, str] | None = None, saved: Callable[[Path], None] | None = None) -> Path:
    """Write a contact sheet of the first n items of a source, captions beneath, to out (a file, or a folder
    for out/preview.png; callers check preview_path first); returns its path. text: more PNG text chunks.
    saved: told the sheet's path as one step with its write (a stop waits for both: what a stop says of it).

    Pass `dataset` when the caller has already opened the source (opening a folder reads every image)."""
    check_preview_size(n, side)
    if dataset is None:
        dataset = open_source(source, side, n_scenes=max(n, 1), keep=n)
    count = min(n, len(dataset))
    items = [dataset[i] for i in range(count)]
    sheet = images.contact_sheet([images.image_from_tensor(x) for x, _ in items], [c for _, c in items])
    from t2i_cli.outputs import SHEET_KEY

    out = Path(out)
    if out.is_dir():
        out = out / PREVIEW_NAME
    # marked, as t2i's other sheets: training (and `t2i data caption`) never reads it as a picture
    with signals_held():
        written = images.save_png(sheet, out, {"source": source, SHEET_KEY: "preview"} | (text or {}))
        if saved is not None:
            saved(written)
    return written
