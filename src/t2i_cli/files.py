"""Atomic writes and never-overwrite file naming: no crash leaves a half-written file."""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Callable

from t2i_cli.errors import OutputError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file beside path, fsync it, then rename it onto path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write to {path.parent}: {e.strerror}; choose a writable folder") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual permissions
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # also KeyboardInterrupt: never leave the temporary file behind
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}; free space or choose another folder") from e
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes to path atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write obj as indented JSON to path atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def safe_stem(text: str, max_len: int = 48) -> str:
    """A file-name stem from free text: ASCII letters, digits and dashes only, bounded length."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_len].rstrip("-")
    return stem or "image"


def claim_path(folder: Path, stem: str, suffix: str) -> Path:
    """Reserve a new file folder/stem-NNN.suffix that did not exist (O_EXCL), so nothing is overwritten."""
    folder = Path(folder)
    for i in range(100_000):
        path = folder / f"{stem}-{i:03d}{suffix}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"cannot write to {folder}: {e.strerror}; choose a writable folder with --out") from e
        os.close(fd)
        return path
    raise OutputError(f"{folder} holds too many files named {stem}-*; choose another folder with --out")


def write_new(folder: Path, stem: str, suffix: str, write: Callable[[Path], None]) -> Path:
    """Write a new file folder/stem-NNN.suffix atomically; on any failure leave nothing behind."""
    path = claim_path(folder, stem, suffix)
    try:
        atomic_write(path, write)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
