"""Atomic writes and never-overwrite file naming: no crash leaves a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import stat
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any, Callable, Collection, Iterable, Iterator, NoReturn

from t2i_cli.errors import OutputError, UsageError

PLAN = "all.json"  # a whole run's settings (recipe.py); its presence makes a folder a whole run (here, below
# stages and train_options, which both ask: stages importing train_options, which imports stages, was a cycle)
STAGES = ("tokenizer", "dvae", "transformer", "clip")  # a run's stages, in order: a whole run's folders (train.STAGES)


# The weights folder beside src/ in a checkout (pip install -e): the shipped weights, and --weights' default where
# T2I_WEIGHTS is not set (here, torch-free: cli reads it before it imports torch, weights.py names it in advice).
REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
FORMAT = "t2i/1"  # a t2i model file's format (weights.py writes and reads them)
META_KEY = "t2i"  # the one __metadata__ key: a JSON object of format, kind, config (and checkpoint state)
MAX_HEADER_BYTES = 100_000_000  # the largest safetensors header read (the safetensors library's own limit)
MAX_DIM = 1 << 20  # largest config integer a file may carry (vocabularies, widths, sides): weights.check_budget's


def header_config(path: Path, kind: str) -> dict | None:
    """The config a t2i model file of `kind` records, read from its safetensors header alone and without torch
    (weights.file_config reads it checked, with torch imported: generate reads the transformer's codebook size
    before a --prompts pipe is read, and torch imported there loaded libgomp before its spinning was bounded);
    None where the file cannot be read so, is not of `kind`, or holds a whole number its load refuses, below 0 or
    above MAX_DIM (its load says why: image_vocab 10**400 was taken, and `--top-p 0.5` times it overflowed a float,
    an internal error). At most MAX_HEADER_BYTES are read."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= MAX_HEADER_BYTES:
                return None
            raw = json.loads(f.read(size))["__metadata__"]
        meta = json.loads(raw[META_KEY]) if META_KEY in raw else raw
        if meta.get("format") != FORMAT or meta.get("kind") != kind:
            return None
        config = json.loads(meta["config"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    if not isinstance(config, dict) or not all(not isinstance(x, int) or 0 <= x <= MAX_DIM for v in config.values()
                                               for x in (v if isinstance(v, list) else [v])):
        return None
    return config


def shipped_weights() -> bool:
    """Whether the weights that ship with the repository are where this t2i runs from (not in a `pip install .`)."""
    return (REPO_WEIGHTS / "transformer.safetensors").is_file()


def is_whole_run(run_dir: Path) -> bool:
    """Whether a folder holds a `--stage all` run."""
    return (Path(run_dir) / PLAN).is_file()


# The suffixes of the pictures t2i reads (images.py re-exports them); here, torch-free, so that `generate --prompts -`
# refuses an --out named as a picture (`--out new/bird.png`) before it reads its pipe, not once the pipe closes.
# (.jfif and .jpe are JPEG: Windows' browsers save .jfif)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _finished_temporary(path: Path, write: Callable[[Path], None], shown: str | None = None,
                        made: list[Path] | None = None) -> Path:
    """A new temporary file beside path, filled by write(tmp) and fsynced; removed again on any failure (which
    names the file as shown, when given, else as path). made: where given, the temporary is added to it as one step
    with its making, for the caller to remove on a failure of its own: a stop between this function's return and
    the caller's record of its answer left it behind, unnamed (atomic_write_set's, a hidden temporary beside a
    weights folder that said "nothing was written")."""
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"cannot write to {path.parent}: it is a file, not a folder; choose a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if made is None else signals_held():
            fd, tmp_name = tempfile.mkstemp(prefix=f".{recorded_name(path.name)}.", suffix=".tmp", dir=path.parent)
            if made is not None:
                made.append(Path(tmp_name))
    except OSError as e:
        raise OutputError(f"cannot write to {path.parent}: {e.strerror}; choose a writable folder") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual permissions
        write(tmp)
        with open(tmp, "r+b") as f:  # open to write: Windows' fsync (FlushFileBuffers) fails on a read-only handle
            os.fsync(f.fileno())
    except BaseException as e:  # also KeyboardInterrupt: never leave the temporary file behind
        _discard(tmp, shown or str(path), e)
    return tmp


def name_bytes(text: str) -> int:
    """The bytes text takes as a file's name: UTF-8, and a byte that is not UTF-8 as Python's surrogate escape of
    it (one byte)."""
    return len(text.encode("utf-8", "surrogateescape"))


RECORDED_ROOM = 64  # bytes of a name a temporary records: the temporary of a long name must not be longer than the
# name (64 characters of 4-byte emoji made a 274-byte temporary of a 252-byte name)
CUT_MARK = "\u2026"  # (…) where recorded_name left out the middle of a longer name
CUT_TAIL = 20  # bytes of a cut name's end that its record keeps (its suffix, a -NNN.png: what cleanups match)
_RANDOM_PART = re.compile(r"[a-z0-9_]{8}")  # mkstemp's part of a temporary's name


def recorded_name(name: str) -> str:
    """The name a temporary beside `name` records (temporary_of's answer): the name itself where it fits in
    RECORDED_ROOM bytes, else its head, CUT_MARK and its last CUT_TAIL bytes (whole characters each), so that a
    cleanup still knows it for one of its own (a -NNN.png, a caption of a picture there): the name's first 64
    bytes alone were never recognised, and a killed write's temporary of a long name stayed for good."""
    if name_bytes(name) <= RECORDED_ROOM:
        return name
    tail = ""
    for ch in reversed(name):
        if name_bytes(ch + tail) > CUT_TAIL:
            break
        tail = ch + tail
    return cut_to_bytes(name, RECORDED_ROOM - name_bytes(CUT_MARK) - name_bytes(tail)) + CUT_MARK + tail


def cut_record(recorded: str) -> bool:
    """Whether a temporary's recorded name (temporary_of's) may be recorded_name's cut of a longer name: as long
    as such a cut is (a head cut at a character boundary leaves at most 3 bytes unused, the tail as many) and
    holding CUT_MARK."""
    return CUT_MARK in recorded and RECORDED_ROOM - 6 <= name_bytes(recorded) <= RECORDED_ROOM


def head_of_long_name(recorded: str) -> bool:
    """Whether a temporary's recorded name (temporary_of's) is as long as t2i 0.18.0's record of a name over
    RECORDED_ROOM bytes, its first RECORDED_ROOM bytes alone (cut_to_bytes: whole characters, so 61 to 64 bytes):
    the window recorded_by_018 and a cleanup's look for such a record (name_captions) both test first."""
    return RECORDED_ROOM - 3 <= name_bytes(recorded) <= RECORDED_ROOM


def recorded_by_018(recorded: str, names: Iterable[str]) -> bool:
    """Whether a temporary's recorded name (temporary_of's) is t2i 0.18.0's record of one of names, a name over
    RECORDED_ROOM bytes: its first RECORDED_ROOM bytes alone (cut_to_bytes: 61 to 64 bytes, whole characters),
    without the end that recorded_name keeps since 0.19.0, so that no cleanup knew it for its own and a temporary
    that a kill left stayed for good. Only that exact head of a name the cleanup itself writes in that folder is
    taken (a NAME.txt of a picture there, a copy's or a map's -NNN.png of a picture ranked), so a file of yours so
    named stays unless it is, to the byte, the head of such a name (and of mkstemp's shape: temporary_of)."""
    if not head_of_long_name(recorded):
        return False
    return any(name_bytes(name) > RECORDED_ROOM and cut_to_bytes(name, RECORDED_ROOM) == recorded for name in names)


def _discard(tmp: Path, shown: str | Path, e: BaseException) -> NoReturn:
    """Remove the temporary file of a failed write (of the file shown) and raise: an OSError as one OutputError
    line."""
    tmp.unlink(missing_ok=True)
    if isinstance(e, OSError):
        raise OutputError(f"cannot write {shown}: {e.strerror or e}; free space or choose another folder") from e
    raise e


def file_above(path: Path) -> Path | None:
    """The nearest folder of path's that exists and is not a folder (a file), or None: where a new path inside
    it could never be made."""
    return next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)


