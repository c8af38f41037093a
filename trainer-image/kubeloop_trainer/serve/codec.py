"""Decoding V2 inference requests and encoding responses, JSON and the binary tensor extension.

Pure functions over bytes and numpy arrays, with no web framework in between: this is the per-request hot
path, so it parses with orjson, converts whole tensors with numpy at once, and raises :class:`BadRequest`
(answered with 400 and a V2 error body) for anything a client got wrong.

Binary tensor data (the extension Triton's clients use by default) is supported both ways: an input whose
``parameters.binary_data_size`` is set takes its bytes from after the JSON header, whose length the
``Inference-Header-Content-Length`` header gives; outputs are returned the same way when the request asks
for it (``parameters.binary_data_output`` or an output's ``parameters.binary_data``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import orjson

# V2 datatype -> numpy dtype of the wire format (little endian for binary data).
WIRE_DTYPES: dict[str, str] = {
    "BOOL": "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset((*WIRE_DTYPES, "BYTES"))


class BadRequest(Exception):
    """A client error: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(slots=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    datatype: str
    values: np.ndarray  # flat: float64 for numeric datatypes, object for BYTES


@dataclass(slots=True)
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None  # names asked for; None = the default outputs
    binary_outputs: frozenset[str]  # names to return as binary data
    binary_all: bool  # parameters.binary_data_output


def _shape(raw: object, name: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
    return tuple(raw)


def _from_json(data: object, datatype: str, name: str) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(f"input {name!r}: data must be a list")
    try:
        # Every numeric datatype becomes float64, the dtype the model computes in; null becomes NaN.
        arr = np.asarray(data, dtype=object if datatype == "BYTES" else np.float64)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"input {name!r}: data is not a regular {datatype} tensor ({e})") from None
    return arr.reshape(-1)


def _decode_bytes_tensor(raw: bytes, name: str) -> np.ndarray:
    items: list[str] = []
    offset = 0
    try:
        while offset < len(raw):
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise BadRequest(f"input {name!r}: truncated BYTES element")
            items.append(raw[offset : offset + length].decode())
            offset += length
    except (struct.error, UnicodeDecodeError) as e:
        raise BadRequest(f"input {name!r}: malformed BYTES data ({e})") from None
    return np.array(items, dtype=object)


def _from_binary(raw: bytes, datatype: str, name: str) -> np.ndarray:
    if datatype == "BYTES":
        return _decode_bytes_tensor(raw, name)
    wire = np.dtype(WIRE_DTYPES[datatype])
    if len(raw) % wire.itemsize:
        raise BadRequest(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements")
    return np.frombuffer(raw, dtype=wire).astype(np.float64)


def _parse_input(item: object, binary: memoryview | None, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise BadRequest("each input must be an object with name, shape, datatype and data")
    name = item.get("name")
    if not isinstance(name, str):
        raise BadRequest("each input needs a string name")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    shape = _shape(item.get("shape"), name)
    params = item.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if binary is None or not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size does not match the binary data sent")
        values = _from_binary(bytes(binary[offset : offset + size]), datatype, name)
        offset += size
    else:
        values = _from_json(item.get("data"), datatype, name)
    if values.size != math.prod(shape):
        raise BadRequest(
            f"input {name!r}: shape {list(shape)} needs {math.prod(shape)} values, got {values.size}"
        )
    return Tensor(name, shape, datatype, values), offset


def parse_infer_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Parse a V2 inference request body; ``header_length`` comes from Inference-Header-Content-Length."""
    binary: memoryview | None = None
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise BadRequest("Inference-Header-Content-Length is larger than the body")
        binary = memoryview(body)[header_length:]
        body = body[:header_length]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("the request needs a non-empty 'inputs' list")
    inputs = []
    offset = 0
    for item in raw_inputs:
        tensor, offset = _parse_input(item, binary, offset)
        inputs.append(tensor)
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    params = doc.get("parameters") or {}
    binary_all = bool(params.get("binary_data_output")) if isinstance(params, dict) else False
    outputs: list[str] | None = None
    binary_outputs: set[str] = set()
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise BadRequest("'outputs' must be a list")
        outputs = []
        for out in raw_outputs:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise BadRequest("each requested output needs a string name")
            outputs.append(out["name"])
            out_params = out.get("parameters")
            if isinstance(out_params, dict) and out_params.get("binary_data"):
                binary_outputs.add(out["name"])
    return InferRequest(request_id, inputs, outputs, frozenset(binary_outputs), binary_all)


def v2_datatype(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{arr.dtype.itemsize * 8}"
    if kind == "f":
        return f"FP{arr.dtype.itemsize * 8}"
    return "BYTES"


def _binary_payload(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=WIRE_DTYPES[datatype]).tobytes()


def _json_data(arr: np.ndarray, datatype: str) -> list:
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    return flat.tolist()


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: dict[str, np.ndarray],
    binary: frozenset[str] | set[str],
) -> tuple[bytes, int | None]:
    """The response body and, when some outputs are binary, the JSON header length for the header."""
    described = []
    blobs = []
    for name, arr in outputs.items():
        datatype = v2_datatype(arr)
        entry: dict = {"name": name, "shape": list(arr.shape), "datatype": datatype}
        if name in binary:
            blob = _binary_payload(arr, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_data(arr, datatype)
        described.append(entry)
    header = orjson.dumps(
        {"model_name": model_name, "model_version": model_version, "id": request_id, "outputs": described}
    )
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
