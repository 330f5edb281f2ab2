"""`python -m doppel` is the same as the `doppel` command (torchrun needs the module form)."""

from doppel.cli import main

main()