def broken_link(path: Path) -> str | None:
    """How path is, or is inside, a link to nothing (its target missing, or a loop of links): "is a link to T, which
    does not exist ..." or "is inside L, a link to T, ..."; None where it is neither."""
    broken = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
    if broken is None:
        return None
    target = broken.parent / os.readlink(broken)  # (a relative target is the link's folder's)
    what = "is a link" if broken == path else f"is inside {broken}, a link"
    return f"{what} to {target}, which does not exist (or links back to itself)"


def refuse_dash(folder: Path | str, option: str, example: str = "outputs") -> None:
    """Refuse '-' as the folder an option names: it made a folder named '-' (`--prompts -` reads standard input,
    so `--out -` reads as standard output, which no folder option writes to), as `eval --json -` is refused."""
    if os.fspath(folder) == "-":
        raise UsageError(f"{option} - would make a folder named '-', not write to standard output; {option} takes "
                         f"a folder, e.g. {option} {example}")


def check_folder_path(folder: Path, option: str) -> Path:
    """A folder path that is, or can become, a folder (make_folder's first checks, which make nothing): a path that
    is a file or inside one, or '-', is a UsageError naming the option."""
    refuse_dash(folder, option)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} exists and is not a folder; choose another with {option}")
    if (said := broken_link(folder)) is not None:  # ("cannot create folder X: File exists", for it or one above)
        raise UsageError(f"{option} {folder} {said}; make that folder, or choose another with {option}")
    blocker = file_above(folder)
    if blocker is not None:
        raise UsageError(f"{option} {folder} is inside {blocker}, which is a file; choose another with {option}")
    return folder


