"""Saving and loading models in the skops format: in bounded memory, running only trusted code.

A pickle runs code while it loads, so neither the server nor the trainer (loading a champion) ever unpickles
a file from storage; both load through ``load_model``. skops stores a JSON schema of the object tree and
rebuilds only the types it is told to trust. Loading takes three steps, and every refusal is an
``UnsafeModelError`` whose message names the member or type and the limit or rule it broke:

1. **Bounded unzip** (``bounded_archive``). Member sizes are checked as the zip's central directory declares
   them, before anything is inflated, and again as the bytes come out, since a header can lie. Only stored
   and deflated members are read. The members that ``schema.json`` makes skops read, counted once per
   reference, must fit in the total too.
2. **Trust.** Every type skops does not trust by default must be on the explicit list of
   ``trusted_types`` and be a class defined where the file says; anything else, e.g. ``os.system`` in a
   ``FunctionTransformer`` or joblib's ``Memory`` reached as ``sklearn.datasets._lfw.Memory``, refuses the
   file before any object is built.
3. **Build.** skops rebuilds the object, trusting exactly the names step 2 checked, and it must be an
   estimator.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import skops.io as sio
from sklearn.base import BaseEstimator

from kubeloop_trainer.trusted_types import refusal

_ZIP_MAGIC = b"PK\x03\x04"
_SCHEMA = "schema.json"
_CHUNK = 1 << 20
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
MiB = 1 << 20


class UnsafeModelError(ValueError):
    """A model file that is refused: not a skops zip, over a size limit, or naming an untrusted type."""


@dataclass(frozen=True)
class ZipLimits:
    """How far a model file may inflate.

    The defaults hold large forests (hundreds of MB), and bound what a hostile file can cost to what a real
    model of that size costs; loading one near them still needs a few GiB, the pod's memory limit to give.
    """

    member_bytes: int = 512 * MiB
    """Uncompressed size of any one member (one array)."""
    total_bytes: int = 1024 * MiB
    """Uncompressed size of all members together, and of all the reads the schema asks for."""
    schema_bytes: int = 32 * MiB
    """Size of ``schema.json``, which is parsed whole into Python objects several times its size."""


DEFAULT_LIMITS = ZipLimits()


def dump_model(model: BaseEstimator) -> bytes:
    return sio.dumps(model)


def _check_declared(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    total = 0
    for info in infos:
        if info.compress_type not in _METHODS:
            raise UnsafeModelError(
                f"member {info.filename!r} uses zip compression method {info.compress_type}; "
                "only stored and deflated members are read"
            )
        limit = limits.schema_bytes if info.filename == _SCHEMA else limits.member_bytes
        if info.file_size > limit:
            raise UnsafeModelError(
                f"member {info.filename!r} declares {info.file_size} bytes, over the limit of {limit}"
            )
        total += info.file_size
        if total > limits.total_bytes:
            raise UnsafeModelError(
                f"the members declare {total} bytes or more, over the total limit of {limits.total_bytes}"
            )


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sink: zipfile.ZipFile | None) -> bytes | None:
    """Read one member in 1 MiB steps, never past its declared size, copying it to ``sink`` if there is one.

    zipfile itself stops at the declared size, but its plain ``read()`` first inflates up to 2 GiB in one
    call and then cuts: counting here keeps the bound ours. Returns the member's bytes if it is the schema.
    """
    inflated, kept = 0, []
    if sink is None:
        target: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    else:
        target = sink.open(info.filename, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT)
    with archive.open(info) as member, target as out:
        while chunk := member.read(_CHUNK):
            inflated += len(chunk)
            if inflated > info.file_size:
                raise UnsafeModelError(
                    f"member {info.filename!r} inflates past the {info.file_size} bytes its header declares"
                )
            if out is not None:
                out.write(chunk)
            if info.filename == _SCHEMA:
                kept.append(chunk)
    if inflated != info.file_size:
        raise UnsafeModelError(
            f"member {info.filename!r} inflates to {inflated} bytes, not the {info.file_size} it declares"
        )
    return b"".join(kept) if info.filename == _SCHEMA else None


def _files_read(schema: bytes) -> list[str]:
    """The member names ``schema.json`` makes skops read, once per reference (a walk without recursion)."""
    names, stack = [], [json.loads(schema)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                names.append(node["file"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def bounded_archive(data: bytes, limits: ZipLimits = DEFAULT_LIMITS) -> bytes:
    """The skops zip for skops to read: ``data`` itself if all its members are stored, else a stored copy.

    skops must never inflate a member itself (see ``_inflate``), so a compressed archive is inflated here,
    member by member in bounded steps, into a stored copy. Raises UnsafeModelError past any limit.
    """
    if not data.startswith(_ZIP_MAGIC):
        raise UnsafeModelError("the model file is not in the skops format (pickle/joblib files are refused)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        _check_declared(infos, limits)
        compressed = any(info.compress_type != zipfile.ZIP_STORED for info in infos)
        copy = io.BytesIO() if compressed else None
        schema = b"{}"
        with zipfile.ZipFile(copy, "w") if copy is not None else contextlib.nullcontext() as sink:
            for info in infos:
                member = _inflate(archive, info, sink)
                if member is not None:  # the last of duplicate names is the one zipfile reads
                    schema = member
        sizes = {info.filename: info.file_size for info in infos}  # the last of duplicate names, like zipfile
        read = sum(sizes.get(name, 0) for name in _files_read(schema))
    except UnsafeModelError:
        raise
    except Exception as e:  # a corrupt or hand-made zip: refuse, whatever broke
        raise UnsafeModelError(f"the model file is not a readable skops file: {type(e).__name__}: {e}") from e
    if read > limits.total_bytes:
        raise UnsafeModelError(
            f"{_SCHEMA} reads {read} bytes of members, counting each reference, over the total limit of "
            f"{limits.total_bytes}"
        )
    return copy.getvalue() if copy is not None else data


def _refusals(data: bytes, allowed: tuple[str, ...]) -> dict[str, str]:
    """Each untrusted type of a bounded skops zip that may not be loaded, with why."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as e:  # a hand-made schema: refuse, whatever broke
        raise UnsafeModelError(f"the model file is not a readable skops file: {type(e).__name__}: {e}") from e
    return {t: reason for t in untrusted if (reason := refusal(t, allowed)) is not None}


def refused_types(data: bytes, allowed: tuple[str, ...], limits: ZipLimits = DEFAULT_LIMITS) -> list[str]:
    """The types in the file that would not be trusted; raises UnsafeModelError if it is no bounded skops zip."""
    return sorted(_refusals(bounded_archive(data, limits), allowed))


def load_model(data: bytes, allowed: tuple[str, ...], limits: ZipLimits = DEFAULT_LIMITS) -> BaseEstimator:
    """Rebuild a model from skops bytes within ``limits``, trusting only the list; raises UnsafeModelError."""
    data = bounded_archive(data, limits)
    refused = _refusals(data, allowed)
    if refused:
        raise UnsafeModelError(
            "the model file references types outside the allow-list, refusing to load it: "
            + "; ".join(f"{t} ({reason})" for t, reason in sorted(refused.items()))
        )
    try:
        model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception as e:
        raise UnsafeModelError(f"the model file could not be loaded: {type(e).__name__}: {e}") from e
    if not isinstance(model, BaseEstimator) or not callable(getattr(model, "predict", None)):
        raise UnsafeModelError(f"the model file holds a {type(model).__name__}, not an estimator")
    return model
