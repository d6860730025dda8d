"""Entry points: `python -m t2i_cli` and the `t2i` command (pyproject's project.scripts)."""

import sys


def entry() -> None:
    """Run the command line. A Ctrl-C while its modules load (its first few tenths of a second) is one line and
    exit 130, as one later is, not a traceback."""
    try:
        from t2i_cli.cli import main
    except KeyboardInterrupt:
        print("interrupted: nothing was started", file=sys.stderr)
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    entry()