def missing_folders(folder: Path) -> list[Path]:
    """folder and each of its parents that does not exist yet, nearest first: what make_folder is about to make
    (and remove_empty takes away again when nothing was written)."""
    made, p = [], Path(folder)
    while p != p.parent and not (p.exists() or p.is_symlink()):
        made.append(p)
        p = p.parent
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove each of these folders, nearest first, while it is empty: those a command made and wrote nothing
    into (an interrupted `--out new/a/b` left new and new/a behind)."""
    for p in folders:
        try:
            if p.is_symlink() or not p.is_dir() or any(p.iterdir()):
                return
            p.rmdir()
        except OSError:
            return


PROBE_PREFIX = ".t2i-probe-"  # make_folder's probe of an existing folder: .t2i-probe-XXXXXXXX (mkstemp's part)
_PROBE = re.compile(re.escape(PROBE_PREFIX) + r"[a-z0-9_]{8}")


def remove_probes(folder: Path) -> None:
    """Remove the probes (make_folder's) a kill between their making and their removal left in folder: of mkstemp's
    shape, empty, and unchanged for STALE_AFTER seconds (another t2i may be probing the folder now). (one was never
    removed: each kill in that window left another .t2i-probe-XXXXXXXX for good)"""
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if e.name.startswith(PROBE_PREFIX) and _PROBE.fullmatch(e.name)]
    except OSError:
        return
    for e in found:
        try:
            st = e.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0 and now - st.st_mtime >= STALE_AFTER:
                os.unlink(e.path)
        except OSError:
            pass


def make_folder(folder: Path, option: str = "--out") -> Path:
    """Create a folder (and its parents) if needed. A path that is a file or inside one is a UsageError (exit 2,
    as a training run's --out and export's --to), a folder that cannot be made (read-only disk, no permission)
    an OutputError; either is one line naming the option that chose it. An existing folder is probed with a new
    file, removed at once; one a kill left there is removed once a minute old (remove_probes)."""
    folder = check_folder_path(folder, option)
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create folder {folder}: {e.strerror or e}; choose a writable one with "
                          f"{option}") from e
    if existed:  # an existing folder may refuse new files: find out now, not after the work whose files they are
        remove_probes(folder)
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=PROBE_PREFIX)
        except OSError as e:
            raise OutputError(f"cannot write to {option} {folder}: {e.strerror or e}; choose a writable folder "
                              f"with {option}") from e
        try:
            os.close(fd)
        finally:
            Path(probe).unlink(missing_ok=True)
    return folder


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file beside path, fsync it, then rename it onto path."""
    path = Path(path)
    made: list[Path] = []  # (the temporary, named as it is made: a stop just after it is finished removes it too)
    try:
        os.replace(_finished_temporary(path, write, made=made), path)
    except BaseException as e:
        if not made:
            raise
        _discard(made[0], path, e)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes to path atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_if_absent(path: Path, data: bytes) -> bool:
    """Write a new file whole (a temporary, then a hard link to its name, which fails where the name exists):
    False, and nothing written, where path exists, even where it was made between a look and this write. Where
    the file system has no hard links (FAT, some network shares), a rename onto a name found free. SIGINT,
    SIGTERM and SIGHUP wait for it (a small file): a stop between making the temporary and removing it again
    left it behind (once in a few thousand caption files written, `t2i data caption` stopped)."""
    path = Path(path)
    with signals_held():
        tmp = _finished_temporary(path, lambda t: t.write_bytes(data))
        try:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as e:
                if isinstance(e, FileNotFoundError) and not tmp.exists():
                    raise
                if path.exists() or path.is_symlink():
                    return False
                os.replace(tmp, path)
            return True
        except OSError as e:
            _discard(tmp, path, e)
        finally:
            tmp.unlink(missing_ok=True)


def atomic_write_set(items: list[tuple[Path, bytes]], journal: Path | None = None,
                     done: Callable[[list[Path]], None] | None = None) -> list[Path]:
    """Write several files as one set (a weights folder's models must come from one export): every file to a
    finished temporary first, then the renames, with SIGINT and SIGTERM held until the last is done. A failure
    or a stop before the renames leaves every target as it was and no temporary behind. journal (a file in the
    folder of every item): written before the first rename, naming each temporary and its target, and removed
    after the last, so that a kill -9 between two renames, which no handler holds, can be finished (finish_set)
    and is known until then (a weights folder held one export's dVAE beside another's transformer, unsaid).
    An OSError at a rename (a full or read-only disk) leaves the state the journal says: before the first, the
    targets as they were and no journal; after it, the journal and the temporaries not yet renamed, which
    finish_set renames (they were removed, and the journal left naming them: the folder mixed, nothing to
    finish it with). done: told the targets as one step with the last rename (a stop waits for both: what a stop
    says of them)."""
    temps: list[tuple[Path, Path]] = []
    made: list[Path] = []  # every temporary, named as it is made (a stop just after one was finished left it behind)
    keep = False  # the temporaries a journal names, some of its renames done: finish_set's to rename
    try:
        for path, data in items:
            temps.append((_finished_temporary(Path(path), lambda tmp, d=data: tmp.write_bytes(d), made=made),
                          Path(path)))
        renames = [[tmp.name, path.name] for tmp, path in temps]
        with signals_held():
            if journal is not None and temps:
                atomic_write_json(journal, {"renames": renames})
            for k, (tmp, path) in enumerate(temps):
                try:
                    os.replace(tmp, path)
                except OSError as e:
                    if journal is not None and k == 0:  # nothing renamed: the set is as it was, whole
                        Path(journal).unlink(missing_ok=True)
                    keep = journal is not None and k > 0
                    if keep:  # the journal says this was a failed rename, not a kill (where it can still be written)
                        with contextlib.suppress(OSError, OutputError):
                            atomic_write_json(journal, {"renames": renames, "failed": str(e.strerror or e)})
                    raise
            if journal is not None:
                Path(journal).unlink(missing_ok=True)
            if done is not None and temps:
                done([path for _, path in temps])
    finally:
        for tmp in made:
            if not keep:
                tmp.unlink(missing_ok=True)  # those not renamed
    return [path for _, path in temps]


def finish_set(journal: Path, names: Collection[str]) -> list[Path]:
    """Finish a set of renames (atomic_write_set's) that a kill cut: each temporary its journal names that is
    still there is renamed onto its target (each was finished, fsynced, before the journal was written), then the
    journal is removed; returns the targets renamed now. names: the targets such a set has (a weights folder's
    files). A journal that is not one t2i wrote (a pair that is not a temporary of one of names, in the journal's
    folder) is left alone, and nothing renamed (a journal naming README.md, or .., moved files a set never had)."""
    journal = Path(journal)
    try:
        renames = read_own_json(journal, 1 << 20)["renames"]
        pairs = [(str(tmp), str(name)) for tmp, name in renames]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    if not all(name in names and "/" not in tmp and os.sep not in tmp and temporary_of(tmp) == name
               for tmp, name in pairs):  # (all checked before the first rename: none of a foreign journal's done)
        return []
    done = []
    for tmp, name in pairs:
        if (journal.parent / tmp).is_file() and not (journal.parent / tmp).is_symlink():
            os.replace(journal.parent / tmp, journal.parent / name)
            done.append(journal.parent / name)
    journal.unlink(missing_ok=True)
    return done


def stop_signals() -> tuple[int, ...]:
    """The signals that stop t2i as Ctrl-C does: SIGINT, SIGTERM, and SIGHUP where the system has it."""
    import signal

    return tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, `timeout`, a scheduler) and SIGHUP (a closed terminal, a dropped ssh session) stop a
    command (training outside its step loop, which has its own handler) as Ctrl-C does: the files finished so far
    are kept, nothing partial stays, one line says so (exit 130). Python's default would end the process
    silently, mid-write, leaving a new output folder empty or a temporary file behind (exit 143 or 129). The `t2i`
    entry (__main__) calls it first of all; each command again (in-process callers, tests)."""
    import signal
    import threading

    # one ignored when t2i started (`trap '' TERM`, nohup) stays ignored; SIGHUP where the system has it
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        s = getattr(signal, name, None)
        if s is not None and signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, signal.default_int_handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block is done, then reach the handler in place before it (Ctrl-C's
    KeyboardInterrupt, or a command's stop): a few renames that must all happen, or none, are not cut apart."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    held = [s for s in (getattr(signal, name, None) for name in ("SIGHUP", "SIGTERM")) if s is not None]
    held.append(signal.SIGINT)
    previous = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in held}

    def put_back(signals: list) -> None:
        # each handler back in the finally of the one before (SIGINT's last): a signal that reaches a restored
        # handler (and raises) while another is being put back cannot leave that one swallowing signals for
        # good. A handler set outside Python (None) cannot be put back, as Python says.
        if signals:
            try:
                if previous[signals[0]] is not None:
                    signal.signal(signals[0], previous[signals[0]])
            finally:
                put_back(signals[1:])

    try:
        yield
    finally:
        put_back(held)
        # the first stop held whose handler does not ignore it (under nohup a SIGHUP first hid a SIGTERM after it)
        stop = next((s for s in got if previous[s] is not signal.SIG_IGN), None)
        if stop is not None:
            signal.raise_signal(stop)


class Busy(OutputError):
    """Another t2i process holds the folder (folder_lock)."""


@contextmanager
def folder_lock(folder: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on a folder while the block runs (flock on the folder itself: no file is added to
    it), so that a second t2i process asking for the same folder is refused with busy (Busy, one line) instead
    of writing the same files: two new runs in one --out both "finished" with one run's model and both runs'
    metrics, a second --resume deleted the checkpoint the first was writing. The system releases it when the
    process ends, kill -9 included (a forked child, such as a loader worker, closes its copy at once:
    _drop_inherited_locks). Where there is no flock (some network file systems, Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # no flock here
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(busy) from None
        except OSError:  # a file system that does not lock: go on unlocked
            pass
        try:  # the folder is still the one locked: another start that failed may have removed it in between
            same = os.path.samestat(os.fstat(fd), os.stat(folder))
        except OSError:
            same = False
        if not same:
            raise Busy(busy)
        _HELD_LOCKS.add(fd)
        yield
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


_HELD_LOCKS: set[int] = set()  # the descriptors of the folder locks this process holds


def folder_locked(folder: Path) -> bool:
    """Whether another process holds folder_lock on folder now (a run being trained): a shared lock tried and
    let go at once, so the holder's own next lock is never refused for it. False where nothing locks."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing the descriptor lets its lock go


