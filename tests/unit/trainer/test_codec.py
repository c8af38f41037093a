import json

import numpy as np
import pytest
import tritonclient.http as triton
from kubeloop_trainer.serve.codec import BadRequest, encode_response, parse_infer_request
from tritonclient.http import InferResult


def _body(*inputs, **extra) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def test_json_tensor_flat_and_nested():
    flat = parse_infer_request(
        _body({"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]})
    )
    nested = parse_infer_request(
        _body({"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}, id="r1")
    )
    assert flat.inputs[0].values.tolist() == nested.inputs[0].values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert nested.id == "r1" and flat.id is None
    assert nested.inputs[0].shape == (2, 2) and nested.inputs[0].values.dtype == np.float64


def test_null_becomes_nan_and_bytes_stay_objects():
    req = parse_infer_request(
        _body(
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.5, None]},
            {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
        )
    )
    assert np.isnan(req.inputs[0].values[1])
    assert req.inputs[1].values.dtype == object and req.inputs[1].values.tolist() == ["x", "y"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"inputs": []}', "non-empty 'inputs'"),
        (
            _body({"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}),
            r"shape \[3\] needs 3 values, got 2",
        ),
        (_body({"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}), "unknown datatype"),
        (
            _body({"name": "x", "shape": [2], "datatype": "FP32", "data": ["a", "b"]}),
            "not a regular FP32 tensor",
        ),
        (_body({"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}), "non-negative"),
        (_body({"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]}), "not a regular"),
        (_body({"shape": [1], "datatype": "FP32", "data": [1]}), "string name"),
        (_body({"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}, id=5), "'id' must be a string"),
    ],
)
def test_bad_requests_say_what_is_wrong(body, message):
    with pytest.raises(BadRequest, match=message) as err:
        parse_infer_request(body)
    assert err.value.status == 400


def _triton_body(arrays: dict[str, np.ndarray], **kw) -> tuple[bytes, int | None]:
    """A request exactly as tritonclient's HTTP client builds it (binary tensors by default)."""
    inputs = []
    for name, arr in arrays.items():
        datatype = "BYTES" if arr.dtype == object else triton.np_to_triton_dtype(arr.dtype)
        i = triton.InferInput(name, list(arr.shape), datatype)
        i.set_data_from_numpy(arr, binary_data=kw.get("binary", True))
        inputs.append(i)
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, request_id="rid")
    return body, json_size


def test_binary_tensors_from_tritonclient():
    f32 = np.arange(6, dtype=np.float32).reshape(3, 2) / 4
    i64 = np.array([1, -2, 3], dtype=np.int64)
    text = np.array(["é", "", "long string"], dtype=object)
    body, json_size = _triton_body({"f": f32, "i": i64, "s": text})
    assert json_size is not None
    req = parse_infer_request(body, json_size)
    assert req.id == "rid"
    f, i, s = req.inputs
    np.testing.assert_array_equal(f.values.reshape(f.shape), f32.astype(np.float64))
    assert i.values.tolist() == [1.0, -2.0, 3.0]
    assert s.values.tolist() == ["é", "", "long string"]


def test_binary_size_must_match_the_data_sent():
    body, json_size = _triton_body({"f": np.ones((2, 2), dtype=np.float32)})
    with pytest.raises(BadRequest, match="binary_data_size"):
        parse_infer_request(body[:-4], json_size)
    with pytest.raises(BadRequest, match="larger than the body"):
        parse_infer_request(body, len(body) + 1)


def test_requested_outputs_and_binary_flags():
    req = parse_infer_request(
        _body(
            {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},
            outputs=[{"name": "predict_proba", "parameters": {"binary_data": True}}, {"name": "predict"}],
        )
    )
    assert req.outputs == ["predict_proba", "predict"]
    assert req.binary_outputs == frozenset({"predict_proba"}) and not req.binary_all
    req = parse_infer_request(
        _body(
            {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},
            parameters={"binary_data_output": True},
        )
    )
    assert req.outputs is None and req.binary_all


@pytest.mark.parametrize("binary", [False, True])
def test_responses_decode_with_tritonclient(binary):
    outputs = {
        "predict": np.array(["setosa", "virginica"], dtype=object),
        "predict_proba": np.array([[0.9, 0.1], [0.2, 0.8]]),
        "ids": np.array([3, 4], dtype=np.int64),
    }
    body, json_length = encode_response("iris", "2", "rid", outputs, set(outputs) if binary else set())
    assert (json_length is not None) == binary
    result = InferResult.from_response_body(body, header_length=json_length)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("iris", "2", "rid")
    predicted = result.as_numpy("predict")
    assert [v.decode() if isinstance(v, bytes) else v for v in predicted.tolist()] == ["setosa", "virginica"]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), outputs["predict_proba"])
    assert result.as_numpy("ids").dtype == np.int64 and result.as_numpy("ids").tolist() == [3, 4]
    assert result.get_output("predict_proba")["shape"] == [2, 2]
