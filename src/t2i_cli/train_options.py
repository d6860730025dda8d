"""What `t2i train` options mean: a stage's TrainConfig from the preset and the command line, the options
each stage uses (the rest are refused, never ignored), what a resumed run may change, and the per-stage
values of `--stage all`. No printing and no Typer here (cli.py parses and reports); imports of torch-backed
modules happen inside the functions, so `t2i --help` stays torch-free.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Optional

from t2i_cli import __version__
from t2i_cli.errors import UsageError, ascii_number_words, brief
from t2i_cli.files import STAGES, folder_locked, is_whole_run, same_place, shell_word


def n_processes() -> int:
    """The processes torchrun started for this command (its WORLD_SIZE); 1 where WORLD_SIZE is not a count above
    1 (unset, empty, or not in the digits 0-9: "²" passed isdigit and failed int() in an internal error). What every
    torchrun check reads, so that they agree on what a run is."""
    n = os.environ.get("WORLD_SIZE", "")
    return int(n) if n.isascii() and n.isdigit() and int(n) > 1 else 1


def rank_zero() -> bool:
    """Whether this process reports and writes what a run shares: a process alone, or rank 0 of those torchrun
    started (each gets RANK); the other ranks train beside it silently. A RANK without several processes (one
    left in the environment) is no torchrun rank: that process trained alone, saying nothing, not even an
    error."""
    return n_processes() == 1 or os.environ.get("RANK", "0") == "0"


# What a --stage all run records (and a repeated command must match); the rest only steer this process.
WHOLE_RUN_SETTINGS = ("data", "preset", "steps", "batch_size", "lr", "image_side", "text_len", "vocab_size",
                      "model", "recon_loss", "hard_negatives", "flip", "crop", "ema", "seed", "precision", "ckpt_every",
                      "sample_every", "log_every", "patience")
# What each of them holds in RUN/all.json (JSON's types; None, too, for all but data and preset)
SETTING_KINDS = {"data": str, "preset": str, "steps": str, "batch_size": str, "lr": str, "image_side": int,
                 "text_len": int, "vocab_size": int, "model": list, "recon_loss": str, "hard_negatives": bool,
                 "flip": bool, "crop": float, "ema": float, "seed": int, "precision": str, "ckpt_every": int,
                 "sample_every": int, "log_every": int, "patience": int}


def bad_setting(recorded: dict) -> str | None:
    """What is wrong with a whole run's recorded settings (RUN/all.json), or None: a key t2i does not record, or
    a value of another kind than the option takes (an edited file failed deep in training, an internal error)."""
    for key, value in recorded.items():
        kind = SETTING_KINDS.get(key)
        if kind is None:
            return (f"it records {str(key)[:40]!r}, which t2i {__version__} does not know (continue a run of a newer "
                    f"t2i with that t2i)")
        if value is None and key not in ("data", "preset"):
            continue
        ok = (type(value) in (int, float) if kind is float else
              isinstance(value, list) and all(isinstance(m, str) for m in value) if kind is list else
              type(value) is kind)
        if not ok:
            return f"its {key} is {json.dumps(value)[:40]}, not what --{key.replace('_', '-')} takes"
    return None


def per_stage(name: str, value: Optional[str], stage: str):
    """The value of a per-stage option for one stage: "N" for every stage, or "dvae=N,clip=M" (a stage's own
    value wins over the N for every stage); a stage, or N, given twice is refused, never the last one taken."""
    if value is None:
        return None
    cast = float if name == "lr" else int
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:  # (`--steps "$STEPS"` with STEPS unset: it was the preset's default, a run of hours)
        example = "3e-4" if name == "lr" else "2000" if name == "steps" else "16"
        raise UsageError(f"{flag(name)} is given no value; give one (e.g. {flag(name)} {example}) or leave it out")
    table: dict[str, str] = {}
    for item in items:
        key, sep, v = item.rpartition("=")
        key = key.strip() if sep else "*"
        if key not in ("*", "dvae", "transformer", "clip"):
            raise UsageError(f"{flag(name)} {brief(repr(value))}: per-stage values are dvae=, transformer= or clip=")
        if key in table:
            twice = "a value for every stage" if key == "*" else f"{key}="
            raise UsageError(f"{flag(name)} {brief(repr(value))}: {twice} is given twice; give one N for every stage "
                             f"and at most one STAGE=N each")
        table[key] = v.strip()
    text = table.get(stage, table.get("*"))
    if text is not None and not text.isascii():  # (int() took `--steps dvae=٣`, an Arabic-Indic 3, as 3)
        raise UsageError(f"{flag(name)} {brief(repr(value))}: {brief(repr(text))} is not a number "
                         f"{ascii_number_words(text)}")
    try:
        return None if text is None else cast(text)
    except ValueError:
        raise UsageError(f"{flag(name)} {brief(repr(value))}: {brief(repr(text))} is not a number") from None


def _check_models_of_all(models: list[str]) -> None:
    """Refuse a --model item of a --stage all run that no stage would take: a prefix that names no stage with
    a model (dvae., transformer., clip.), or a key without one that is no stage's field. (Each stage checks the
    values of the items it takes.)"""
    from t2i_cli.stages import DERIVED_FIELDS, MODEL_CONFIGS, model_config_fields, parse_typed, refuse_model_key

    keys = [item.split("=", 1)[0] for item in models]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise UsageError(f"--model {twice} is given twice; give each setting once")
    for item in models:
        key = item.split("=", 1)[0]
        stage, dot, field = key.rpartition(".")
        if dot and stage not in MODEL_CONFIGS:
            raise UsageError(f"--model {brief(key)}: {brief(repr(stage))} is not a stage with a model; use "
                             f"{', '.join(f'{s}.KEY' for s in MODEL_CONFIGS)} or a KEY of any of them")
        # a setting the stages derive (the --text-len, the run's dVAE's grid), as a single stage says it
        setting = ([stage] if field in DERIVED_FIELDS[stage] else []) if dot else \
            [] if any(key in model_config_fields(s) for s in MODEL_CONFIGS) else \
            [s for s in MODEL_CONFIGS if key in DERIVED_FIELDS[s]]
        if setting:
            raise UsageError(f"--model {item}: {_derived_in_whole_run(setting, field)}")
        if dot and field not in model_config_fields(stage):  # (its own stage's check named it without the prefix)
            refuse_model_key(stage, field, f"--model {item}")  # in a single stage's words, the prefix kept
        if not dot and not any(key in model_config_fields(s) for s in MODEL_CONFIGS):
            raise UsageError(f"--model {key}: no stage's model has that setting; see `t2i train --help`")
        if dot and "=" in item:  # its value, named with its prefix (its stage's check said `--model n_hid='x'` of
            # `--model dvae.n_hid=x`, a setting not given so)
            parse_typed(key, item.split("=", 1)[1].strip(), typing.get_type_hints(MODEL_CONFIGS[stage])[field])


def _derived_in_whole_run(stages: list[str], field: str) -> str:
    """'the transformer and clip stages set it (use --text-len)': a model setting the stages of a --stage all run
    set themselves, from an option or from the run's own tokenizer or dVAE (--tokenizer and --dvae, which a
    single stage names, are refused there). It said "no stage's model has that setting" (text_len, image_side, grid),
    or "the dvae stage's model has no setting 'image_side'"."""
    from t2i_cli.stages import DERIVED_FIELDS

    sets = DERIVED_FIELDS[stages[0]][field]  # (one option for every stage that sets it)
    own = {"--tokenizer": "from the run's own tokenizer", "--dvae": "from the run's own dVAE"}
    return (f"the {' and '.join(stages)} stage{'s' if len(stages) > 1 else ''} set{'' if len(stages) > 1 else 's'} "
            f"it " + (own[sets] if sets in own else f"(use {sets})"))


def stage_config_of_all(stage: str, root: Path, settings: dict, params: dict):
    """The TrainConfig of one stage of a --stage all run, from the run's settings."""
    opts = {k: settings.get(k) for k in WHOLE_RUN_SETTINGS} | {"workers": params["workers"], "finetune_decoder": False,
                                                               "init": None}
    for name in ("steps", "batch_size", "lr"):
        opts[name] = per_stage(name, settings.get(name), stage)
    models = [m for m in settings.get("model") or []]
    _check_models_of_all(models)
    mine = [m.split(".", 1)[1] for m in models if m.split("=", 1)[0].startswith(f"{stage}.")]
    if stage != "tokenizer":
        from t2i_cli.stages import model_config_fields

        fields, own = model_config_fields(stage), {m.split("=", 1)[0] for m in mine}
        # KEY=VALUE for every stage that has KEY; this stage's own STAGE.KEY=VALUE wins over it (as --steps N,dvae=M)
        mine += [m for m in models if "." not in m.split("=", 1)[0] and m.split("=", 1)[0] in fields
                 and m.split("=", 1)[0] not in own]
    opts["model"] = mine
    for name, stages in STAGE_OPTIONS.items():  # an option belongs only to the stages that use it
        if name in opts and stage not in stages and name not in ("model",):
            opts[name] = None
    if stage == "transformer" and opts["image_side"] is None:  # what the run's own dVAE is trained at
        opts["image_side"] = stage_config_of_all("dvae", root, settings, params).image_side
    opts["dvae"] = str(root / "dvae") if stage == "transformer" else None
    opts["tokenizer"] = str(root / "tokenizer") if stage in ("transformer", "clip") else None
    return train_config(stage, settings.get("data", "world:train"), settings.get("preset", "default"), opts)