def whole_run_training(run: Path) -> bool:
    """Whether a --stage all run is being trained now by another process (one of its stage folders is locked):
    its unfinished state is no stop, and `t2i train --resume RUN` would be refused as busy."""
    return any(folder_locked(Path(run) / stage) for stage in STAGES)


def unfinished_whole_run(run: Path, to: str, subject: str | None = None) -> str:
    """The one sentence of a --stage all run that has no weights/ yet, as `t2i export RUN` and a command given RUN
    as its weights say it (they said it in two wordings, and each checked "training now" itself, one quoting the
    weights folder and one not): where another process trains it now, that it does, where its weights will be and
    `t2i info RUN` (a resume would be refused as busy); else finish it, or export the models it has into `to` (a
    transformer and a CLIP; nothing draws without a transformer). subject: how the sentence names the run (the
    run's path where None)."""
    run = Path(run)
    if whole_run_training(run):
        return (f"{run if subject is None else subject} is a --stage all run being trained now by another t2i "
                f"process, so it has no weights yet; it exports them to {shell_word(run / 'weights')} when it "
                f"finishes (t2i info {shell_word(run)} says how far it got)")
    trained = [run / s for s in ("transformer", "clip") if (run / s / f"{s}.safetensors").is_file()]
    export = (f", or export what it has: `t2i export {' '.join(map(shell_word, trained))} --to {shell_word(to)}`"
              if trained and trained[0].name == "transformer" else "")
    return (f"{run if subject is None else subject} is a --stage all run that has not finished, so it has no weights "
            f"yet; finish it with `t2i train --resume {shell_word(run)}` (it exports them to "
            f"{shell_word(run / 'weights')}){export}")


