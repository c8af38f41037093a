"""Bounded decompression: a model file may not inflate past the limits, whatever its headers say.

The bombs are real skops models whose ``coef_`` member is a deflate stream of zeros (1.5 GiB from 1.6 MB,
built in code). Memory is measured in a child process: its peak RSS (``VmHWM``, reset just before the load)
minus its RSS before the load.
"""

import io
import json
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from kubeloop_trainer.safe_model import UnsafeModelError, ZipLimits, load_model

SKLEARN = ("sklearn.",)
GIB_AND_A_HALF = 1536  # MiB, the size of the bomb in the review

_CHILD = """
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("crafted", sys.argv[1])
crafted = importlib.util.module_from_spec(spec); sys.modules["crafted"] = crafted; spec.loader.exec_module(crafted)
from kubeloop_trainer.safe_model import UnsafeModelError, load_model
declared = None if sys.argv[3] == "-" else int(sys.argv[3])
data = crafted.zip_bomb(int(sys.argv[2]), declared)

def status(field):  # MiB
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS, so that earlier peaks (fitting the seeds) do not count
before = status("VmRSS")
start = time.monotonic()
try:
    load_model(data, ("sklearn.",))
    outcome = "loaded"
except UnsafeModelError as e:
    outcome = "refused: " + str(e)
except BaseException as e:
    outcome = f"other: {type(e).__name__}: {e}"
seconds = time.monotonic() - start
print(json.dumps({"file_mib": len(data) / 2**20, "growth_mib": status("VmHWM") - before, "seconds": seconds, "outcome": outcome}))
"""


def _load_bomb_in_a_child(mib: int, declared: int | None) -> dict:
    crafted_path = Path(__file__).with_name("crafted_models.py")
    args = [
        sys.executable,
        "-c",
        _CHILD,
        str(crafted_path),
        str(mib),
        "-" if declared is None else str(declared),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_zip_bomb_is_refused_from_its_central_directory_in_bounded_memory(crafted):
    result = _load_bomb_in_a_child(GIB_AND_A_HALF, None)
    print("1.5 GiB bomb:", result)
    assert result["file_mib"] < 2
    assert result["outcome"].startswith("refused: "), result
    assert ".npy" in result["outcome"] and "limit" in result["outcome"]  # names the member and the limit
    assert result["growth_mib"] < 200, result
    assert result["seconds"] < 10, result


def test_a_bomb_whose_headers_lie_is_stopped_while_reading(crafted):
    # The central directory says 1 KiB; the stream inflates to 1.5 GiB.
    result = _load_bomb_in_a_child(GIB_AND_A_HALF, 1024)
    print("lying bomb:", result)
    assert result["outcome"].startswith("refused: "), result
    assert result["growth_mib"] < 200, result
    assert result["seconds"] < 10, result


def _garbage(crafted) -> dict[str, bytes]:
    good = crafted.benign_models()["logistic"]
    npy = next(n for n in crafted.members(good) if n.endswith(".npy"))
    flipped = bytearray(good)
    at = good.index(crafted.members(good)[npy]) + 100  # inside the stored array data: the CRC no longer fits
    flipped[at] ^= 0xFF
    return {
        "empty": b"",
        "zip magic only": b"PK\x03\x04",
        "truncated at a third": good[: len(good) // 3],
        "truncated before the directory end": good[:-10],
        "random bytes after the magic": b"PK\x03\x04" + bytes(range(256)) * 8,
        "a bad crc": bytes(flipped),
        "an empty zip": crafted.rezip({}),
        "no schema.json": crafted.rezip(
            {k: v for k, v in crafted.members(good).items() if k != "schema.json"}
        ),
        "schema.json not json": crafted.rezip({**crafted.members(good), "schema.json": b"{not json"}),
        "schema.json nested 100000 deep": crafted.rezip({"schema.json": b"[" * 100_000 + b"]" * 100_000}),
        "a missing array member": crafted.rezip({k: v for k, v in crafted.members(good).items() if k != npy}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "zip magic only",
        "truncated at a third",
        "truncated before the directory end",
        "random bytes after the magic",
        "a bad crc",
        "an empty zip",
        "no schema.json",
        "schema.json not json",
        "schema.json nested 100000 deep",
        "a missing array member",
    ],
)
def test_truncated_and_garbage_files_are_refused(crafted, case):
    with pytest.raises(UnsafeModelError):
        load_model(_garbage(crafted)[case], SKLEARN)


def test_a_deflated_model_within_the_limits_loads(crafted):
    good = crafted.benign_models()["forest"]
    deflated = crafted.rezip(crafted.members(good), zipfile.ZIP_DEFLATED)
    assert hasattr(load_model(deflated, SKLEARN), "predict")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ZipLimits(member_bytes=100), r"member '\d+\.npy' declares \d+ bytes, over the limit of 100"),
        (ZipLimits(schema_bytes=1000), r"member 'schema.json' declares \d+ bytes, over the limit of 1000"),
        (ZipLimits(total_bytes=500), r"the members declare \d+ bytes or more, over the total limit of 500"),
    ],
)
def test_each_limit_is_checked_from_the_central_directory_and_named(crafted, limits, message):
    with pytest.raises(UnsafeModelError, match=message):
        load_model(crafted.benign_models()["logistic"], SKLEARN, limits)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_only_stored_and_deflated_members_are_read(crafted, method):
    # LZMA in particular takes its dictionary size from the file, a memory bomb of its own.
    data = crafted.rezip(crafted.members(crafted.benign_models()["logistic"]), method)
    with pytest.raises(
        UnsafeModelError, match=rf"uses zip compression method {method}; only stored and deflated"
    ):
        load_model(data, SKLEARN)


def test_a_member_that_inflates_to_less_than_it_declares_is_refused(crafted):
    stream, _ = crafted.deflated_zeros(1)
    short = crafted.raw_zip(
        [
            crafted.RawMember(
                "x.npy", stream, zipfile.ZIP_DEFLATED, crc=zlib.crc32(bytes(1 << 20)), size=2 << 20
            )
        ]
    )
    with pytest.raises(UnsafeModelError, match=r"x\.npy"):
        load_model(short, SKLEARN)


def test_a_schema_that_reads_one_member_many_times_counts_every_read(crafted):
    # Each reference is a separate read and a separate array: 200 references to a 64 KiB member cost 200
    # copies, 12.5 MiB from a file of 100 KiB.
    array = io.BytesIO()
    np.save(array, np.zeros(8192))
    data = crafted.rezip(
        {**crafted.members(crafted.benign_models()["logistic"]), "big.npy": array.getvalue()}
    )
    for i in range(200):
        node = {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode", "type": "numpy"}
        data = crafted.with_attribute(data, f"copy_{i}_", {**node, "file": "big.npy", "__id__": 10_000 + i})
    limits = ZipLimits(total_bytes=4 << 20)
    assert sum(len(v) for v in crafted.members(data).values()) < limits.total_bytes / 20
    with pytest.raises(
        UnsafeModelError, match=r"schema.json reads \d+ bytes of members, counting each reference"
    ):
        load_model(data, SKLEARN, limits)
    assert hasattr(load_model(data, SKLEARN), "predict")  # within the default limits it is just a model
