"""The t2i command line: the only home of Typer, Rich, printing and exit codes."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import time
import typing
import warnings
from contextlib import contextmanager, nullcontext
from functools import cache, partial
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from typer.core import TyperCommand, TyperGroup, TyperOption

from t2i_cli import __version__
from t2i_cli.errors import (
    SPEAKING,
    DataError,
    PromptWarning,
    T2IError,
    UsageError,
    WeightsError,
    brief,
    counted,
    raised_while,
    said_float,
    said_value,
)
from t2i_cli.files import (
    REPO_WEIGHTS,
    STAGES,
    is_whole_run,
    not_utf8,
    other_t2i_inferring,
    shell_word,
    shipped_weights,
    stop_on_sigterm,
    stop_signals,
)
from t2i_cli.prompt_file import (
    MAX_PROMPT_CHARS,
    MAX_PROMPT_FILE,
    MAX_PROMPTS,
    Prompts,
    blank,
    check_negative,
    read_prompts,
)

# (torch-free: checked before a pipe is read)
from t2i_cli.sampling_config import MAX_IMAGES, MAX_PER_TASK, SamplingConfig, greedy_bound, refuse_greedy_copies
from t2i_cli.train_options import (
    WHOLE_RUN_SETTINGS,
    check_stage,
    checked,
    flag,
    n_processes,
    next_step,
    per_stage,
    rank_zero,
    refuse_foreign_options,
    resume_config,
    same_folder,
    stage_config_of_all,
    stored_data,
    train_config,
)

# Click's own exception classes, found through typer's public BadParameter: typer >= 0.2x carries its own copy
# of click, older ones use click itself.
CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
CLICK_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class WholeSummaries(TyperGroup):
    """A group whose help lists each command with its whole first paragraph, wrapped (click cut each to one line
    with '...': "generate  Draw images for PROMPT (optionally from an image prompt) and...")."""

    def parse_args(self, ctx, args):
        for param in self.get_params(ctx):  # (--version, --debug and --help: QuickCoercion)
            quick_coercion(param)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class OneLineErrors(WholeSummaries):
    """The t2i group: a command line Click cannot parse (an unknown option or command, a missing argument, `--n
    abc`) is one 'error:' line on stderr naming the problem and the --help to read, exit 2, as every other
    error is; not Click's framed usage box. `t2i` alone still prints the help; --help and --version exit 0."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CLICK_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # the help, as click's --help prints it
                text = e.format_message()
                if text:
                    out.print(text)
                sys.exit(e.exit_code)
            possible = getattr(e, "possibilities", None)
            if possible and getattr(e, "option_name", None):  # Click compares with the dashes: --bogus ~ --out
                import difflib

                name = e.option_name.lstrip("-")
                e.possibilities = [p for p in possible if difflib.get_close_matches(name, [p.lstrip("-")], 1, 0.6)]
            message = " ".join(e.format_message().split()).rstrip(".")
            ctx = getattr(e, "ctx", None)
            message += _extra_arguments_hint(e, ctx)
            if rank_zero():  # under torchrun every process parsed the same command line: rank 0 says it
                say("error", "red", message + (f"; see '{ctx.command_path} --help'" if ctx is not None else ""))
            else:
                _let_rank_zero_say_it()
            sys.exit(e.exit_code)
        except typer.Abort:
            say("error", "red", "aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)  # a typer.Exit(code) comes back as its code


def _extra_arguments_hint(e, ctx) -> str:
    """What the commonest cause of "Got unexpected extra argument(s)" was: a prompt of several words not quoted
    (`t2i generate a red bird`), or a shell pattern that gave an option several paths (`--data pics/*.png`)."""
    extra = getattr(e, "message", "")
    if ctx is None or not str(extra).startswith("Got unexpected extra argument"):
        return ""
    prompt = ctx.params.get("prompt") if ctx.command.name == "generate" else None
    said = re.fullmatch(r"Got unexpected extra arguments?(?:\(s\))? \((.*)\)", str(extra), re.S)
    rest = said.group(1) if said else ""
    paths = sum(os.path.exists(word) for word in rest.split(" ")[:20])  # (a word that names a file: "a cat")
    if isinstance(prompt, str) and prompt and paths < 2:
        words, options = _words_and_options(ctx, prompt, rest)
        # (in double quotes where nothing in them is the shell's; else in single quotes, where nothing is: `$5` and
        # a backquote were written inside double quotes, which, pasted, expanded $5 and ran the backquoted words)
        import shlex

        quoted = shlex.quote(words) if re.search(r"[$`\"\\!]", words) else f'"{words}"'
        line = f"-- {quoted}" if words.startswith("-") else quoted  # (-- keeps a prompt that begins with -)
        line = f"{options} {line}" if words.startswith("-") else f"{line} {options}"
        return f"; a prompt of several words is one argument: quote it, t2i generate {line.strip()}"
    if paths:
        return "; a shell pattern (such as *.png) gave several paths where one is taken: give their folder"
    return ""


def _words_and_options(ctx, prompt: str, rest: str) -> tuple[str, str]:
    """The prompt's words and the options written among them after -- (`generate -- a red bird --n 2`: Click reads
    every word after -- as an argument, --n 2 too), each option as written (shlex-quoted); the hint quoted the
    options into the prompt ("a red bird --n 2"). Without -- they are the prompt and rest, and no options."""
    import shlex

    typed = ctx.meta.get("t2i_args") or []
    if "--" not in typed:
        return f"{prompt} {rest}", ""
    at = typed.index("--")
    after = typed[at + 1:]
    names = {o for p in ctx.command.params if isinstance(p, TyperOption) for o in (*p.opts, *p.secondary_opts)}
    k = next((i for i, w in enumerate(after) if w.partition("=")[0] in names), len(after))
    # the extra words end with the options after --, as Click joins them; the words before those are the prompt's,
    # those before -- too (`generate a red -- bird --n 2` was told "a bird", its red lost)
    tail = " ".join(after[k:])
    words = rest[:len(rest) - len(tail)].removesuffix(" ") if tail and rest.endswith(tail) else rest
    return f"{prompt} {words}" if words else prompt, shlex.join(after[k:])


class OneValueEach(TyperCommand):
    """A t2i command: an option given twice with different values (`--seed 1 --seed 2`, `--hard-negatives
    --no-hard-negatives`) is refused, not settled silently by the last one; options that take several values
    (eval's --seed) and a repeat of the same value are accepted. Every parse error names the command's --help."""

    def parse_args(self, ctx, args):
        STATE["as_typed"] = {}  # (this command's own: a command run in-process after another starts afresh)
        for param in self.get_params(ctx):  # (--help among them; before the values are compared, by them)
            quick_coercion(param)
        typed = list(args)
        args = self._home_expanded(self._dash_spelled(args, STATE["as_typed"]), ctx)
        ctx.meta["t2i_args"] = typed  # (as typed: the quote-the-prompt hint's options after --)
        given: dict[str, list[tuple[str, object]]] = {}  # option -> (as written, its value) each time it was given
        raw: dict[str, list[tuple[object, str]]] = {}  # option -> (its parameter, the text given) each time
        by_name = {o: p for p in self.params if isinstance(p, TyperOption) and not (p.multiple or p.count)
                   for o in (*p.opts, *p.secondary_opts)}
        i = 0
        while i < len(args) and args[i] != "--":
            name, eq, value = args[i].partition("=") if args[i].startswith("--") else (args[i], "", "")
            param = by_name.get(name)
            i += 1
            if param is None:
                continue
            if param.is_flag:  # -q and --quiet are one setting; --x and --no-x two
                given.setdefault(param.name, []).append((name, name in param.opts))
                continue
            written = typed[i - 1].partition("=")[2] if eq else value
            if not eq and i < len(args):
                value, written, i = args[i], typed[i], i + 1
            elif not eq:  # its value missing (`--seed 1 --seed`): the parser's "requires an argument" says so (it
                continue  # was said to disagree, then "Invalid value for '--seed'", of a value never given)
            # (said as typed: `--out ./- --out o` was said "--out /home/me/- and --out o disagree")
            given.setdefault(param.name, []).append((f"{name} {written}", _option_value(param, value, ctx)))
            raw.setdefault(param.name, []).append((param, value))
        for key, said in given.items():
            if len({v for _, v in said}) > 1:
                for param, value in raw.get(key, ()):  # a value the option refuses is said so, not as one to
                    _as_read(param, value, ctx, strict=True)  # keep: `--seed 1 --seed 1.5` was "disagree; give one"
                names = " and ".join(dict.fromkeys(w for w, _ in said))
                raise CLICK_USAGE_ERROR(f"{names} disagree; give one of them", ctx=ctx)
        ctx.meta["t2i_written"] = {param: said[-1][0].split(" ")[0] for param, said in given.items()}  # (--out, of
        # export's --to --out: what a refusal names)
        empty = self._empty_path(args)
        if empty:
            raise CLICK_USAGE_ERROR(f"{empty} is given an empty file name; give a path", ctx=ctx)
        try:
            return super().parse_args(ctx, args)
        except CLICK_USAGE_ERROR as e:  # the parser's own ('--seed' requires an argument) come without a context,
            if e.ctx is None:  # so their line named no --help to read
                e.ctx = ctx
            raise


    def _empty_path(self, args: list[str]) -> str | None:
        """The option or argument that takes a path and is given '' (`--image ""`, `vary ""`), as written: a Path
        reads '' as '.', the current folder, and the refusal named a folder the user never typed."""
        return next((name for _, name, value in self._path_values(args) or () if value == ""), None)

    def _dash_spelled(self, args: list[str], as_typed: dict[str, str]) -> list[str]:
        """args with a path written to name a file or folder called '-' (`--out ./-`, `--out=.//-`) made absolute: a
        Path reads ./- as -, which a folder option refuses as standard output's name, so `--out ./-` was refused
        (a user who writes a path means it; `--out $PWD/-` was taken). So is any path a Path reads as one that
        begins with '-' (`info ./-w`, said "-w", and its hints "t2i export -w", an option where pasted). as_typed
        gets each such path as typed, by the absolute one, for the lines that name it (typed_paths)."""
        args = list(args)
        for at, _, value in self._path_values(args) or ():
            if dash_spelled(value):
                args[at] = args[at][:len(args[at]) - len(value)] + os.path.abspath(value)
                as_typed[os.path.abspath(value)] = value.rstrip("/") or value  # (./-/ said ./-/a.png, not ./-//a.png)
        return args

    # options typed str that take a path among other values (world:train, - for standard input): `~` is theirs too
    # (and data preview's SOURCE, an argument, whose opts are its name: its lines named ~/ds's files /home/me/ds/...)
    STR_PATHS = frozenset({"--data", "--prompts", "--tokenizer", "--dvae", "--init", "source"})

    def _home_expanded(self, args: list[str], ctx) -> list[str]:
        """args with each path that begins with ~ (`--out ~/pics`, `--out=~/pics`, `--weights ~/w`, `vary ~/a.png`)
        expanded as a shell expands it, ~ and ~/x to the home folder, ~user to that user's: a shell leaves ~ as it
        is after `--out=` or in quotes, and `--out=~/pics` made a folder named ~ in the current one, while --data
        took ~ as home; every path option of every command now reads ~ as --data does. The lines that name such a
        path say it expanded, as a shell would have passed it: said as typed, ~/pics inside a quoted command t2i
        suggests (`tar xf '~/my data/x.tar'`) or a file named on stdout for a script is no path (no ~ is expanded
        there), and every path under the home folder was said with ~, also one typed in full."""
        args = list(args)
        for at, name, value in self._path_values(args, with_str=True) or ():
            home = os.path.expanduser(value) if value.startswith("~") else value
            user = re.split(r"[/\\]", value[1:], maxsplit=1)[0] if home == value and value.startswith("~") else ""
            if user and not os.path.lexists(value):  # (a shell leaves ~nobody as typed: --out ~nobdy/x made a folder
                raise CLICK_USAGE_ERROR(  # named ~nobdy here, silently, as --out=~/pics made ~)
                    f"{name} {brief(value)}: ~{brief(user)} names the home folder of a user so named, and there is "
                    f"none; write ./{brief(value)} for the file or folder named so in the current one, or give another "
                    f"path", ctx=ctx)
            if home != value:
                args[at] = args[at][:len(args[at]) - len(value)] + home
        return args

    def _path_values(self, args: list[str], with_str: bool = False) -> list[tuple[int, str, str]] | None:
        """Each value given to an option or argument that takes a path: (its place in args, the option or argument
        as written, the value); None where an option the command does not have makes the rest unknown. with_str:
        the str options that take a path too (STR_PATHS)."""

        def is_path(param) -> bool:
            if with_str and any(o in self.STR_PATHS for o in getattr(param, "opts", ())):
                return True
            kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            return kind is Path or Path in typing.get_args(kind)

        options = {o: p for p in self.params if isinstance(p, TyperOption) for o in (*p.opts, *p.secondary_opts)}
        positional, found, i = [], [], 0
        while i < len(args):
            arg, i = args[i], i + 1
            if arg == "--":
                positional += range(i, len(args))
                break
            if not arg.startswith("-") or arg == "-":
                positional.append(i - 1)
                continue
            name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            param = options.get(name)
            if param is None:  # an unknown option: whether it takes a value is unknown, and Click names it
                return None
            if param.is_flag or param.count or not eq and i == len(args):  # (last, without a value: Click says it
                continue  # requires one; "--out is given an empty file name" was said of `export RUN --out`)
            if not eq:
                value, i = args[i], i + 1
            if is_path(param):
                found.append((i - 1, name, value))
        places = iter(positional)
        for param in (p for p in self.params if not isinstance(p, TyperOption)):
            taken = list(places) if param.nargs == -1 else [at for at in [next(places, None)] if at is not None]
            if is_path(param):
                found += [(at, param.metavar or param.name.upper(), args[at]) for at in taken]
        return found


def dash_spelled(path: str) -> bool:
    """Whether a path as typed is one a Path says otherwise, beginning with '-' (./-, ./-w: said - and -w, standard
    output's name and an option's) or '~' where it was typed otherwise (./~, a folder named ~ here: said ~, the
    home folder where pasted, and read as home by what expands a str's ~)."""
    said = str(Path(path))
    return said != path and (said.startswith("-") or said.startswith("~") and not path.startswith("~"))


def typed_paths(text: str) -> str:
    """text (a line t2i prints: clean) with each path typed to name a file called - (`./-`, which OneValueEach makes
    absolute to keep it one) as typed: it was said as /home/me/-, a path the user never typed ("/home/me/- does not
    exist")."""
    return said_as(text, STATE.get("as_typed", {}).items())


def typed_json(data: object) -> object:
    """data (what info --json prints, of a weights folder or a run) with each path typed to name a file called - said
    as typed, as the human lines say it (typed_paths): `info ./- --json` printed its folder as /home/me/-, where its
    table says ./-; a JSON holds each path as the user gave it, relative where it was typed relative (generate's and
    vary's --json lines say each path by typed_paths itself)."""
    if isinstance(data, str):
        return typed_paths(data)
    if isinstance(data, dict):
        return {k: typed_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [typed_json(v) for v in data]
    return data


def said_as(text: str, paths) -> str:
    """text with each path (stored, shown) of paths said as shown: the path itself and a path under it, never a
    longer name that begins with it (/home/me/-x); a path in backquotes too (`... --to ./-w`: it was said whole,
    /home/me/-w)."""
    for stored, shown in paths:
        text = re.sub(re.escape(stored) + r"(?![^/\s'\");:,`\]])", lambda _, shown=shown: shown, text)
    return text


_PLAIN_INT = re.compile(r"-?[0-9]{1,100}")  # what int() and Pydantic read alike (no spaces, signs or _ of their own)
_PLAIN_FLOAT = re.compile(r"-?[0-9]{1,100}(?:\.[0-9]{1,100})?")


class QuickCoercion:
    """Typer >= 0.2x converts every option's value, each default too, through a Pydantic TypeAdapter, built for each
    option on the command's first parse: importing Pydantic and building an adapter for each of generate's options
    took 0.06-0.075 s of CPU before torch began to load (BENCHMARKS.md "A cold generate beside import torch and the
    codes"). The values whose conversion is plain are converted here, to what the adapter gives (test_s46_hH
    compares the two): a value of the option's own type as it is, None as None, a str of digits for an
    int or a float, any str for a str, and a str or a Path for a Path option without Typer's path checks beyond
    its default ones (typer's own coerce_cli_path makes them). Everything else (a bad value, whose message is
    Typer's, a range, a choice, a list) goes to Typer's own adapter, built then."""

    def __init__(self, param) -> None:
        self.param = param
        self.full = None  # typer's own RuntimeParam, built at the first value not converted here

    def coerce(self, value, param, ctx):
        done, converted = self._plain(value, param, ctx)
        if done:
            return converted
        if self.full is None:
            from typer._coercion import build_runtime_param

            self.full = build_runtime_param(param.type_descriptor)
        return self.full.coerce(value, param=param, ctx=ctx)

    @staticmethod
    def _plain(value, param, ctx) -> tuple[bool, object]:
        desc = param.type_descriptor
        info, kind = desc.parameter_info, desc.annotation
        if param.multiple or param.nargs != 1 or getattr(info, "parser", None) is not None \
                or getattr(info, "click_type", None) is not None or getattr(desc, "file_annotation", None) is not None:
            return False, None
        if value is None:  # (RuntimeParam.coerce's own answer, before any adapter)
            return True, None
        if kind is str and type(value) is str:
            return True, value
        numbers = getattr(info, "min", None) is None and getattr(info, "max", None) is None
        if kind is int and numbers:
            if type(value) is int:
                return True, value
            if type(value) is str and _PLAIN_INT.fullmatch(value):
                return True, int(value)
        if kind is float and numbers:
            if type(value) is float:
                return True, value
            if type(value) is str and _PLAIN_FLOAT.fullmatch(value):
                return True, float(value)
        if kind is Path and not (getattr(info, "allow_dash", True) or getattr(info, "path_type", True) is not None
                                 or getattr(info, "resolve_path", True)) and type(value) in (str, type(Path())):
            from typer._param_types import coerce_cli_path  # (its checks: file_okay, dir_okay, readable, ...)

            return True, coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
        return False, None


def quick_coercion(param) -> None:
    """Give a parameter QuickCoercion where Typer converts values through Pydantic (typer >= 0.2x: a parameter with
    a lazily built _runtime_param); older Typers (Click's own conversion), and a Typer whose private parts that
    QuickCoercion calls are not as it knows them (_quick_coercion_fits), are left as they are."""
    if getattr(param, "_runtime_param", False) is not None or not hasattr(param, "type_descriptor") \
            or not _quick_coercion_fits():
        return
    desc = param.type_descriptor
    if not (hasattr(desc, "parameter_info") and hasattr(desc, "annotation")):
        return
    param._runtime_param = QuickCoercion(param)


@cache
def _quick_coercion_fits() -> bool:
    """Whether this Typer has the private functions QuickCoercion calls, taking the arguments it gives them: they
    are no public API, and a Typer that renamed one (coerce_cli_path) failed every command with a path option in an
    internal error ("cannot import name 'coerce_cli_path'"), its default --out among them."""
    import inspect

    try:
        from typer._coercion import build_runtime_param
        from typer._param_types import coerce_cli_path
        wanted = inspect.signature(coerce_cli_path).parameters
    except (ImportError, TypeError, ValueError):
        return False
    return callable(build_runtime_param) and {"parameter_info", "path_type", "param", "ctx"} <= set(wanted)


def _option_value(param, text: str, ctx=None) -> object:
    """An option's value for comparing two of them, by the option's declared type: an int or a float as a number
    (`--n 04` is `--n 4`; NaN is one value), a path as it would be read (`--out d/` is `--out d`), other text as
    written (two prompts are two prompts). An int that int() does not read is compared as the option reads it
    (`--seed 1.0` is seed 1 where Typer's Pydantic reads it so: `--seed 1 --seed 1.0` was said to disagree). A
    value that does not convert, or a Typer that does not say the type, compares as written (the parser then says
    what is wrong)."""
    kind = getattr(param, "bare_type", None)
    try:
        kind = kind() if callable(kind) else None
        kind = getattr(kind, "__name__", kind)  # a class, or its name (annotations read as text)
        if kind == "int":
            try:
                return int(text)
            except ValueError:
                value = _as_read(param, text, ctx)
                return value if type(value) is int else text
        if kind == "float":
            value = float(text)
            return "nan" if value != value else value
        if kind == "Path":
            return os.path.normpath(text) if text else text
    except (TypeError, ValueError):
        pass
    return text


def _as_read(param, text: str, ctx, strict: bool = False) -> object:
    """text as the option's own conversion reads it (Typer's Pydantic, or Click's type in an older Typer); text
    itself where that refuses it, or, strict, that refusal (its own words: "Invalid value for '--seed': ...")."""
    try:
        if hasattr(param, "get_runtime_param"):
            return param.get_runtime_param().coerce(text, param=param, ctx=ctx)
        return param.type_cast_value(ctx, text)
    except (CLICK_USAGE_ERROR, ValueError, TypeError):  # (a BadParameter is a UsageError)
        if strict:
            raise
        return text


# Help is click's plain text (rich_markup_mode=None): Rich's option tables gave the option names a column as wide as
# the longest --x/--no-x pair, so at 80 columns (and whenever piped) names were cut ("--finetune-decode…") and each
# description squeezed into ~20 characters; click's wraps each description under its option at any width.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=OneLineErrors,
                  rich_markup_mode=None,
                  help="t2i: a small, hackable DALL-E. Text -> BPE -> transformer -> dVAE codes -> PNG.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, cls=WholeSummaries,
                       help="Write or preview training data.")
app.add_typer(data_app, name="data")


class StdoutError(OSError):
    """Standard output refused a write (a full output, or one t2i started with closed): said as standard
    output's, not as a disk's ("the disk is full" for `generate >/dev/full`, whose PNG was written)."""


class _StdoutFile:
    """The file `out` writes to: whatever sys.stdout is now (CliRunner swaps it; under a live progress bar, the
    stream Rich's redirection stands for, as Rich's own consoles write), a refused write raised as a
    StdoutError. A broken pipe (`t2i rerank DIR | head`) is left to Rich, which stops writing quietly."""

    @staticmethod
    def _stream():
        return getattr(sys.stdout, "rich_proxied_file", sys.stdout)

    def _call(self, method: str, *args):
        stream = self._stream()
        if stream is None:  # started with it closed, outside main() (which puts a _ClosedStdout there)
            raise StdoutError(errno.EBADF, "it is closed")
        try:
            return getattr(stream, method)(*args)
        except (BrokenPipeError, StdoutError):
            raise
        except OSError as e:
            raise StdoutError(e.errno, e.strerror or str(e)) from e

    def write(self, text: str) -> int:
        return self._call("write", text)

    def flush(self) -> None:
        self._call("flush")

    def isatty(self) -> bool:
        stream = self._stream()
        return stream is not None and stream.isatty()

    def fileno(self) -> int:
        return self._call("fileno")

    @property
    def encoding(self) -> str:
        return getattr(self._stream(), "encoding", None) or "utf-8"


class _ClosedStdout:
    """sys.stdout where t2i started with it closed (`t2i --version >&-`): Python leaves it None, and print and
    Rich then drop every line silently (exit 0 with the version said nowhere). Writing to it fails as writing
    to a full output does; a command that writes nothing there is unaffected."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "it is closed")

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "it is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


# markup=False: prompts, paths and PNG text are user data and must never be read as Rich markup.
# emoji=False: Rich swaps ":cat:" in any text for an emoji, markup or not (a folder "e:cat:x" was printed "e🐱x")
out = Console(file=_StdoutFile(), markup=False, highlight=False, emoji=False,
              soft_wrap=True)  # paths never broken across lines
err = Console(stderr=True, markup=False, highlight=False, emoji=False, soft_wrap=True)
STATE = {"debug": False}
STOPPED = "finished files are kept; nothing partial was written"  # a stop's line where the command set none of its own
MAX_N = MAX_IMAGES  # largest --n; each image is a few hundred KB of activations, this bounds a run's memory
# Candidates a plain `generate PROMPT` (no --n, no image prompt) and `t2i eval` draw and rerank with the
# weights' CLIP, keeping the best (BENCHMARKS.md: the accuracy it buys against its cost); 1 = off.
DEFAULT_CANDIDATES = 4
MAX_SEED = 2**63 - 1  # largest --seed a torch.Generator takes
MAX_THREADS = 256  # largest --threads
MAX_EVAL_SEEDS = 16  # most --seed of one `t2i eval`
MAX_DRAWS = 16  # most --draws of `t2i eval --data`: one decode batch of one caption (pipeline.MAX_BATCH)
THREADS_HELP = (f"CPU threads for torch, 1..{MAX_THREADS} (default: torch's own choice, one per core, whatever the "
                "load: a seed's "
                "bytes can depend on the thread count).")
SPIN_COUNT = "10000"  # GOMP_SPINCOUNT for inference unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (busy_machine.sh)
BUSY_SPIN_COUNT = "0"  # ... and where other tasks run as it starts: sleep at once (as OMP_WAIT_POLICY=PASSIVE)
PRECISION_HELP = ("The transformer's weights at inference: fp32, bf16 (half the bytes per code), int8 (a quarter; "
                  "CPU only) or auto, the default (the fastest whose `t2i eval` is within a point of fp32's: bf16 "
                  "on a CPU with native bf16, else int8; fp32 on a GPU). With bf16 or int8 on a CPU with native "
                  "bf16 the dVAE decodes in bf16 too.")
class SAMPLING_DEFAULTS:
    """generate's and eval's sampling defaults (kept here so `t2i --help` need not import torch)."""

    temperature, top_k, top_p, guidance, regional = 1.0, 0, 1.0, 3.0, 2.0


# Options generate and vary share (the same OptionInfo serves both commands).
DRAW_SEED = typer.Option(0, "--seed", help="Random seed, 0..2^63-1; the same seed and settings give the same "
                                            "images (the images of one run share its draws: another --n draws "
                                            "others).")
DRAW_TEMPERATURE = typer.Option(SAMPLING_DEFAULTS.temperature, "--temperature",
                                help="Softmax temperature, 0.001..100 (near 0.001 a prompt's draws are nearly one "
                                     "image, --top-k 1's).")
DRAW_TOP_K = typer.Option(SAMPLING_DEFAULTS.top_k, "--top-k",
                          help="Keep the k most likely codes, at most the codebook's size (0 = off; 1 always takes the "
                               "most likely, so every draw "
                               "is one image: one candidate is drawn, not the best of several).")
DRAW_TOP_P = typer.Option(SAMPLING_DEFAULTS.top_p, "--top-p",
                          help="Nucleus sampling mass in (0, 1] (1 = off; a p up to 1/the codebook's size keeps "
                               "only the most likely code, as --top-k 1 does, and a small one nearly so: a prompt's "
                               "draws are then one image, --top-k 1's, or nearly).")
# vary's: a variation keeps a random share of cells of its own, so its greedy draws are one image only at a --strength
# that redraws every cell (`vary --top-k 1` was told "every draw is one image: one candidate is drawn, not the best of
# several", of four variations that differ, and vary draws no candidates)
VARY_TEMPERATURE = typer.Option(SAMPLING_DEFAULTS.temperature, "--temperature",
                                help="Softmax temperature, 0.001..100 (near 0.001 the codes drawn are nearly --top-k "
                                     "1's).")
VARY_TOP_K = typer.Option(SAMPLING_DEFAULTS.top_k, "--top-k",
                          help="Keep the k most likely codes, at most the codebook's size (0 = off; 1 always takes the "
                               "most likely: variations then differ only in the cells each redraws, and at a "
                               "--strength that redraws every cell they are one image).")
VARY_TOP_P = typer.Option(SAMPLING_DEFAULTS.top_p, "--top-p",
                          help="Nucleus sampling mass in (0, 1] (1 = off; a p up to 1/the codebook's size keeps "
                               "only the most likely code, as --top-k 1 does, and a small one nearly so).")
DRAW_GUIDANCE = typer.Option(SAMPLING_DEFAULTS.guidance, "--guidance",
                             help="Classifier-free guidance scale (0..100; 1 = off).")
DRAW_GUIDANCE_START = typer.Option(None, "--guidance-start",
                                   help="Guidance at the first code (0..100), moving linearly to --guidance at "
                                        "the last (default: constant).")
GUIDANCE_STOP_HELP = ("Stop guidance (and regional guidance{negative}) after this share of the codes, in (0, 1]: the "
                      "rest are drawn from the prompt alone, at about half the cost per code at 16 images (default: "
                      "guided to the last code).")
DRAW_GUIDANCE_STOP = typer.Option(None, "--guidance-stop",
                                  help=GUIDANCE_STOP_HELP.format(negative=", and a --negative's push"))
EVAL_GUIDANCE_STOP = typer.Option(None, "--guidance-stop", help=GUIDANCE_STOP_HELP.format(negative=""))
DRAW_JACOBI = typer.Option(0, "--jacobi", help=(
    "Speculative Jacobi decoding: each forward pass reads N drafted codes and keeps those (and one more) "
    "the model would have drawn (0..64; 0 = one code per pass). Same distribution as plain decoding, other "
    "images; fewer passes (see BENCHMARKS.md)."))
DRAW_REGIONAL = typer.Option(SAMPLING_DEFAULTS.regional, "--regional", help=(
    "Regional guidance for two objects in the world's grammar (\"a red bird and a blue fish\", \"... above "
    "...\"): each object's own phrase also guides the half of the picture it belongs in, with this weight "
    "(0 = off; 2 more rows per image)."))
DRAW_NEGATIVE = typer.Option(None, "--negative",
                             help="Guidance pushes away from this text instead of the empty prompt.")
DRAW_OUT_DIR = typer.Option(Path("outputs"), "--out", help="Folder for the PNG files.")
DRAW_WEIGHTS = typer.Option(None, "--weights",
                            help="Weights folder (default: $T2I_WEIGHTS or the shipped one).")
DRAW_DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
DRAW_PRECISION = typer.Option("auto", "--precision", help=PRECISION_HELP)
DRAW_THREADS = typer.Option(None, "--threads", help=THREADS_HELP)  # (rerank's and eval's too)
# train's: the same option (range, default, check_threads and use_threads), with what it means for its processes
TRAIN_THREADS = typer.Option(None, "--threads", help=THREADS_HELP.removesuffix(").") + (
    "; per process: each torchrun process takes N (torchrun's default is 1 each), and each --workers loader process "
    "one, as PyTorch sets it; a resume may take another count, and trains on to other bytes). Not the "
    "tokenizer stage's (its BPE learner is not torch's)."))
DRAW_GRID = typer.Option(False, "--grid", help="Also write one contact sheet of every image drawn (with "
                                               "--candidates: every candidate with its score, best first).")
DRAW_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar or warnings; print only the paths.")
JSON_HELP = ("Print each file written as one line of JSON instead of its path: path, kind (image or sheet), prompt, "
             "{more}seed, index{ranked}.")
DRAW_JSON = typer.Option(False, "--json", help=JSON_HELP.format(
    more="line (of --prompts, and the lines that repeat it), ", ranked=", and score and rank when candidates were "
                                                                      "reranked"))
VARY_JSON = typer.Option(False, "--json", help=JSON_HELP.format(more="", ranked=""))


def default_weights() -> Path:
    """--weights default: $T2I_WEIGHTS, else the weights folder shipped with the repository."""
    return Path(os.environ.get("T2I_WEIGHTS") or REPO_WEIGHTS)


def weights_folder(given: Optional[Path]) -> Path:
    """The weights folder a command loads: --weights, else $T2I_WEIGHTS, else the shipped one. A file given
    for it is refused naming where it came from and that it takes a folder; so is a T2I_WEIGHTS folder that does
    not exist, and any later error about a folder T2I_WEIGHTS chose says so (user_errors)."""
    env = os.environ.get("T2I_WEIGHTS")
    if given is not None:
        folder, named = Path(given), "--weights"
    elif env:
        # (~ as the options read it: T2I_WEIGHTS="~/w", quoted, where the shell leaves it, was "does not exist")
        folder, named = Path(os.path.expanduser(env) if env.startswith("~") else env), "T2I_WEIGHTS"
        if dash_spelled(env):  # (T2I_WEIGHTS=./-: said as typed, as --weights ./- is; "-" named standard input)
            folder = Path(os.path.abspath(env))
            STATE.setdefault("as_typed", {})[str(folder)] = env
        STATE["weights_env"] = str(folder)
    else:
        return REPO_WEIGHTS
    if folder.is_file():
        holder = f" such as {folder.parent}, which holds it" if (folder.parent / "tokenizer.json").is_file() else ""
        raise WeightsError(f"{named} {folder} is a file; {named} takes a weights folder{holder}")
    if named == "T2I_WEIGHTS" and not folder.exists():
        raise WeightsError(f"weights folder {folder} (from T2I_WEIGHTS) does not exist; set T2I_WEIGHTS to a "
                           f"weights folder" + (", or unset it to use the shipped one" if shipped_weights() else ""))
    return folder


def _print_version(value: bool) -> None:
    if value:
        try:
            out.print(f"t2i {__version__}")
        except OSError as e:  # `t2i --version >/dev/full` (it runs before any command's error handling)
            say("error", "red", f"cannot write to standard output: {e.strerror or e}")
            raise typer.Exit(1) from None
        raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
          version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    STATE["debug"] = debug
    STATE["weights_env"] = None  # set by weights_folder when T2I_WEIGHTS chose the weights folder
    STATE.pop("interrupted", None)  # set by a command whose stop says more than inference's line (train)


def lost_peer(e: BaseException) -> bool:
    """Whether an error is this torchrun process losing another one mid-collective (gloo's "Connection closed by
    peer"): not a bug of its own but the echo of the other's failure, which that process reports."""
    text = str(e)
    return (n_processes() > 1 and isinstance(e, RuntimeError)
            and "Original Traceback" not in text  # (a loader worker's own error, re-raised)
            and any(s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")))


def _in_context(e: BaseException, found: Callable[[BaseException], bool]) -> Optional[BaseException]:
    """The first exception in e's __context__ chain (what e was raised while handling, and so on) that found()
    says yes to; else None. A chain that loops back (an exception re-raised inside its own handling) ends there."""
    return next((seen for seen in raised_while(e) if found(seen)), None)


def _lost_peer_in(stop: BaseException) -> Optional[BaseException]:
    """The lost connection to another torchrun process (lost_peer) that a stop (KeyboardInterrupt) cut into while
    this process was ending with it; else None."""
    return _in_context(stop, lost_peer)


def worker_message(msg: str) -> str:
    """An error raised in a DataLoader worker reaches the training process re-raised with the worker's whole
    traceback as its message ("Caught DataError in DataLoader worker process 0. Original Traceback ...
    t2i_cli.errors.DataError: image x.png does not exist"): its last line, without the class, is what to say."""
    head, sep, trace = msg.partition("\nOriginal Traceback (most recent call last):\n")
    if not sep:
        return msg
    lines = trace.rstrip("\n").split("\n")
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    start = frames[-1] + 1 if frames else 0
    while start < len(lines) and lines[start].startswith("    "):  # the frame's source line (and its ^ marks)
        start += 1
    error = "\n".join(lines[start:])  # the error, whole: its message may span lines, indented or not
    return re.sub(r"^[\w.]+(Error|Exception|Interrupt)\w*: ", "", error)


def utf8_text(text: str | None, shown: str) -> str | None:
    """Text from the command line as UTF-8: Python keeps bytes its locale cannot decode as lone surrogates, which
    the tokenizer and the PNG's text cannot take. Bytes that are UTF-8 (a UTF-8 prompt under an ASCII locale) are
    read as such; others (a shell in Latin-1) are refused, naming the option (shown) and the byte."""
    if text is None or not not_utf8(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{shown} is not UTF-8 text (it holds the byte 0x{raw[e.start]:02x}); set the terminal to "
                         f"UTF-8 (e.g. LANG=C.UTF-8) or retype it") from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn T2IError (and Ctrl-C) into one red line and an exit code; --debug re-raises. Within it, shared checks
    name the options as typed (errors.option: --top-k 1, not top_k=1)."""
    speaking = SPEAKING["cli"]
    SPEAKING["cli"] = True
    try:
        yield
    except T2IError as e:
        if STATE["debug"]:
            raise
        if (getattr(e, "every_rank", False) or isinstance(e, UsageError)) and not rank_zero():
            # every torchrun process stopped alike (a usage error: each checked the same command line): rank 0
            # says why
            if e.exit_code == 130:  # a stop this process had (Interrupted): torchrun's, where rank 0 ended first
                refused = _refusal_in(e)  # with the refusal this process was ending with (its code, not 130)
                if refused is None and _stopped_for_main():  # (rank 0 killed: this process says it)
                    _say_stopped_for_main(str(e))
                raise typer.Exit(130 if refused is None else refused.exit_code) from None
            _let_rank_zero_say_it()
            raise typer.Exit(e.exit_code) from None
        env, msg = STATE.get("weights_env"), worker_message(str(e)) + _notes(e)  # (said by say: clean)
        if env and env in msg and "T2I_WEIGHTS" not in msg:  # a folder the user may not know they chose
            msg += f" (T2I_WEIGHTS={env} chose this folder; unset it to use the shipped weights)"
        if e.exit_code == 130:  # a training stopped by Ctrl-C or SIGTERM: said as an inference command says it
            say("interrupted", "yellow", msg.removeprefix("interrupted").lstrip("; "))
        else:
            say("error", "red", msg)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        if STATE["debug"]:
            raise
        if not rank_zero():  # Ctrl-C reaches every torchrun process: rank 0 says it
            # torchrun's stop (SIGTERM) of a process still ending with the refusal rank 0 has said: its code
            refused = _refusal_in(e)
            if refused is None and _stopped_for_main():  # (rank 0 killed: this process says it)
                _say_stopped_for_main(STATE.get("interrupted", STOPPED))
            raise typer.Exit(130 if refused is None else refused.exit_code) from None
        say("interrupted", "yellow", STATE.get("interrupted", STOPPED))
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except OSError as e:  # a path the system refused (a name too long, no permission, a full disk): not a bug
        if STATE["debug"]:
            raise
        if e.errno == errno.EIO and e.filename is None and _stopping(e):  # the terminal is gone (SIGHUP: a
            # progress bar's redraw on it failed as the stop was said): nothing more can be said there; a stop
            # stays a stop
            raise typer.Exit(130) from None
        line = f"cannot write to standard output: {e.strerror}" if isinstance(e, StdoutError) else os_error_line(e)
        if line is None:  # possibly t2i's own path: a bug until shown otherwise
            say("internal error", "red", f"{type(e).__name__}: {e}{_notes(e)} (rerun with --debug for the traceback)")
        else:
            say("error", "red", line + _notes(e))
        raise typer.Exit(1) from None
    except Exception as e:  # a bug: one line, with how to see more
        if STATE["debug"]:
            raise
        if lost_peer(e):  # another torchrun process stopped first, and said why
            if getattr(e, "said_elsewhere", False) or _another_says_it():  # rank 0 killed: the lowest rank still
                # running says it, once; rank 0 running: it says it (each other rank said a bare line too)
                raise typer.Exit(1) from None
            say("error", "red", f"rank {os.environ.get('RANK', '?')} stopped: another torchrun process of this run "
                                f"stopped first (its own line, or torchrun's, says why){_notes(e)}")
            raise typer.Exit(1) from None
        say("internal error", "red", f"{type(e).__name__}: {worker_message(str(e))}{_notes(e)} (rerun with --debug "
                                     f"for the traceback)")
        raise typer.Exit(1) from None
    finally:
        SPEAKING["cli"] = speaking


def _stopped_for_main() -> bool:
    """Whether this torchrun process's stop outside the training loop was torchrun's once rank 0 had ended, for it
    to say (train.stopped_for_main; train is not imported for it)."""
    train = sys.modules.get("t2i_cli.train")
    return train is not None and train.stopped_for_main()


def _another_says_it() -> bool:
    """Whether another process of this torchrun job, on this machine, says why it stopped: rank 0 running, or the
    lowest rank still running where rank 0 is gone (train.Dist.another_says_it; train is not imported for it)."""
    train = sys.modules.get("t2i_cli.train")
    return train is not None and train.JOB is not None and train.JOB.another_says_it()


def _say_stopped_for_main(what: str) -> None:
    """The stop's line rank 0 would have said, with why this process says it: rank 1 stopped silently (exit 130),
    where rank 0 was killed before training's first step (the data's check, a whole run between stages)."""
    from t2i_cli.train import MAIN_ENDED

    rest = what.removeprefix("interrupted").lstrip("; ")
    say("interrupted", "yellow", MAIN_ENDED.removeprefix("interrupted; ")
        + (" " if rest.startswith(("before ", "at ", "in the ")) else "; ") + worker_message(rest))


def _notes(e: BaseException) -> str:
    """What t2i added to an error on its way out (a training run's checkpoint saved after its last whole step), as
    the end of its line."""
    return "".join(f"; {note}" for note in getattr(e, "__notes__", ()) if note == getattr(e, "saved_note", None))


RANK_ZERO_GRACE_S = 60.0  # how long a torchrun process other than rank 0 waits, refused, for rank 0 to say it


def _let_rank_zero_say_it() -> None:
    """A torchrun process other than rank 0, refused as rank 0 is (a command line, or a check every process made
    alike), waits (at most RANK_ZERO_GRACE_S) for torchrun to stop it: ending first, it had torchrun stop rank 0
    (SIGTERM) before rank 0 had reached the refusal and said it (a slower start), and the run ended with no line
    saying why (rank 0 "interrupted", exit 130, or killed). Rank 0, ending with its line, has torchrun stop this
    one; a Ctrl-C ends the wait too. Only under torchrun's agent (TORCHELASTIC_RUN_ID), which stops the others
    once one has ended: another launcher's processes, or a RANK left in the environment, do not wait."""
    import signal
    import threading
    import time

    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    main = threading.current_thread() is threading.main_thread()
    before = {s: signal.getsignal(s) for s in stop_signals()} if main else {}
    for s, handler in before.items():  # (training's own handlers only note a stop: the wait would outlast it)
        if handler is not signal.SIG_IGN:
            signal.signal(s, signal.default_int_handler)
    try:
        time.sleep(RANK_ZERO_GRACE_S)
    except KeyboardInterrupt:
        pass
    finally:
        for s, handler in before.items():  # (None: set outside Python, which Python cannot put back)
            if handler is not None:
                signal.signal(s, handler)


def _refusal_in(e: BaseException) -> Optional[T2IError]:
    """The refusal every torchrun process met alike (a UsageError, or an error marked every_rank) that a stop
    (KeyboardInterrupt) cut into while this process was ending with it; else None."""
    return _in_context(e, lambda seen: isinstance(seen, T2IError) and (getattr(seen, "every_rank", False)
                                                                       or isinstance(seen, UsageError)))


def _stopping(e: BaseException) -> bool:
    """Whether an error came while a stop (Ctrl-C, SIGTERM, SIGHUP; training's Interrupted) was being handled."""
    return _in_context(e, lambda seen: isinstance(seen, KeyboardInterrupt)
                       or getattr(seen, "exit_code", None) == 130) is not None


# What to do about a path the operating system refused, by errno (os_error_line): the errors of the user's
# environment (a missing file is not among them: t2i checks the paths it is given, so one it meets later may be
# its own bug).
OS_ERROR_ADVICE = {
    errno.ENAMETOOLONG: "the name is longer than this file system allows; choose a shorter path",
    errno.EACCES: "choose a path you may write to (or read from)",
    errno.EPERM: "choose a path you may write to (or read from)",
    errno.EROFS: "this file system is read-only; choose a path on another",
    errno.ENOSPC: "the disk is full; free some space or choose a path on another disk",
    errno.EDQUOT: "the disk quota is used up; free some space or choose a path on another disk",
    errno.EFBIG: "the file would be larger than this system allows (see `ulimit -f`); choose a path on another disk",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; give a file",
    errno.ELOOP: "the path loops through symbolic links; check it",
}


def os_error_line(e: OSError) -> str | None:
    """One line for an OSError that no check before it caught: the path (shortened when very long; none for a
    write without one, such as standard output on a full disk), the system's reason and what to do; None for
    an errno not the environment's (OS_ERROR_ADVICE)."""
    if e.errno not in OS_ERROR_ADVICE:
        return None
    if e.filename is None:
        return f"{e.strerror or e}; {OS_ERROR_ADVICE[e.errno]}"
    name = str(e.filename)
    if len(name) > 120:
        name = f"{name[:56]}...{name[-56:]}"
    return f"{name}: {e.strerror or e}; {OS_ERROR_ADVICE[e.errno]}"


def clean(text: str) -> str:
    """User text made safe for a terminal: control characters (ESC, BEL, ...) shown as escapes; a path typed to
    name a file called - as typed (typed_paths: every line a command prints, its refusals, warnings and the files
    it wrote, `--out ./-`'s "/home/me/-/a-red-bird-000.png" among them); a path typed beginning with ~ is said
    expanded (OneValueEach._home_expanded says why)."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in typed_paths(str(text)))


def _right(text: str, width: int) -> str:
    """text right-aligned in `width` columns of a terminal, where a Chinese or Japanese character takes two and a
    combining mark none (Rich's cell_len; str.rjust counts characters: --explain's scores of such words stood out
    of line)."""
    from rich.cells import cell_len

    return " " * max(0, width - cell_len(text)) + text


def say(label: str, colour: str, msg: str) -> None:
    """One coloured 'label: message' line on stderr; the message is never read as markup."""
    from rich.text import Text

    err.print(Text.assemble((f"{label}:", colour), " ", clean(msg)), soft_wrap=True)


def warn(msg: str) -> None:
    """One yellow warning line on stderr."""
    say("warning", "yellow", msg)


def progress_bar(quiet: bool, unit: str = "tokens") -> Progress:
    """A Rich progress bar with count, rate and ETA; silent when quiet or stderr is not a terminal. The bar is
    narrower on a narrow terminal (at 80 columns a 40-wide bar left the count and the ETA cut to an ellipsis)."""
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=max(10, min(40, err.width - 90))),
                    MofNCompleteColumn(), TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=False)


PLAIN_PROGRESS_EVERY = 60.0  # seconds between the plain progress lines of a long command whose stderr is no terminal


class PlainProgress:
    """A training run's (or an eval's) progress as a plain line on stderr every PLAIN_PROGRESS_EVERY seconds,
    where the bar is silent because stderr is not a terminal (a log file, nohup, CI: a two-hour run printed
    nothing until it ended); silent with --quiet, on a terminal (the bar shows it) and on torchrun's other
    processes."""

    def __init__(self, quiet: bool):
        self.on = not quiet and rank_zero() and not err.is_terminal
        self.start = self.last = time.monotonic()
        self.first_step: int | None = None  # the step this process started from (a resume starts past 0)

    def update(self, what: str, step: int, total: int, metrics: dict, keys: tuple[str, ...],
               unit: str = "steps") -> None:
        if not self.on:
            return
        now = time.monotonic()
        if self.first_step is None:
            self.first_step, self.start = step, now
        if now - self.last < PLAIN_PROGRESS_EVERY:
            return
        self.last = now
        rate = (step - self.first_step) / max(now - self.start, 1e-9)
        shown = " ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))
        eta = f", {_duration((total - step) / rate)} left" if rate > 0 and total > step else ""
        speed = f"{rate:.3g} {unit}/s" if rate > 0 else "starting"
        shown = f", {shown}" if shown else ""
        share = f"{100 * step / max(total, 1):.0f}%"
        err.print(f"{what}: {unit.removesuffix('s')} {step:,}/{total:,} ({share}), {speed}{eta}{shown}",
                  markup=False, highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    """'45 s', '12 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def rate_text(task, unit: str) -> str:
    """'123 tokens/s' (or '0.52 steps/s': two significant digits under 10) from a Rich task's measured speed."""
    if not task.speed:
        return ""
    return f"{task.speed:,.0f} {unit}/s" if task.speed >= 10 else f"{task.speed:.2g} {unit}/s"


def training_rate(bar: Progress, task, metrics: dict, keys: tuple[str, ...]) -> str:
    """'0.52 steps/s loss=0.1234 recon_l1=0.05', a training bar's rate column: the rate, then the metrics named in
    keys, in that order, as many whole ones as fit beside the other columns with a bar of 10 or more; the bar then
    takes what is left (at most 40).
    On a narrow terminal the count and the ETA come first (a 40-wide bar and every metric cut them to an
    ellipsis at 80 columns). The other columns: the description, the count (its total's digits twice), the
    percentage (4), the rate, the ETA (7) and a space between each two."""
    t = bar.tasks[task]
    rate = rate_text(t, "steps")
    free = bar.console.width - len(t.description) - (2 * len(str(int(t.total or 0))) + 1) - 4 - len(rate) - 7 - 6
    text = ""
    for k in keys:
        if k in metrics:
            more = f"{text} {k}={metrics[k]:.4g}".strip()
            if free - len(more) - 1 < 10:
                break
            text = more
    bar.columns[1].bar_width = max(1, min(40, free - (len(text) + 1 if text else 0)))
    return f"{rate} {text}".strip()


def checking_bar(bar: Progress):
    """A checking(done, total) for data.open_source: a 'checking pictures' line in bar, with rate and ETA, while
    a folder's or manifest's pictures are decoded once each (a large folder of photos takes a while), gone once
    they are."""
    task = None

    def checking(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("checking pictures", total=total, rate="")
        bar.update(task, completed=done, rate=rate_text(next(t for t in bar.tasks if t.id == task), "pictures"))
        if done >= total:
            bar.remove_task(task)
            task = None

    return checking


def one_process(command: str) -> None:
    """Refuse a command other than train under torchrun with several processes: each process ran it whole
    (`generate` wrote every image twice, `export` once and then said the folder already held it)."""
    n = n_processes()
    if n > 1:
        raise UsageError(f"t2i {command} runs in one process, and {n} were started for it (WORLD_SIZE={n}, as "
                         f"torchrun sets it); run it without torchrun (only `t2i train` splits its work over "
                         f"processes)")


def start_command(command: str) -> None:
    """The start of every command but train (which checks OpenMP's environment itself): one process, and
    OpenMP's environment (check_omp_env) before torch loads; `t2i info`, `export` and `data` passed an
    OMP_NUM_THREADS=abc to libgomp, which printed its own warning, where the others refused it in one line."""
    one_process(command)
    check_omp_env()


def start_inference(threads: Optional[int], command: str | None) -> None:
    """The start of generate, vary, rerank and eval: one process, OpenMP's spinning bounded (train bounds it too),
    --threads, and (main) no interpreter teardown after. command: the command's name for start_command, or None
    where the command has run start_command itself (generate, before it reads any --prompts; run again here, it
    checked OpenMP's environment twice)."""
    if command is not None:
        start_command(command)
    bound_spinning(busy=lambda: other_t2i_inferring() or other_running_tasks())
    stop_on_sigterm()  # before torch is imported (use_threads may): a held stop reaches this handler after
    use_threads(threads)
    STATE["fast_exit"] = True


def bound_spinning(busy: Callable[[], int] = lambda: 0) -> None:
    """Between parallel regions libgomp's threads spin, by default 300,000 times, before they sleep. Alone that is what
    makes a decode step's many small ops fast; beside another busy process (a second t2i, a training run) the
    spinning threads take the cores the working ones need, and a cold generate took 4-22x as long (BENCHMARKS.md
    "A busy machine"). GOMP_SPINCOUNT=10000 keeps the speed alone and bounds that loss; busy (busy() > 0:
    another t2i inference command, or other tasks, running when one starts), its threads sleep at once
    (GOMP_SPINCOUNT=0, BUSY_SPIN_COUNT): beside another generate 1.07-1.1x as long as taking fewer threads,
    beside an eval a little faster, and the thread count, on which a seed's bytes can depend, stays the
    machine's (since 0.13.2; BENCHMARKS.md "The same bytes on a busy machine"). Set before torch is imported
    (libgomp reads it once, when it loads); OMP_WAIT_POLICY or GOMP_SPINCOUNT of the user's own, or
    T2I_OMP=keep, leave libgomp as it is. busy() is called in those cases too: an inference command's look takes the
    inference lock (files.other_t2i_inferring), which a later start looks for (a command run with T2I_OMP=keep, or
    OMP_WAIT_POLICY or GOMP_SPINCOUNT set, held none, and another started beside it did not know of it)."""
    env = os.environ
    if "torch" in sys.modules:  # (libgomp has loaded: too late to set; a call within a process that uses torch)
        return
    if env.get("T2I_OMP") == "keep" or "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        busy()
        return
    env["GOMP_SPINCOUNT"] = BUSY_SPIN_COUNT if busy() > 0 else SPIN_COUNT


# What libgomp reads as OMP_NUM_THREADS: positive whole numbers, one a nesting level, between commas (C's isspace
# around each); anything else it warns of in its own words ("Invalid value for environment variable") and ignores
_OMP_THREADS = re.compile(r"[ \t\n\v\f\r]*\+?[0-9]+[ \t\n\v\f\r]*(?:,[ \t\n\v\f\r]*\+?[0-9]+[ \t\n\v\f\r]*)*")
OMP_MAX = 2**63 - 1  # the largest count libgomp reads (a C long; one more overflows and it warns, ignoring it)


def check_omp_env() -> None:
    """Refuse a T2I_OMP other than keep (or empty, as unset): `T2I_OMP=kep` or `T2I_OMP=1` bounded the spinning
    as if it were unset, unsaid. Refuse an OMP_NUM_THREADS libgomp does not read (abc, 0, -1): it printed its
    own warning and torch took one thread per core, where the README says the variable sets the count; an empty
    one (`OMP_NUM_THREADS=$N`, N unset) is as unset, as libgomp takes it, and is taken out of the environment
    before torch loads so that libgomp does not warn of it."""
    value = os.environ.get("T2I_OMP")
    if value not in (None, "", "keep"):
        raise UsageError(f"T2I_OMP must be keep (leave OpenMP's spinning as the environment has it), got {value!r}; "
                         f"set T2I_OMP=keep, or unset it for t2i's own bound")
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:
        return
    if not threads.strip(" \t\n\v\f\r"):
        if "torch" not in sys.modules:  # (libgomp reads it once, when it loads)
            del os.environ["OMP_NUM_THREADS"]
        return
    # (each count's digits, its zeros before it dropped: Python's int() refuses a string of 4,301 digits or more)
    counts = [n.strip(" \t\n\v\f\r").lstrip("+").lstrip("0") for n in threads.split(",")]
    if not _OMP_THREADS.fullmatch(threads) or not all(counts):
        raise UsageError(f"OMP_NUM_THREADS must be a whole number of threads, 1 or more (or OpenMP's list of them, "
                         f"4,2), got {threads!r}; set it to one, or unset it for one thread per core")
    if any(len(n) > len(str(OMP_MAX)) or int(n) > OMP_MAX for n in counts):  # (libgomp reads a C long: 2**64
        # warned in its own words, as abc did, and torch took one thread per core)
        raise UsageError(f"OMP_NUM_THREADS {threads.strip()!r} is more threads than OpenMP reads (at most {OMP_MAX:,} "
                         f"each); set it to the number of threads, or unset it for one thread per core")


def other_running_tasks(looks: int = 3, stat: str = "/proc/stat") -> int:
    """Tasks running or ready to run on this machine besides this process (Linux's /proc/stat procs_running,
    less this one), the least of a few looks a millisecond apart so that a passing blip does not count; 0
    where /proc/stat cannot be read."""
    import time

    seen = []
    for k in range(looks):
        try:
            with open(stat) as f:
                line = next((x for x in f if x.startswith("procs_running ")), "")
            seen.append(max(0, int(line.split()[1]) - 1))
        except (OSError, ValueError, IndexError):
            return 0
        if k + 1 < looks:
            time.sleep(0.001)
    return min(seen)


def use_threads(threads: Optional[int]) -> None:
    """--threads: torch's intra-op thread count for this command. None: torch's own choice (one per core, or
    OMP_NUM_THREADS), whatever the machine's load: a product can sum in another order at another thread count
    and flip a draw, so a default that followed the load (0.6.0-0.13.1: one thread less per other running task)
    drew other images for one seed on a busy machine; a busy start waits passively instead (bound_spinning)."""
    check_threads(threads)
    if threads is None and "OMP_NUM_THREADS" in os.environ:  # the user's own choice stands
        return
    _imports_held()  # (torch's first import, with a stop held)
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


def check_threads(threads: Optional[int]) -> None:
    """Refuse a --threads outside 1..MAX_THREADS (use_threads; generate --prompts before it reads them)."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"--threads must be between 1 and {MAX_THREADS}, got {said_value(threads, plain=True)}")


@app.command(cls=OneValueEach)
def generate(
    ctx: typer.Context,
    prompt: Optional[str] = typer.Argument(None, metavar="PROMPT",
                                           help="What to draw, e.g. \"a red bird\" (not with --from or --prompts)."),
    prompts: Optional[str] = typer.Option(None, "--prompts",  # str: ./- is a file named -, - standard input
                                          help="Draw each line of this UTF-8 file (- reads standard input; ./- is "
                                               "a file named -) as its own PROMPT with the same options and seed: "
                                               "the files `t2i generate LINE` writes, for one load of the models. "
                                               "Blank lines and lines starting with # are skipped; at most "
                                               f"{MAX_PROMPTS:,} prompts, {MAX_PROMPT_FILE >> 20} MiB and "
                                               f"{MAX_PROMPT_CHARS:,} characters a line."),
    n: int = typer.Option(1, "--n", help=f"Images to draw (1..{MAX_N}; with --prompts, per prompt; not above 1 "
                                         f"with --top-k 1 or a --top-p up to 1/the codebook's size, whose images "
                                         f"are one)."),
    seed: int = DRAW_SEED,
    temperature: float = DRAW_TEMPERATURE,
    top_k: int = DRAW_TOP_K,
    top_p: float = DRAW_TOP_P,
    guidance: float = DRAW_GUIDANCE,
    guidance_start: Optional[float] = DRAW_GUIDANCE_START,
    guidance_stop: Optional[float] = DRAW_GUIDANCE_STOP,
    jacobi: int = DRAW_JACOBI,
    regional: float = DRAW_REGIONAL,
    negative: Optional[str] = DRAW_NEGATIVE,
    image: Optional[Path] = typer.Option(None, "--image",
                                         help="Start from this picture: keep its top rows (--keep-top) or "
                                              "what --mask leaves, and draw the rest."),
    keep_top: float = typer.Option(0.5, "--keep-top", help="With --image: the share of code rows kept, in (0, 1)."),
    mask: Optional[Path] = typer.Option(None, "--mask",
                                        help="With --image: inpaint; the light pixels (> 127) of MASK are redrawn."),
    redraws: int = typer.Option(4, "--redraws",
                                help="With --mask: draw each image K times (1..16) and keep the one whose "
                                     "redrawn region fits the kept codes best (1 = off, K times faster; --top-k 1, "
                                     "or a --top-p up to 1/the codebook's size, draws once)."),
    from_png: Optional[Path] = typer.Option(None, "--from",
                                            help="Redraw a PNG that t2i made, from the settings it records "
                                                 "(with --image/--mask if it was made from them)."),
    candidates: Optional[int] = typer.Option(None, "--candidates",
                                             help=f"Draw this many (1..{MAX_N}) and keep the best by CLIP score "
                                                  f"(default {DEFAULT_CANDIDATES} when the weights have a CLIP and "
                                                  f"neither --n, --top-k 1 (or a --top-p up to 1/the codebook's "
                                                  f"size) nor an image prompt is given; 1 = off; above 1 not with "
                                                  f"either)."),
    keep: int = typer.Option(1, "--keep", help="How many of the best candidates to write (of --candidates N, or "
                                               f"alone of the default {DEFAULT_CANDIDATES})."),
    out_dir: Path = DRAW_OUT_DIR,
    weights: Optional[Path] = DRAW_WEIGHTS,
    device: str = DRAW_DEVICE,
    precision: str = DRAW_PRECISION,
    threads: Optional[int] = DRAW_THREADS,
    grid: bool = DRAW_GRID,
    quiet: bool = DRAW_QUIET,
    as_json: bool = DRAW_JSON,
) -> None:
    """Draw images for PROMPT (optionally from an image prompt) and write them as PNGs with their provenance."""
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # (until _generate writes a file: a stop while the weights load
        # said "finished files are kept" of none)
        prompt, negative = utf8_text(prompt, "PROMPT"), utf8_text(negative, "--negative")
        # (--prompts read before the start takes the inference lock: a pipe whose writer is slow, or idle, kept
        # another t2i started meanwhile waiting passively, 1.8x as long alone, for a command that drew nothing)
        # (what start_inference refuses at once is refused before a pipe is read to its end: a --threads 0 or a
        # torchrun start waited for the writer to finish, then was refused)
        # (so are the checks of the options that need neither the prompts nor torch: --n, --seed, --candidates and
        # --keep, --top-k 1's rules, --image's flags; each refused a piped file only once its writer had finished)
        lines, counted_options = None, None
        start_command("generate")
        # whether the --top-p is greedy (at or below 1/codebook, as --top-k 1 is), decided once, where a check first
        # asks: the codebook's size read from the transformer file's header, without torch (_greedy_by_p)
        greedy_p = cache(lambda: _greedy_by_p(top_k, top_p, weights_folder(weights)))
        if prompts is not None and prompt is None and from_png is None:
            check_threads(threads)
            counted_options = _draw_counts(ctx, prompt, prompts, n, seed, top_k, keep, candidates, image, mask, redraws,
                                           greedy_p=greedy_p)
            check_out_folder(out_dir)  # (`--out new/bird.png` was refused once the pipe had closed)
            # (a greedy --top-p's copies and moot settings, as --top-k 1's above, before the pipe is read: `--prompts -
            # --top-p 1e-9 --temperature 0.5` was refused once the pipe had closed)
            _refuse_greedy_top_p(ctx, greedy_p())
            refuse_moot_beside_top_p(moot_beside_top_p(ctx), greedy_p())
            lines = read_prompts(prompts)
        start_inference(threads, None)  # (start_command("generate") ran above)
        given = given_options(ctx)
        if from_png is not None:
            _imports_held("t2i_cli.pipeline")  # the first import of torch here
            from dataclasses import fields

            from t2i_cli.sampling import SamplingConfig

            # what the PNG records (every sampling setting among them), and what would draw other images
            fixed = sorted(given & ({f.name for f in fields(SamplingConfig)}
                                    | {"n", "seed", "negative", "keep_top", "redraws", "candidates", "keep", "grid",
                                       "precision", "prompts"}))
            if prompt is not None or fixed:
                named = ["PROMPT"] * (prompt is not None) + [flag(k) for k in fixed]
                raise UsageError(f"--from takes every setting from the PNG; leave out {', '.join(named)}")
            paths: list[Written] = []
            named = [0]
            try:  # (as a draw's: the file counted once it has its name, and named on stdout after a stop too)
                _redraw(from_png, image, mask, out_dir, weights_folder(weights), device, quiet, paths)
                _name_paths(paths, named, as_json=as_json)
            except BaseException:
                if paths:
                    STATE["interrupted"] = kept_files(len(paths))
                _name_paths(paths, named, as_json=as_json)
                raise
        else:
            candidates, given, sampling = counted_options or _draw_counts(
                ctx, prompt, prompts, n, seed, top_k, keep, candidates, image, mask, redraws, greedy_p=greedy_p)
            _imports_held("t2i_cli.pipeline")  # the first import of torch (the checks above are quick without it)
            spec = _image_spec(image, mask, keep_top, redraws, given)
            folder = weights_folder(weights)
            # a --top-p at or below 1/codebook is greedy as --top-k 1 is, and taken as _draw_counts takes --top-k 1
            # (before the load): its default --redraws 4 and --keep's default candidates were refused as "--redraws 4"
            # and "--candidates 4", options not given
            by_p = greedy_p()
            if lines is None:  # (the --prompts path refused them before its pipe)
                _refuse_greedy_top_p(ctx, by_p)
            if by_p and "keep" in given and "n" not in given and "candidates" not in given_options(ctx):
                candidates, given = None, given - {"keep"}  # --keep 1 alone: the one image it draws
            if (top_k == 1 or by_p) and spec is not None and "redraws" in spec:  # greedy: the K redraws are one
                # image (more asked for were refused by _draw_counts and _refuse_greedy_top_p)
                spec["redraws"] = 1
            # No --candidates, no --n, no image prompt: the best of DEFAULT_CANDIDATES when there is a CLIP.
            # (--top-k 1 draws one: its candidates would all be the same image; so does a greedy --top-p, which
            # warned of weights without a CLIP that they draw "one image, not the best of 4", as if for want of one;
            # decided here, before the load, not again from the loaded model)
            auto = candidates is None and "n" not in given and spec is None and DEFAULT_CANDIDATES > 1 and top_k != 1 \
                and not by_p
            if candidates == 1:
                candidates = None  # one draw, nothing to rerank: no CLIP needed
            _generate(prompt if lines is None else lines, candidates or n, keep if candidates else None,
                      seed, sampling, out_dir, folder, device, grid, quiet,
                      negative=negative, spec=spec, precision=precision, auto_candidates=auto, as_json=as_json,
                      regional_asked="regional" in given, by_p=by_p,
                      moot=moot_beside_top_p(ctx) if lines is None else ())  # (--prompts: refused before its pipe)


def _greedy_by_p(top_k: int, top_p: float, folder: Path) -> dict:
    """refuse_greedy_copies' top_p and vocab where a --top-p (below 1, beside a --top-k other than 1) keeps the most
    likely code alone, at or below 1/codebook (SamplingConfig.greedy, the one test), else {}: each of generate, vary
    and eval asks it once, before the load (a --top-p outside (0, 1) is none: the command's own SamplingConfig
    refuses one out of range). The
    codebook's size is read from the transformer file's header alone and without torch (_header_vocab: generate asks
    before a --prompts pipe is read, and before start_inference bounds libgomp's spinning), and only where the
    --top-p is below 1 (a --top-p of 1 keeps every code: eval read the header at its default too); a header that
    cannot be read so is said where the weights load."""
    if top_k == 1 or not 0 < top_p < 1:
        return {}
    vocab = _header_vocab(folder)
    return {"top_p": top_p, "vocab": vocab} if SamplingConfig(top_p=top_p).greedy(vocab) else {}


def _refuse_greedy_top_p(ctx: typer.Context, by_p: dict) -> None:
    """Refuse generate's counts above 1 of one image where its --top-p is greedy (by_p: _greedy_by_p's answer), as
    _draw_counts refuses them at --top-k 1: --n, --candidates, --keep alone and --redraws (its default 4 and --keep's
    default candidates were refused as "--redraws 4" and "--candidates 4", options not given)."""
    if not by_p:
        return
    p, given = ctx.params, given_options(ctx)
    if "n" in given:
        refuse_greedy_copies("--n", p["n"], **by_p)
    if "candidates" in given and p.get("candidates") is not None:
        refuse_greedy_copies("--candidates", p["candidates"], **by_p)
    elif "keep" in given and "n" not in given:
        refuse_greedy_copies("--keep", p["keep"], **by_p)
    if "redraws" in given and p.get("mask") is not None:
        refuse_greedy_copies("--redraws", p["redraws"], **by_p)


NOTHING_WRITTEN = "nothing was written"  # what a stop of generate or vary says before its first file is


def kept_files(count: int) -> str:
    """What a stop of generate or vary says once a file is written: how many it kept, all named on stdout."""
    return f"{counted(count, 'finished file')} kept, named on stdout; nothing partial was written"


def written_to(paths: list[Written], write: Callable[[], Written]) -> None:
    """Write a file (write) and add it to paths, what a stop counts and names, as one step: a stop (Ctrl-C,
    SIGTERM) waits for both, so that a file in place is never left uncounted (`generate --from`'s stop said
    "nothing was written" between its file's rename and its count)."""
    from t2i_cli.files import signals_held

    with signals_held():
        paths.append(write())


JACOBI_WITH_IMAGE = ("--jacobi does not combine with --image (an image prompt decodes in raster order around the kept "
                     "codes); leave one of them out")


def _draw_counts(ctx: typer.Context, prompt: Optional[str], prompts: Optional[str], n: int, seed: int, top_k: int,
                 keep: int, candidates: Optional[int], image: Optional[Path], mask: Optional[Path], redraws: int,
                 greedy_p: Callable[[], dict] = dict) -> tuple[Optional[int], set[str], SamplingConfig]:
    """generate's checks that need neither the prompts nor torch (run before a --prompts pipe is read): the prompt
    given once, --n, --seed, --candidates and --keep, --top-k 1's rules and --image's flags. Returns the candidates
    to draw (the default ones for --keep alone), the options given (less a --keep 1 that --top-k 1 makes moot) and
    the SamplingConfig of the options (its ranges and the negative prompt's rules checked: built once a command).
    greedy_p: generate's _greedy_by_p answer (asked, once, where a --keep alone above the default candidates is
    refused, as a greedy --top-p refuses it as --top-k 1 does, by its copies, and where --prompts' --keep 1 alone
    needs no CLIP)."""
    given = given_options(ctx)
    if prompts is not None and prompt is not None:
        raise UsageError("give PROMPT or --prompts FILE, not both")
    elif prompts is None and (prompt is None or blank(prompt)):
        raise UsageError("the prompt is empty; give a description such as \"a red bird\" (or --prompts "
                         "FILE, one per line)")
    if not 1 <= n <= MAX_N:
        raise UsageError(f"--n must be between 1 and {MAX_N}, got {said_value(n, plain=True)}")
    if top_k == 1:  # greedy: the images of one prompt (or image prompt) are all one image
        refuse_greedy_copies("--n", n)
    check_seed(seed)
    if top_k == 1 and "keep" in given and candidates is None and "n" not in given:
        # greedy: the default candidates would all be the same image (refuse_greedy_copies)
        if keep > 1:  # (above the default candidates too: "give --keep 1..4" named what this refuses)
            refuse_greedy_copies("--keep", keep)
        if keep == 1:
            given = given - {"keep"}  # --keep 1 alone: the one image --top-k 1 draws
    if "keep" in given and candidates is None:
        if "n" in given:
            raise UsageError("--keep keeps the best of --candidates N, and --n keeps every image drawn; use "
                             "--candidates N --keep K")
        if keep > DEFAULT_CANDIDATES and (by_p := greedy_p()):  # a greedy --top-p: as --top-k 1 above (it
            # said "give --keep 1..4", and --keep 2 was then refused as copies)
            refuse_greedy_copies("--keep", keep, **by_p)
        if not 1 <= keep <= DEFAULT_CANDIDATES:
            raise UsageError(f"--keep {keep} alone keeps the best of the {DEFAULT_CANDIDATES} candidates "
                             f"drawn by default; give --keep 1..{DEFAULT_CANDIDATES}, or --candidates N with "
                             f"N >= --keep")
        candidates = DEFAULT_CANDIDATES  # the best --keep of the default candidates (it was refused)
    if candidates is not None and not 1 <= keep <= candidates <= MAX_N:
        raise UsageError(f"--candidates must be in 1..{MAX_N} and --keep in 1..candidates, "
                         f"got {candidates}, {keep}")
    if top_k == 1 and candidates is not None:
        refuse_greedy_copies("--candidates", candidates)
    if "n" in given and candidates is not None:
        raise UsageError("--n and --candidates both say how many to draw; use --candidates N --keep K")
    refuse_moot_greedy(ctx)
    _image_flags(image, mask, given)
    if top_k == 1 and image is not None and mask is not None and "redraws" in given:  # the K redraws are one image
        refuse_greedy_copies("--redraws", redraws)
    # (refused whatever the prompts, and without torch: a --prompts pipe was read to its end first, and a writer
    # that never closes it, `tail -f`, kept the refusal waiting: the sampling settings' ranges (SamplingConfig, in
    # the torch-free sampling_config) and the negative prompt's rules among them)
    params = ctx.params
    sampling = sampling_of(ctx)
    check_negative(params.get("negative"), sampling, asked=True)
    if image is not None and params.get("jacobi"):
        raise UsageError(JACOBI_WITH_IMAGE)
    keep_top = params.get("keep_top")
    if image is not None and "keep_top" in given and isinstance(keep_top, float) and not 0 < keep_top < 1:
        raise UsageError(f"--keep-top must be in (0, 1), above 0 and below 1 (the share of rows kept), got "
                         f"{keep_top}")  # (image_prompt.check_keep_top's words: it imports torch)
    from t2i_cli.sampling_config import DEVICES, MAX_REDRAWS, PRECISIONS, int8_off_cpu, no_cuda

    if image is not None and not 1 <= redraws <= MAX_REDRAWS:
        raise UsageError(f"--redraws must be in 1..{MAX_REDRAWS}, got {said_value(redraws, plain=True)}")
    if params.get("precision") not in (None, "auto", *PRECISIONS):  # (pipeline.from_folder's words)
        raise UsageError(f"--precision must be one of auto, {', '.join(PRECISIONS)}, got {params['precision']!r}")
    if params.get("device") not in (None, *DEVICES):  # (devices.resolve_device's words)
        raise UsageError(f"--device must be auto, cpu or cuda, got {params['device']!r}")
    if prompts == "-" and params.get("device") == "cuda" and cuda_surely_absent():  # (said once the pipe had
        # closed; without a pipe torch says it as soon, so the driver is asked only before a pipe is read)
        raise no_cuda()
    if params.get("device") == "cuda" and params.get("precision") == "int8":  # (so was this, on a GPU machine)
        raise int8_off_cpu()
    for path in (image, mask):  # (image_prompt.file_sha256's words, said again once the file is read)
        if path is not None and not path.exists():
            raise DataError(f"cannot read {path}: No such file or directory; check the path")
        if path is not None and path.is_dir():
            raise DataError(f"{path} is a folder; give an image file")
    if params.get("weights") is not None and not (folder := weights_folder(params["weights"])).exists():
        _imports_held("t2i_cli.weights")
        from t2i_cli.weights import missing_weights_folder

        raise WeightsError(missing_weights_folder(folder))
    if prompts is not None:  # (before the pipe is read: each was said once a piped file had closed)
        folder = weights_folder(params.get("weights"))
        # (--keep 1 alone beside a --top-p at or below 1/codebook: the one image it draws, no CLIP needed, as at
        # --top-k 1: any --top-p below 1 skipped the CLIP's check here, so weights without one were refused only once
        # a piped file had closed)
        keep_one_greedy = "keep" in given and "candidates" not in given and keep == 1 and bool(greedy_p())
        _check_weights_files(folder, candidates not in (None, 1) and not keep_one_greedy)
        if params.get("out_dir") is not None:  # an --out that is a file, inside one or a link to nothing
            from t2i_cli.files import check_folder_path

            check_folder_path(params["out_dir"], "--out")
    return candidates, given, sampling


def _check_weights_files(folder: Path, need_clip: bool) -> None:
    """Refuse, in the loader's words, no shipped weights, or a weights folder without a file it needs (need_clip:
    a CLIP, to rerank --candidates N): torch is imported only where a file is missing (the command ends there)."""
    _check_shipped(folder)
    needed = ("tokenizer.json", "dvae.safetensors", "transformer.safetensors") + ("clip.safetensors",) * need_clip
    if not all((folder / name).is_file() for name in needed):
        _imports_held("t2i_cli.weights")
        from t2i_cli.weights import check_files

        check_files(folder, need_clip)


ROCM_DEVICE = "/dev/kfd"  # the device of AMD's ROCm compute driver (Linux), which a ROCm torch's "cuda" runs on


def cuda_surely_absent() -> bool:
    """Whether this machine has no CUDA GPU for torch, found without importing torch (generate --prompts, before it
    reads a pipe; importing torch then would also load libgomp before bound_spinning sets its spinning, and skip
    the inference lock): no CUDA driver library (Linux's libcuda.so.1; macOS has none), or a driver that finds no
    GPU (CUDA_VISIBLE_DEVICES="" too). False where it cannot tell: devices.resolve_device decides once the models
    load (a CPU-only torch on a machine with a GPU is refused there), and where the machine has an AMD GPU's ROCm
    driver (ROCM_DEVICE): a ROCm build of torch calls its GPUs cuda, with no libcuda (they were refused)."""
    import ctypes

    if sys.platform == "darwin":
        return True
    if not sys.platform.startswith("linux") or os.path.exists(ROCM_DEVICE):
        return False
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1
    except (OSError, AttributeError):  # (no driver library; one without the driver API's functions)
        return True


def _image_spec(image: Optional[Path], mask: Optional[Path], keep_top: float, redraws: int,
                given: set[str]) -> Optional[dict]:
    """The image prompt generate was asked for (image_prompt.build's arguments), or None (its flags and --redraws
    checked by _draw_counts first)."""
    if image is None:
        return None
    from t2i_cli.image_prompt import check_keep_top

    if mask is None:
        check_keep_top(keep_top)
        return {"image": image, "keep_top": keep_top}
    return {"image": image, "mask": mask, "redraws": redraws, "redraws_given": "redraws" in given}


def _image_flags(image: Optional[Path], mask: Optional[Path], given: set[str]) -> None:
    """Refuse --image's flags where they do not go together (without torch: before a --prompts pipe is read)."""
    if image is None and given & {"mask", "keep_top", "redraws"}:
        raise UsageError(f"{flag(sorted(given & {'mask', 'keep_top', 'redraws'})[0])} needs --image SRC "
                         "(the picture to start from)")
    if image is not None and mask is not None and "keep_top" in given:
        raise UsageError("--keep-top and --mask both say what to keep of --image; use one")
    if image is not None and mask is None and "redraws" in given:
        raise UsageError("--redraws belongs to --mask (it picks the redrawn region that fits the kept codes)")


def _load_pipeline(weights: Path, device: str, need_clip: bool = False, precision: str = "fp32",
                   clip_precision: str = "fp32"):
    """Load TextToImage, saying plainly when no trained weights are shipped (before torch is imported)."""
    _check_shipped(weights)
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(weights, device, need_clip=need_clip, precision=precision,
                                   clip_precision=clip_precision)


def _check_shipped(weights: Path) -> None:
    """Refuse the shipped weights folder where no trained weights are shipped (without torch)."""
    if weights == REPO_WEIGHTS and not shipped_weights():
        if (REPO_WEIGHTS.parent / "pyproject.toml").is_file():  # a checkout of the repository
            raise T2IError(f"no trained weights in {weights}: restore the shipped ones (git checkout -- weights), "
                           f"or train your own (`make weights`, into runs/default/weights) and pass --weights DIR "
                           f"or set T2I_WEIGHTS=DIR")
        raise T2IError("this install of t2i carries no weights (they ship in the repository's weights/ folder); "
                       "pass --weights DIR or set T2I_WEIGHTS=DIR")


def _warn_encoding(pipe, enc, what: str, quiet: bool, text_len: Optional[int] = None) -> None:
    """Warn about words a prompt loses: cut off at the text length (the transformer's unless given), or never
    seen in training."""
    if not quiet and enc.n_dropped:
        warn(f"{what} is longer than {text_len or pipe.text_len} tokens; the last {enc.n_dropped} were dropped")
    if not quiet and enc.unknown_words:
        # each word, and how many, bounded: a word without spaces (a paragraph of Chinese, a pasted hash) was printed
        # whole, a line of 100,000 characters for a prompt of one long word
        words = [brief(w) for w in enc.unknown_words[:WORDS_SHOWN]]
        more = len(enc.unknown_words) - len(words)
        words += [f"and {more:,} more"] if more else []
        warn(f"these words of {what} are not in the tokenizer's vocabulary (each is several tokens or unknown: the "
             f"model saw them rarely or never in training) and may be ignored: {', '.join(words)}")


WORDS_SHOWN, LINE_SHOWN = 20, 60  # words of a prompt a warning names, characters of a --prompts line it shows


def check_out_folder(out_dir: Path, stem: Optional[str] = None) -> None:
    """Refuse an --out that names a picture file (`--out new/bird.png`): it became a folder of that name holding
    the images, each named from its prompt (vary's from its source, stem). An existing folder of such a name is
    taken. (torch-free: generate --prompts - refuses it before reading its pipe)"""
    from t2i_cli.files import IMAGE_SUFFIXES, refuse_dash

    refuse_dash(out_dir, "--out")
    if out_dir.suffix.lower() in IMAGE_SUFFIXES and not out_dir.is_dir():
        parent = out_dir.parent if str(out_dir.parent) not in ("", ".") else Path("outputs")
        named = (f"its source's name, e.g. {stem}-000.png" if stem  # (vary's, its only caller with a stem: it named
                 else "its prompt, e.g. a-red-bird-000.png")  # a prompt's name, which vary never writes)
        raise UsageError(f"--out {out_dir} names a file, but --out is the folder the images go in (each named from "
                         f"{named}); give a folder, e.g. --out {parent}")


def _drawn_by_other_weights(path: Path, pipe) -> str | None:
    """The weights identity a t2i PNG records, where its tokenizer, dVAE and transformer (or, before 0.9.2, its
    whole folder) are not the pipeline's; None for a picture t2i did not draw or one these weights drew."""
    from t2i_cli.images import read_png_text

    try:
        text = read_png_text(path)
    except (OSError, ValueError):
        return None
    if "t2i" not in text or not text.get("weights"):
        return None
    return None if _drew_it(pipe, text["weights"], text.get("generator", "")) else text["weights"][:64]


def _drew_it(pipe, weights: str, generator: str) -> bool:
    """Whether a PNG that records weights (and generator) was drawn by the pipeline's tokenizer, dVAE and
    transformer: the rerankers only chose among candidates; a PNG from before 0.9.2 records the whole folder's
    identity alone."""
    return generator == pipe.bundle.generator if generator else weights == pipe.bundle.identity


def _generate(prompt: str | Prompts, n: int, keep: Optional[int], seed: int, sampling, out_dir: Path,
              weights: Path, device: str, grid: bool, quiet: bool, negative: Optional[str] = None,
              spec: Optional[dict] = None, stem: Optional[str] = None, precision: str = "fp32",
              auto_candidates: bool = False, before_drawing: Optional[Callable[[], None]] = None,
              as_json: bool = False, regional_asked: bool = False, guidance_asked: tuple[str, ...] = (),
              by_p: Optional[dict] = None, moot: tuple[str, ...] = ()) -> None:
    """Sample (and optionally rerank) images of a prompt, or of each prompt of a prompt file in turn (each as
    it alone would draw, one load of the models), writing each batch as soon as it is decoded and naming each
    prompt's files on stdout once they are written; auto_candidates
    draws the best of DEFAULT_CANDIDATES instead of one image when the weights have a CLIP. before_drawing is
    called once every check has passed (vary's prompt line: a refusal is then its one line); as_json prints each
    file as a line of JSON (Written.fields) instead of its path; regional_asked: --regional was given (a weight
    that no prompt draws with is refused, not ignored); guidance_asked: the guidance options given (`--guidance 7`),
    refused where the prompt reads as the empty one and no --negative is given (guidance then pushes nowhere);
    by_p: _greedy_by_p's answer, the command's one decision whether its --top-p is greedy (n, auto_candidates and an
    image prompt's redraws already follow it); moot: moot_beside_top_p's settings, refused beside a greedy --top-p."""
    from t2i_cli.files import remove_empty

    check_out_folder(out_dir, stem)
    # (a --top-p at or below 1/codebook, greedy as --top-k 1 is, was refused its copies before the weights load:
    # generate's by _refuse_greedy_top_p, vary's by its own rules, as a random share of cells is redrawn in each;
    # the settings it makes moot are refused here, before the load too)
    refuse_moot_beside_top_p(moot, by_p)
    pipe = _load_pipeline(weights, device, need_clip=keep is not None, precision=precision)
    if auto_candidates and pipe.bundle.clip is not None:  # (not at --top-k 1 or a greedy --top-p: one image)
        n, keep = DEFAULT_CANDIDATES, 1
    # The prompts are encoded, and the settings checked, once, before anything is drawn.
    lines = None if isinstance(prompt, str) else prompt
    requests = [pipe.request(p.prompt, sampling, negative) for p in lines.prompts] if lines \
        else [pipe.request(prompt, sampling, negative)]
    if sampling.guidance_stop is not None and not sampling.guided and not any(r.regions for r in requests):
        # (SamplingConfig refuses it with --regional 0; regional guidance draws only a two-object prompt)
        from t2i_cli.pipeline import guidance_stop_unused

        raise guidance_stop_unused(sampling.guidance_stop, "no prompt of the file draws" if lines else
                                   "this prompt draws no")
    if sampling.guidance_stop is not None and not sampling.guided:  # a file with some prompts of two objects:
        # it stops the regional guidance those draw with; a line without regions draws unguided, so its request
        # (and PNG) has no guidance_stop (recorded there, `--from` of its PNG refused it as an edited setting)
        from dataclasses import replace

        requests = [r if r.regions else replace(r, sampling=replace(r.sampling, guidance_stop=None))
                    for r in requests]
    if regional_asked and sampling.regional > 0 and not any(r.regions for r in requests):
        from t2i_cli.pipeline import regional_unused

        raise regional_unused(sampling.regional, "no prompt of the file has such a pair" if lines else
                              "this prompt has no such pair")
    if guidance_asked and sampling.guided and lines is None and requests[0].negative_encoded is None \
            and requests[0].encoded.ids == pipe.bundle.tokenizer.empty(pipe.text_len):
        # u + g (c - u) is u where the prompt is the empty prompt guidance pushes away from: `vary photo.jpg
        # --guidance 7` (a picture without a prompt) drew the bytes of --guidance 3, unsaid
        raise UsageError(f"{' and '.join(guidance_asked)} change{'s' * (len(guidance_asked) == 1)} nothing with the "
                         f"empty prompt: guidance pushes away from the empty prompt toward the prompt, here the same "
                         f"text; give --prompt TEXT (what the picture shows) or a --negative, or leave "
                         f"{'it' if len(guidance_asked) == 1 else 'them'} out")
    image = None
    if spec is not None:
        from t2i_cli.image_prompt import build

        image = build(pipe.bundle.dvae, **spec)  # an unreadable SRC or MASK fails before any folder is made
        # (the pipeline's rule for an image prompt's greedy copies, sampling.refuse_greedy_copies, is not asked here:
        # generate and vary refused them, or drew one, before the load, as --top-k 1's)
        _check_guidance_reaches(image, sampling, pipe, n, seed)
    made = _pictures_folder(out_dir, "--out")
    if before_drawing is not None:
        before_drawing()
    # Warnings once every check has passed: a refusal is its one line, and vary's prompt line comes before what
    # it says of that prompt.
    if auto_candidates and pipe.bundle.clip is None and not quiet:  # (not at a greedy --top-p, which draws one image
        # with a CLIP too: "not the best of 4" was false, and --top-k 1 is not told it)
        warn(f"{weights} has no clip.safetensors, so this draws one image, not the best of {DEFAULT_CANDIDATES} "
             f"(--candidates 1 asks for one and silences this)")
    if spec is not None and not quiet:
        drawn_by = _drawn_by_other_weights(spec["image"], pipe)
        if drawn_by:  # (vary's README example takes no --weights: a picture of one's own model met the shipped one)
            warn(f"{spec['image']} was drawn by weights {drawn_by}, these are {pipe.bundle.identity} "
                 f"({clean(pipe.bundle.folder)}): another dVAE reads its codes and another transformer draws them; "
                 f"pass the --weights it was made with")
    for i, request in enumerate(requests):
        what = ("the prompt" if lines is None
                else f"line {lines.prompts[i].line} (\"{brief(request.prompt, LINE_SHOWN)}\")")
        _warn_encoding(pipe, request.encoded, what, quiet)
    if lines is not None and lines.repeats and not quiet:
        warn(lines.repeats_message())
    if requests[0].negative_encoded is not None:
        _warn_encoding(pipe, requests[0].negative_encoded, "the negative prompt", quiet)
        same = [i for i, r in enumerate(requests) if r.negative_encoded.ids == r.encoded.ids]
        if same and not quiet:  # u = c: u + g (c - u) is c, whatever --guidance
            what = "the prompt" if lines is None else \
                f"{counted(len(same), 'line')} ({', '.join(str(lines.prompts[i].line) for i in same[:5])})"
            warn(f"the negative prompt reads as {what} does, so --guidance pushes nowhere (what it steers away from "
                 f"is the prompt itself); give a negative prompt of what to avoid")
    paths: list[Written] = []
    named = [0]  # of paths, those printed
    try:
        per_prompt = n * pipe.bundle.transformer.cfg.n_image
        with progress_bar(quiet) as bar:
            task = bar.add_task("decoding", total=len(requests) * per_prompt, rate="")
            for i, request in enumerate(requests):
                if lines is not None:
                    bar.update(task, description=f"prompt {i + 1}/{len(requests)}")

                def tick(done: int, before: int = i * per_prompt) -> None:
                    bar.update(task, completed=before + done, rate=rate_text(bar.tasks[task], "tokens"))

                line = {} if lines is None else {"line": lines.prompts[i].line}
                if lines is not None and (again := [a for a, b in lines.repeats if b == lines.prompts[i].line]):
                    line["repeats"] = again  # the later lines drawn once, here (the same seed draws the same)
                _draw_and_write(pipe, request, n, keep, seed, out_dir, grid, tick, paths, image, stem, line)
                _name_paths(paths, named, bar, as_json)  # each prompt's files as soon as they are all written
    except BaseException:
        if paths:  # what a stop says (NOTHING_WRITTEN until a file is)
            STATE["interrupted"] = kept_files(len(paths))
        remove_empty(made)  # a run that wrote nothing leaves no empty folder behind
        # the files kept (Ctrl-C, a full disk), named as a finished run names them
        _name_paths(paths, named, as_json=as_json)
        raise


def _pictures_folder(folder: Path, option: str) -> list[Path]:
    """The folder generate, vary and eval --images write their pictures into, made (with its parents), and the
    temporaries a killed run of theirs left in it removed once a minute old (one newer may be another t2i's write
    in progress); the folders it made, for remove_empty where nothing is written."""
    from t2i_cli.files import NEW_FILE_NAME, STALE_AFTER, make_folder, missing_folders, remove_temporaries

    made = missing_folders(folder)
    make_folder(folder, option)
    remove_temporaries(folder, NEW_FILE_NAME.fullmatch, STALE_AFTER)
    return made


def _check_guidance_reaches(image, sampling, pipe=None, n: int = 1, seed: int = 0) -> None:
    """Refuse a --guidance-stop at or before the first code an image prompt draws (`--image SRC --keep-top 0.5
    --guidance-stop 0.5`): every drawn code came after the stop, so --guidance, a --negative and regional guidance
    drew the same bytes whatever their values, unsaid. vary draws its own cells per image (pipe: the cells the n
    images of this seed redraw, pipeline.kept_by_all): `vary SRC --strength 0.004 --guidance-stop 0.1` redrew one
    cell of 256, after the stop, and --guidance 7 drew the pixels of --guidance 3."""
    if sampling.guidance_stop is None:
        return
    keep = image.keep if image.keep is not None else pipe.kept_by_all(image, n, seed) if pipe is not None else None
    if keep is None or bool(keep.all()):
        return
    count = keep.numel()
    first = int((~keep).nonzero()[0])  # the first code it draws (the codes before it are the source's)
    stop = sampling.guidance_stops_at(count)  # (where sampling.draw_codes stops)
    if first >= stop:
        if image.keep is not None:
            what, more = f"this image prompt draws no code before code {first} (it keeps the source's)", ""
        else:
            what = (f"these variations redraw no code before code {first} (each redraws {image.n_redrawn} of the "
                    f"source's, chosen by the seed)")
            more = " or a higher --strength,"
        raise UsageError(f"--guidance-stop {sampling.guidance_stop:g} stops guidance at code {stop} of {count}, and "
                         f"{what}: --guidance, a --negative and regional guidance would change nothing; give "
                         f"--guidance-stop above {first / count:g},{more} or leave it out")


class Written(typing.NamedTuple):
    """A file generate or vary wrote, and what `--json` says of it beside its path."""

    path: Path
    fields: dict  # kind ("image" or "sheet"), prompt, line (of --prompts), seed, index, score and rank


def _name_paths(paths: list[Written], named: list[int], bar: Optional[Progress] = None, as_json: bool = False) -> None:
    """Print the paths not yet named on stdout, one a line (as_json: each a JSON object, its path first);
    named[0] counts those printed, each once its print returns (Ctrl-C during a print leaves that path and the
    rest to the next call: none is named twice). Where a live progress bar shares stdout's terminal, the lines go
    above the bar, not onto its line."""
    console = bar.console if bar is not None and bar.live.is_started and _same_terminal() else out
    while named[0] < len(paths):
        path, fields = paths[named[0]]
        # JSON escapes what clean() would show ambiguously (a backslash; a name's undecodable bytes as \udcXX)
        text = json.dumps({"path": typed_paths(str(path)), **fields}) if as_json else clean(str(path))
        console.print(text, soft_wrap=True)
        named[0] += 1


def _same_terminal() -> bool:
    """Whether stdout and stderr are one terminal (a progress bar on stderr is then drawn where stdout writes)."""
    try:
        a, b = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return out.is_terminal and (a.st_dev, a.st_ino, a.st_rdev) == (b.st_dev, b.st_ino, b.st_rdev)


def _draw_and_write(pipe, request, n: int, keep: Optional[int], seed: int, out_dir: Path, grid: bool,
                    tick: Callable[[int], None], paths: list[Written], image=None, stem: Optional[str] = None,
                    line: Optional[dict] = None) -> None:
    """Decode in batches, telling tick the tokens drawn, and write each image as soon as it is final; paths gets
    each file as it is written (line: its --prompts line, for --json)."""
    from t2i_cli.outputs import made_from, provenance, write_image, write_sheet

    sampling, extra = request.sampling, made_from(request, image, pipe.precision)

    def meta(g) -> dict[str, str]:
        return provenance(g, seed, n, sampling, pipe.bundle.identity, extra, pipe.device.type, pipe.bundle.generator)

    def written(g) -> Written:
        return Written(write_image(g, out_dir, meta(g), stem), image_fields(g, seed, line))

    results = []
    for batch in pipe.batches(request, n, seed, tick, image):
        if keep is None:  # write at once, so Ctrl-C keeps every finished image (each named once it is written)
            for g in batch:
                written_to(paths, lambda g=g: written(g))
        results += batch
    drawn = results
    if keep is not None:
        results = pipe.rerank(results, keep)
        for g in results:
            written_to(paths, lambda g=g: written(g))
    if grid:  # every image drawn: with --candidates every candidate, best first (the first --keep were written)
        shown = sorted(drawn, key=lambda g: g.rank) if keep is not None else drawn
        written_to(paths, lambda: Written(write_sheet(shown, out_dir, meta(results[0]), stem),
                                          {"kind": "sheet", "prompt": request.prompt, **(line or {}), "seed": seed,
                                           "images": len(shown)}))


def image_fields(g, seed: int, line: Optional[dict] = None) -> dict:
    """What `--json` says of one image written beside its path: kind, prompt, its --prompts line, seed, index
    (which `--from` redraws), and CLIP's score and rank where candidates were reranked."""
    fields = {"kind": "image", "prompt": g.prompt, **(line or {}), "seed": seed, "index": g.index}
    if g.rank is not None:
        fields.update(score=round(float(g.score), 6), rank=g.rank)
    return fields


def _redraw(from_png: Path, image: Optional[Path], mask: Optional[Path], out_dir: Path, weights: Path,
            device: str, quiet: bool, paths: list[Written]) -> None:
    """generate --from: draw again the one image a t2i PNG records, with its seed, index and settings; paths gets
    the file once it has its name (written_to)."""
    import re

    check_out_folder(out_dir)
    from t2i_cli.files import (
        remove_empty,
        safe_stem,
        shell_word,
    )
    from t2i_cli.image_prompt import build, file_sha256
    from t2i_cli.outputs import edited_setting, made_from, provenance, recorded_settings, write_image

    rec = recorded_settings(from_png)
    if rec.image_mode is None and (image is not None or mask is not None):
        raise UsageError(f"{from_png} was drawn from its prompt alone; leave out --image and --mask")
    spec = None
    if rec.image_mode is not None:
        needs = "--image SRC" + (" --mask MASK" if rec.image_mode == "inpaint" else "")
        if image is None or (rec.image_mode == "inpaint") != (mask is not None):
            raise UsageError(f"{from_png} was drawn from an image prompt ({rec.image_mode}); "
                             f"redraw it with --from {shell_word(from_png)} {needs}")
        if file_sha256(image) != rec.image_sha256:
            raise UsageError(f"{image} is not the source {from_png} was drawn from (its sha256 differs)")
        if mask is not None and file_sha256(mask) != rec.mask_sha256:
            raise UsageError(f"{mask} is not the mask {from_png} was drawn with (its sha256 differs)")
        spec = {"image": image, "keep_top": rec.keep_top, "mask": mask, "strength": rec.strength,
                "redraws": rec.redraws}
    pipe = _load_pipeline(weights, device, precision=rec.precision)
    # The rerankers only chose which candidate to keep, and --from redraws that candidate by its index: only the
    # files that draw must match (a PNG from before 0.9.2 records the whole folder's identity alone).
    same = _drew_it(pipe, rec.weights, rec.generator)
    try:  # a top_k the model's codebook cannot give is the PNG's setting, not a --top-k given here
        rec.sampling.check_vocab(pipe.bundle.transformer.cfg.image_vocab)
    except T2IError as e:
        if rec.weights and not same:  # not edited: drawn by a model of more codes than these weights have
            raise DataError(f"{from_png} was drawn by weights {rec.weights} with a top_k of {rec.sampling.top_k}, "
                            f"more than the {pipe.bundle.transformer.cfg.image_vocab} codes of these "
                            f"({pipe.bundle.identity}); pass the --weights it was made with") from None
        raise edited_setting(from_png, e) from None
    try:  # a combination of its settings that a command line could not give is the PNG's, too (exit 1)
        request = pipe.request(rec.prompt, rec.sampling, rec.negative)
        prompt_image = build(pipe.bundle.dvae, **spec) if spec is not None else None
        if prompt_image is not None and rec.sampling.jacobi:  # (the decode would refuse it as the flag)
            raise UsageError("--jacobi does not combine with an image prompt; leave one of them out")
    except UsageError as e:
        raise edited_setting(from_png, e, "the t2i settings it records do not go together") from None
    made = _pictures_folder(out_dir, "--out")
    # Warnings once every check has passed (a refusal is its one line).
    if not quiet and rec.weights and not same:
        warn(f"{from_png} was drawn by weights {rec.weights}, these are {pipe.bundle.identity}: "
             "the image will differ (pass the --weights it was made with)")
    if not quiet and rec.version and rec.version != __version__:
        warn(f"{from_png} was drawn by t2i {rec.version}, this is {__version__}: the pixels may differ")
    if not quiet and rec.device and rec.device != pipe.device.type:
        warn(f"{from_png} was drawn on {rec.device}, this runs on {pipe.device.type}: the pixels will differ "
             f"(pass --device {rec.device} where there is one)")
    try:
        with progress_bar(quiet) as bar:
            task = bar.add_task("decoding", total=pipe.bundle.transformer.cfg.n_image, rate="")
            g = pipe.redraw(request, rec.n, rec.seed, rec.index, prompt_image,
                            lambda done: bar.update(task, completed=done, rate=rate_text(bar.tasks[task], "tokens")))
        meta = provenance(g, rec.seed, rec.n, rec.sampling, pipe.bundle.identity,
                          made_from(request, prompt_image, pipe.precision), pipe.device.type, pipe.bundle.generator)
        if not quiet and same and g.codes is not None and not (rec.device and rec.device != pipe.device.type) \
                and not (rec.version and rec.version != __version__):  # (those are said above)
            _say_other_codes(from_png, g.codes, pipe.bundle.transformer.cfg.image_vocab)
        written_to(paths, lambda: Written(write_image(g, out_dir, meta, safe_stem(re.sub(r"-\d{3,}$", "",
                                                                                       from_png.stem))),
                                          image_fields(g, rec.seed)))
    except BaseException:
        remove_empty(made)
        raise


def _say_other_codes(from_png: Path, codes, n_codes: int) -> None:
    """--from's word where its redraw drew other codes than the PNG records (the same weights and settings): the
    CPU summed a product in another order, as another thread count (or CPU kind) does, and a near tie drew
    otherwise (README: the same bytes for the same --threads)."""
    import torch

    from t2i_cli.image_prompt import recorded_codes
    from t2i_cli.images import read_png_text

    try:
        was = recorded_codes(read_png_text(from_png), codes.numel(), n_codes)
    except (OSError, ValueError):
        return
    if was is None or torch.equal(was, codes.cpu().long()):
        return
    differ = (was != codes.cpu().long()).nonzero().flatten()
    warn(f"this redraw drew {counted(len(differ), 'code')} of {codes.numel()} other than {from_png} records (the first "
         f"at position {int(differ[0])}): a product summed in another order at another thread count (this ran on "
         f"{torch.get_num_threads()}) or on another kind of CPU flips a near tie; pass the --threads it was drawn with "
         f"(where it was drawn on this machine) for its bytes")


def _caption_hint(source: Path) -> str:
    """How to give vary a prompt for a picture without one: its caption, where a file beside it holds one as
    training and rerank read it (a picture of the user's own captioned folder was told only "set one with
    --prompt"), else --prompt alone."""
    from t2i_cli.data import caption_beside

    if (beside := caption_beside(source)) is None:
        return "set one with --prompt"
    txt, caption = beside
    # (not clean()ed here: say() cleans the line, and a caption cleaned before its repr was said with its escapes
    # doubled, 'a red\\tbird' for a tab)
    return f"{txt.name} beside it captions it {brief(caption)!r}: draw from that with --prompt {shell_word(caption)}"


@app.command(cls=OneValueEach)
def vary(
    ctx: typer.Context,
    source: Path = typer.Argument(..., metavar="SOURCE", help="The picture to vary (any size or mode)."),
    strength: float = typer.Option(0.5, "--strength",
                                   help="How far to move, in (0, 1]: the share of code cells redrawn."),
    prompt: Optional[str] = typer.Option(None, "--prompt",
                                         help="What the picture shows (default: the prompt in its PNG text, "
                                              "else the empty prompt; --prompt '' draws from the empty prompt)."),
    negative: Optional[str] = DRAW_NEGATIVE,
    n: int = typer.Option(4, "--n", help=f"Variations to draw (1..{MAX_N}; 1 with --top-k 1, or a --top-p up to "
                                         f"1/the codebook's size, at a --strength that "
                                         f"redraws every cell, 1 or one that rounds to all, whose variations are one "
                                         f"image)."),
    seed: int = DRAW_SEED,
    temperature: float = VARY_TEMPERATURE,
    top_k: int = VARY_TOP_K,
    top_p: float = VARY_TOP_P,
    guidance: float = DRAW_GUIDANCE,
    guidance_start: Optional[float] = DRAW_GUIDANCE_START,
    guidance_stop: Optional[float] = DRAW_GUIDANCE_STOP,
    regional: float = DRAW_REGIONAL,
    out_dir: Path = DRAW_OUT_DIR,
    weights: Optional[Path] = DRAW_WEIGHTS,
    device: str = DRAW_DEVICE,
    precision: str = DRAW_PRECISION,
    threads: Optional[int] = DRAW_THREADS,
    grid: bool = typer.Option(False, "--grid", help="Also write one contact sheet of every variation drawn."),
    quiet: bool = DRAW_QUIET,
    as_json: bool = VARY_JSON,
) -> None:
    """Draw variations of SOURCE: a random share --strength of its code cells is redrawn in each."""
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # (as generate's: until _generate writes a file)
        prompt, negative = utf8_text(prompt, "--prompt"), utf8_text(negative, "--negative")
        start_inference(threads, "vary")
        _imports_held("t2i_cli.image_prompt", "t2i_cli.pipeline")
        from t2i_cli.files import safe_stem
        from t2i_cli.image_prompt import check_strength, file_sha256
        from t2i_cli.images import read_png_text

        if not 1 <= n <= MAX_N:
            raise UsageError(f"--n must be between 1 and {MAX_N}, got {said_value(n, plain=True)}")
        check_seed(seed)
        check_strength(strength)
        file_sha256(source)  # a missing or unreadable SOURCE is said first, before the prompt line
        from t2i_cli.outputs import is_t2i_sheet

        text = read_png_text(source)  # (a PNG by its content: a t2i PNG renamed .jpg still has its prompt)
        if is_t2i_sheet(text, source):  # the whole sheet squeezed into one picture, drawn from one image's prompt
            raise DataError(f"{source} is a contact sheet t2i wrote; vary one of the images it shows")
        sampling = sampling_of(ctx)
        check_negative(negative, sampling, asked=True)  # one line, not the prompt line and then the refusal
        said_prompt = None
        if prompt is None:  # the prompt a t2i PNG (or any PNG with a "prompt" text chunk) was made from
            prompt = text.get("prompt", "")[:1000]
            if not quiet:  # said once every check has passed, so that a refusal is one line
                said_prompt = partial(say, "prompt", "cyan", f"{prompt!r} (from {source.name})" if prompt else
                                      f"none found in the picture; drawing from the empty prompt "
                                      f"({_caption_hint(source)})")
        folder = weights_folder(weights)
        # a --top-p at or below 1/codebook is greedy as --top-k 1 is (_greedy_by_p, before the load: `--top-p 1e-9
        # --strength 1 --n 4` was refused once the weights had loaded, without the " and --strength 1" of --top-k 1's
        # refusal). Greedy, every cell redrawn (--strength 1, or a share that rounds to all, 0.999 of the shipped
        # model's 256): each variation is one image, so vary's default --n draws one and an --n above 1 is refused
        by_p = _greedy_by_p(top_k, top_p, folder)
        if (top_k == 1 or by_p) and (strength == 1 or (cells := _cells_redrawn_all(folder, strength))):
            if "n" in given_options(ctx):
                refuse_greedy_copies("--n", n, " and --strength 1" if strength == 1 else
                                     f" and --strength {said_float(strength)}, which redraws every cell of {cells},",
                                     **by_p)
            n = 1
        _generate(prompt, n, None, seed, sampling, out_dir, folder, device, grid,
                  quiet, negative=negative, spec={"image": source, "strength": strength},
                  stem=f"{safe_stem(source.stem)}-vary", precision=precision, before_drawing=said_prompt,
                  as_json=as_json, regional_asked="regional" in given_options(ctx),
                  guidance_asked=_guidance_asked(ctx), by_p=by_p, moot=moot_beside_top_p(ctx))


def _guidance_asked(ctx: typer.Context) -> tuple[str, ...]:
    """The guidance options given on the command line, as a refusal names them: --guidance (but 1, which turns it
    off), --guidance-start and --guidance-stop."""
    given, params = given_options(ctx), ctx.params
    return tuple(f"{flag(k)} {said_float(params[k])}" for k in ("guidance", "guidance_start", "guidance_stop")
                 if k in given and params[k] is not None and not (k == "guidance" and params[k] == 1))


def _header_vocab(folder: Path) -> int | None:
    """The codebook size of the weights' transformer, read from its file's header alone (no tensor is read) and
    without torch (files.header_config: generate reads it before a --prompts pipe is read, and before
    start_inference bounds libgomp's spinning, which must come before torch loads): a whole number above 0, else
    None (a header that cannot be read so is said where the file loads; an image_vocab of "32" was an internal
    TypeError where weights.file_config read it)."""
    from t2i_cli.files import header_config

    vocab = (header_config(folder / "transformer.safetensors", "transformer") or {}).get("image_vocab")
    return vocab if type(vocab) is int and vocab > 0 else None


def _cells_redrawn_all(folder: Path, strength: float) -> int | None:
    """The code cells of the weights' dVAE where a variation of strength redraws all of them (round(S x cells)),
    else None; read from the dVAE file's header alone (a file it cannot read is said where it loads)."""
    from t2i_cli.image_prompt import redrawn_cells
    from t2i_cli.weights import file_config

    try:
        cells = file_config(folder / "dvae.safetensors", "dvae")[0].grid ** 2
    except (T2IError, OSError, ArithmeticError):
        return None
    return cells if redrawn_cells(cells, strength) == cells else None


@app.command(cls=OneValueEach)
def info(folder: Optional[Path] = typer.Argument(None, show_default=False, metavar="FOLDER",
                                                 help="A weights folder, or a training run folder (one stage's, or a "
                                                      "--stage all run's) to see how far it got."),
         weights: Optional[Path] = typer.Option(None, "--weights",
                                                help="The same as FOLDER (default: $T2I_WEIGHTS or the shipped "
                                                     "weights)."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Print a weights folder's configs, parameter counts and hashes; or a training run's progress: its steps, status
    (training now, finished, stopped, diverged), losses, pace and what to do next."""
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # it writes nothing (a stop said "finished files are kept")
        start_command("info")
        if folder is not None and weights is not None and not same_folder(folder, weights):
            raise UsageError(f"FOLDER {folder} and --weights {weights} disagree; give one of them")
        given = folder if folder is not None else weights
        if folder is not None and not folder.exists() and is_whole_run(folder.parent) \
                and folder.name in (*STAGES, "weights"):  # a stage not started, or
            # RUN/weights of a run not finished: said as generate --weights says it ("does not exist; give t2i info a
            # weights folder or a training run folder" left the user without the run's own state)
            from t2i_cli.weights import missing_weights_folder

            raise UsageError(missing_weights_folder(folder))
        if folder is not None and not folder.is_dir():  # (weights_folder's words are --weights')
            raise UsageError(f"{folder} {'is a file' if folder.exists() else 'does not exist'}; give t2i info a "
                             f"weights folder or a training run folder")
        if given is not None and given.is_dir():
            from t2i_cli.run_info import is_run, run_info

            if is_run(given):
                data = run_info(given)
                if as_json:
                    out.print_json(json.dumps(typed_json(data)))
                else:
                    _print_run_info(data)
                return
        from t2i_cli.files import shell_word
        from t2i_cli.weights import FILES, WeightsError, _holds_pictures, folder_info

        if folder is not None and not any((folder / f).is_file() for f in FILES) and _holds_pictures(folder):
            # (it said "--weights takes a weights folder", an option not given)
            raise WeightsError(f"{clean(folder)} holds pictures, not a t2i model; give t2i info a weights folder or "
                               f"a training run folder (t2i data preview {shell_word(folder)} shows the pictures)")
        data = folder_info(weights_folder(given))
        if as_json:
            out.print_json(json.dumps(typed_json(data)))
            return
        from rich.table import Table

        table = Table(title=f"{clean(data['folder'])}  (identity {data['identity']}; its tokenizer, dVAE and "
                            f"transformer {data['generator']})" if not data["missing"] else
                      f"{clean(data['folder'])}  (incomplete: no {', no '.join(data['missing'])})")
        for col in ("model", "parameters", "sha256", "config"):
            table.add_column(col, overflow="fold")
        for name, m in data["models"].items():
            table.add_row(name, f"{m.get('parameters', 0):,}", m["sha256"][:16], json.dumps(m.get("config", {})))
        out.print(table)
        if data["missing"]:  # (a folder of some of the files: described, where it was refused naming one missing)
            for problem in data["problems"]:
                out.print(f"  misfit    {clean(problem)}", soft_wrap=True)
            out.print(f"  missing   {', '.join(data['missing'])}", soft_wrap=True)
            out.print(f"  next      {clean(data['next'])}", soft_wrap=True)


def _print_run_info(data: dict) -> None:
    """`t2i info RUN`: a stage's run as lines, a whole run as a table of its stages."""
    if data["kind"] == "whole run":
        from rich.table import Table

        table = Table(title=f"{clean(data['folder'])}: a whole run (--stage all) on "
                            f"{clean(data['settings'].get('data', 'world:train'))}, {data['status']}")
        for col in ("stage", "status", "steps", "loss (step)", "best val_loss (step)"):
            table.add_column(col, overflow="fold")
        for stage, s in data["stages"].items():
            loss, val = s.get("loss"), s.get("val_loss")
            table.add_row(stage, "trained" if stage == "tokenizer" and s["status"] == "finished" else s["status"],
                          _steps_text(s), _loss_cell(loss), ("L1 " if loss and "recon_l1" in loss else "")
                          + f"{val['best']:.4g} ({val['best_step']:,})" if val else "")
        out.print(table)
        # the pace of the stage training now, else of the latest stage that trained (README: a whole run's info
        # says its pace and time left too; the table had neither)
        paced = [(stage, s) for stage, s in data["stages"].items() if s.get("rate")]
        now = [(stage, s) for stage, s in paced if s["status"] == "training"] or paced[-1:]
        for stage, s in now:
            left = f", about {_duration(s['eta_s'])} left" if s.get("eta_s") is not None else ""
            out.print(f"  pace      {stage}: {_rate(s['rate'])} since its latest start{left}")
        if collapsed := data["stages"]["dvae"].get("codebook"):
            out.print(f"  codebook  dvae: {clean(collapsed)}", soft_wrap=True)
    else:
        out.print(f"{clean(data['folder'])}: a {data['stage']} run on {clean(data['data'])}", soft_wrap=True)
        out.print(f"  status    {clean(_run_status(data))}", soft_wrap=True)
        val = _val_text(data, whole=True) + (" (pixel L1)" if "recon_l1" in (data.get("loss") or {}) else "")
        for label, text in (("loss", _loss_text(data)), ("val_loss", val if data.get("val_loss") else "")):
            if text:
                out.print(f"  {label:<9} {text}")
        if data.get("rate"):
            left = f", about {_duration(data['eta_s'])} left" if data.get("eta_s") is not None else ""
            out.print(f"  pace      {_rate(data['rate'])} since its latest start{left}")
        if data.get("codebook"):
            out.print(f"  codebook  {clean(data['codebook'])}", soft_wrap=True)
    if data.get("next"):
        out.print(f"  next      {clean(data['next'])}", soft_wrap=True)


def _run_status(s: dict) -> str:
    status, step, steps = s["status"], s.get("step"), s.get("steps")
    if status == "not started" or s.get("stage") == "tokenizer":
        return {"finished": "trained"}.get(status, status)
    if status == "training":
        logged = (s.get("loss") or {}).get("step", step)
        return f"training now (another process): step {logged:,} of {steps:,} logged"
    if status == "finished":
        return f"finished at step {step:,}"
    if status == "stopped early":
        return f"stopped early by --patience at step {step:,}"
    if status == "diverged":
        return str(s.get("diverged") or "diverged")
    # (step 0: none saved, whether a kill came before its first checkpoint or a Ctrl-C at step 0 saved the untrained
    # start, whose line said "checkpoint saved": "stopped before its first checkpoint" then denied it)
    return f"stopped at step {step:,} of {steps:,} (its checkpoint's; a stop, an error or a kill)" if step else \
        f"stopped with none of its steps saved (0 of {steps:,} steps)"


def _steps_text(s: dict) -> str:
    """'1,750 / 4,000': the checkpoint's step of the total (a run training now: its last logged step)."""
    if s.get("step") is None:
        return ""
    step = (s.get("loss") or {}).get("step", s["step"]) if s["status"] == "training" else s["step"]
    return f"{step:,} / {s['steps']:,}"


def _other_l1(loss: dict) -> bool:
    """Whether a dVAE's loss is on another scale than its val_loss (pixel L1): its training pixel L1 is shown too."""
    return "recon_l1" in loss and loss["recon_loss"] != "l1"


def _loss_cell(loss: dict | None) -> str:
    """A whole run's loss cell: '0.7615 (60)', and a dVAE's pixel L1 beside it, the scale of its val_loss (whose
    cell says 'L1 0.1717 (60)')."""
    if not loss:
        return ""
    l1 = f", L1 {loss['recon_l1']:.4g}" if _other_l1(loss) else ""
    return f"{loss['value']:.4g} ({loss['step']:,}){l1}"


def _loss_text(s: dict) -> str:
    loss = s.get("loss")
    if not loss:
        return ""
    l1 = f" ({loss['recon_loss']}; pixel L1 {loss['recon_l1']:.4g}, the scale of val_loss)" if _other_l1(loss) else ""
    return f"{loss['value']:.4g} at step {loss['step']:,}{l1}"


def _val_text(s: dict, whole: bool = False) -> str:
    v = s.get("val_loss")
    if not v:
        return ""
    best = f"{v['best']:.4g} at step {v['best_step']:,}"
    if not whole or v["last_step"] == v["best_step"]:
        return best if not whole else f"best {best}"
    return f"best {best}; last {v['last']:.4g} at step {v['last_step']:,}"


def _rate(per_s: float) -> str:
    return f"{per_s:.3g} steps/s" if per_s < 10 else f"{per_s:,.0f} steps/s"


@app.command(cls=OneValueEach)
def train(
    ctx: typer.Context,
    stage: Optional[str] = typer.Option(None, "--stage",
                                        help="tokenizer, dvae, transformer, clip, or all (every stage in order "
                                             "in one run folder, then export to RUN/weights)."),
    data: str = typer.Option("world:train", "--data",
                             help="world[:split], a folder of image+.txt pairs (or with a metadata.jsonl or "
                                  "metadata.csv), or a .jsonl or .csv manifest."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder (checkpoints, metrics, samples)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder."),
    preset: str = typer.Option("default", "--preset",
                               help="tiny (tests), default (64 px, fits 2 h of a 2-core CPU) "
                                    "or large (the shipped 128 px model; a GPU)."),
    steps: Optional[str] = typer.Option(None, "--steps",
                                        help="Optimizer steps (with --resume: a new, larger total that extends "
                                             "the run; with --stage all: N for every stage or dvae=N,clip=M)."),
    batch_size: Optional[str] = typer.Option(None, "--batch-size",
                                             help="Global batch size, at most 65,536 (--stage all: N or "
                                                  "dvae=N,...; default: the --preset's)."),
    lr: Optional[str] = typer.Option(None, "--lr", help="Peak learning rate, above 0 and at most 1 (--stage all: "
                                                        "X or dvae=X,...; with --resume: the peak for the steps "
                                                        "still to come)."),
    image_side: Optional[int] = typer.Option(None, "--image-side", "--image-size",
                                             help="Image side in pixels, at most 4096: for a dVAE a multiple of its "
                                                  "cell side (the --model downsample: 4 in the tiny preset, 8 in "
                                                  "the others; one cell is the least), for a CLIP at least 16 "
                                                  "(default: the --preset's; --image-size: the old name)."),
    text_len: Optional[int] = typer.Option(None, "--text-len", help="Text tokens per caption, at most 4096 "
                                                                            "(default: the --preset's)."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="Tokenizer stage: BPE vocabulary, at "
                                                                                "most 1,048,576 (default: the "
                                                                                "--preset's)."),
    model: list[str] = typer.Option([], "--model",
                                    help="Model config override KEY=VALUE, e.g. --model n_layer=8 (repeatable; "
                                         "--stage all: STAGE.KEY=VALUE, or KEY=VALUE for every stage that has KEY, "
                                         "which a STAGE.KEY overrides for its stage)."),
    dvae: Optional[str] = typer.Option(None, "--dvae",
                                       help="Transformer stage (or --finetune-decoder): "
                                            "dVAE file, run or weights folder."),
    finetune_decoder: bool = typer.Option(False, "--finetune-decoder",
                                          help="dVAE stage: train only the decoder of --dvae (its codes do not "
                                               "change, so a transformer trained on them stays valid)."),
    recon_loss: Optional[str] = typer.Option(None, "--recon-loss",
                                             help="dVAE: reconstruction loss, l1, mse or logit_laplace "
                                                  "(DALL-E's; see docs/own-data.md; default: logit_laplace, l1 "
                                                  "in the large preset; with --finetune-decoder, the --dvae's "
                                                  "own)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer",
                                            help="Transformer/CLIP: tokenizer.json, run or weights folder."),
    init: Optional[str] = typer.Option(None, "--init",
                                       help="CLIP stage: start from a trained CLIP's weights (clip.safetensors, "
                                            "run or weights folder; its architecture and text length are kept, "
                                            "--image-side may change; needs the --tokenizer it was trained with)."),
    hard_negatives: Optional[bool] = typer.Option(None, "--hard-negatives/--no-hard-negatives",
                                                  help="CLIP on the world: pair every scene with a twin changed "
                                                       "in one thing its caption says (colours swapped, relation "
                                                       "flipped, count off, object replaced, left out or recoloured)."),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip",
                                        help="A folder or manifest: mirror each training picture half the time "
                                             "(never one whose caption says left or right; validation never), "
                                             "which slows a small folder's overfitting. Default: on for the dvae "
                                             "and transformer stages of the default and large presets on a "
                                             "folder or manifest, off otherwise."),
    crop: Optional[float] = typer.Option(None, "--crop",
                                         help="A folder or manifest: show each training picture, each epoch, as a "
                                              "random square of F to all of its side, resized to --image-side "
                                              "(0.5..1; 1: the whole picture; validation never). Default: 0.8 for "
                                              "the dvae and transformer stages of the default and large presets "
                                              "on a folder or manifest, 1 otherwise."),
    ema: Optional[float] = typer.Option(None, "--ema",
                                        help="Keep an exponential moving average of the weights with this decay "
                                             "(e.g. 0.999; at most (1 + n) / (10 + n) after n steps) and "
                                             "validate, sample and save that instead of the last step's weights "
                                             "(0: off, the default)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random draw, 0..2^63-1 (default 0)."),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="auto, the default (bf16 autocast where the CPU or GPU computes bf16 "
                                                 "itself: AVX-512 BF16 or AMX, Ampere or later; fp32 elsewhere, "
                                                 "where emulated bf16 trains many times slower), bf16 or fp32."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes, 0..64 (default 1)."),
    ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Steps between checkpoints (default 250)."),
    sample_every: Optional[int] = typer.Option(None, "--sample-every",
                                               help="Steps between validations and sample grids (default 500; 0 = "
                                                    "at the end only)."),
    log_every: Optional[int] = typer.Option(None, "--log-every",
                                            help="Steps between metrics.jsonl lines (default 25)."),
    patience: Optional[int] = typer.Option(None, "--patience",
                                           help="Stop when the validation loss (measured every --sample-every "
                                                "steps) has not improved for N validations in a row; 0 never "
                                                "(the default, but 2 for the default preset's transformer on a "
                                                "folder). The run then ends at that step."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    threads: Optional[int] = TRAIN_THREADS,
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="No progress bar (warnings still print: they say when training stops learning)."),
) -> None:
    """Train one stage, or all four (--stage all); every N steps a checkpoint, metrics.jsonl, samples and loss.png
    (once two steps are logged) go to the run folder."""
    with user_errors():  # (a T2I_OMP or OMP_NUM_THREADS it does not know is refused in one line)
        check_omp_env()
        check_threads(threads)
        bound_spinning()  # as inference does: a training run beside another job must not stall it (or itself)
    stop_on_sigterm()  # outside the step loop too (setup, a whole run's export): as Ctrl-C, never a silent death
    # (SIGHUP too, since 0.12.9: a closed terminal ended a run silently, losing its steps since the last checkpoint)
    # what a stop before the run's own handling says (it said inference's "finished files are kept")
    STATE["interrupted"] = ("before training resumed; the run is as it was: the same command resumes it" if resume
                            else "before training started; nothing was written: the same command starts it")
    with user_errors(), _data_as_typed():
        _training_imports_held()  # first: check_stage imports t2i_cli.train, and with it torch
        use_threads(threads)  # (this process's: each torchrun process parsed the same command line and sets its own;
        # DataLoader's workers take one each, PyTorch's own setting in each worker)
        given = given_options(ctx)
        if seed is not None:
            check_seed(seed)
        check_stage(stage)
        _DATA_SHOWN.clear()
        if resume is None:  # recorded as the path it names, not one relative to here
            typed, data = data, stored_data(data)
            ctx.params["data"] = data
            if data != typed and not typed.startswith("~"):
                _DATA_SHOWN.append((data, typed))
        if (stage == "all" and resume is None) or (resume is not None and is_whole_run(resume)):
            _train_all(resume or out_dir, given, ctx.params, resume is not None, device, quiet)
            return
        if resume is not None:
            cfg, run_dir = resume_config(resume, given, ctx.params), resume
            from t2i_cli.files import shell_word
            from t2i_cli.stages import steps_left
            from t2i_cli.train import RUN_CONFIG

            whole = Path(os.path.abspath(resume)).parent
            said = Path(os.path.normpath(os.path.join(resume, os.pardir)))  # (named as typed: runs/x, not /home/...)
            if cfg.stage == "dvae" and is_whole_run(whole) and (whole / "transformer" / RUN_CONFIG).is_file() \
                    and rank_zero() and steps_left(cfg, Path(resume), True):  # (said before it trains: the user
                # may not want the steps; a resume that trains none changes nothing)
                warn(f"{clean(said)}'s transformer stage learned this dVAE's codes as they were when it started, so "
                     f"{clean(said / 'weights')} keeps that dVAE whatever this run adds; a longer-trained dVAE serves "
                     f"a transformer trained anew on it (t2i train --stage transformer --dvae "
                     f"{shell_word(resume)} ...)")
        else:
            if stage is None or out_dir is None:
                raise UsageError("give --stage and --out for a new run, or --resume RUN_DIR to continue one")
            refuse_foreign_options(stage, given, ctx.params)
            cfg, run_dir = train_config(stage, data, preset, locals()), out_dir  # (what a new run must not train:
            # run_stage's check_new_model)
            if "batch_size" not in given and stage != "tokenizer":
                _preset_batch_splits(cfg, preset)
        summary = _run_training(cfg, run_dir, resume is not None, device, quiet)
        if not rank_zero():  # under torchrun only rank 0 reports
            return
        if resume is not None and set(summary) == {"learned"}:  # a tokenizer learned already: nothing to learn
            out.print(f"tokenizer stage: already learned ({clean(summary['learned'])}); nothing to learn (another "
                      f"vocabulary is a new run: t2i train --stage tokenizer --out NEW_RUN ...)", soft_wrap=True)
        elif resume is not None and set(summary) == {"step"}:  # (nothing trained: no metrics to show)
            from t2i_cli.train import stopped_early

            early = cfg.stage != "tokenizer" and stopped_early(Path(resume), summary["step"])
            more = "" if cfg.stage == "tokenizer" else \
                f" (to train on: t2i train --resume {shell_word(resume)} --steps N, N over {summary['step']}" + \
                (", --patience 0 to train past another stall)" if early else ")")
            out.print(f"{cfg.stage} stage: already finished at step {summary['step']}"
                      f"{' (stopped early by --patience)' if early else ''}; nothing to train{more}", soft_wrap=True)
        else:
            if cfg.stage == "tokenizer" and "vocab_size" in given:  # (asked: not the preset's own size)
                _vocab_note(cfg.vocab_size, summary)
            out.print(f"{cfg.stage} stage finished: {clean(json.dumps(summary, ensure_ascii=False))}", soft_wrap=True)
        out.print(f"run folder: {clean(run_dir)}  ({clean(next_step(cfg, run_dir))})", soft_wrap=True)


def _vocab_note(asked: int, learned: dict, bar: Optional[Progress] = None) -> None:
    """A tokenizer smaller than the --vocab-size asked, said on stdout beside the stage's summary that shows it (a
    note on what was made, not a warning: nothing is wrong with it); above a live progress bar (bar) where that
    shares stdout's terminal."""
    from t2i_cli.stages import vocab_note

    if text := vocab_note(asked, learned):
        console = bar.console if bar is not None and bar.live.is_started and _same_terminal() else out
        console.print(f"note: {clean(text)}", markup=False, highlight=False, soft_wrap=True)


def _preset_batch_splits(cfg, preset: str, stage: str = "") -> None:
    """Refuse a preset's batch (no --batch-size given) that the torchrun processes cannot split, saying it is the
    preset's: "--batch-size 8 must be a multiple of the 3 processes" named an option the user had not given."""
    from t2i_cli.train import split_refusal

    n = n_processes()
    if split_refusal(cfg, n) is not None:
        share = 2 * n if cfg.hard_negatives else n
        raise UsageError(f"the {preset} preset's batch{f' of the {stage} stage' if stage else ''} is "
                         f"{cfg.batch_size}, which {n} processes cannot split"
                         f"{' in even shares (--hard-negatives)' if cfg.hard_negatives else ''}; give --batch-size "
                         f"a multiple of {share}")


def _training_imports_held() -> None:
    """Import what training runs on with Ctrl-C and SIGTERM held: a stop that landed inside `import torch` (the
    first second or two of a run) left half-imported modules behind and ended in an internal error ("module
    'numpy' has no attribute 'multiply'") or a C++ abort; held, it stops the run just after, in one line."""
    _imports_held("t2i_cli.recipe", "t2i_cli.stages", "t2i_cli.train")


def _imports_held(*modules: str) -> None:
    """Import torch (and numpy), then these modules, with Ctrl-C, SIGTERM and SIGHUP held until they are in: a
    stop inside `import torch` left half-imported modules (an internal error, a C++ abort), or landed in one of
    Python's import callbacks, which drop an exception (a generate stopped in its first seconds wrote its image
    and exited 0); held, it stops the command just after, in one line (exit 130).
    The first import of torch in a process is made with Python's cyclic garbage collector off, and what it made is
    then frozen (gc.freeze: left out of every later collection): the collector's full collections, each a walk over
    every object torch's import made, took 0.2 s of a cold `t2i generate`'s CPU (BENCHMARKS.md "A cold generate
    beside import torch and the codes"); what a command makes after is collected as before. (Not where torch is already
    in: a process that runs commands in turn, the tests' own, would freeze each command's garbage for good.)"""
    import gc
    import importlib

    from t2i_cli.files import signals_held

    first = "torch" not in sys.modules
    collecting = gc.isenabled()
    try:
        if first:  # (inside the try: a stop right after it left the collector off)
            gc.disable()
        with signals_held():
            import numpy  # noqa: F401
            import torch  # noqa: F401

            for name in modules:
                importlib.import_module(name)
    finally:
        if first:
            gc.freeze()
            if collecting:
                gc.enable()


def _train_all(run_dir: Optional[Path], given: set[str], params: dict, resume: bool, device: str,
               quiet: bool) -> None:
    """--stage all: every stage in order under one progress display, resumable, exported to RUN/weights."""
    from t2i_cli.files import shell_word
    from t2i_cli.recipe import ORDER, check_whole_run_folder, plan_settings, stage_done, train_all

    if run_dir is None:
        raise UsageError("--stage all needs --out RUN (or --resume RUN to continue one)")
    if not resume:  # first, as a single stage does: nothing of the user's is ever written over
        check_whole_run_folder(run_dir)
    refused = sorted(given & {"dvae", "tokenizer", "finetune_decoder", "init"})
    if refused:
        raise UsageError(f"{', '.join(flag(n) for n in refused)} cannot be used with --stage all: it trains its "
                         f"own tokenizer and dVAE, and every model from scratch")
    if resume and params["stage"] not in (None, "all"):  # --stage all, the run's own, is accepted
        raise UsageError(f"--stage {params['stage']}: {run_dir} is a --stage all run; leave --stage out to "
                         f"continue it, or resume that stage's folder alone: t2i train --resume "
                         f"{shell_word(run_dir / params['stage'])}")
    steering = {"resume", "stage", "workers", "device", "threads", "quiet"}  # what a whole run's resume honours
    if resume and given - steering:
        from t2i_cli.recipe import settings_said_again

        # the run's own settings said again (the command that started it, with --resume RUN added) are accepted
        differ = settings_said_again(run_dir, {k: params[k] for k in given - steering})
        if differ:
            named = ", ".join(flag(n, params) for n in sorted(differ))
            how = "; ".join(text for text in differ.values() if text)
            raise UsageError(f"{named} cannot change a whole run that has started{f' ({how})' if how else ''}; "
                             f"--resume keeps its settings (to extend or change one stage, resume its folder: "
                             f"t2i train --resume {shell_word(run_dir)}/STAGE --steps N)")
    # flip, crop and ema always: None (the preset's choice per stage) is recorded too, so that a run recorded
    # without one is known as one from before that option, which mirrored, cropped or averaged nothing
    # (recipe.plan_settings).
    settings = {} if resume else {k: params[k] for k in WHOLE_RUN_SETTINGS
                                  if k in given or k in ("data", "preset", "flip", "crop", "ema")}
    if not resume and is_whole_run(run_dir):  # the command's own mistake (a --model typo) is said before how its
        # settings differ from the run's, which said "continue it with --resume" of a command that never could run
        for name in ("steps", "batch_size", "lr"):
            per_stage(name, settings.get(name), "dvae")
        for stage in ORDER:
            stage_config_of_all(stage, run_dir, settings, params)
    settings = plan_settings(run_dir, settings) if is_whole_run(run_dir) else settings
    from t2i_cli.files import PLAN
    from t2i_cli.stages import check_run_file, check_whole_run_models, run_file_refusal

    # a resume's settings are the run's own, as RUN/all.json holds them: a refusal of them is said of that file
    plan = (lambda: run_file_refusal(run_dir / PLAN)) if resume else nullcontext  # (a new run's: its command's)
    with plan():
        for name in ("steps", "batch_size", "lr"):  # refused here, before anything runs
            per_stage(name, settings.get(name), "dvae")
    n_procs = n_processes()
    from t2i_cli.train import RUN_CONFIG, Interrupted, read_run_config, split_refusal

    # Every stage's config, built (and so checked) once, before the first stage trains: a started stage's read
    # from its own train_config.json (said of that file, where it is damaged), a stage to come built of the run's
    # settings.
    started = {s for s in ORDER if (run_dir / s / RUN_CONFIG).is_file()}
    own = {s: read_run_config(run_dir / s) for s in ORDER if s in started}
    for s, c in own.items():  # a stage to go on with: its settings as its file holds them (--workers, which
        # steers it, judged them as options given); one done is only exported
        if not stage_done(run_dir / s, c):
            check_run_file(c, run_dir / s)
    with plan():
        configs = {s: own[s] if s in started else stage_config_of_all(s, run_dir, settings, params) for s in ORDER}
        # Every model the run will build, checked before its first stage trains; and, under torchrun, every
        # stage's batch split over the processes (refused at the dVAE stage, it left a whole run no retry could
        # continue).
        check_whole_run_models(configs, started)
    for stage, c in configs.items():
        if stage != "tokenizer" and (why := split_refusal(c, n_procs)):
            if not resume and per_stage("batch_size", settings.get("batch_size"), stage) is None:  # the preset's
                _preset_batch_splits(c, settings.get("preset") or "default", stage)
            if resume:  # its batches are the run's own (a resume refuses --batch-size): which counts split them
                from t2i_cli.stages import PAIRED, process_counts

                others = [x for s, x in configs.items() if s != "tokenizer"]
                fit = process_counts([x.batch_size for x in others], paired=[x.hard_negatives for x in others])
                raise UsageError(f"{run_dir}'s {stage} stage's batch of {c.batch_size} cannot be split over "
                                 f"{n_procs} processes{PAIRED if c.hard_negatives else ''}; resume it with a number "
                                 f"of processes that divides every stage's batch ({fit})")
            raise UsageError(why.replace(f"--batch-size {c.batch_size}", f"--batch-size {c.batch_size} of the {stage} "
                                                                         f"stage", 1))
    if "workers" in given:  # steers this process: a started stage resumes with it too
        from dataclasses import replace

        configs = {s: c if s == "tokenizer" else checked(replace(c, num_workers=params["workers"]))
                   for s, c in configs.items()}
    make = lambda stage, root: configs[stage]  # noqa: E731
    totals = {s: 0 if s == "tokenizer" else configs[s].steps for s in ORDER}
    plain = {s: PlainProgress(quiet) for s in ORDER}  # (a stage's rate counts its own steps)
    with progress_bar(quiet or not rank_zero()) as bar:  # one display under torchrun
        task = bar.add_task("train all", total=sum(totals.values()) or 1, rate="")

        def tick(stage: str, step: int, metrics: dict) -> None:
            if "steps" in metrics:  # the stage stopped early (--patience): it is this long now
                totals[stage] = int(metrics["steps"])
                bar.update(task, total=sum(totals.values()) or 1)
            done = sum(totals[s] for s in ORDER[:ORDER.index(stage)]) + step
            bar.update(task, completed=done, description=f"train all: {stage} {step}/{totals[stage]}")
            bar.update(task, rate=training_rate(bar, task, metrics, ("loss", "recon_l1", "batch_top1")))
            plain[stage].update(f"train all: {stage}", step, totals[stage], metrics, ("loss", "recon_l1", "batch_top1"))

        said: set[str] = set()

        def warned(text: str) -> None:  # each stage opens the same data: a warning about it is said once a run
            if text not in said and rank_zero():
                said.add(text)
                bar.console.print(f"warning: {clean(_as_typed(text))}", style="yellow", markup=False,
                                  highlight=False)

        def finished(stage: str, learned: dict) -> None:  # said as the tokenizer stage ends (at the run's end it
            # was lost with a later stage's Ctrl-C or error, and its resume found the tokenizer "done before")
            if stage == "tokenizer" and settings.get("vocab_size") is not None and rank_zero():  # (asked)
                _vocab_note(settings["vocab_size"], learned, bar)

        exported = _files_of(run_dir / "weights")  # (what the export changes, when no stage trains)
        try:
            summary = train_all(run_dir, settings, make, device, tick, warned, checking_bar(bar), finished)
        except Interrupted as stop:
            if isinstance(stop.__context__, KeyboardInterrupt) and (peer := _lost_peer_in(stop.__context__)):
                # torchrun's SIGTERM, once another process had died (a kill -9, out of memory), landing as this one
                # ended for the connection it lost: that is what to say, with its checkpoint, as a stage's run
                # says it (_run_training); rank 1 said nothing where rank 0 was killed, rank 0 no step
                raise peer from None
            raise
    if not rank_zero():  # rank 0 says it
        return
    out.print(f"all stages finished: {clean(json.dumps(summary, ensure_ascii=False))}", soft_wrap=True)
    from t2i_cli.files import shell_word

    out.print(f"weights: {clean(summary['weights'])}  (t2i generate PROMPT --weights "
              f"{clean(shell_word(summary['weights']))})")
    if all(summary.get(s) == "done before" for s in ORDER):  # nothing trained (a resume after pictures were
        # added said "done before" four times and nothing else: as if the new pictures had been trained on)
        changed = sorted(set(_files_of(run_dir / "weights").items()) - set(exported.items()))
        if changed:  # a stage extended on its own folder, exported now: what the user asked
            out.print(f"every stage had finished: nothing trained now; exported the stages' latest models "
                      f"({', '.join(clean(name) for name, _ in changed)} updated)", soft_wrap=True)
        else:
            from t2i_cli.stages import is_world

            steps = ", ".join(f"{s} {configs[s].steps}" for s in ORDER if s != "tokenizer")
            there = "" if is_world(configs["dvae"].data) else ", on the pictures there now"  # (the world has none)
            out.print(f"every stage had finished: nothing trained now (to train on{there}: t2i "
                      f"train --resume {clean(shell_word(run_dir))}/STAGE --steps N, N over its steps ({steps}), then "
                      f"t2i train --resume {clean(shell_word(run_dir))} to export it)", soft_wrap=True)


def _files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file of folder, (size, modification time in ns) by name: what an export rewrote ({} where none)."""
    try:
        return {p.name: (st.st_size, st.st_mtime_ns) for p in folder.iterdir() if p.is_file() and (st := p.stat())}
    except OSError:
        return {}


def sampling_of(ctx: typer.Context):
    """The SamplingConfig of a command's options: each of its fields that the command has as an option (vary has no
    --jacobi: the default). A new field of SamplingConfig needs only its option on the commands, here in cli.py."""
    from dataclasses import fields

    from t2i_cli.sampling_config import SamplingConfig  # (torch-free: generate checks it before a pipe is read)

    sampling = SamplingConfig(**{f.name: ctx.params[f.name] for f in fields(SamplingConfig) if f.name in ctx.params})
    refuse_moot_greedy(ctx)
    return sampling


def refuse_moot_greedy(ctx: typer.Context) -> None:
    """--top-k 1 keeps the most likely code alone: a temperature or a nucleus cannot change which (it drew the same
    bytes, unsaid); their neutral values (1) ask for nothing and are taken. (Without torch: generate checks it
    before a --prompts pipe is read.)"""
    moot = [f"{flag(k)} {said_float(ctx.params[k])}" for k in ("temperature", "top_p")
            if k in given_options(ctx) and ctx.params[k] != 1]
    if ctx.params.get("top_k") == 1 and moot:
        raise UsageError(f"{' and '.join(moot)} change{'s' if len(moot) == 1 else ''} nothing with --top-k 1, which "
                         f"always takes the most likely code; leave {'it' if len(moot) == 1 else 'them'} out, or give "
                         f"--top-k above 1")


def moot_beside_top_p(ctx: typer.Context) -> tuple[str, ...]:
    """The settings given that a --top-p at or below 1/codebook would make moot, as --top-k 1 makes --temperature
    moot: a temperature or a --top-k above 1 cannot change the code it keeps, the most likely one alone. Whether the
    --top-p is that small is known from the codebook's size (refuse_moot_beside_top_p: generate, vary and eval read it
    from the transformer file's header, before the load, _greedy_by_p)."""
    return tuple(f"{flag(k)} {said_float(ctx.params[k])}" for k in ("temperature", "top_k")
                 if k in given_options(ctx) and ctx.params[k] != (1 if k == "temperature" else 0))


def refuse_moot_beside_top_p(moot: tuple[str, ...], by_p: Optional[dict]) -> None:
    """Refuse the settings moot_beside_top_p found where the --top-p keeps the most likely code alone (by_p:
    _greedy_by_p's answer; they drew the same codes, unsaid)."""
    if moot and by_p:
        vocab = by_p["vocab"]
        raise UsageError(f"{' and '.join(moot)} change{'s' if len(moot) == 1 else ''} nothing with --top-p "
                         f"{said_float(by_p['top_p'])}, which at or below 1/{vocab} (this model's {vocab} codes) "
                         f"keeps the most likely code alone; leave {'it' if len(moot) == 1 else 'them'} out, or give a "
                         f"--top-p above {greedy_bound(vocab)}")


def given_options(ctx: typer.Context) -> set[str]:
    """The parameters the user set on the command line (not left at their default)."""
    # By the enum member's name: typer may carry its own copy of click's ParameterSource.
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}


def check_seed(seed: int) -> None:
    """Seeds are 0..2**63-1 (what a torch.Generator takes), refused as a usage error before anything runs."""
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {said_value(seed, plain=True)}")


# A new run's --data as recorded (stored_data: absolute, "ds" -> "/home/me/ds", "../ds" -> "/home/me/sub/../ds") and
# as typed: its warnings name the source's files as typed, as `t2i data preview` and `data caption` do (they named
# them by the recorded path, "/home/me/sub/../ds/a.png", where the run folder was said as typed); a resume's by the
# path its run recorded
_DATA_SHOWN: list[tuple[str, str]] = []


def _as_typed(text: str) -> str:
    """A training warning with the new run's --data as recorded replaced by it as typed (_DATA_SHOWN)."""
    return said_as(text, ((stored, typed.rstrip("/") or typed) for stored, typed in _DATA_SHOWN))


@contextmanager
def _data_as_typed() -> Iterator[None]:
    """A new run's refusals with its --data as typed (_as_typed: "no usable image-caption pairs ... under
    /home/me/sub/../empty" where `--data ../empty` was given); the mapping forgotten when the command ends."""
    try:
        yield
    except T2IError as e:
        if _DATA_SHOWN and e.args and isinstance(e.args[0], str):
            e.args = (_as_typed(e.args[0]), *e.args[1:])
        raise
    finally:
        _DATA_SHOWN.clear()


def _run_training(cfg, run_dir: Path, resume: bool, device: str, quiet: bool) -> dict:
    """Run a stage under a progress bar showing loss, rate and ETA."""
    from t2i_cli.stages import run_stage

    plain, total = PlainProgress(quiet), cfg.steps
    with progress_bar(quiet or not rank_zero()) as bar:
        task = bar.add_task(f"train {cfg.stage}", total=cfg.steps, rate="")

        def tick(step: int, metrics: dict) -> None:
            nonlocal total
            if "steps" in metrics:  # stopped early (--patience): the run is this long now
                total = int(metrics["steps"])
                bar.update(task, total=total)
            keys = ("loss", "recon_l1", "perplexity", "batch_top1")
            bar.update(task, completed=step, rate=training_rate(bar, task, metrics, keys))
            plain.update(f"train {cfg.stage}", step, total, metrics, keys)

        def warned(text: str) -> None:
            bar.console.print(f"warning: {clean(_as_typed(text))}", style="yellow", markup=False, highlight=False)

        try:
            summary = run_stage(cfg, run_dir, resume, tick, device, warned, checking_bar(bar))
        except KeyboardInterrupt as stop:  # before the first step (a stop in the loop is said by train_loop):
            # what was made of the run is undone (run_stage), so it said the generic "finished files are kept"
            from t2i_cli.files import shell_word
            from t2i_cli.train import CHECKPOINT, RUN_CONFIG, Interrupted

            if (peer := _lost_peer_in(stop)) is not None:  # torchrun's SIGTERM, once another process had died (a
                # kill -9, out of memory), landing as this one ended for the connection it lost: that is what to
                # say, with the step it saved (it said "RUN holds the run up to its last checkpoint", no step, or
                # on a rank other than 0 nothing, leaving torchrun's report alone)
                raise peer from None
            if (Path(run_dir) / CHECKPOINT).is_file() and not resume:  # (a stop past the step loop's own
                # handling, as the process group ends): its steps are saved
                raise Interrupted(f"{run_dir} holds the run up to its last checkpoint: `t2i train --resume "
                                  f"{shell_word(run_dir)}` goes on from it (or says it is finished)") from None
            if resume:
                raise Interrupted(f"before training resumed; {run_dir} is as it was: the same command resumes it"
                                  ) from None
            if (Path(run_dir) / RUN_CONFIG).is_file():  # the stop came after the start was made (under torchrun,
                # while another process's failure was being handled): the run is there, at step 0
                raise Interrupted(f"before the first step; {run_dir} holds the run's settings: `t2i train --resume "
                                  f"{shell_word(run_dir)}` starts it") from None
            raise Interrupted(f"before training started; no run was made in {run_dir}: the same command starts "
                              f"it") from None
    if summary.get("skipped") and rank_zero():  # (every torchrun process opened the same data)
        warn(_as_typed(summary["skipped"]))
    summary.pop("skipped", None)
    return summary


@app.command(cls=OneValueEach)
def export(ctx: typer.Context,
           runs: list[Path] = typer.Argument(..., metavar="RUN",
                                             help="Run folders (tokenizer, dvae, transformer, clip; a second "
                                                  "CLIP run becomes clip-2.safetensors, the second reranker)."),
           to: Path = typer.Option(..., "--to", "--out",
                                   help="Weights folder to write (--out, every other command's name for where it "
                                        "writes, names it too)."),
           half: bool = typer.Option(False, "--half", help="Store float tensors as fp16 (half the size)."),
           force: bool = typer.Option(False, "--force", help="Replace files already in the folder.")) -> None:
    """Write the models of one or more run folders into a weights folder that `generate --weights` loads."""
    stop_on_sigterm()  # a kill stops it as Ctrl-C does: the folder keeps all of its old files or gets all new ones
    with user_errors():
        # until its files are renamed into place, all at once (it said "finished files are kept" of none)
        STATE["interrupted"] = NOTHING_WRITTEN
        start_command("export")
        from t2i_cli.files import refuse_dash
        from t2i_cli.train import export_runs

        # named as written: `export RUN --out -` was told '--to - would make a folder named ...'
        typed = ctx.meta.get("t2i_written", {}).get("to", "--to")  # (--out is said as --out)
        refuse_dash(to, typed, "weights-mine")

        whole = next((r for r in runs if is_whole_run(r)), None)
        if whole is not None:
            from t2i_cli.files import unfinished_whole_run

            if not (whole / "weights").is_dir():  # stopped (or training now) before its last stage ended: there are
                # no exported models yet, which "already exported to RUN/weights" said there were
                raise UsageError(unfinished_whole_run(whole, str(to)))
            raise UsageError(f"{whole} is a --stage all run, whose models are already exported to "
                             f"{shell_word(whole / 'weights')}; export its stage folders instead "
                             f"({shell_word(whole / 'dvae')} {shell_word(whole / 'transformer')} ...)")
        def wrote(paths: list[Path]) -> None:  # (as one step with the last rename)
            STATE["interrupted"] = (f"{counted(len(paths), 'file')} written to {clean(to)}, the export's whole set "
                                    f"({', '.join(p.name for p in paths)}); nothing partial was written")

        def finished(paths: list[Path]) -> None:  # (as one step with their renames)
            STATE["interrupted"] = (f"nothing of this export was written; it first finished the export a kill had cut "
                                    f"in {clean(to)} ({', '.join(p.name for p in paths)} renamed into place)")

        for path in export_runs(runs, to, half=half, force=force, note=warn, say_unchanged=True, option=typed,
                                wrote=wrote, finished=finished):
            out.print(clean(path))


def _unread_pictures(folder: Path) -> str:
    """'; it holds 5 XPM pictures (t2i does not read XPM from a folder: convert ...), e.g. F' where a folder
    without a picture t2i reads holds some of a format it does not ('' where none): `data caption` of a folder of
    .xpm or .ico icons said
    "give the folder that holds them", of the folder that did."""
    from t2i_cli.images import UNREAD_SUFFIXES, unread_picture

    found: dict[str, list[Path]] = {}
    try:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in UNREAD_SUFFIXES and path.is_file():
                found.setdefault(unread_picture(path.suffix), []).append(path)
    except OSError:
        return ""
    return "; it holds " + "; ".join(f"{counted(len(paths), why)}, e.g. {clean(paths[0])}"
                                     for why, paths in found.items()) if found else ""


@data_app.command("world", cls=OneValueEach)
def data_world(split: str = typer.Option("train", "--split", help="train, val or heldout."),
               n: int = typer.Option(1000, "--n", help="Scenes to write, 1..1,000,000."),
               side: int = typer.Option(128, "--side", "--size",
                                        help="Image side in pixels, 16..4096 (--size: the old name)."),
               out_dir: Path = typer.Option(..., "--out", help="Folder for NAME.png, NAME.txt and NAME.json."),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Write scenes of the procedural world as image + caption + spec files."""
    with user_errors():
        stop_on_sigterm()  # as Ctrl-C: the scenes written are kept, each whole (it ended silently, exit 143)
        STATE["interrupted"] = NOTHING_WRITTEN  # (it said "finished files are kept" of none, and of scenes named
        # nowhere)
        start_command("data world")
        from t2i_cli.data import check_world_size, write_world

        def say_kept(written: int, before: int) -> None:  # what a stop says: the scenes kept, how to finish them
            if written:
                said = f"{counted(written, 'scene')} written to {clean(out_dir)}" + (
                    f" ({before:,} written before, kept)" if before else "")
            elif before:  # (a stopped run's, which this one had not added to yet)
                said = f"{NOTHING_WRITTEN}; {clean(out_dir)} keeps the {counted(before, 'scene')} written before"
            else:
                return
            rest = "the same command writes the rest" if written + before < n else f"all {n:,} are there"
            STATE["interrupted"] = (f"{said}, each whole (picture, caption and spec); {rest}; nothing partial was "
                                    f"written")

        check_world_size(n, side)
        with progress_bar(quiet) as bar:
            task = bar.add_task("rendering", total=n, rate="")
            count = write_world(split, n, side, out_dir,
                                lambda k: bar.update(task, completed=k, rate=rate_text(bar.tasks[task], "images")),
                                say_kept)
        kept = f" ({n - count} written before, kept)" if count < n else ""  # (a stopped run's, finished now)
        out.print(f"wrote {count} scene{'' if count == 1 else 's'} to {clean(out_dir)}{kept}")


@data_app.command("preview", cls=OneValueEach)
def data_preview(ctx: typer.Context,
                 source: str = typer.Argument("world:train", metavar="SOURCE",
                                              help="world[:split], a folder, or a .jsonl or .csv manifest."),
                 out_path: Path = typer.Option(Path("preview.png"), "--out", help="PNG file (or folder) to write."),
                 n: int = typer.Option(16, "--n", help="Samples on the sheet, 1..256."),
                 side: int = typer.Option(128, "--side", "--size",
                                          help="Image side in pixels, 16..4096, with --n x --side^2 at most 2^25 "
                                               "(--size: the old name)."),
                 force: bool = typer.Option(False, "--force", help="Replace the --out file if it exists."),
                 crop: float = typer.Option(1.0, "--crop",
                                            help="A folder or manifest: show each sample as `t2i train --crop F` "
                                                 "does, a random square of F to all of its side (0.5..1; 1: whole "
                                                 "pictures), to see what a crop may cut off."),
                 flip: bool = typer.Option(False, "--flip/--no-flip",
                                           help="A folder or manifest: mirror samples as `t2i train --flip` does."),
                 seed: int = typer.Option(0, "--seed", help="Seed of the --crop and --flip draws."),
                 list_skipped: bool = typer.Option(False, "--list-skipped",
                                                   help="Also print every file (or manifest line) the source leaves "
                                                        "out, one 'reason: path' line each (the warning names the "
                                                        "first of each kind)."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Write one contact sheet of captioned samples from a data source (with --crop or --flip, as a training run
    shows them)."""
    stop_on_sigterm()  # as Ctrl-C: `kill` during the write left the sheet's temporary behind (exit 143, silent)
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # until the sheet is (it said "finished files are kept" of none)
        start_command("data preview")
        from t2i_cli.data import (
            PREVIEW_NAME,
            Augment,
            NothingUsable,
            check_preview_size,
            check_source_name,
            open_source,
            preview,
            preview_path,
        )
        from t2i_cli.train import CONFIG_LIMITS

        check_preview_size(n, side)
        check_source_name(source)  # before --out: a mistyped source said "preview.png already exists"
        lo, hi = CONFIG_LIMITS["crop"]  # the bounds `t2i train --crop` takes
        if not lo <= crop <= hi:
            raise UsageError(f"--crop must be between {lo} and {hi}, got {crop}; choose a value in range")
        check_seed(seed)
        augment = Augment(seed, flip, crop) if flip or crop < 1 else None
        if augment is None and "seed" in given_options(ctx):
            raise UsageError("--seed picks the draws of --crop and --flip; give --crop below 1 or --flip, or leave "
                             "--seed out")
        if augment is not None and (source == "world" or source.startswith("world:")):
            raise UsageError("--crop and --flip show a folder's or manifest's pictures as training does; the world "
                             "is never cropped or mirrored: leave them out")
        if list_skipped and (source == "world" or source.startswith("world:")):  # (it printed nothing, exit 0)
            raise UsageError("--list-skipped lists the files (or manifest lines) a folder or manifest leaves out; the "
                             "world draws its scenes and leaves none out: leave it out")
        target = preview_path(out_path, force)
        try:
            with progress_bar(quiet) as bar:
                # each picture shown is decoded once: checked at the side the sheet (or its --crop) decodes it at
                dataset = open_source(source, side, n_scenes=n, list_skipped=list_skipped, checking=checking_bar(bar),
                                      keep=n, keep_side=None if augment is None else augment.decoded_side(side))
        except NothingUsable as e:  # the list asked for is wanted most when nothing is left
            _list_skipped(e.every)
            raise
        if dataset.skipped_message():
            warn(dataset.skipped_message())
        dataset.augment = augment
        shown = {} if augment is None else {"crop": str(crop), "flip": str(flip).lower(), "seed": str(seed)}
        def saved(sheet: Path) -> None:  # (as one step with its write)
            STATE["interrupted"] = f"the contact sheet written to {clean(sheet)} is kept; nothing partial was written"

        written = preview(source, target, n=n, side=side, dataset=dataset, text=shown, saved=saved)
        out.print(f"wrote {clean(written)}")
        if Path(source).is_dir() and Path(source).resolve() in Path(written).resolve().parents \
                and Path(written).name.lower() != PREVIEW_NAME:  # (that name training knows for t2i's sheet)
            # (`cd pics && t2i data preview .`: the next run on the folder named the sheet a picture without caption)
            warn(f"{clean(written)} is inside {clean(source)}, which training reads: it will be counted there as an "
                 f"image without .txt caption; move it out, or write the next one elsewhere with --out")
        # a sheet of fewer cells than asked for was unsaid (where a skip warning says "using N", that says it)
        if len(dataset) < n and not dataset.skipped_message():
            warn(f"{clean(source)} has {counted(len(dataset), 'usable picture')}, fewer than --n {n}: the sheet shows "
                 f"them all")
        _list_skipped(dataset.every if list_skipped else {})


@data_app.command("caption", cls=OneValueEach)
def data_caption(folder: Path = typer.Argument(..., metavar="FOLDER",
                                               help="Folder of pictures (sub-folders too, as training reads it)."),
                 source: str = typer.Option("name", "--from",
                                            help="name: each picture's file name made words (red-bird_02.png -> "
                                                 "\"red bird\"); folder: its folder's name, for a folder per class "
                                                 "(golden_retriever/001.jpg -> \"golden retriever\")."),
                 dry_run: bool = typer.Option(False, "--dry-run",
                                              help="Print each caption file it would write and its caption; write "
                                                   "nothing."),
                 quiet: bool = typer.Option(False, "--quiet", "-q",
                                            help="No progress bar (of checking the pictures and of writing their "
                                                 "captions).")) -> None:
    """Write a NAME.txt caption beside each picture that has none, made from its file name or its folder's name
    (a caption file that exists is never replaced); then train on the folder with
    `t2i train --stage all --data FOLDER --out runs/NAME`."""
    stop_on_sigterm()  # as Ctrl-C: every caption file written is whole; run it again to write the rest
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # until a caption file is (it said "finished files are kept" of none)
        start_command("data caption")
        from t2i_cli.data import plan_captions
        from t2i_cli.files import IMAGE_SUFFIXES, shell_word, train_command
        from t2i_cli.name_captions import remove_killed_temporaries, summary, write_captions

        # (another --from is refused there first, exit 2; each picture's header is read, as training's check begins:
        # a bar of that, a dry run's too: a large folder's check showed nothing for seconds)
        with progress_bar(quiet, "files") as bar:
            def checked(k: int, total: int) -> None:  # (the bar begins with the check: a refusal before shows none)
                if not bar.tasks:
                    bar.add_task("checking pictures", total=total, rate="")
                bar.update(bar.tasks[0].id, completed=k, rate=rate_text(bar.tasks[0], "files"))

            plan = plan_captions(folder, source, checked)
        left = summary(plan)
        writing = plan.writes or plan.nameless  # (a manifest matters where pictures would be captioned by name)
        by_files = "their folders" if source == "folder" else "their file names"
        by_names = "their folders" if source == "folder" else "their names"

        refused: list[str] = []  # what a write refuses, which a dry run warns of (and then writes no caption either)

        def refuse(said: str) -> None:  # (a dry run warns what a write refuses)
            if not dry_run:
                raise DataError(said)
            warn(said)
            refused.append(said)

        # its captions, not file names (a Hugging Face folder); also where no name holds words (camera names beside
        # a metadata.csv: "try --from folder" was said, the manifest unnamed)
        if plan.manifest is not None and writing:
            refuse(f"{clean(plan.manifest)}, beside pictures without a .txt caption, is a manifest whose captions "
                   f"training reads with: {train_command(plan.manifest)}; to caption the pictures by "
                   f"{by_files} anyway, move it out of the folder first")
        elif plan.parquet is not None and writing:
            # a Hugging Face imagefolder's metadata.parquet (in the folder or above it), which t2i cannot read: its
            # captions, once converted, trained with these as one of theirs (it was passed over unsaid)
            refuse(f"{clean(plan.parquet_said)}; to caption the pictures by {by_files} anyway, move it away first")
        elif plan.above_lines and writing:
            # ... and such lines of a manifest above the folder that hold its name (or one its reader refuses whole):
            # refused alike (they were passed over unsaid, and their pictures captioned by name)
            refuse(f"{clean(plan.above_lines)}; fix that before captioning the pictures here by {by_names} (or move "
                   f"the manifest away)")
        elif plan.manifest_lines and writing:
            # lines of a metadata.jsonl the folder reads that are left out may name pictures without a caption: a
            # caption by name beside them, once they are fixed, trained as one of theirs (it wrote them unsaid)
            refuse(f"the manifests under {clean(folder)} have lines left out ({clean(plan.manifest_lines)}) that may "
                   f"caption pictures this would caption by {by_names}; fix those lines first (t2i data preview "
                   f"{shell_word(folder)} --list-skipped lists them)")
        if plan.above and plan.manifest is None:
            # ds/metadata.csv naming train/a.png, `data caption ds/train`: those pictures are left as they are (a
            # caption by name beside each trained with the manifest's as one of theirs when ds is given); the
            # others are captioned (the whole folder was refused, "move it away first", though it named only some)
            warn(f"{clean(plan.above)}; those pictures are left as they are (their captions are there)")
        if plan.unnamed_pictures and writing:
            # (a metadata.csv of "filename,text" beside them: its captions, once its picture column is named so,
            # are trained with these as one of theirs; said, not refused: t2i cannot tell it names them)
            warn(f"{clean(plan.unnamed_pictures)} has no picture column t2i reads (\"file_name\" or \"image\"), so "
                 f"training does not read its captions; if they are these pictures', name its picture column "
                 f"file_name and train on {shell_word(plan.columns_source or folder)} instead of captioning them by "
                 f"{by_names}")
        if plan.mispaired and writing:  # ("image,text": the same, its columns renamed)
            warn(f"{clean(plan.mispaired)} has columns that do not pair (\"image\" pairs with \"caption\" only, "
                 f"\"file_name\" with \"text\", \"caption\" or \"prompt\"), so training does not read its captions; if "
                 f"they are these pictures', name its picture column file_name and train on "
                 f"{shell_word(plan.columns_source or folder)} "
                 f"instead of captioning them by {by_names}")
        other = "name" if source == "folder" else "folder"
        # pictures whose names hold no words are counted and named with the other --from to try, whether or not
        # others get a caption (a dry run and a write said only the count)
        # (only where the other --from captions one of them: a split's folder, ds/train/IMG_0001.png, gives none)
        try_other = f"try --from {other} for those, or " if plan.other_words else ""
        tried = summary(plan, f"; {try_other}write their NAME.txt files yourself")
        if refused:
            # the run refuses, writing nothing: a dry run listed the caption files it would write there ("would write
            # 2 caption files"), the pictures the manifest's lines left out may caption among them
            if tried:
                warn(tried)
            out.print("would write no caption file: t2i data caption refuses here until what is warned above is "
                      "fixed; nothing written (--dry-run)")
            return
        if not dry_run and not plan.writes:  # (where every caption is written too: a kill after one's link left its
            # temporary there; write_captions removes them where it writes)
            remove_killed_temporaries(plan)
        if not plan.writes:
            if (plan.nameless or plan.taken or plan.undecodable or plan.apart) and not plan.captioned:
                try_other = f"try --from {other}, or " if plan.other_words else ""
                raise DataError(f"no caption to write under {clean(folder)}: " + summary(
                    plan, f"; {try_other}write the captions as NAME.txt files yourself"))
            if not plan.captioned:  # (a mistyped or empty folder said "no pictures", exit 0)
                # (a folder that cannot be read may hold them: named, as a run with pictures to write names it)
                raise DataError(f"no pictures under {clean(folder)} (looked for {', '.join(IMAGE_SUFFIXES)}, in its "
                                f"sub-folders too)" + (f"; {left}" if plan.unreadable else _unread_pictures(folder)
                                                       or "; give the folder that holds them"))
            if tried:
                warn(tried)
            out.print(f"nothing to write: every picture under {clean(folder)} "
                      f"{'that --from ' + source + ' can caption ' if plan.nameless else ''}"
                      f"{'whose caption name is free ' if plan.taken else ''}"
                      f"{'that t2i can open ' if plan.undecodable else ''}has a caption"
                      f"{' or a NAME.txt in another folder (warned above)' if plan.apart else ''}")
            return
        if dry_run:
            for txt, (caption, _) in sorted(plan.writes.items()):
                out.print(f"{clean(txt)}: {clean(caption)}", markup=False, highlight=False, soft_wrap=True)
            if tried:
                warn(tried)
            out.print(f"would write {counted(len(plan.writes), 'caption file')}; nothing written (--dry-run)")
            return
        with progress_bar(quiet, "files") as bar:
            task = bar.add_task("writing captions", total=len(plan.writes), rate="")
            def kept(count: int, more: bool) -> None:  # what a stop says: the files kept, how to write the rest
                rest = "the same command writes the rest" if more else "none is left to write"
                STATE["interrupted"] = (f"{counted(count, 'caption file')} written under {clean(folder)}, each whole; "
                                        f"{rest}; nothing partial was written")

            written, existing = write_captions(plan, lambda k, total: bar.update(
                task, completed=k, rate=rate_text(bar.tasks[task], "files")), kept)
        if existing:
            tried = "; ".join(filter(None, [tried, f"{counted(existing, 'caption file')} made meanwhile by something "
                                                   f"else (kept)"]))
        if tried:
            warn(tried)
        if written:
            first = written[0]
            source = Path(plan.above_source or folder)
            out.print(f"wrote {counted(len(written), 'caption file')} under {clean(folder)} (e.g. {clean(first)}: "
                      f"{clean(plan.writes[first][0])!r}); read them over, then train with: {train_command(source)}",
                      markup=False, highlight=False, soft_wrap=True)


def _list_skipped(every: dict[str, list[str]]) -> None:
    """`data preview --list-skipped`: every item left out, a line each, by reason."""
    for why, places in sorted(every.items()):
        for place in places:
            out.print(f"{why}: {clean(place)}", markup=False, highlight=False, soft_wrap=True)


@app.command(cls=OneValueEach)
def rerank(ctx: typer.Context,
           folder: Path = typer.Argument(..., metavar="FOLDER",
                                         help="Folder of images (PNG files from `t2i generate` carry their prompt)."),
           prompt: Optional[str] = typer.Option(None, "--prompt",
                                                help="Score every image against this prompt instead."),
           top: int = typer.Option(0, "--top", help=f"Write a contact sheet of the best K per prompt (0..{MAX_N}, "
                                                      f"as many as generate draws of a prompt; 0 = no sheet)."),
           link_best: bool = typer.Option(False, "--link-best",
                                          help="Copy the best --top K into FOLDER/best/ (t2i's earlier copies that "
                                               "are no longer among them are removed while FOLDER still holds the "
                                               "picture)."),
           explain: bool = typer.Option(False, "--explain",
                                        help="Show how much each word of the prompt adds to the top score and, "
                                             "with a word-region CLIP, draw where each word looks in the best "
                                             "image (FOLDER/explain-NAME-NNN.png)."),
           bits: bool = typer.Option(False, "--bits",
                                     help="Also give each picture's bits per code: how surprised the transformer is "
                                          "by its codes given its prompt (lower: likelier; in fp32; a t2i PNG's "
                                          "recorded codes, else the dVAE's reading). The ranking stays CLIP's."),
           weights: Optional[Path] = typer.Option(None, "--weights",
                                                  help="Weights folder with clip.safetensors (default: $T2I_WEIGHTS "
                                                       "or the shipped one)."),
           device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
           precision: str = typer.Option("fp32", "--precision",
                                         help="The CLIP's weights: fp32, bf16 or auto (measured in BENCHMARKS.md)."),
           threads: Optional[int] = DRAW_THREADS,
           force: bool = typer.Option(False, "--force",
                                      help="Replace a FOLDER/ranking.json that is not a ranking t2i wrote (one "
                                           "it wrote is always replaced), and with --link-best a "
                                           "best/t2i-copies.json that is not t2i's record."),
           quiet: bool = typer.Option(False, "--quiet", "-q",
                                      help="No progress bar or warnings; print only the ranking and the files "
                                           "written.")) -> None:
    """Score images against their prompt with CLIP; print and write FOLDER/ranking.json, best first."""
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # (until _rerank_outputs writes: ranking.json comes after scoring)
        prompt = utf8_text(prompt, "--prompt")
        start_inference(threads, "rerank")
        _imports_held("t2i_cli.rerank")
        from t2i_cli import rerank as rr

        if not 0 <= top <= MAX_N:  # (a sheet of every picture of a prompt, however many: --top 100000000000 was
            # taken)
            raise UsageError(f"--top must be in 0..{MAX_N} (0 = no sheet), got {said_value(top, plain=True)}")
        if link_best and top < 1:  # (said of the --top given or not: `--link-best --top 0` was told "give one")
            given = "top" in given_options(ctx)
            raise UsageError(f"--link-best needs --top K with K from 1 to {MAX_N} (it copies the best K of each prompt "
                             f"into FOLDER/best/){', got --top 0' if given else ''}; "
                             f"{'give' if given else 'add'} --top K, or leave --link-best out")
        if prompt is not None and blank(prompt):
            raise UsageError("--prompt is empty; give the text the images should match")
        rr.check_folder(folder)
        rr.check_outputs(folder, link_best, force)  # before any work, and before anything is written
        pipe = _load_pipeline(weights_folder(weights), device, need_clip=True, clip_precision=precision)
        if prompt is not None:  # what the CLIP will not read of it, as generate says of its prompt
            text_len = pipe.bundle.clip.cfg.text_len
            _warn_encoding(pipe, pipe.bundle.tokenizer.encode(prompt, text_len), "--prompt", quiet, text_len)
        # the pictures the sheet and --explain use, kept from the decode that read each PNG's text and scored it
        later = {pipe.bundle.clip.cfg.image_side: top} if top else {}
        if explain:
            later[rr.read_side(pipe)] = max(later.get(rr.read_side(pipe), 0), 1)
        squares = rr.Squares(later)
        if bits:  # (--bits's pictures and recorded codes too)
            squares.for_bits(pipe.bundle.dvae)
        with progress_bar(quiet, "images") as bar:
            task = bar.add_task("scoring", total=None, rate="")
            ranked, skipped = rr.rank_folder(pipe, folder, prompt, lambda done, total: bar.update(
                task, completed=done, total=total, rate=rate_text(bar.tasks[task], "images")), squares)
            if bits:
                task = bar.add_task("bits per code", total=len(ranked), rate="")
                rr.add_bits(pipe, ranked, lambda done, total: bar.update(
                    task, completed=done, rate=rate_text(bar.tasks[task], "images")), squares)
        cuts, other = {key: skipped.pop(key, 0) for key in rr.CUTS}, skipped.pop(rr.OTHER_WEIGHTS, 0)
        if other and not quiet:
            warn(f"{other} of the images were drawn by other weights than {clean(pipe.bundle.folder)} (their PNGs "
                 f"record another weights identity); its CLIP scores them here: to score with the CLIP of the "
                 f"weights that drew them, pass --weights with that folder")
        if skipped and not quiet:
            warn("skipped " + ", ".join(counted(v, k) for k, v in skipped.items()))
        for key, where in ((rr.CUT, "read from PNG text"), (rr.CUT_CAPTION, "read from a caption file (NAME.txt)"),
                           (rr.CUT_MANIFEST, "read from a metadata.jsonl or metadata.csv")):
            if cuts[key] and not quiet:  # (said where each came from: a long caption file was blamed on PNG text)
                warn(f"{counted(cuts[key], 'prompt')} {where} {'was' if cuts[key] == 1 else 'were'} longer than "
                     f"{rr.MAX_PROMPT_CHARS:,} characters; each was cut to its first {rr.MAX_PROMPT_CHARS:,}")
        if cuts[rr.CUT_OPTION] and not quiet:
            warn(f"--prompt is longer than {rr.MAX_PROMPT_CHARS:,} characters; it was cut to its first "
                 f"{rr.MAX_PROMPT_CHARS:,}")
        # Every file first, then what is printed: a reader that stops early (`| head`) ended the command before
        # ranking.json was written.
        said: list[str] = []
        shown = [0]  # of said, the lines printed (a stop while they print: the rest, each once)

        def name_files() -> None:
            while shown[0] < len(said):
                out.print(said[shown[0]], soft_wrap=True)
                shown[0] += 1

        try:
            _rerank_outputs(pipe, folder, ranked, top, link_best, explain, said, quiet, squares)
            _print_ranking(ranked, folder)
            name_files()
        except BaseException:
            try:  # the files written before the failure or stop, named as a finished run names them
                name_files()
            except OSError:  # (stdout gone: the first error is said)
                pass
            raise


def _rerank_outputs(pipe, folder: Path, ranked, top: int, link_best: bool, explain: bool, said: list[str],
                    quiet: bool = False, squares=None) -> None:
    """Write what rerank writes (ranking.json, the --top sheet, best/, --explain's maps), adding to said the line
    that names each as it is written, and --explain's word contributions. squares: the pictures rank_folder kept
    (rerank.Squares; read again where not kept)."""
    from t2i_cli import rerank as rr
    from t2i_cli.files import signals_held

    squares = rr.Squares() if squares is None else squares
    best_dir = Path(folder) / rr.BEST
    kept = {"files": 0, "best": ""}  # the files written, and best/ once it is updated: what a stop says

    def wrote(line: str) -> None:  # a file's line and what a stop says, as one step with its write
        kept["files"] += line.startswith("wrote ")
        said.append(line)
        STATE["interrupted"] = (f"{counted(kept['files'], 'finished file')} kept{kept['best']}, named on stdout; "
                                f"nothing partial was written")

    with signals_held():
        wrote(f"wrote {clean(rr.write_ranking(folder, ranked))}")
    if top:
        with signals_held():
            wrote(f"wrote {clean(rr.write_top_sheet(folder, ranked, top, pipe.bundle.clip.cfg.image_side, squares))}")
    if link_best:
        held: dict[Path, Path] = {}  # each best picture -> its copy (one picture held twice: one copy)
        def link_said(removed: int = 0) -> None:  # what a stop says of best/ (as one step with the spares' removal)
            gone = f" ({counted(removed, 'earlier copy')} there no longer among the best removed)" if removed else ""
            STATE["interrupted"] = (f"{counted(kept['files'], 'finished file')} kept, named on stdout, and the copies "
                                    f"made in {best_dir} before the stop, which {best_dir / rr.BEST_RECORD} "
                                    f"names{gone}; nothing partial was written")

        link_said()
        _, copied = rr.link_best(folder, ranked, top, held, link_said)
        kept["best"] = f" and {best_dir} updated"  # (said by say, which cleans it)
        wrote(clean(rr.best_said(folder, held, copied)))
    if explain:  # the best image of each prompt (of the first alone, the others went unexplained, unsaid)
        from t2i_cli.images import tensor_from_image

        for best in (r for r in ranked if r.rank == 1):
            image = tensor_from_image(squares.load(best.path, rr.read_side(pipe)))
            said.append(f"word contributions to the score of {clean(rr.shown(folder, best.path))} (drop when the "
                        f"word is removed):")
            said += [f"  {_right(clean(brief(word)), 12)} {delta:+.4f}"
                     for word, delta in rr.explain(pipe, image, best.prompt)]
            if pipe.bundle.clip.cfg.word_region:
                maps = rr.explain_maps(pipe, image, best.prompt)
                with signals_held():
                    wrote(f"wrote {clean(rr.write_explain(folder, best.path.stem, image, maps))} (where each word "
                          f"looks; beside each word, the cosine of the word and what it attends to)")
        if not pipe.bundle.clip.cfg.word_region and not quiet:
            warn("this CLIP has no word-region head, so --explain shows no attention maps "
                 "(train one with --model word_region=true)")


def _print_ranking(ranked, folder: Optional[Path] = None) -> None:
    """One block per prompt (the prompt once, as a heading), then rank, score and the whole file name (its path
    within folder, for a picture of a sub-folder)."""
    from t2i_cli import rerank as rr

    for i, prompt in enumerate(dict.fromkeys(r.prompt for r in ranked)):
        out.print(("\n" if i else "") + f"prompt: {clean(prompt)}", soft_wrap=True)
        bits = ranked[0].bits is not None
        # (scores to 4 places, a minus sign's room kept: columns line up)
        out.print("  rank    score  " + ("bits/code  " if bits else "") + "file")
        for r in (r for r in ranked if r.prompt == prompt):
            out.print(f"  {r.rank:>4}  {r.score:>7.4f}  " + (f"{r.bits:>9.3f}  " if bits else "")
                      + clean(r.path.name if folder is None else rr.shown(folder, r.path)), soft_wrap=True)


@app.command("eval", cls=OneValueEach)
def eval_cmd(ctx: typer.Context,
             weights: Optional[Path] = typer.Option(None, "--weights",
                                                    help="Weights folder to evaluate (default: $T2I_WEIGHTS or the "
                                                         "shipped one)."),
             data: Optional[str] = typer.Option(None, "--data",
                                                help="Evaluate on this data source's validation split instead of "
                                                     "the world's tasks (a folder, a .jsonl or .csv manifest, world)."),
             n: int = typer.Option(50, "--n", help=f"Prompts per task, 1..{MAX_PER_TASK} (--data: the first N val "
                                                           "pictures measured, and their captions drawn)."),
             seeds: list[int] = typer.Option([0], "--seed", metavar="<int>",
                                             help="Seed of the prompt sets and of sampling (default 0); repeat it "
                                                  "to score several seeds in one run (--seed 0 --seed 1: one "
                                                  f"table each, then their mean; at most {MAX_EVAL_SEEDS}, "
                                                  "one with --data).", show_default=False),
             candidates: Optional[int] = typer.Option(None, "--candidates",
                                                      help=f"The world's tasks: draw N (1..{MAX_N}) per prompt and "
                                                           f"keep CLIP's best (default {DEFAULT_CANDIDATES}, as "
                                                           f"generate, when the weights have a CLIP, 1 with --top-k 1 "
                                                           f"or a --top-p up to 1/the codebook's size; 1 = off; not "
                                                           f"with --data)."),
             temperature: float = DRAW_TEMPERATURE,
             top_k: int = DRAW_TOP_K,
             top_p: float = DRAW_TOP_P,
             guidance: float = DRAW_GUIDANCE,
             guidance_start: Optional[float] = DRAW_GUIDANCE_START,
             guidance_stop: Optional[float] = EVAL_GUIDANCE_STOP,
             jacobi: int = DRAW_JACOBI,
             regional: float = DRAW_REGIONAL,
             draws: int = typer.Option(1, "--draws",
                                       help=f"--data: images drawn per val caption (1..{MAX_DRAWS}, with --n x "
                                            f"--draws at most {MAX_PER_TASK}), each its own "
                                            "draw: a small val split gives steadier CLIP scores and Frechet "
                                            "distance with more (not with --top-k 1, or a --top-p up to 1/the "
                                            "codebook's size, which draw one image)."),
             judge_path: Optional[Path] = typer.Option(None, "--judge",
                                                       help="The world's tasks: judge classifier (default: "
                                                            "judge.safetensors of the weights folder, else the "
                                                            "shipped one; not with --data)."),
             json_path: Optional[Path] = typer.Option(None, "--json",
                                                      help="Also write the results here (an existing file only "
                                                           "if it is the JSON of a t2i eval, or with --force)."),
             force: bool = typer.Option(False, "--force",
                                        help="With --json: replace the file even if it is not a t2i eval's."),
             images_dir: Optional[Path] = typer.Option(None, "--images",
                                                       help="Also write every image the judge scored (--data: every "
                                                            "image drawn, and each val picture beside the dVAE's "
                                                            "reconstruction of it) into this folder as a PNG named "
                                                            "by seed, "
                                                            "task, prompt and verdict (seed0-two_objects-007-fail-000"
                                                            ".png), "
                                                            "its prompt, seed and the judge's checks in its text; "
                                                            "made if missing, files there are kept."),
             device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
             precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
             threads: Optional[int] = DRAW_THREADS,
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or warnings.")) -> None:
    """Score a model on the procedural world, GenEval-style, with an independent judge; or, with --data, on the
    validation split of any data (dVAE PSNR, bits per code, CLIP score, Frechet and kernel distances)."""
    with user_errors():
        STATE["interrupted"] = NOTHING_WRITTEN  # (until --images keeps a picture, or --json, written at the end)
        STATE["eval_kept"] = STATE["eval_json"] = None  # (this command's own, run in-process after another)
        start_inference(threads, "eval")
        _imports_held("t2i_cli.world.evaluate", "t2i_cli.world.judge")
        from t2i_cli.world import evaluate as ev
        from t2i_cli.world import judge as jd
        from t2i_cli.world import tasks

        for seed in seeds:
            check_seed(seed)
        if len(seeds) > MAX_EVAL_SEEDS:
            raise UsageError(f"--seed: at most {MAX_EVAL_SEEDS} seeds in one run, got {len(seeds)}")
        twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if twice:
            raise UsageError(f"--seed {twice[0]} is given twice: give each seed once")
        if force and json_path is None:
            raise UsageError("--force replaces the --json file; give --json FILE or leave --force out")
        if json_path is not None:  # before minutes of work, not after
            from t2i_cli.files import check_output_file

            check_output_file(json_path, "--json")
            _check_eval_json(json_path, force)
        if images_dir is not None:  # (made as the work starts, _eval_images)
            from t2i_cli.files import check_folder_path

            check_folder_path(images_dir, "--images")
        # a folder or a device as --judge, said before T2I_WEIGHTS is read (its hint said it chose that folder)
        if data is None and judge_path is not None and judge_path.exists() and not judge_path.is_file():
            raise UsageError(f"--judge {judge_path} is not a file; give a judge's safetensors file (or leave --judge "
                             f"out for the weights folder's or the shipped one)")
        folder = weights_folder(weights)
        # a --top-p at or below 1/codebook is greedy as --top-k 1 is (_greedy_by_p, before the load): `eval --top-p
        # 1e-9` was refused as "--candidates 4", an option not given, once the weights loaded
        by_p = _greedy_by_p(top_k, top_p, folder)
        if top_k == 1 or by_p:  # greedy: each prompt's candidates (or a caption's draws) would be the same image
            if data is None and candidates is not None and 1 <= candidates <= MAX_N:
                refuse_greedy_copies("--candidates", candidates, **by_p)
            if data is not None and 1 <= draws <= MAX_DRAWS:
                refuse_greedy_copies("--draws", draws, **by_p)
            if candidates is None:
                candidates = 1
        one_for_want_of_clip = candidates is None and not (folder / "clip.safetensors").is_file()
        if candidates is None:
            candidates = 1 if one_for_want_of_clip else DEFAULT_CANDIDATES
        if not 1 <= n <= MAX_PER_TASK:
            raise UsageError(f"--n must be in 1..{MAX_PER_TASK}, got {said_value(n, plain=True)}")
        if not 1 <= candidates <= MAX_N:
            raise UsageError(f"--candidates must be in 1..{MAX_N}, got {said_value(candidates, plain=True)}")
        sampling = sampling_of(ctx)
        # before the load, as sampling_of refuses --top-k 1's (it was said once the weights had loaded)
        refuse_moot_beside_top_p(moot_beside_top_p(ctx), by_p)
        if data is not None:
            refused = sorted(given_options(ctx) & {"candidates", "judge_path"})
            if refused:
                raise UsageError(f"{', '.join(flag('judge' if r == 'judge_path' else r) for r in refused)} "
                                 f"{'belongs' if len(refused) == 1 else 'belong'} to the world's tasks, not to --data")
            if len(seeds) > 1:
                raise UsageError("--data scores one --seed at a time")
            if not 1 <= draws <= MAX_DRAWS or n * draws > MAX_PER_TASK:
                raise UsageError(f"--draws must be in 1..{MAX_DRAWS}, with --n x --draws at most {MAX_PER_TASK}; got "
                                 f"--draws {draws} and --n {n}")
            if draws > 1 and not (folder / "clip.safetensors").is_file():  # (it drew nothing; a warning said so)
                raise UsageError(f"--draws {draws} draws images of each val caption for the CLIP to score, and "
                                 f"{folder} has no clip.safetensors, so none is drawn; leave --draws out (the dVAE is "
                                 f"measured as ever), or give weights with a CLIP")
            if not (folder / "clip.safetensors").is_file():
                refuse_undrawn_sampling(ctx, folder)
            _eval_data(folder, data, n, seeds[0], sampling, json_path, device, quiet, precision, draws, force,
                       images_dir, regional_asked="regional" in given_options(ctx))
            return
        if "draws" in given_options(ctx):
            raise UsageError("--draws belongs to --data (images per val caption); the world's tasks draw "
                             "--candidates per prompt")
        pipe = _load_pipeline(folder, device, need_clip=candidates > 1, precision=precision)
        judge_file = judge_path or next((p for p in (folder / "judge.safetensors", REPO_WEIGHTS / "judge.safetensors")
                                         if p.is_file()), folder / "judge.safetensors")
        judge = jd.load_judge(judge_file)
        if one_for_want_of_clip and not quiet:  # said as generate says it, once every check has passed (not at
            # --top-k 1 or a greedy --top-p, which draw one with a CLIP too: candidates was 1 there)
            warn(f"{folder} has no clip.safetensors, so each prompt is drawn once, not the best of "
                 f"{DEFAULT_CANDIDATES} (--candidates 1 asks for one and silences this)")
        unknown = ev.unknown_words(pipe.bundle.tokenizer, pipe.text_len, n, seeds[0])
        if unknown and not quiet:  # weights trained on a user's pictures scored 0% on every task, unexplained
            warn(f"{len(unknown)} of the world's words are not in {folder}'s vocabulary ({', '.join(unknown[:6])}"
                 f"{', ...' if len(unknown) > 6 else ''}): t2i eval draws the procedural world's prompts, which these "
                 f"weights were not trained on; score weights trained on your own pictures with `t2i eval --data "
                 f"FOLDER`")
        side = pipe.bundle.dvae.cfg.image_side
        from t2i_cli.files import sha256_of

        # Which judge scored: a weights folder's own judge.safetensors is preferred to the shipped one
        record = _eval_record(pipe, sampling) | {"judge": {"file": str(judge_file),
                                                           "sha256": sha256_of(judge_file).hexdigest()}}
        runs = []
        plain = PlainProgress(quiet)
        with _eval_images(images_dir) as folder_of_images, progress_bar(quiet, "prompts") as bar:
            per_seed = len(tasks.TASKS) * n
            checking = bar.add_task("judge check", total=len(seeds) * len(tasks.TASKS) * max(n, 50), rate="")
            generating = bar.add_task("generate", total=len(seeds) * per_seed, rate="", start=False)
            for k, seed in enumerate(seeds):
                tag = f"seed {seed} " if len(seeds) > 1 else ""

                def judged(name: str, i: int, total: int, tag: str = tag) -> None:
                    bar.update(checking, advance=1, description=f"judge {tag}{name}")

                def generated(name: str, i: int, total: int, tag: str = tag, done: int = k * per_seed) -> None:
                    bar.update(generating, completed=done + tasks.TASKS.index(name) * n + i,
                               description=f"eval {tag}{name}")
                    plain.update(f"eval {tag}{name}", done + tasks.TASKS.index(name) * n + i, len(seeds) * per_seed,
                                 {}, (), unit="prompts")

                # (the judge's renders: the seed after the eval's, 0 after the largest --seed, which it takes)
                judge_seed = seed + 1 if seed < MAX_SEED else 0
                validation = ev.validate_judge(judge, max(n, 50), judge_seed, side, progress=judged)
                validation_of = {"renders": max(n, 50), "seed": judge_seed}  # (said with the table: its two columns)
                dvae = ev.dvae_metrics(pipe.bundle.dvae, 256, seed)
                bar.start_task(generating)
                keep = None if folder_of_images is None else _keep_judged(pipe, sampling, candidates, seed,
                                                                          folder_of_images)
                run = ev.evaluate_model(pipe, judge, n, seed, sampling, candidates, progress=generated, keep=keep)
                runs.append(run | {"judge_validation": validation, "judge_checked_on": validation_of, "dvae": dvae}
                            | record)
        for run in runs:
            _print_eval(run)
        # one layout for a script at any number of seeds: "seeds" and every run whole under "runs" (a run's own
        # fields at the top too, for one seed; the device and thread count the runs share, for several)
        result = runs[0] | {"seeds": [runs[0]["seed"]], "runs": [runs[0]]} if len(runs) == 1 else \
            ev.across_seeds(runs) | {"judge": record["judge"]} | {
                k: runs[0][k] for k in ("device", "threads") if all(k in r and r[k] == runs[0][k] for r in runs)}
        if len(runs) > 1:
            _print_seeds(result)
        doubtful = _doubtful_judge(runs)
        if doubtful and not quiet:  # a tiny model's 16 px: the judge agreed with real renders on 2-82% of a task
            warn(f"at {side} px the judge is not to be trusted on {', '.join(doubtful)} (it agrees with the world's "
                 f"own renders, or rejects wrong ones, on less than {JUDGE_TRUSTED:.0%} of them: see the table); "
                 f"those accuracies say little about the model (the judge is checked at 64 and 128 px)")
        if json_path is not None:
            _write_eval_json(json_path, result, force)


JUDGE_TRUSTED = 0.9  # the judge's agreement with real renders (and its rejection of wrong ones) that eval expects


def _doubtful_judge(runs: list[dict]) -> list[str]:
    """The tasks on which the judge, checked on the world's own renders at the model's side, agreed or rejected
    wrong renders less than JUDGE_TRUSTED of the time in any run: there its verdicts on the model's pictures
    are no measure (at 64 and 128 px every task is at least 98%: BENCHMARKS.md, "The eval judge")."""
    return [task for task in runs[0]["judge_validation"]
            if any(min(run["judge_validation"][task].values()) < JUDGE_TRUSTED for run in runs)]


def _is_eval_json(obj) -> bool:
    """Whether parsed JSON is what `t2i eval --json` writes: the world's tasks (tasks, overall) or --data's
    measures (dvae, transformer, val_size)."""
    return isinstance(obj, dict) and ({"tasks", "overall"} <= obj.keys()
                                      or {"dvae", "transformer", "val_size"} <= obj.keys())


def _check_eval_json(path: Path, force: bool) -> None:
    """eval --json replaces an existing file only when it is a t2i eval's JSON (weights/eval.json is refreshed
    that way), or with --force."""
    from t2i_cli.files import check_replaceable

    check_replaceable(path, _is_eval_json, f"--json {path}", "the JSON of a t2i eval", force)


def _write_eval_json(path: Path, result: dict, force: bool) -> None:
    """The results, atomically; checked again first (minutes have passed since the start)."""
    from t2i_cli.files import atomic_write_json, signals_held

    _check_eval_json(path, force)
    with signals_held():
        atomic_write_json(path, result)
        STATE["eval_json"] = path
        STATE["interrupted"] = _eval_kept()
    out.print(f"wrote {clean(path)}")


def _image_kept(folder: Path, write: Callable[[], object]) -> None:
    """eval --images: write one picture into folder and count it for what a stop says, as one step (written_to);
    eval names none of them on stdout, and writes its results (the table, --json) only at its end."""
    from t2i_cli.files import signals_held

    with signals_held():
        write()
        STATE["eval_kept"] = (folder, STATE["eval_kept"][1] + 1 if STATE.get("eval_kept") else 1)
        STATE["interrupted"] = _eval_kept()


def _eval_kept() -> str:
    """What a stop of eval says it kept: the --images pictures written, and the --json results once written."""
    said = []
    if STATE.get("eval_kept"):
        folder, count = STATE["eval_kept"]
        said.append(f"{counted(count, 'finished image')} kept in {folder} (--images)")
    if STATE.get("eval_json"):
        said.append(f"the results written to {STATE['eval_json']} (--json)")
    return f"{' and '.join(said) or NOTHING_WRITTEN}; nothing partial was written"


@contextmanager
def _eval_images(folder: Optional[Path]) -> Iterator[Optional[Path]]:
    """eval --images: the folder made (with its parents, if missing) as the work starts, and the folders it made
    taken away again if the eval ends before it wrote anything into them."""
    if folder is None:
        yield None
        return
    from t2i_cli.files import remove_empty

    made = _pictures_folder(folder, "--images")
    try:
        yield folder
    finally:
        remove_empty(made)


def _eval_meta(pipe, g, seed: int, n: int, sampling, what: dict) -> dict[str, str]:
    """The PNG text of an image eval --images writes: generate's provenance (its prompt drawn with this seed and
    n reproduces it, up to the rounding of another batch) and what the eval made of it (t2i_eval, JSON)."""
    from t2i_cli.outputs import made_from, provenance

    return provenance(g, seed, n, sampling, pipe.bundle.identity, made_from(pipe.request(g.prompt, sampling), None,
                                                                             pipe.precision),
                      pipe.device.type, pipe.bundle.generator) | {"t2i_eval": json.dumps(what, sort_keys=True)}


def _keep_judged(pipe, sampling, candidates: int, eval_seed: int, folder: Path):
    """eval --images for the world's tasks: each judged image as seedS-TASK-III-pass-NNN.png (or -fail-NNN)."""
    from t2i_cli.outputs import write_image

    def keep(task: str, i: int, seed: int, g, checks: dict[str, bool]) -> None:
        passed = all(checks.values())
        what = {"task": task, "eval_seed": eval_seed, "prompt_index": i, "passed": passed, "checks": checks}
        meta = _eval_meta(pipe, g, seed, candidates, sampling, what)
        _image_kept(folder, lambda: write_image(g, folder, meta,
                                                f"seed{eval_seed}-{task}-{i:03d}-{'pass' if passed else 'fail'}",
                                                "--images"))

    return keep


def refuse_undrawn_sampling(ctx: typer.Context, folder: Path) -> None:
    """eval --data of weights without clip.safetensors draws no picture (nothing would score it): a sampling option
    given there at other than its default changes nothing (it was taken, and a warning said so once the work was
    done); its default asks for nothing and is taken. --seed and --precision still count (the names of --images'
    files and the record; the transformer's bits per code)."""
    from dataclasses import fields

    from t2i_cli.sampling_config import SamplingConfig

    given, defaults = given_options(ctx), SamplingConfig()
    moot = [f"{flag(f.name)} {said_float(ctx.params[f.name])}" for f in fields(SamplingConfig)
            if f.name in given and ctx.params[f.name] != getattr(defaults, f.name)]
    if moot:
        named = moot[0] if len(moot) == 1 else f"{', '.join(moot[:-1])} and {moot[-1]}"
        raise UsageError(f"{named} change{'s' if len(moot) == 1 else ''} nothing with --data and {folder}, which has "
                         f"no clip.safetensors, so no picture is drawn (the dVAE and the transformer's bits per code "
                         f"are measured as ever); leave {'it' if len(moot) == 1 else 'them'} out, or give weights "
                         f"with a CLIP")


def _eval_data(folder: Path, data: str, n: int, seed: int, sampling, json_path: Optional[Path], device: str,
               quiet: bool, precision: str = "fp32", draws: int = 1, force: bool = False,
               images_dir: Optional[Path] = None, regional_asked: bool = False) -> None:
    """t2i eval --data: the val split of any data source, as a table and optionally JSON (a setting a greedy --top-p
    makes moot was refused before the load)."""
    from rich.table import Table

    from t2i_cli.data_eval import evaluate_data

    pipe = _load_pipeline(folder, device, precision=precision)
    with _eval_images(images_dir) as folder_of_images, progress_bar(quiet, "images") as bar:
        task = bar.add_task("eval", total=n, rate="")

        def tick(what: str, i: int, total: int) -> None:
            bar.update(task, completed=i, total=total, description=what,
                       rate=rate_text(bar.tasks[task], "images"))

        keep = keep_real = None
        if folder_of_images is not None:
            from t2i_cli.files import write_new
            from t2i_cli.image_prompt import CODES_KEY, codes_text
            from t2i_cli.images import encode_png, image_from_tensor
            from t2i_cli.outputs import write_image

            def keep(i: int, caption_seed: int, g) -> None:
                what = {"data": data, "eval_seed": seed, "caption_index": i, "picture": "drawn"}
                meta = _eval_meta(pipe, g, caption_seed, draws, sampling, what)
                _image_kept(folder_of_images, lambda: write_image(g, folder_of_images, meta, f"seed{seed}-val-{i:03d}",
                                                                  "--images"))

            def keep_real(i: int, caption: str, real, recon, psnr: float, codes) -> None:
                # the val picture as the models read it (cropped and scaled to the dVAE's side), and the dVAE's
                # reconstruction of it from its argmax codes, which it records as generate's PNGs do (`rerank
                # --bits` reads them, not a second reading): not t2i's drawings, so no generate provenance
                for picture, x, extra in (("real", real, {}), ("dvae", recon, {"psnr": round(psnr, 4)})):
                    what = {"data": data, "eval_seed": seed, "caption_index": i, "picture": picture, **extra}
                    text = {"prompt": caption, "t2i_eval": json.dumps(what, sort_keys=True)}
                    if picture == "dvae" and (recorded := codes_text(codes)) is not None:
                        text[CODES_KEY] = recorded
                    png = encode_png(image_from_tensor(x), text)
                    _image_kept(folder_of_images, lambda png=png, picture=picture: write_new(
                        folder_of_images, f"seed{seed}-val-{i:03d}-{picture}", ".png",
                        lambda tmp: tmp.write_bytes(png), "--images"))

        result = evaluate_data(pipe, data, n, seed, sampling, tick, draws, keep, keep_real, regional_asked)
    result |= _eval_record(pipe, sampling)
    split = data.partition(":")[2] if data.startswith("world:") else "val"
    table = Table(title=f"t2i eval --data {clean(data)} — weights {result['weights']}, {result['n']} of "
                        f"{result['val_size']} {split} images"
                        + (", none drawn (no CLIP)" if result["draws"] == 0 else f", {draws} draws each" if draws > 1
                           else "")
                        + f", seed {seed}, {result['precision']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    d, t = result["dvae"], result["transformer"]

    def pm(mean: float, ci: Optional[list[float]], digits: int) -> str:  # the mean, +- its 95% interval's half
        return f"{mean:.{digits}f}" + ("" if ci is None else f" ± {(ci[1] - ci[0]) / 2:.{digits}f}")

    table.add_row("dVAE PSNR (dB, argmax codes, mean per image)", pm(d["psnr"], d["psnr_ci95"], 2))
    table.add_row("dVAE codebook perplexity", f"{d['perplexity']:.1f}")
    table.add_row("dVAE codes used", f"{d['codes_used']:,}" + (f" of {d['n_codes']:,}" if "n_codes" in d else ""))
    table.add_row("transformer val bits per code", pm(t["bits_per_code"], t["bits_per_code_ci95"], 3))
    if "clip" in result:
        c = result["clip"]
        table.add_row("CLIP cosine*, generated vs caption", pm(c["score_generated"], c["score_generated_ci95"], 4))
        table.add_row("CLIP cosine*, real vs caption", pm(c["score_real"], c["score_real_ci95"], 4))
        two = "needs 2 or more real images (--n, and the split's size)"
        fd, kd = c["frechet_distance"], c["kernel_distance"]
        table.add_row("Frechet distance, CLIP image space**", two if fd is None else f"{fd:.4f}")
        table.add_row("kernel distance (KID x 1000), CLIP image space**", two if kd is None else f"{1000 * kd:.2f}")
    out.print(table)
    if result["n"] >= 2:
        more = "more pictures (--n) narrow it" if result["n"] < result["val_size"] else \
            "these are all of the val split's"
        out.print(f"±: the 95% interval of a mean over the {result['n']} val pictures (Student's t; of a drawn "
                  f"picture's cosine: over their captions); {more}.", soft_wrap=True)
    if "clip" in result:  # (the footnotes of its rows)
        out.print("* clip.safetensors' sentence-level cosine (-1..1), not the reranker's score of generate and rerank "
                  "(which adds word regions, crops and clip-2).", soft_wrap=True)
        out.print(f"** t2i's own CLIP embeddings ({c['embedding_dim']} numbers): they compare models on the same data, "
                  f"not with published FID or KID. The Frechet distance is biased upward at small n: compare it only "
                  f"at the same --n; the kernel distance is unbiased (about 0 for two samples of one set).",
                  soft_wrap=True)
    if "clip" not in result and not quiet:
        warn(f"{folder} has no clip.safetensors: no CLIP cosine or distance (and no picture is drawn, so the "
             f"sampling options change nothing)")
    if result.get("skipped") and not quiet:
        warn(f"{data}: {result['skipped']}")
    if (unknown := result.get("unknown_words")) and not quiet:
        words = f"{unknown['words']:,} word{'' if unknown['words'] == 1 else 's'}"
        # (it said the tokenizer "has no token for" them, of words it reads as several of its tokens: "calculator" as
        # c a l c u l a to r; what is true of both kinds is that it did not learn them whole, which BPE does to
        # every word of its training captions until its vocabulary is full, the most frequent first)
        warn(f"{data}: the val captions hold {words} that {folder}'s tokenizer did not learn whole (e.g. "
             f"{', '.join(clean(brief(w)) for w in unknown['examples'])}; each read as several pieces, or as "
             f"unknown): a tokenizer learns the words of its training captions whole, the most frequent first, so "
             f"its model saw these rarely or never in training, and these scores say how little it reads of such "
             f"captions")
    if json_path is not None:
        _write_eval_json(json_path, result, force)


def _eval_record(pipe, sampling) -> dict:
    """What an eval's JSON records of the model and settings it ran: weights identity, precision, sampling."""
    import torch

    # the device and thread count too: the numbers depend on both (a matrix product's sums are grouped by the
    # threads), and the default thread count follows how busy the machine is
    return {"weights": pipe.bundle.identity, "precision": pipe.precision, "device": pipe.device.type,
            "threads": torch.get_num_threads(),
            "sampling": {k: v for k, v in sampling.__dict__.items() if k != "use_cache"}}


def _judge_tag(result: dict) -> str:
    """The end of an eval table's title: which judge scored it (the start of its file's sha256)."""
    return f", judge {result['judge']['sha256'][:16]}" if "judge" in result else ""


def _print_seeds(result: dict) -> None:
    """The per-task accuracy of each seed of a several-seed `t2i eval`, and their mean."""
    from rich.table import Table

    table = Table(title=f"t2i eval — weights {result['weights']}, seeds {', '.join(map(str, result['seeds']))}"
                        + _judge_tag(result))
    table.add_column("task")
    for seed in result["seeds"]:
        table.add_column(f"seed {seed}", justify="right")
    table.add_column("mean", justify="right")
    for name, r in result["tasks"].items():
        table.add_row(name, *(f"{a:.1%}" for a in r["by_seed"]), f"{r['accuracy']:.1%}")
    table.add_row("overall", *(f"{run['overall']:.1%}" for run in result["runs"]), f"{result['overall']:.1%}")
    out.print(table)


def _print_eval(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"t2i eval — weights {result['weights']}, {result['n_per_task']} prompts per task, "
                        f"candidates {result['candidates']}, seed {result['seed']}" + _judge_tag(result))
    for col in ("task", "accuracy (95% interval)", "checks", "judge agrees with real renders",
                "judge rejects wrong renders"):
        table.add_column(col)
    for name, r in result["tasks"].items():
        v = result["judge_validation"][name]
        checks = " ".join(f"{c}={x:.2f}" for c, x in r["checks"].items())
        low, high = r.get("ci95", (None, None))
        shown = f"{r['accuracy']:.1%}" + (f" ({low:.0%}-{high:.0%})" if low is not None else "")
        table.add_row(name, shown, checks, f"{v['agreement']:.1%}", f"{v['rejects_wrong']:.1%}")
    out.print(table)
    if (on := result.get("judge_checked_on")) is not None:  # (what the judge columns were measured on)
        out.print(f"the judge columns: {on['renders']} of the world's own renders a task at seed {on['seed']}, and "
                  f"as many changed to be wrong")
    d = result["dvae"]
    out.print(f"overall {result['overall']:.1%}; dVAE on val: PSNR {d['psnr']:.2f} dB, code perplexity "
              f"{d['perplexity']:.1f}, {d['codes_used']} distinct codes used; drawing and judging took "
              f"{result['seconds']:.0f} s")


def _exit_code(e: SystemExit) -> int:
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


def _flushed() -> bool:
    """Flush stdout and stderr; whether all of it was written (not a full or closed output, `>/dev/full`: what
    could not be written is lost). A stream is None where t2i started with it closed (`>&-`)."""
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # (ValueError: a closed or detached stream)
            ok = False
    return ok


def _stop_ends_teardown(e: SystemExit) -> None:
    """A command that exits the usual way (training, data, export: the interpreter torn down, its atexit callbacks
    run) has done its work: a Ctrl-C, SIGTERM or SIGHUP during that teardown ends the process at once with the
    command's exit code. It raised KeyboardInterrupt inside an atexit callback of torch's, printed as "Exception
    ignored in atexit callback" and a traceback: torchrun's stop of a process that had finished as rank 0 went on
    exporting a whole run (a Ctrl-C then)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    code = _exit_code(e)

    def now(signum, frame) -> None:
        _flushed()
        os._exit(code)

    def install() -> None:
        for s in stop_signals():
            if signal.getsignal(s) is not signal.SIG_IGN:
                signal.signal(s, now)

    import atexit

    # At the teardown itself (atexit runs the last registered first: before torch's callbacks), never in a caller
    # of main() that catches the SystemExit and goes on (a REPL, a wrapper): its next Ctrl-C is its own.
    atexit.register(install)
    STATE["stops_ignored_at_finalization"] = True  # (_ignore_stops_at_finalization, the last atexit callback)


def _ignore_stops_at_finalization() -> None:
    """The last atexit callback (the t2i entry registers it first of all, __main__): after it, Python's
    finalization puts back the default action of every handler it installed (_stop_ends_teardown's too) and then
    tears torch down (~0.4 s), so a stop then ended the process as killed, exit 143 after its line was said: a kill of
    each of a training run's processes, its loader worker first, stopped the run by the worker's SIGTERM, and the
    main process's own came during that teardown. Ignored (SIG_IGN, which finalization keeps), the process ends
    with the command's exit code."""
    import signal
    import threading

    if not STATE.get("stops_ignored_at_finalization") or threading.current_thread() is not threading.main_thread():
        return
    for s in stop_signals():
        signal.signal(s, signal.SIG_IGN)



def _tokenizer_training_left() -> bool:
    """Whether a stop of `train --stage tokenizer` left the library's training running (tokenizer.training_left):
    the process then ends as an inference command does, at once (nothing is left to write: the stop wrote
    nothing, and the run folder it made is removed before its line)."""
    tokenizer = sys.modules.get("t2i_cli.models.tokenizer")
    return tokenizer is not None and tokenizer.training_left()


def main() -> None:
    """Console-script entry point. An inference command (generate, vary, rerank, eval) that has run ends the
    process with os._exit once stdout and stderr are flushed: tearing down an interpreter that imported
    torch takes ~0.45 s on a 2-core machine (BENCHMARKS.md, cold start), and these commands leave nothing
    for it to do (every file is written to a temporary name and renamed before the command returns; no
    child processes); so does a train that a stop ended while its tokenizer trained (_tokenizer_training_left).
    Other commands, and errors raised with --debug, exit the usual way."""
    if sys.stdout is None:  # started with it closed (`>&-`)
        sys.stdout = _ClosedStdout()
    try:
        with warnings.catch_warnings():  # (the API's word of a prompt's lost words: the commands say it in their own
            warnings.filterwarnings("ignore", category=PromptWarning)  # line, _warn_encoding; this command only)
            app()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP (__main__) before a command's own handling: parsing
        if STATE.get("debug"):
            raise
        if rank_zero():  # (under torchrun rank 0 says it)
            say("interrupted", "yellow", "nothing was started")
        sys.exit(130)
    except OSError as e:  # the help, printed before any command's error handling, into a full output
        if STATE.get("debug") or e.filename is not None:
            raise
        say("error", "red", f"cannot write to standard output: {e.strerror or e}")
        sys.exit(1)
    except SystemExit as e:
        if not STATE.get("fast_exit") and not _tokenizer_training_left():
            _stop_ends_teardown(e)
            raise
        code = _exit_code(e)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        if not _flushed():
            code = code or 1
        os._exit(code)
