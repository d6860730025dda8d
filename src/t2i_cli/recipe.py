"""`t2i train --stage all`: every stage in order in one run folder, resumable stage by stage, then export.

RUN/tokenizer, RUN/dvae, RUN/transformer and RUN/clip are ordinary run folders (each can be inspected,
resumed or exported on its own); RUN/all.json records the settings of the whole run, so running the same
command again, or `t2i train --resume RUN`, continues where it stopped: finished stages are skipped, a
stage that was interrupted resumes exactly, the next ones start. The trained models are then exported to
RUN/weights, ready for `t2i generate --weights RUN/weights`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from t2i_cli.data import DATA_RECORD
from t2i_cli.errors import UsageError, raised_while
from t2i_cli.files import (
    PLAN,
    atomic_write_json,
    is_whole_run,
    make_folder,
    missing_folders,
    read_own_json,
    remove_empty,
    shell_word,
)
from t2i_cli.stages import check_data_still_there, check_new_folder, check_whole_run_models, run_stage
from t2i_cli.train import (
    RUN_CONFIG,
    STAGES,
    Interrupted,
    TrainConfig,
    export_runs,
    finished,
    saved_note,
)
from t2i_cli.train_options import (
    WHOLE_RUN_SETTINGS,
    bad_setting,
    per_stage,
    rank_zero,
    same_place,
    stored_data,
)

ORDER = STAGES  # tokenizer, dvae, transformer, clip: each needs only those before it


def check_whole_run_folder(run_dir: Path) -> None:
    """A whole run starts only in a new or empty folder, or continues in one that holds its own earlier run
    (RUN/all.json); anything else is refused before a file is written (by rank 0 under torchrun: the others
    may look after it has started the folder)."""
    if not is_whole_run(run_dir) and rank_zero():
        check_new_folder(run_dir, keep_going=" (a folder of an earlier --stage all run continues it)")


def stage_done(sub: Path, cfg: TrainConfig) -> bool:
    """Whether a stage's run folder holds its final model."""
    if cfg.stage == "tokenizer":
        return (sub / "tokenizer.json").is_file()
    return finished(sub, cfg.steps)