INFERENCE_LOCK = "t2i-inference.lock"  # in the temporary folder: every inference command holds it, shared
_INFERENCE_HOLD: list[int] = []  # this process's descriptor of it (the hold ends with the process)


def other_t2i_inferring(folder: Path | None = None) -> int:
    """Whether another t2i inference command runs on this machine now (1) or not (0), and from now on this one
    holds a shared flock on INFERENCE_LOCK in folder (the temporary folder) until it ends, kill -9 included, so
    that a command started after it knows of it: each start first tries the lock exclusively, which fails while
    another holds it. /proc/stat alone missed a command started at the same instant (each looked while the other
    slept between its looks; both then spun on the same cores, 3-4x as long). 0 where the file cannot be opened
    or locked (no flock: Windows; a file another user made unreadable)."""
    try:
        import fcntl
    except ImportError:
        return 0
    path = Path(folder if folder is not None else tempfile.gettempdir()) / INFERENCE_LOCK
    # (O_NONBLOCK: a FIFO someone made at the path opened for reading waits for a writer, and the command hung
    # before its first line; a FIFO, a folder or a device there is then let be, as an unopenable file is)
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_NONBLOCK", 0))
    try:
        try:
            fd = os.open(path, flags)  # (O_CREAT on another user's file in /tmp is refused: protected_regular)
        except FileNotFoundError:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:  # another start made it in between
                fd = os.open(path, flags)
    except OSError:
        return 0
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        regular = False
    if not regular:
        os.close(fd)
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = 0
    except BlockingIOError:
        other = 1
    except OSError:  # a file system that does not lock
        os.close(fd)
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # (from exclusive: so that the next start's try fails)
    except OSError:  # held exclusively by a start between its two calls: this one goes unheld
        os.close(fd)
        return other
    _INFERENCE_HOLD.append(fd)
    return other


