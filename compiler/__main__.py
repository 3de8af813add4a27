"""`python -m netgen`, the same as the `netgen` command."""

from .cli import main

main()