def plan_settings(run_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of a whole run: those recorded in RUN/all.json, which a repeated command must match."""
    path = Path(run_dir) / PLAN
    if path.is_file():
        try:
            recorded = read_own_json(path)
        except (OSError, ValueError, RecursionError) as e:
            raise UsageError(f"{path} is not readable ({e}); start the run again in a new --out") from e
        if not isinstance(recorded, dict):
            raise UsageError(f"{path} does not hold a run's settings; start the run again in a new --out")
        if (wrong := bad_setting(recorded)) is not None:
            raise UsageError(f"{path}: {wrong}; put back what t2i wrote, or start the run again in a new --out")
        # A run started before t2i 0.10.0 mirrored no picture, one before 0.11.0 cropped none, one before 0.12.0
        # averaged no weights: its later stages train as they would have (the same command names no --flip,
        # --crop or --ema).
        for key, before in (("flip", False), ("crop", 1.0), ("ema", 0.0)):
            if key not in recorded:
                recorded = recorded | {key: before}
                if settings and settings.get(key) is None:
                    settings = settings | {key: before}
        if settings and isinstance(recorded.get("data"), str) and recorded["data"] != settings.get("data"):
            if stored_data(recorded["data"]) == settings.get("data") \
                    or same_place(recorded["data"], settings.get("data")):  # recorded as typed (before t2i
                # 0.12.1), or the same folder or manifest named another way (../x, a link to it)
                settings = settings | {"data": recorded["data"]}
        changed = sorted(k for k in set(recorded) | set(settings)
                         if _differs(run_dir, recorded, k, settings.get(k))) if settings else []
        if changed:
            said = "; ".join(f"{k} {_run_value(run_dir, recorded, k)} in the run, {_shown(settings.get(k))} here"
                             for k in changed)
            raise UsageError(f"{run_dir} holds a --stage all run with other settings ({said}); continue it as it "
                             f"is with --resume {shell_word(run_dir)}, extend one stage with t2i train --resume "
                             f"{shell_word(run_dir)}/STAGE --steps N, or pick another --out")
        return recorded
    if not settings:
        raise UsageError(f"{run_dir} is not a --stage all run (no {PLAN}); check the --resume path")
    return settings


def settings_said_again(run_dir: Path, given: dict[str, Any]) -> dict[str, str]:
    """Of the options given with a whole run's --resume, those that do not say its recorded settings again (nor
    --out the run itself), each with how it differs ('steps 20 in the run, 40 here'; '' for --out or an option the
    run does not record): empty where the command that started the run was given again, --resume RUN added."""
    recorded = plan_settings(run_dir, {})
    differ = {}
    for key, value in given.items():
        if key == "out_dir":
            if not same_place(str(value), str(run_dir)):
                differ[key] = ""
        elif key not in WHOLE_RUN_SETTINGS:
            differ[key] = ""
        elif key == "data" and isinstance(recorded.get("data"), str) and isinstance(value, str) and (
                stored_data(value) == recorded["data"] or same_place(recorded["data"], value)):
            continue
        elif _differs(run_dir, recorded, key, value):
            differ[key] = f"{key} {_run_value(run_dir, recorded, key)} in the run, {_shown(value)} here"
    return differ


def _differs(run_dir: Path, recorded: dict[str, Any], key: str, value: Any) -> bool:
    """Whether a setting given now differs from the run's: a setting the run left to its preset or default (None
    in all.json) differs only where the value given builds other stages than the run's (`--seed 0`, the default,
    or the tiny preset's `--no-flip` or `--image-side 16` said again is the run's own, and was refused as a
    change: "seed the preset's in the run, 0 here")."""
    if _setting(key, recorded.get(key)) == _setting(key, value):
        return False
    if recorded.get(key) is not None or value is None or key == "data":
        return True
    from dataclasses import asdict

    from t2i_cli.train_options import stage_config_of_all

    now = {"workers": None}
    try:
        return any(asdict(stage_config_of_all(stage, run_dir, recorded, now))
                   != asdict(stage_config_of_all(stage, run_dir, recorded | {key: value}, now)) for stage in ORDER)
    except (UsageError, ValueError, TypeError):  # a value no stage of the run could take is no setting of it
        return True


def _setting(key: str, value: Any) -> Any:
    """A whole run's setting as it acts, for a comparison: each stage's steps, batch size or learning rate
    (`transformer=2,dvae=2` is `dvae=2,transformer=2`; 1e-3 is 0.001), --model's items in any order."""
    if key in ("steps", "batch_size", "lr") and value is not None:
        try:
            return tuple(per_stage(key, value, stage) for stage in ORDER)
        except UsageError:
            return value
    if key == "model" and isinstance(value, list):
        return sorted(map(str, value))
    return value


def _run_value(run_dir: Path, recorded: dict[str, Any], key: str) -> str:
    """A setting of a whole run as a refusal shows it: one its command left out is the value its stages train with
    where they share one ("seed 0 (not given)"; it said "seed the preset's", a seed no preset sets), else the
    preset's (--flip, which the default preset sets per stage)."""
    if recorded.get(key) is not None or key not in SETTING_FIELDS:
        return _shown(recorded.get(key))
    from t2i_cli.train_options import STAGE_OPTIONS, stage_config_of_all

    try:
        each = {stage: _shown(getattr(stage_config_of_all(stage, run_dir, recorded, {"workers": None}), key))
                for stage in ORDER if stage in STAGE_OPTIONS.get(key, ())}
    except (UsageError, ValueError, TypeError, AttributeError):
        each = {}
    values = set(each.values())
    if len(values) > 1 and key in ("steps", "batch_size", "lr"):  # per stage, as --lr dvae=X,... would say them
        return f"{','.join(f'{stage}={value}' for stage, value in each.items())} (not given)"
    return f"{values.pop()} (not given)" if len(values) == 1 else _shown(None)


