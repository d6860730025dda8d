"""Entry points: `python -m t2i_cli` and the `t2i` command (pyproject's project.scripts)."""

import signal
import sys


def entry() -> None:
    """Run the command line. A Ctrl-C, SIGTERM or SIGHUP while its modules load (its first few tenths of a second,
    before any command has its own handler) is one line and exit 130, as a Ctrl-C later is, not a traceback or a
    silent death (143, 129), and they stay so until a command sets its own."""
    for name in ("SIGTERM", "SIGHUP"):  # (kept: every command stops on them as on Ctrl-C; training has its own)
        s = getattr(signal, name, None)
        if s is not None and signal.getsignal(s) is signal.SIG_DFL:  # one ignored (nohup) stays ignored
            signal.signal(s, signal.default_int_handler)
    try:
        from t2i_cli.cli import main
    except KeyboardInterrupt:
        print("interrupted: nothing was started", file=sys.stderr)
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    entry()
