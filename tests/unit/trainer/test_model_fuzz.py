"""Fuzzing the model loader with mutated artifacts, for a bounded number of examples.

Each example takes a benign model file and mutates it: bytes flipped or cut off, a node of ``schema.json``
renamed to a hostile type, given another loader, other content or another member, members swapped for
garbage, or the archive recompressed. Whatever comes out, loading either refuses it with
``UnsafeModelError`` or returns an estimator made only of trusted types, and never touches the world (no
audit event of a socket, a process, a directory or a write; no new path; no new socket).

Deterministic (``derandomize``, and seeds with their object ids renumbered) and without an example
database, so CI runs the same examples every time and writes nothing; ``EXAMPLES`` keeps it to a few
seconds. To fuzz longer or with other examples locally, raise ``EXAMPLES`` or drop ``derandomize``.
"""

import hashlib
import json
import time
import zipfile
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from kubeloop_trainer.safe_model import UnsafeModelError, load_model
from sklearn.base import BaseEstimator

SKLEARN = ("sklearn.",)
EXAMPLES = 1000

# Type names an attacker would try: foreign classes reached through scikit-learn, functions, builtins.
HOSTILE_TYPES = [
    ("sklearn.datasets._lfw", "Memory"),
    ("sklearn.callback._transport", "Listener"),
    ("sklearn.callback._progressbar", "Thread"),
    ("sklearn.datasets._base", "Path"),
    ("sklearn.utils._bunch", "Bunch"),
    ("sklearn.utils", "shuffle"),
    ("sklearn.utils._testing", "TempMemmap"),
    ("posix", "system"),
    ("os", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "open"),
    ("subprocess", "Popen"),
    ("functools", "partial"),
    ("operator", "attrgetter"),
    ("numpy", "load"),
    ("numpy.random", "MT19937"),
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.linear_model._logistic", "LogisticRegression"),
]
LOADERS = [
    "BytearrayNode", "BytesNode", "CachedNode", "ConstructorFromReduceNode", "DTypeNode", "DefaultDictNode",
    "DictNode", "FunctionNode", "JsonNode", "ListNode", "LossNode", "MaskedArrayNode", "MethodNode",
    "NdArrayNode", "ObjectNode", "OperatorFuncNode", "PartialNode", "RandomGeneratorNode",
    "RandomStateNode", "SetNode", "SliceNode", "SparseMatrixNode", "TreeNode", "TupleNode", "TypeNode",
]  # fmt: skip
TRUSTED_ROOTS = {"sklearn", "numpy", "scipy", "builtins"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


class Mutant:
    """A mutated file and how it was made; hypothesis prints the recipe on failure, not the bytes."""

    def __init__(self, recipe: str, data: bytes):
        self.recipe, self.data = recipe, data

    def __repr__(self) -> str:
        return f"Mutant({self.recipe})"


def _nodes(state: Any, out: list[dict]) -> list[dict]:
    if isinstance(state, dict):
        out.append(state)
        for value in state.values():
            _nodes(value, out)
    elif isinstance(state, list):
        for value in state:
            _nodes(value, out)
    return out


def _mutate_schema(draw, crafted, data: bytes, steps: list[str]) -> bytes:
    files = crafted.members(data)
    state = json.loads(files["schema.json"])
    for _ in range(draw(st.integers(1, 3))):
        nodes = _nodes(state, [])
        at = draw(st.integers(0, len(nodes) - 1))
        node = nodes[at]
        op = draw(st.sampled_from(["type", "loader", "content", "file", "drop", "id", "wrap", "module"]))
        if op == "type":
            node["__module__"], node["__class__"] = draw(st.sampled_from(HOSTILE_TYPES))
            value: Any = f"{node['__module__']}.{node['__class__']}"
        elif op == "loader":
            value = node["__loader__"] = draw(st.sampled_from(LOADERS))
        elif op == "content":
            value = node["content"] = draw(json_values)
        elif op == "file":
            value = node["file"] = draw(st.sampled_from([*files, "../../etc/passwd", "", "x.npy"]))
        elif op == "drop" and node:
            value = draw(st.sampled_from(sorted(node)))
            del node[value]
        elif op == "id":
            value = node["__id__"] = draw(st.integers(0, 2**63))
        elif op == "wrap":
            module, cls = draw(st.sampled_from(HOSTILE_TYPES))
            value = f"{module}.{cls}"
            hostile = crafted.constructor_node(module, cls, crafted.json_node(draw(json_values)))
            node.clear()
            node.update(hostile)
        else:
            value = node["__module__"] = draw(st.text(max_size=30))
        steps.append(f"schema node {at}: {op} {value!r:.80}")
    return crafted.rezip({**files, "schema.json": json.dumps(state).encode()})


def _mutate_members(draw, crafted, data: bytes, steps: list[str]) -> bytes:
    files = crafted.members(data)
    name = draw(st.sampled_from(sorted(files)))
    op = draw(st.sampled_from(["garbage", "cut", "npy-header", "drop", "duplicate"]))
    steps.append(f"member {name}: {op}")
    if op == "garbage":
        files[name] = draw(st.binary(max_size=256))
    elif op == "cut":
        files[name] = files[name][: draw(st.integers(0, len(files[name])))]
    elif op == "npy-header":
        shape = draw(st.tuples(st.integers(0, 2**40), st.integers(0, 2**20)))
        dtype = draw(st.sampled_from(["<f8", "|O", "<i8", "|V0", "<U1000000"]))
        header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
        files[name] = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 64
        steps.append(f"npy {dtype} {shape}")
    elif op == "drop":
        del files[name]
    else:
        return crafted.rezip(files) + crafted.rezip({name: draw(st.binary(max_size=64))})
    return crafted.rezip(files)


@st.composite
def mutants(draw, crafted) -> Mutant:
    seeds = crafted.benign_models()
    seed = draw(st.sampled_from(sorted(seeds)))
    data, steps = seeds[seed], [seed]
    kind = draw(st.sampled_from(["bytes", "truncate", "schema", "schema", "members", "compression"]))
    if kind == "bytes":
        out = bytearray(data)
        edits = draw(
            st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8)
        )
        for at, value in edits:
            out[at] = value
        data = bytes(out)
        steps.append(f"bytes set {edits}")
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
        steps.append(f"truncated to {len(data)}")
    elif kind == "schema":
        data = _mutate_schema(draw, crafted, data, steps)
    elif kind == "members":
        data = _mutate_members(draw, crafted, data, steps)
    else:
        method = draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
        data = crafted.rezip(crafted.members(data), method)
        steps.append(f"recompressed with method {method}")
    steps.append(f"sha256 {hashlib.sha256(data).hexdigest()[:12]}")
    return Mutant(" | ".join(steps), data)