# Options a resumed run can honour: the rest are the run's own settings, fixed when it started.
RESUME_OPTIONS = {"resume", "steps", "lr", "workers", "ckpt_every", "sample_every", "log_every", "device", "threads",
                  "quiet", "patience"}
# Options that only some stages use (any other stage would silently ignore them, so it refuses them).
STAGE_OPTIONS = {
    "vocab_size": ("tokenizer",), "dvae": ("transformer", "dvae"), "tokenizer": ("transformer", "clip"),
    "finetune_decoder": ("dvae",), "recon_loss": ("dvae",), "hard_negatives": ("clip",), "init": ("clip",),
    "model": ("dvae", "transformer", "clip"),
    "text_len": ("transformer", "clip"), "image_side": ("dvae", "transformer", "clip"),
    **{k: ("dvae", "transformer", "clip") for k in ("steps", "batch_size", "lr", "precision", "workers", "seed",
                                                     "ckpt_every", "sample_every", "log_every", "patience", "flip",
                                                     "crop", "ema", "device", "threads")},
}


NEGATABLE = {"flip", "hard_negatives"}  # the --X/--no-X options of `t2i train`


def flag(name: str, params: dict | None = None) -> str:
    """--the-flag of a parameter name; with the command's params, the one the user typed (--no-flip for a
    --flip/--no-flip option given False)."""
    if params is not None and name in NEGATABLE and params.get(name) is False:
        return "--no-" + name.replace("_", "-")
    return {"out_dir": "--out", "json_path": "--json", "judge_path": "--judge"}.get(name, "--" + name.replace("_", "-"))


