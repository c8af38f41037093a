"""Reading the training data: bytes once, hashed and parsed from the same buffer.

Hashing the exact bytes that were parsed (rather than re-reading the file) means the data hash in the
manifest names the data the model was really fitted on, even if the file changes while the pod runs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from kubeloop.api import DataSpec
from kubeloop.contract import DataFingerprint, Violation, hash_bytes

from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.storage import StorageError, resolve


@dataclass(frozen=True)
class LoadedData:
    frame: pd.DataFrame
    fingerprint: DataFingerprint


def read_bytes(uri: str, env: Mapping[str, str] | None = None) -> bytes:
    try:
        fs, path = resolve(uri, env)
        with fs.open(path, "rb") as f:
            return f.read()
    except StorageError as e:
        raise TrainerError("InvalidTask", str(e)) from e
    except FileNotFoundError as e:
        raise TrainerError("DataUnavailable", f"data not found at {uri}") from e
    except PermissionError as e:
        raise TrainerError("DataUnavailable", f"no permission to read {uri}: {e}") from e
    except OSError as e:
        raise TrainerError("DataUnavailable", f"could not read {uri}: {e}") from e


# Leading bytes of files that are often handed over as CSV by mistake.
_MAGIC = (
    (b"PAR1", "it is a parquet file (set format: parquet)"),
    (b"\x1f\x8b", "it is gzip-compressed; only uncompressed CSV is read"),
    (b"PK\x03\x04", "it is a zip archive; only uncompressed CSV is read"),
)


def _check_text(raw: bytes) -> None:
    """Refuse bytes that are not CSV text before pandas turns them into a column named by NUL bytes."""
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise ValueError(what)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ValueError(f"it is not UTF-8 text: a NUL byte at offset {nul} (binary data, or UTF-16 text)")


def parse_table(raw: bytes, spec: DataSpec) -> pd.DataFrame:
    """Parse CSV or parquet. Columns declared ``string`` are read as text, so ``007`` stays ``007``.

    A file that cannot be parsed as its declared format is a ``format`` violation that says so, never a
    later "target column missing" about a table pandas made up from binary bytes.
    """
    declared = spec.validation.expected_columns if spec.validation else {}
    try:
        if spec.format == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        _check_text(raw)
        text_columns = {name: "string" for name, kind in declared.items() if kind == "string"}
        return pd.read_csv(io.BytesIO(raw), dtype=text_columns or None)
    except Exception as e:  # any parser error means the file is not what the spec says it is
        message = f"could not parse {spec.uri} as {spec.format}: {e}"
        raise TrainerError(
            "DataValidationFailed", message, [Violation(check="format", message=message[:500])]
        ) from e


def load_data(spec: DataSpec, env: Mapping[str, str] | None = None) -> LoadedData:
    raw = read_bytes(spec.uri, env)
    frame = parse_table(raw, spec)
    entry = hash_bytes(raw)
    fingerprint = DataFingerprint(
        uri=spec.uri,
        format=spec.format,
        sha256=entry.sha256,
        size=entry.size,
        rows=len(frame),
        columns=[str(c) for c in frame.columns],
    )
    return LoadedData(frame=frame, fingerprint=fingerprint)