def _foreign_objects(obj: Any, seen: set[int] | None = None) -> list[str]:
    """Types of everything reachable from the model's attributes that come from outside the trusted roots."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None), np.ndarray, np.generic)):
        return []
    seen.add(id(obj))
    found = [] if type(obj).__module__.split(".")[0] in TRUSTED_ROOTS else [type(obj).__module__]
    children: list[Any] = []
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    for child in children:
        found += _foreign_objects(child, seen)
    return found


def test_the_loader_refuses_or_loads_mutated_artifacts_and_never_acts(crafted, tmp_path_factory, monkeypatch):
    workdir = tmp_path_factory.mktemp("fuzz-cwd")
    monkeypatch.chdir(workdir)
    crafted.benign_models()  # fit the seeds before timing
    outcomes = {"refused": 0, "loaded": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,  # a busy CI machine must not fail an example for being slow; pytest-timeout guards hangs
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing recipe is printed as it is
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutant=mutants(crafted))
    def check(mutant: Mutant) -> None:
        model = None
        with crafted.side_effects(workdir) as effects:
            try:
                model = load_model(mutant.data, SKLEARN)
            except UnsafeModelError:
                outcomes["refused"] += 1
        assert not effects, effects
        if model is not None:
            outcomes["loaded"] += 1
            assert isinstance(model, BaseEstimator)
            assert _foreign_objects(model) == []

    # hypothesis caches what it learns of the source under its home, by default <cwd at import>/.hypothesis
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis-home"))
    start = time.monotonic()
    try:
        check()
    finally:
        set_hypothesis_home_dir(None)
    seconds = time.monotonic() - start
    print(f"fuzz: {sum(outcomes.values())} examples in {seconds:.1f} s: {outcomes}")
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0  # the mutations reach both outcomes
    assert seconds < 60