def _drop_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): close the parent's lock descriptors, so that the lock ends with
    the process that took it (workers outlived a kill -9'd trainer by seconds, and an immediate --resume was
    refused as if another t2i were training)."""
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write obj as indented JSON to path atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def check_output_file(path: Path, flag: str) -> Path:
    """Refuse, before any work, a path an output file cannot be written to: a folder, or one whose parent is
    not an existing, writable folder."""
    if str(path) == "-":  # (`--prompts -` reads standard input: `eval --json -` wrote a file named "-", said
        # "wrote -", and left the user looking for its JSON on standard output, which holds the table)
        raise UsageError(f"{flag} - would write a file named '-', not standard output (which shows the table); "
                         f"give a file name, e.g. {flag} results.json")
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'results.json'}")
    parent = path.parent
    if not parent.is_dir():  # "create it" only where it can be: not a file, a path inside one, or a link to nothing
        if (said := broken_link(parent)) is not None:
            raise UsageError(f"{flag} {path}: {parent} {said}; make that folder, or choose another path")
        blocker = parent if parent.exists() else file_above(parent)
        if blocker is not None:
            where = "is a file, not a folder" if blocker == parent else f"is inside {blocker}, which is a file"
            raise UsageError(f"{flag} {path}: {parent} {where}; choose another path")
        raise UsageError(f"{flag} {path}: {parent} is not a folder; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: {parent} cannot be written to; choose another path")
    return path


def sha256_of(path: Path, h: "hashlib._Hash | None" = None, also: tuple = ()) -> "hashlib._Hash":
    """The sha256 (or the given hash, updated) of a file's bytes, read in 1 MB blocks so that a large file never
    sits whole in memory; OSError if it cannot be read. also: more hashes updated with the same blocks (one read
    for several)."""
    h = hashlib.sha256() if h is None else h
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            for other in also:
                other.update(block)
    return h


MAX_OWN_JSON = 64 << 20  # a JSON file t2i wrote is read to recognise it only up to this size


def read_own_json(path: Path, limit: int | None = None) -> Any:
    """A JSON file t2i wrote (a run's train_config.json or all.json), parsed; ValueError when it is larger than
    limit bytes (MAX_OWN_JSON unless given; not read) or not JSON, OSError when it cannot be read."""
    limit = MAX_OWN_JSON if limit is None else limit
    with open(path, "rb") as f:  # one read of at most the bound: a file that grows meanwhile is not read whole
        data = f.read(limit + 1)
    if len(data) > limit:
        held = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB" if limit >= 1 << 10 else \
            f"{limit} bytes"
        raise ValueError(f"it holds more than the {held} t2i writes there")
    return json.loads(data)


def is_own_json(path: Path, looks_like: Callable[[Any], bool]) -> bool:
    """Whether path is a JSON file that looks_like (given its parsed content) recognises as what t2i writes
    there; a file that cannot be read, is not JSON or is larger than MAX_OWN_JSON is not."""
    try:
        return Path(path).is_file() and bool(looks_like(read_own_json(path)))
    except (OSError, ValueError, RecursionError):
        return False


def check_replaceable(path: Path, looks_like: Callable[[Any], bool], named: str, what: str, force: bool) -> Path:
    """Refuse (a UsageError naming the path as `named`) to replace a file t2i did not write: an existing path is
    replaced only when it is a JSON file looks_like recognises as `what`, or with --force; a folder never."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{named} is a folder; move it away or choose another path")
    if force or not (path.exists() or path.is_symlink()) or is_own_json(path, looks_like):
        return path
    if path.is_symlink() and not path.exists():  # (not "exists and is not ...": what it names is missing)
        target = path.parent / os.readlink(path)
        raise UsageError(f"{named} is a link to {target}, which does not exist (or links back to itself); move it "
                         f"away, or add --force to replace the link")
    raise UsageError(f"{named} exists and is not {what}; move it away, or add --force to replace it")


# Letters that Unicode does not decompose into a base letter and marks, as they are written without the mark (file
# names and the sheets' labels, images.drawable).
UNMARKED = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae",
                          "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D",
                          "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})


EMOJI_MODIFIERS = frozenset(map(chr, range(0x1F3FB, 0x1F400)))  # the five skin tones (Unicode category Sk): "👍🏻"
# and "👍🏿" were one name's hash, as "👍" alone


def _meant(ch: str) -> bool:
    """Whether a character carries meaning in a prompt: a letter, a mark on one, a digit, a symbol such as an emoji,
    or a code point this Python's Unicode tables do not assign (Cn): an emoji newer than they are ("🪿", Unicode 15,
    on Python 3.11), which was left out unhashed, so "a 🪿" was named as "a" is, and by another name on 3.12."""
    category = unicodedata.category(ch)
    return category[0] in "LMN" or category in ("So", "Cn") or ch in EMOJI_MODIFIERS


def safe_stem(text: str, max_len: int = 48) -> str:
    """A file-name stem from free text: ASCII letters, digits and dashes only, bounded length. Letters with an ASCII
    form are written in it ("café" -> cafe, "Straße" -> strasse); where letters, digits or emoji without one are left
    out (Chinese, Cyrillic, Arabic, "🐦"), the stem ends in 8 hex digits of a hash of the prompt's words as the model
    reads them (NFKC, lower case), so that two such prompts get two names ("红色的鸟" -> image-38ca7a50) where they
    were all "image", told apart only by a counter that numbered one prompt's files after another's. What the
    model reads is hashed: an emoji's skin tone, the joiner of an emoji sequence ("👨‍👩‍👧", a family, was "👨 👩 👧"'s
    name), a flag's tags (Scotland's flag was the black flag's name); not a format character it does not read
    (models.tokenizer.without_format: a soft hyphen or a direction mark in a word split it in the name)."""
    if not text.isascii():
        from t2i_cli.models.tokenizer import without_format

        text = without_format(text)
    marked = unicodedata.normalize("NFKD", text.translate(UNMARKED))
    # a mark is part of its letter; any other character outside ASCII (a space of another width, a zero-width one,
    # a letter of another script) parts words, as the tokenizer's pre-tokenizer parts them
    ascii_text = "".join(ch if ch.isascii() else "" if unicodedata.combining(ch) else " " for ch in marked)
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not any(not ch.isascii() and not unicodedata.combining(ch) and _meant(ch) for ch in marked):
        return stem[:max_len].rstrip("-") or "image"
    read = unicodedata.normalize("NFKC", text).lower()
    # (a format character left by without_format means something there: a joiner between emoji, a flag's tags)
    words = re.sub(r"-+", "-", "".join(ch if _meant(ch) or unicodedata.category(ch) == "Cf" else "-"
                                       for ch in read)).strip("-")
    digest = hashlib.sha256(words.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[:max(0, max_len - 9)].rstrip('-') or 'image'}-{digest}"[-max_len:].lstrip("-")