def refuse_foreign_options(stage: str, given: set[str], params: dict | None = None) -> None:
    """A new run of a stage refuses options that the stage would not use."""
    for name in sorted(given):
        if name in STAGE_OPTIONS and stage not in STAGE_OPTIONS[name]:
            raise UsageError(f"{flag(name, params)} does not apply to the {stage} stage (only to "
                             f"{', '.join(STAGE_OPTIONS[name])}); leave it out")


def resume_config(run_dir: Path, given: set[str], params: dict):
    """The saved config of a run, with what a resume may change: a larger --steps extends the schedule, --lr
    sets the peak of the schedule for the steps still to come (a run that diverged goes on from its last
    checkpoint at a lower one), logging and checkpoint cadence and workers may change; any other option is
    refused, never ignored."""
    from dataclasses import replace

    from t2i_cli.train import read_run_config

    if "out_dir" in given and same_folder(params["out_dir"], run_dir):  # the command a stop suggests, --resume
        given = given - {"out_dir"}  # RUN added to it: --out RUN names the run again
    cfg = read_run_config(run_dir)
    if "stage" in given and params["stage"] != cfg.stage:  # the run's own stage is only said again
        raise UsageError(f"--stage {params['stage']}: {run_dir} is a {cfg.stage} run; leave --stage out "
                         f"(or give --stage {cfg.stage}) to continue it")
    refused = sorted(given - RESUME_OPTIONS - {"stage"})
    # another --out is never the run's own (no setting of its config says where it is); the rest may be its own
    # settings said again
    said = _said_again(cfg, given, params) if refused else None
    if refused and ("out_dir" in given or said is not None):
        differ, named = said or ("", set())
        # the options that differ from the run's; all of them where only settings it does not name differ (another
        # --preset's): the run's own --preset said again beside another --batch-size was named as refused
        named = [n for n in refused if n in named or n == "out_dir"] or refused
        raise UsageError(f"{', '.join(flag(n, params) for n in named)} cannot change a run that has started; "
                         f"--resume keeps its settings (only --steps, --lr, --workers, --ckpt-every, "
                         f"--sample-every, --log-every, --patience, --device, --threads and --quiet apply; its own "
                         f"settings may be said again{'' if 'out_dir' in given else differ})")
    given = given - {"stage"}
    refuse_foreign_options(cfg.stage, given, params)
    changes = {"num_workers" if k == "workers" else k: params[k]
               for k in ("steps", "workers", "ckpt_every", "sample_every", "log_every", "patience") if k in given}
    if "steps" in changes:
        changes["steps"] = per_stage("steps", changes["steps"], cfg.stage)
    if "lr" in given:
        changes["lr"] = per_stage("lr", params["lr"], cfg.stage)
        if changes["lr"] is None:  # --lr dvae=X when resuming a transformer run
            raise UsageError(f"--lr {brief(repr(params['lr']))} has no value for this {cfg.stage} run; give --lr X")
    for key in ("steps", "ckpt_every", "log_every"):
        if key in changes and changes[key] < 1:
            raise UsageError(f"{flag(key)} must be at least 1, got {changes[key]}")
    if changes.get("num_workers", 0) < 0 or changes.get("sample_every", 0) < 0:
        raise UsageError("--workers and --sample-every must be 0 or more")
    if "steps" in changes and changes["steps"] < cfg.steps:
        raise UsageError(f"--steps {changes['steps']} is fewer than the run's {cfg.steps}; with --resume, "
                         f"--steps is a new total that extends the run")
    if refused and changes.get("steps", cfg.steps) > cfg.steps:
        from t2i_cli.files import shell_word
        from t2i_cli.train import stopped_early

        if stopped_early(run_dir, cfg.steps):  # its steps became the step it stopped at: the command that
            # started it, said again, would train on past where it ended
            raise UsageError(f"{run_dir} stopped early at step {cfg.steps} (--patience): the command that started "
                             f"it ends there. To train on, extend it alone: t2i train --resume "
                             f"{shell_word(run_dir)} --steps {changes['steps']} --patience 0")
    from t2i_cli.stages import check_run_file

    resumed = replace(cfg, **changes)
    check_run_file(resumed, run_dir)  # (the run's own settings are said of its file: --patience was never typed)
    return checked(resumed)


