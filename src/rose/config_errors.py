"""A config that fails the schema, said in one line a person can act on (issue 32).

Snakemake's ``validate`` raises a WorkflowError whose text is the jsonschema error followed by
the whole failing sub-schema (often 80 lines). The rules show instead the key, as a dotted path
into the config, and what is wrong with its value:

    config key explore.settings.a.dataset: 'cifar' is not one of ['mnist5k', ...]
"""

from __future__ import annotations


def schema_error_message(err: BaseException) -> str:
    """The key and the message of the jsonschema error behind ``err`` (found through its
    ``__cause__`` / ``__context__`` chain); the first line of ``err`` when there is none."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if hasattr(cause, "absolute_path") and hasattr(cause, "message"):
            path = ".".join(str(p) for p in cause.absolute_path)
            return (f"config key {path}: {cause.message}" if path
                    else f"config: {cause.message}")
        cause = cause.__cause__ or cause.__context__
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