# The whole-run settings that are a stage's TrainConfig field of the same name (shown as the run trains them)
SETTING_FIELDS = ("image_side", "text_len", "recon_loss", "hard_negatives", "flip", "crop", "ema", "seed",
                  "precision", "ckpt_every", "sample_every", "log_every", "patience", "steps", "batch_size", "lr",
                  "vocab_size")


def _shown(value: Any) -> str:
    """A setting's value as a refusal shows it (bounded: a path or a --model list can be long)."""
    text = "the preset's" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def train_all(run_dir: Path, settings: dict[str, Any], make_config: Callable[[str, Path], TrainConfig],
              device: str, progress: Callable[[str, int, dict], None] | None = None,
              warn: Callable[[str], None] | None = None,
              checking: Callable[[int, int], None] | None = None,
              finished: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or continue) every stage, then export RUN/weights; make_config(stage, run_dir) gives a stage's
    config: a started stage's own (read back from its folder), else a new one whose dependencies point at
    the earlier stages' folders. checking(done, total) follows each stage's check of the pictures (the later
    stages find them checked); finished(stage, summary) is told each stage this call trained as it ends (what
    is said of a stage is said then, not lost with a later stage's stop or error). Every model the run will build is
    checked before the first stage trains (stages.check_whole_run_models), as the command line's whole run is."""
    run_dir = Path(run_dir)
    check_whole_run_folder(run_dir)
    had_plan = (run_dir / PLAN).is_file()  # a resume: its plan stays whatever happens (a stop before its first
    # stage started removed it, and the same command then found no run)
    settings = plan_settings(run_dir, settings)
    # Every model the run will build, checked before its first stage trains, as the command line checks it (from
    # Python a transformer's or CLIP's settings that cannot build were refused only at that stage's start, hours
    # after the stages before it had trained)
    check_whole_run_models({s: make_config(s, run_dir) for s in ORDER},
                           {s for s in ORDER if (run_dir / s / RUN_CONFIG).is_file()})
    if (run_dir / PLAN).is_file() and not all(stage_done(run_dir / s, make_config(s, run_dir)) for s in ORDER):
        # continuing: its pictures must be where it recorded them (not for a run with every stage done, whose
        # resume exports alone, as a finished stage's resume does not open its data: it was refused)
        check_data_still_there(settings.get("data", "world:train"), run_dir)
    made = missing_folders(run_dir)  # (`--out new/a/b`: b, new/a and new)
    try:
        try:
            summary = _stages(run_dir, settings, make_config, device, progress, warn, checking, finished)
        finally:  # one torchrun process group served every stage (run_stage keep_group)
            _end_process_group()
    except BaseException as e:
        if not had_plan and not any((run_dir / s / RUN_CONFIG).is_file() for s in ORDER):  # nothing started:
            (run_dir / PLAN).unlink(missing_ok=True)  # leave nothing
            remove_empty(made)
        elif isinstance(e, (Interrupted, KeyboardInterrupt)):
            for cut in raised_while(e) if isinstance(e, KeyboardInterrupt) else ():  # a stop that cut into an error
                # as this process ended with it (torchrun's SIGTERM, once the connection to a killed process was
                # lost): the command line says that error, as a stage's run does (cli._train_all), with the whole
                # run's note
                _whole_run_note(run_dir, cut)
            raise _interrupted(run_dir, e) from None
        _whole_run_note(run_dir, e)
        raise
    weights = run_dir / "weights"
    try:  # the run's own export folder, refreshed as one set (checked whole: not a stage against the old others),
        if rank_zero():  # by one process (every torchrun process wrote it)
            export_runs([run_dir / stage for stage in ORDER], weights, force=True, note=warn, option="")
    except KeyboardInterrupt:
        raise _interrupted(run_dir, None) from None
    summary["weights"] = str(weights)
    return summary


def _whole_run_note(run_dir: Path, e: BaseException) -> None:
    """An error a stage saved its steps at (or named the checkpoint it kept) carries a note whose command to go on
    is the stage's: make it the whole run's."""
    if getattr(e, "saved_note", None) in getattr(e, "__notes__", ()):
        stage = next(s for s in reversed(ORDER) if (run_dir / s / RUN_CONFIG).is_file())
        e.__notes__[e.__notes__.index(e.saved_note)] = e.saved_note = \
            saved_note(e.saved_step, run_dir, f" of the {stage} stage", getattr(e, "kept", False))


def _end_process_group() -> None:
    """End the torchrun process group the stages shared, if there is one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _interrupted(run_dir: Path, e: BaseException | None) -> Interrupted:
    """Ctrl-C in a whole run: the command to go on is the whole run's (a stage's own --resume would finish
    that stage alone)."""
    where, why = "", e.why if isinstance(e, Interrupted) else "interrupted"
    if isinstance(e, Interrupted) and e.step is not None:
        stage = next((s for s in reversed(ORDER) if (run_dir / s / RUN_CONFIG).is_file()), None)
        # (the checkpoint a resume starts from, as the stage's own line says it: "checkpoint saved" was said of a
        # step no process had saved, where a worker's stop came inside an optimizer step, or rank 1 named rank 0's)
        kept = "checkpoint saved" if e.own and e.saved == e.step else \
            f"the {stage} stage's checkpoint is step {e.saved}'s" if e.saved else \
            f"no checkpoint of the {stage} stage was written yet, so a resume starts it at step 0"
        where = f" in the {stage} stage at step {e.step}; {kept}" if stage else f" at step {e.step}"
    # (under torchrun a stop this process alone can say, of its loader's worker or once rank 0 was killed, it says
    # in a whole run too: it was silent there)
    return Interrupted(f"{why}{where}; finished stages are kept. Resume with: t2i train --resume "
                       f"{shell_word(run_dir)} (or the same command again)",
                       every_rank=not isinstance(e, Interrupted) or e.every_rank)


def _stages(run_dir: Path, settings: dict[str, Any], make_config: Callable[[str, Path], TrainConfig],
            device: str, progress, warn, checking=None, finished=None) -> dict[str, Any]:
    """Run, resume or skip each stage in order."""
    summary: dict[str, Any] = {}
    for stage in ORDER:
        sub = run_dir / stage
        started = (sub / RUN_CONFIG).is_file()
        cfg = make_config(stage, run_dir)
        if not started and not (run_dir / PLAN).is_file() and rank_zero():
            # rank 0 alone, which alone checked the folder: another rank writing it into a folder rank 0 then
            # refused would make that folder look like a whole run to the next command
            make_folder(run_dir, "--out")
            atomic_write_json(run_dir / PLAN, settings)  # from here the folder is a whole run
        if stage_done(sub, cfg):
            summary[stage] = "done before"
            continue

        def tick(step: int, metrics: dict, stage: str = stage) -> None:
            if progress is not None:
                progress(stage, step, metrics)

        # The data the whole run started on: the record of its first stage that has one (this stage's own at the
        # latest); a later stage that starts, or one that resumes, on other pictures says so.
        since = next((r for s in ORDER[:ORDER.index(stage) + 1]
                      if (r := run_dir / s / DATA_RECORD).exists() or r.is_symlink()), None)
        result = run_stage(cfg, sub, resume=started, progress=tick, device=device, warn=warn, checking=checking,
                           keep_group=True, data_since=since)
        summary[stage] = {k: v for k, v in result.items() if k != "skipped"}
        if finished is not None:
            finished(stage, summary[stage])
        if result.get("skipped") and warn is not None:
            warn(result["skipped"])  # the same source in every stage: the CLI says it once
    return summary
