"""Send a job's stdout/stderr (including tqdm's progress bar) to its Snakemake log file."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redirect_to(path: str | Path | None) -> Iterator[None]:
    """Redirect ``sys.stdout`` and ``sys.stderr`` into ``path`` (append); no-op for ``None``."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc(file=log)
            raise
    # keep the traceback visible in the terminal too
    sys.stderr.flush()
