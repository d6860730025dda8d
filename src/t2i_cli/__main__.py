"""Entry point for `python -m t2i_cli`."""

from t2i_cli.cli import main

if __name__ == "__main__":
    main()