MAX_NAMES = 100_000  # stem-000 .. stem-99999
NAME_MAX = 255  # bytes of one file name on Linux, macOS and Windows file systems


def fitted_stem(stem: str, suffix: str) -> str:
    """stem cut (at a character boundary) so that stem-NNNNN.suffix fits in NAME_MAX bytes: a name made from a
    user's file name (`rerank --explain`'s explain-<picture>, `--link-best`'s copies) failed with "File name
    too long" and advice to choose another folder where the picture's own name was 250 bytes."""
    return cut_to_bytes(stem, NAME_MAX - len(f"-{MAX_NAMES - 1}") - len(suffix.encode()))


NOT_UTF8 = re.compile("[\udc80-\udcff]")  # how Python keeps bytes of a name or an argument that are not UTF-8


def not_utf8(text: str) -> bool:
    """Whether text holds bytes that are not UTF-8 (a Latin-1 file name, an argument from a shell in another
    encoding), which Python keeps as lone surrogates (surrogateescape)."""
    return NOT_UTF8.search(text) is not None


def shell_word(path: object) -> str:
    """A path as one word of a command t2i suggests, quoted where the shell would split it ('My Pictures/run':
    the suggested `t2i train --resume` of a run under a folder with a space resumed another path). A byte that
    is not UTF-8 (a Latin-1 folder name, which Python keeps as a lone surrogate) or a control character (a
    newline) is printed as an escape (\\udce9, \\n), which, pasted, named another path: such a word is written in
    $'...' quoting (bash, zsh, ksh), each such byte as \\xNN, which the shell reads back as that byte. A relative
    path that begins with '-' (`info -- -w`) is said ./-w: pasted, -w was read as an option, and - as standard
    input or output."""
    text = str(path)
    if isinstance(path, PurePath) and text.startswith("-"):
        text = "./" + text
    if text.isprintable() and not not_utf8(text):
        return shlex.quote(text)
    out = []
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass")))
    return "$'" + "".join(out) + "'"


def train_command(source: object) -> str:
    """The `t2i train` command that trains a whole run on source (a folder of pictures or a manifest), as one that
    runs as pasted: `t2i train --data SRC` alone is refused for a new run, naming --stage and --out. The run is
    named after the source (runs/NAME; a Hugging Face metadata.csv after its folder; runs/mine where it has none)."""
    where = Path(os.path.abspath(str(source)))
    name = where.stem if where.is_file() else where.name
    if where.is_file() and name.lower() == "metadata":
        name = where.parent.name
    return (f"t2i train --stage all --data {shell_word(source)} "
            f"--out {shell_word(Path('runs') / (name or 'mine'))}")


def cut_to_bytes(name: str, room: int) -> str:
    """name's longest head, whole characters, of at most `room` bytes as the file system holds it (UTF-8, and a
    byte that is not UTF-8 as Python's surrogate escape of it)."""
    if name_bytes(name) <= room:
        return name
    kept, used = [], 0
    for ch in name:
        used += name_bytes(ch)
        if used > room:
            break
        kept.append(ch)
    return "".join(kept)


def write_new(folder: Path, stem: str, suffix: str, write: Callable[[Path], None], option: str = "--out",
              naming: Callable[[Path], None] | None = None) -> Path:
    """Write a new file folder/stem-NNN.suffix, never overwriting one: write(tmp) fills a temporary file,
    which is then hard-linked under the first free name (the link fails if the name exists, so two writers
    never share one) and removed. No crash leaves a half-written or empty file under a final name. Where
    the file system has no hard links the name is reserved first (O_EXCL), then the file renamed onto it.
    option is the command-line option that chose the folder (its errors name it); "" when none did. naming,
    where given, is called with each name about to be tried, before the file gets it (a record that must name
    the file before a kill -9 can leave it unnamed: rerank's best/)."""
    folder = Path(folder)
    where = f" with {option}" if option else ""
    stem = fitted_stem(stem, suffix)
    # hidden, unique, complete; a failed write names the new file it was for, not a placeholder number
    temporary = folder / f"{stem}-NNN{suffix}", write, f"a new {stem}-*{suffix} in {folder}"
    made: list[Path] = []  # each temporary, named as it is made (a stop just after one was finished left it behind)
    try:
        tmp = _finished_temporary(*temporary, made=made)
        rewritten = 0
        while True:
            try:
                return _link_new(tmp, folder, stem, suffix, where, naming)
            except FileNotFoundError:
                # the temporary is gone, the folder is not: another t2i writing there took it for a killed write's
                # (this process was paused, Ctrl-Z or a suspended machine, for over STALE_AFTER): write it again
                rewritten += 1
                if rewritten > 2 or tmp.exists() or not folder.is_dir():
                    raise
                tmp = _finished_temporary(*temporary, made=made)
    except OSError as e:
        raise OutputError(f"cannot write to {folder}: {e.strerror}; choose a writable folder{where}") from e
    finally:
        for tmp in made:
            tmp.unlink(missing_ok=True)


