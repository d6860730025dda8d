"""Entry points: `python -m t2i_cli` and the `t2i` command (pyproject's project.scripts)."""

import sys


def entry() -> None:
    """Run the command line. A Ctrl-C, SIGTERM or SIGHUP while its modules load (its first few tenths of a second,
    before any command has its own handler) is one line and exit 130, as a Ctrl-C later is, not a traceback or a
    silent death (143, 129), and they stay so until a command sets its own."""
    import atexit

    atexit.register(_last_at_exit)  # (first: it runs after every other atexit callback, torch's too)
    try:
        from t2i_cli.files import stop_on_sigterm  # (the standard library's modules alone: quick)

        stop_on_sigterm()  # (kept: every command stops on them as on Ctrl-C; training has its own)
        from t2i_cli.cli import main
    except KeyboardInterrupt:
        print("interrupted: nothing was started", file=sys.stderr)
        raise SystemExit(130) from None
    main()


def _last_at_exit() -> None:
    """After every other atexit callback: a stop while Python then tears the command down is ignored (cli's
    _ignore_stops_at_finalization)."""
    cli = sys.modules.get("t2i_cli.cli")
    if cli is not None:
        cli._ignore_stops_at_finalization()


if __name__ == "__main__":
    entry()
