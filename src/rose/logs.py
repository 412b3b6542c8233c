"""Send a job's stdout/stderr (including tqdm's progress bar) to its Snakemake log file."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redirect_to(path: str | Path) -> Iterator[None]:
    """Redirect ``sys.stdout`` and ``sys.stderr`` into ``path`` (append). A failure's traceback
    is written to the log too; it still propagates, so the terminal shows it as well."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            raise