_NEXT_NAME: dict[tuple[Path, str, str], int] = {}  # (folder, stem, suffix) -> the number after this process's last
MAX_NEXT_NAMES = 4096  # stems remembered (a long-lived process of many prompts: forgotten, each is found again)


def _first_number(folder: Path, stem: str, suffix: str) -> int:
    """Where write_new's search for a free name starts: after the last name this process took there, while that
    file is still there (a run of --n 256 into a folder of 5,000 such files tried every taken name again for each
    file, 12 s of failed links), else 0 (the first free name: a gap a user made is filled)."""
    after = _NEXT_NAME.get((folder, stem, suffix), 0)
    return after if after and (folder / f"{stem}-{after - 1:03d}{suffix}").exists() else 0


def _remember(folder: Path, stem: str, suffix: str, taken: int) -> None:
    """Note the number write_new took, for its next search there; at most MAX_NEXT_NAMES stems are kept."""
    if len(_NEXT_NAME) >= MAX_NEXT_NAMES and (folder, stem, suffix) not in _NEXT_NAME:
        _NEXT_NAME.clear()
    _NEXT_NAME[folder, stem, suffix] = taken + 1


def _link_new(tmp: Path, folder: Path, stem: str, suffix: str, where: str,
              naming: Callable[[Path], None] | None = None) -> Path:
    """The finished temporary tmp under the first free name folder/stem-NNN.suffix (write_new)."""
    for i in range(_first_number(folder, stem, suffix), MAX_NAMES):
        path = folder / f"{stem}-{i:03d}{suffix}"
        if naming is not None:
            if os.path.lexists(path):
                continue
            naming(path)
        try:
            os.link(tmp, path)
            _remember(folder, stem, suffix, i)
        except FileExistsError:
            continue
        except OSError as e:  # no hard links here (e.g. FAT, some network shares)
            if isinstance(e, FileNotFoundError) and not tmp.exists():
                raise
            path = _claim(folder, stem, suffix, where)
            try:
                if naming is not None:
                    naming(path)
                os.replace(tmp, path)
            except BaseException:
                path.unlink(missing_ok=True)  # the reserved, still empty name
                raise
            return path
        return path
    raise OutputError(f"{folder} holds too many files named {stem}-*; choose another folder{where}")


NEW_FILE_NAME = re.compile(r".+-NNN\.[^.]+")  # the name write_new's temporary of a new STEM-NNN.SUFFIX is made for
STALE_AFTER = 60.0  # seconds unchanged after which a temporary in a shared folder is no write in progress


def temporary_of(filename: str) -> str | None:
    """The name a temporary file (_finished_temporary's .NAME.XXXX.tmp) was made for, else None: only where the
    rest is mkstemp's own (XXXX: 8 letters, digits or _), as a user's file so named is not (".a-red-bird-000.png
    .mine.tmp" in an --out folder was taken for t2i's and removed; any XXXX was taken outside a picture folder)."""
    if not (filename.startswith(".") and filename.endswith(".tmp")) or len(filename) < 6:
        return None
    recorded, _, random_part = filename[1:-4].rpartition(".")
    if not _RANDOM_PART.fullmatch(random_part):
        return None
    return recorded or None


def remove_temporaries(folder: Path, whose: Callable[[str], object] = lambda name: True,
                       idle: float = 0.0) -> list[Path]:
    """Remove the temporaries a killed write left in folder (those of the names whose() accepts, of mkstemp's shape:
    temporary_of), once unchanged for idle seconds (another process may be writing one now); returns them."""
    now, gone = time.time(), []
    try:
        found = [p for p in Path(folder).iterdir()
                 if (name := temporary_of(p.name)) is not None and whose(name)]
    except OSError:  # no such folder (yet)
        return gone
    for p in found:
        try:
            if p.is_file() and not p.is_symlink() and now - p.stat().st_mtime >= idle:
                p.unlink()
                gone.append(p)
        except OSError:
            pass
    return gone


def _claim(folder: Path, stem: str, suffix: str, where: str = " with --out") -> Path:
    """Reserve a new file folder/stem-NNN.suffix that did not exist (O_EXCL), so nothing is overwritten."""
    for i in range(_first_number(folder, stem, suffix), MAX_NAMES):
        path = folder / f"{stem}-{i:03d}{suffix}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        _remember(folder, stem, suffix, i)
        return path
    raise OutputError(f"{folder} holds too many files named {stem}-*; choose another folder{where}")


def same_place(a: object, b: object) -> bool:
    """Whether two data sources name one folder or manifest (typed another way, or through a link)."""
    if not (isinstance(a, str) and isinstance(b, str)) or not a or not b:
        return False
    try:
        return os.path.samefile(os.path.expanduser(a), os.path.expanduser(b))
    except (OSError, ValueError):  # (either gone: a check after this one says so)
        return False
