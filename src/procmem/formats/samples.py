"""The sample data that ships with procmem: 160 τ-bench retail traces (MIT licence).

``procmem sample DIR`` (and :func:`write_sample`) writes them out, so the README's
``procmem learn`` and ``procmem eval`` commands run from any install, with no other
data; :func:`sample_file` is the path for Python (``mem.import_traces(sample_file())``).
The traces are the first 160 of τ-bench's retail train split (Sierra, MIT licence;
``procmem/data/tau_retail/README.md`` and ``LICENSE`` travel with them).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from ..core.errors import UsageError

__all__ = ["SAMPLE_NAME", "sample_file", "write_sample"]

SAMPLE_NAME = "tau-retail-sample.jsonl"
"""The file name :func:`write_sample` gives the traces."""


def sample_file() -> Path:
    """The bundled sample's JSONL file (procmem trace format), as a path on disk.

    Raises:
        UsageError: procmem is installed somewhere that is not a folder (a zip file).
    """
    ref = resources.files("procmem").joinpath("data", "tau_retail", "sample.jsonl")
    if not isinstance(ref, Path):
        raise UsageError("the bundled sample is not a file on disk here; use procmem sample DIR")
    return ref


def write_sample(folder: str | os.PathLike[str]) -> list[Path]:
    """Write the sample's traces and licence into ``folder`` (made if missing).

    Returns:
        The written paths: ``folder/tau-retail-sample.jsonl`` (160 traces) and
        ``folder/LICENSE-tau-retail`` (MIT).

    Raises:
        UsageError: ``folder`` exists and is not a folder, or cannot be written.
    """
    out = Path(folder)
    base = resources.files("procmem").joinpath("data", "tau_retail")
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, target in (("sample.jsonl", SAMPLE_NAME), ("LICENSE", "LICENSE-tau-retail")):
            with resources.as_file(base.joinpath(name)) as src:
                shutil.copyfile(src, out / target)
            written.append(out / target)
    except OSError as err:
        raise UsageError(f"cannot write the sample into {str(out)!r}: {err.strerror}") from err
    return written