def same_folder(a, b) -> bool:
    """Whether two paths name one folder (as typed, or through links)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def _said_again(cfg, given: set[str], params: dict) -> tuple[str, set[str]] | None:
    """None when the options of a resume that a resume cannot change are the run's own settings said again: the
    command that started the run with --resume RUN added (--preset tiny, --data pics) builds the config the run
    recorded, but for what a resume may change. Else what differs, for the refusal (or "" where that is not
    known): ": here --batch-size 64, the run's 32"; settings the command did not name that differ are settings
    of another preset; and the options given that differ from the run's (none known: empty)."""
    try:  # (the stage is the run's: resume_config refused another first)
        data = stored_data(params["data"]) if "data" in given else cfg.data
        if same_place(data, cfg.data):  # the run's folder or manifest named another way (../x, a link to it)
            data = cfg.data
        fresh = train_config(cfg.stage, data, params.get("preset") or "default", dict(params))
    except (UsageError, KeyError, TypeError, ValueError) as e:
        return (f": {e}" if isinstance(e, UsageError) else ""), set()

    mine, run = fresh.settled(), cfg.settled()
    # the models a run started from, which a resume does not need named again (the run keeps its copies): a stage
    # of a whole run, whose command named none, resumed with its --preset and --seed said again was refused as
    # "settings it does not name differ from the run's, as another --preset would make them"
    mine |= {k: run[k] for k in ("dvae", "tokenizer", "init") if k not in given and k in run}
    if mine == run:
        return None
    differs = [k for k in run.keys() | mine.keys() if k != "model" and mine.get(k) != run.get(k)]
    mine_model, run_model = mine.get("model", {}), run.get("model", {})
    model_keys = [k for k in {**run_model, **mine_model} if mine_model.get(k) != run_model.get(k)]
    typed = {item.partition("=")[0] for item in params.get("model") or []} if "model" in given else set()
    said = [f"{flag(k, params)} {_shown(mine.get(k))}, the run's {_shown(run.get(k))}"
            for k in sorted(differs) if k in given][:3]
    said += [f"--model {k}={_shown(mine_model.get(k))}, the run's {_shown(run_model.get(k))}"
             for k in model_keys if k in typed][:3]
    # (a model setting typed that differs changes those derived from it, n_codes of fsq_levels: not a preset's)
    if any(k not in given for k in differs) or (model_keys and not typed & set(model_keys)):
        said.append("settings it does not name differ from the run's, as another --preset would make them"
                    + ("" if "preset" in given else " (was the run started with --preset?)"))
    named = {k for k in differs if k in given} | ({"model"} if typed & set(model_keys) else set())
    if any(k not in given for k in differs) and "preset" in given:
        named.add("preset")  # (the preset that made them)
    return (": here " + "; ".join(said) if said else ""), named


