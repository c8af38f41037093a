"""Hostile model files, made in code rather than committed as binaries, and a recorder of side effects.

Loaded by path from ``conftest.py`` (the suite runs with ``--import-mode=importlib``). Everything here
builds bytes; nothing loads them, so the tests decide what loading must and must not do.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

MiB = 1 << 20

# Classes that the old trust check accepted because they are *reachable* from a scikit-learn module, though
# defined elsewhere, with what their constructor does when a model file names them.
FOREIGN_CLASSES = {
    "joblib.Memory": ("sklearn.datasets._lfw", "Memory"),  # creates its cache directory
    "multiprocessing.connection.Listener": ("sklearn.callback._transport", "Listener"),  # listens on TCP
    "threading.Thread": ("sklearn.callback._progressbar", "Thread"),
    "pathlib.Path": ("sklearn.datasets._base", "Path"),
}


# ---- benign seeds -------------------------------------------------------------------------------------


@functools.cache
def benign_models() -> dict[str, bytes]:
    """Small fitted models of the families the trainer makes, as skops bytes (fitted once per session)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    Xc = np.array([[float(i), "u" if i % 2 else "v"] for i in range(40)], dtype=object)
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [1])],
        remainder="passthrough",
        sparse_threshold=0.0,
    )
    models = {
        "logistic": LogisticRegression().fit(X, y),
        "forest": RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(X, X[:, 1]),
        "hist_gb": HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, y),
        "pipeline": Pipeline([("encode", encode), ("model", LogisticRegression())]).fit(Xc, y),
    }
    return {name: _canonical(sio.dumps(model)) for name, model in models.items()}


_OBJECT_ID = re.compile(r'(?<="__id__": )\d+|\d+(?=\.npy)')


def _canonical(data: bytes) -> bytes:
    """The same file with its object ids (memory addresses: in ``__id__`` and member names) numbered in order.

    skops names nodes and members by ``id()``; without this every run would fuzz other bytes.
    """
    ids: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(), str(len(ids) + 1))

    files = members(data)
    text = _OBJECT_ID.sub(number, files["schema.json"].decode())
    return rezip(
        {_OBJECT_ID.sub(number, name): content for name, content in files.items()}
        | {"schema.json": text.encode()}
    )


# ---- editing skops files --------------------------------------------------------------------------------


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def rezip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``files``, the same bytes every time (a fixed timestamp)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            z.writestr(
                zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content, compress_type=compression
            )
    return out.getvalue()


def schema(data: bytes) -> dict[str, Any]:
    return json.loads(members(data)["schema.json"])


def with_schema(data: bytes, state: dict[str, Any]) -> bytes:
    return rezip({**members(data), "schema.json": json.dumps(state).encode()})


def json_node(value: Any) -> dict[str, Any]:
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def tuple_node(*items: dict[str, Any]) -> dict[str, Any]:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": list(items)}


def constructor_node(module: str, cls: str, *args: dict[str, Any]) -> dict[str, Any]:
    """A node that makes skops call ``module.cls(*args)`` while loading."""
    return {
        "__class__": cls,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": tuple_node(*args),
    }


