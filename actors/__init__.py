"""TradePulse Live's actors: one package per actor, the runtime and the supervisor apart.

Importing the package imports structlog first, without `rich` (issue 16, memory): structlog
imports rich and pygments (66 modules, ~4 MiB in every process) only to render locals and
console output, which our JSON logs never do (`actors.runtime.logs`: no locals). rich stays
importable afterwards for the one user of it, the operator's `top` view.
"""

from __future__ import annotations

import sys


def _import_structlog_without_rich() -> None:
    if "structlog" in sys.modules or "rich" in sys.modules:
        return  # too late (or rich wanted already): leave it as it is
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` -> ImportError
    try:
        import structlog  # noqa: F401, PLC0415 - imported here on purpose, rich hidden
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()