def _shown(value) -> str:
    """A setting's value as typed on a command line ("" for none)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return "''" if value in ("", None) else str(value)


def checked(cfg):
    """cfg, once TrainConfig.check finds every value of the right type and within its bounds."""
    try:
        cfg.check(lambda name: flag("workers" if name == "num_workers" else name))
    except TypeError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:
        raise UsageError(f"{e}; choose a value in range") from None
    if cfg.patience and not cfg.sample_every:
        raise UsageError(f"--patience {cfg.patience} watches the validation loss, which is measured every "
                         f"--sample-every steps: give --sample-every N (not 0), or --patience 0")
    return cfg


def same_tokenizer(init: str, tokenizer: str | None) -> None:
    """Refuse --tokenizer when the tokenizer.json beside the --init CLIP (in its run or weights folder) is
    another: the CLIP's text embeddings are indexed by its own tokenizer's ids. (Without one beside it, the
    clip stage still checks the vocabulary size.)"""
    if not tokenizer:
        return  # the clip stage's own "needs --tokenizer" line follows
    beside = Path(init) / "tokenizer.json" if Path(init).is_dir() else Path(init).parent / "tokenizer.json"
    given = Path(tokenizer) / "tokenizer.json" if Path(tokenizer).is_dir() else Path(tokenizer)
    if not (beside.is_file() and given.is_file()):
        return
    size = beside.stat().st_size
    differ = size != given.stat().st_size or (size <= 64 << 20 and beside.read_bytes() != given.read_bytes())
    if differ:
        raise UsageError(f"--init {init} was trained with another tokenizer ({beside}) than --tokenizer {tokenizer}; "
                         f"pass --tokenizer {beside.parent}")


def keeps_architecture(option: str, why: str, model_over: dict, *pinned: tuple) -> None:
    """A run that starts from a trained model (--init, --finetune-decoder) keeps its architecture: --model is
    refused, and so is each pinned (flag, value given, the model's value, why) whose given value differs."""
    if model_over:
        raise UsageError(f"--model does not apply with {option}: {why}; leave it out")
    for name, given, kept, reason in pinned:
        if given is not None and given != kept:
            raise UsageError(f"{name} {given}: {reason}; leave it out")


def check_stage(stage: str | None) -> None:
    """--stage names a stage or all (or is not given)."""
    if stage is not None and stage not in (*STAGES, "all"):
        raise UsageError(f"--stage must be one of {', '.join(STAGES)} or all, got {brief(repr(stage))}")


def stored_data(data: str) -> str:
    """--data as a new run records it: a folder or manifest as the absolute path it names (a run resumed from
    another folder reads the same pictures, not whatever the relative path names there); world sources as
    given."""
    from t2i_cli.stages import is_world

    # absolute() keeps "..": the kernel resolves it after following a symlink, which abspath's text edit would not
    return data if is_world(data) or not data.strip() else str(Path(os.path.expanduser(data)).absolute())


def train_config(stage: str, data: str, preset: str, opts: dict):
    """Build a TrainConfig from the preset and the command-line overrides."""
    from t2i_cli.stages import apply_preset, is_world, parse_model_overrides
    from t2i_cli.train import TrainConfig

    check_stage(stage)
    model_over = parse_model_overrides(stage, opts["model"])
    opts = dict(opts)
    for name in ("steps", "batch_size", "lr"):
        if isinstance(opts.get(name), str):
            if ("=" in opts[name] or "," in opts[name]) and opts[name].replace(",", "").strip():  # (none: per_stage)
                raise UsageError(f"{flag(name)} {brief(repr(opts[name]))}: per-stage values belong to --stage all")
            opts[name] = per_stage(name, opts[name], stage)
    names = ("steps", "batch_size", "lr", "image_side", "text_len", "vocab_size", "seed", "precision",
             "ckpt_every", "sample_every", "log_every", "recon_loss", "hard_negatives", "patience", "flip",
             "crop", "ema")
    over = {k: opts[k] for k in names} | {"num_workers": opts["workers"], "model": model_over,
                                          "dvae": opts["dvae"] or "", "tokenizer": opts["tokenizer"] or ""}
    if opts.get("init") is not None:
        from dataclasses import asdict

        from t2i_cli.stages import clip_config

        if not str(opts["init"]).strip():
            raise UsageError("--init needs a path: a clip.safetensors file, or a run or weights folder with one")
        start = clip_config(opts["init"])  # a missing or unreadable file is one line, before anything is made
        same_tokenizer(opts["init"], opts["tokenizer"])
        keeps_architecture("--init", "the CLIP keeps the --init model's architecture", model_over,
                           ("--text-len", opts["text_len"], start.text_len,
                            f"the --init CLIP reads {start.text_len} tokens"))
        derived = ("image_side", "text_vocab", "text_len", "n_pad_start")  # the run's own (--image-side may differ)
        over |= {"init": opts["init"], "text_len": start.text_len,
                 "model": {k: v for k, v in asdict(start).items() if k not in derived}}
        if opts["image_side"] is None:
            over["image_side"] = start.image_side
    if opts["finetune_decoder"]:
        if stage != "dvae" or not opts["dvae"]:
            raise UsageError("--finetune-decoder belongs to --stage dvae and needs --dvae PATH "
                             "(the dVAE to start from)")
        from t2i_cli.stages import dvae_config

        start = dvae_config(opts["dvae"])  # the decoder keeps its own pixel mapping, hence its loss
        keeps_architecture("--finetune-decoder", "the decoder keeps the --dvae model's architecture", model_over,
                           ("--image-side", opts["image_side"], start.image_side,
                            f"--finetune-decoder trains at the --dvae model's {start.image_side} px"))
        if opts["recon_loss"] == "logit_laplace" and start.pixel_eps <= 0:
            raise UsageError("--recon-loss logit_laplace needs a dVAE trained with it (pixels mapped into "
                             "[eps, 1 - eps]); this --dvae was not: use l1 or mse, or leave it out")
        over |= {"finetune_decoder": True, "image_side": start.image_side, "warmup": 0, "kl_max": 0.0,
                 "recon_loss": opts["recon_loss"] or ("logit_laplace" if start.pixel_eps > 0 else "l1")}
    elif stage == "dvae" and opts["dvae"]:
        raise UsageError("--dvae on the dvae stage is the model a --finetune-decoder run starts from: add "
                         "--finetune-decoder, or leave --dvae out to train a new dVAE")
    if stage == "transformer" and opts["image_side"] is None and opts["dvae"]:
        from t2i_cli.stages import dvae_config

        over["image_side"] = dvae_config(opts["dvae"]).image_side  # the transformer sees what its dVAE encodes
    if data == "world:val":  # a stage validates on world:val: it would validate on the scenes it trained on
        raise UsageError("--data world:val is the split every stage validates on; train on world:train (or world)")
    fields = apply_preset(stage, preset, over, data)
    if fields.get("patience") and fields.get("sample_every") == 0 and opts.get("patience") is None:
        fields["patience"] = 0  # the preset's patience needs validations; asking for none turns it off
    for key in ("steps", "batch_size", "image_side", "text_len", "ckpt_every", "log_every", "vocab_size"):
        if key in fields and fields[key] is not None and fields[key] < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {fields[key]}")
    for key in ("num_workers", "sample_every"):
        if fields.get(key) is not None and fields[key] < 0:
            raise UsageError(f"{flag('workers' if key == 'num_workers' else key)} must be 0 or more, got {fields[key]}")
    if fields.get("hard_negatives"):
        if not is_world(data):
            raise UsageError("--hard-negatives needs --data world: it changes the scene a caption describes, "
                             "and a folder of pictures has no scenes to change; leave it out")
        if fields.get("batch_size", 2) % 2:
            raise UsageError(f"--hard-negatives pairs every scene with its twin in the batch: --batch-size must "
                             f"be even, got {fields['batch_size']}")
    if opts.get("flip") and is_world(data):
        raise UsageError("--flip mirrors the pictures of a folder or manifest; the world draws a fresh scene for "
                         "every sample (and its captions say left and right): leave it out")
    if opts.get("crop") is not None and opts["crop"] < 1 and is_world(data):
        raise UsageError("--crop shows parts of the pictures of a folder or manifest; the world draws a fresh scene "
                         "for every sample (and its captions say where things are): leave it out")
    if fields.get("recon_loss", "l1") not in ("l1", "mse", "logit_laplace"):
        raise UsageError(f"--recon-loss must be l1, mse or logit_laplace, got {brief(repr(fields['recon_loss']))}")
    if fields.get("precision", "auto") not in ("auto", "bf16", "fp32"):
        raise UsageError(f"--precision must be auto, bf16 or fp32, got {brief(repr(fields['precision']))}")
    return checked(TrainConfig(stage=stage, data=data, **fields))


def next_step(cfg, run_dir: Path) -> str:
    """What a finished run of one stage is for: the stage that reads it, or the export that makes weights (a
    tokenizer or dVAE run alone exports no folder that generates)."""
    w = shell_word(run_dir)
    whole = Path(run_dir).parent
    busy = next((stage for stage in STAGES if stage != cfg.stage
                 and Path(run_dir).name == cfg.stage and folder_locked(whole / stage)), None)
    if busy is not None and is_whole_run(whole):  # (another stage training now: `t2i train --resume RUN` was
        # advised, which that stage's lock refuses)
        return f"a stage of the whole run {shell_word(whole)}, whose {busy} stage is being trained now: let it finish"
    if cfg.stage in ("transformer", "clip") and Path(run_dir).name == cfg.stage and is_whole_run(whole):
        # a stage of a --stage all run, extended on its own (as the README says to): RUN/weights still held the
        # model exported before, which "export with: t2i export ... --to WEIGHTS_DIR" left unsaid
        return (f"a stage of the whole run {shell_word(whole)}: t2i train --resume {shell_word(whole)} exports it to "
                f"{shell_word(whole / 'weights')}")
    if cfg.stage in ("tokenizer", "dvae") and Path(run_dir).name == cfg.stage and is_whole_run(whole) \
            and not (whole / "weights").is_dir():
        # ... and a finished tokenizer or dVAE of a whole run not finished: the run goes on to the stages that read
        # it ("--dvae RUN/dvae" was said, an option of a run of its own, where `--resume RUN` goes on)
        return (f"a stage of the whole run {shell_word(whole)}, whose later stages read it: t2i train --resume "
                f"{shell_word(whole)} goes on with them")
    if cfg.finetune_decoder:
        return (f"export it after the transformer trained on its dVAE's codes: t2i export TRANSFORMER_RUN {w} "
                f"--to WEIGHTS_DIR --force")
    return {"tokenizer": f"the transformer and clip stages read it: --tokenizer {w}",
            "dvae": f"the transformer stage reads it: --dvae {w}",
            "transformer": f"export with: t2i export {w} [CLIP_RUN ...] --to WEIGHTS_DIR",
            "clip": f"export it beside a transformer run: t2i export TRANSFORMER_RUN {w} --to WEIGHTS_DIR",
            }[cfg.stage]
