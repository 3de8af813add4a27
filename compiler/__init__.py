"""netgen: compile a Python lab file into bash scripts that build, verify and remove network namespaces."""

__version__ = "0.1.0"

from .dsl import Lab  # noqa: E402  (a lab file needs only `from netgen import Lab`)

__all__ = ["Lab", "__version__"]