def with_attribute(data: bytes, name: str, node: dict[str, Any]) -> bytes:
    """The model with one more attribute on its root estimator, as an attacker would add it."""
    state = schema(data)
    attrs = state["content"]  # the root ObjectNode's DictNode of attributes
    attrs["content"][name] = node
    # DictNode zips its keys with key_types, so the new key needs a type too or it is silently dropped
    attrs["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    )
    return with_schema(data, state)


def foreign_payload(foreign: str, workdir: Path) -> bytes:
    """A working LogisticRegression that also names a foreign class, with arguments that show if it ran."""
    module, cls = FOREIGN_CLASSES[foreign]
    if foreign == "joblib.Memory":
        node = constructor_node(module, cls, json_node(str(workdir / "joblib-cache")))
    elif foreign == "multiprocessing.connection.Listener":
        node = constructor_node(module, cls, tuple_node(json_node("127.0.0.1"), json_node(0)))
    elif foreign == "pathlib.Path":
        node = constructor_node(module, cls, json_node(str(workdir / "p")))
    else:
        node = {"__class__": cls, "__module__": module, "__loader__": "ObjectNode"}
    return with_attribute(benign_models()["logistic"], "payload_", node)


# ---- hand-written zips (headers that say whatever we like) ---------------------------------------------


@dataclass(frozen=True)
class RawMember:
    name: str
    payload: bytes  # as stored in the archive (already compressed for DEFLATED)
    method: int = zipfile.ZIP_STORED
    crc: int | None = None  # None: the CRC of ``payload`` (right for STORED only)
    size: int | None = None  # the uncompressed size the headers declare; None: len(payload)


_LOCAL = struct.Struct(
    "<IHHHHHIIIHH"
)  # signature, version, flags, method, time, date, crc, sizes, name, extra
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # ... + comment, disk, attributes, local header offset
_END = struct.Struct("<IHHHHIIH")  # signature, disks, entries, directory size and offset, comment


def raw_zip(entries: list[RawMember]) -> bytes:
    """A zip written byte by byte, so the central directory can lie about sizes and methods."""
    out, central = io.BytesIO(), io.BytesIO()
    for e in entries:
        name = e.name.encode()
        crc = zlib.crc32(e.payload) if e.crc is None else e.crc
        sizes = (len(e.payload), len(e.payload) if e.size is None else e.size)
        offset = out.tell()
        out.write(
            _LOCAL.pack(0x04034B50, 20, 0, e.method, 0, 0x21, crc, *sizes, len(name), 0) + name + e.payload
        )
        header = (0x02014B50, 20, 20, 0, e.method, 0, 0x21, crc, *sizes, len(name), 0, 0, 0, 0, 0, offset)
        central.write(_CENTRAL.pack(*header) + name)
    directory = central.getvalue()
    end = _END.pack(0x06054B50, 0, 0, len(entries), len(entries), len(directory), out.tell(), 0)
    return out.getvalue() + directory + end


@functools.cache
def deflated_zeros(mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``mib`` MiB of zeros and its CRC-32, built in milliseconds.

    After a full flush the compressor forgets its history, so every 1 MiB block compresses to the same
    ~1 KB: the stream is one block repeated, and a 1.5 GiB member costs 1.6 MB.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = 0, bytes(MiB)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return block * mib + c.flush(zlib.Z_FINISH), crc


def zip_bomb(mib: int, declared: int | None = None) -> bytes:
    """A real skops model whose ``coef_`` array member inflates to ``mib`` MiB of zeros.

    ``declared`` makes the headers claim another uncompressed size, with the CRC of that many zeros: the
    strongest lie, since a reader that stops at the declared size finds the checksum right.
    """
    files = members(benign_models()["logistic"])
    target = schema(benign_models()["logistic"])["content"]["content"]["coef_"]["file"]
    stream, crc = deflated_zeros(mib)
    if declared is not None:
        crc = zlib.crc32(bytes(declared))
    entries = [
        RawMember(name, stream, zipfile.ZIP_DEFLATED, crc, mib * MiB if declared is None else declared)
        if name == target
        else RawMember(name, content)
        for name, content in files.items()
    ]
    return raw_zip(entries)


# ---- what loading must never do ----------------------------------------------------------------------

# Audit events (PEP 578) that mean code from the file did something to the world.
_EFFECTS = (
    "socket.",
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.chmod",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.fork",
    "os.kill",
    "subprocess.Popen",
    "shutil.",
    "ctypes.",
    "_thread.start_new_thread",
    "webbrowser.open",
    "urllib.Request",
)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@dataclass
class _Recorder:
    active: bool = False
    events: list[str] = field(default_factory=list)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event.startswith(_EFFECTS):
            self.events.append(f"{event}{args!r}"[:200])
        elif event == "open" and _writes(args):
            self.events.append(f"open{args!r}"[:200])


def _writes(args: tuple[Any, ...]) -> bool:
    _, mode, flags = (*args, None, None)[:3]
    return (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and bool(flags & _WRITE)
    )


_RECORDER = _Recorder()
sys.addaudithook(_RECORDER)  # hooks cannot be removed; this one records only inside ``side_effects``


def _sockets() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@dataclass
class Effects:
    events: list[str]
    new_paths: set[str]
    new_sockets: set[str]

    def __bool__(self) -> bool:
        return bool(self.events or self.new_paths or self.new_sockets)


@contextmanager
def side_effects(workdir: Path) -> Iterator[Effects]:
    """Record what happens inside the block: audit events, new paths under ``workdir``, new sockets.

    The audit events catch even a socket or directory that was made and gone again by the end.
    """
    effects = Effects([], set(), set())
    paths, sockets = _tree(workdir), _sockets()
    _RECORDER.events.clear()
    _RECORDER.active = True
    try:
        yield effects
    finally:
        _RECORDER.active = False
        effects.events = list(_RECORDER.events)
        effects.new_paths = _tree(workdir) - paths
        effects.new_sockets = _sockets() - sockets
