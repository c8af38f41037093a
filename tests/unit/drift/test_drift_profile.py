import json

import numpy as np
import pytest
from kubeloop.drift import (
    CategoricalReference,
    DriftProfile,
    NumericReference,
    build_profile,
    count_categorical,
    count_numeric,
)
from pydantic import ValidationError


def test_numeric_bins_are_right_closed_and_ignore_nan():
    ref = NumericReference(edges=[0.0, 1.0, 2.0], counts=[0, 0, 0, 0])
    values = np.array([-5.0, 0.0, 0.5, 1.0, 1.0000001, 2.0, 3.0, np.inf, -np.inf, np.nan])
    # (-inf, 0] gets -5, 0, -inf; (0, 1] gets 0.5, 1; (1, 2] gets 1.0000001, 2; (2, inf) gets 3, inf.
    assert count_numeric(ref, values).tolist() == [3, 2, 2, 2]
    assert count_numeric(ref, values).dtype == np.int64


def test_continuous_feature_gets_equal_mass_quantile_bins():
    rng = np.random.default_rng(1)
    x = rng.normal(size=10_000)
    profile = build_profile({"x": x}, {}, n_bins=10)
    ref = profile.numeric["x"]
    assert len(ref.edges) == 9
    assert sum(ref.counts) == 10_000
    # inverted_cdf quantiles are data values: bin k holds exactly the k-th tenth of the sorted data.
    assert ref.counts == [1000] * 10
    np.testing.assert_allclose(ref.edges, np.sort(x)[999:9000:1000])


def test_discrete_feature_edges_are_deduplicated():
    x = np.array([0] * 700 + [1] * 250 + [2] * 50, dtype=float)
    ref = build_profile({"x": x}, {}, n_bins=10).numeric["x"]
    # Quantiles 0.1..0.7 are all 0 and 0.8, 0.9 are 1; the top value keeps its own open bin (1, inf).
    assert ref.edges == [0.0, 1.0]
    assert ref.counts == [700, 250, 50]


def test_constant_feature_gets_below_exact_above_bins():
    ref = build_profile({"c": np.full(100, 3.5)}, {}).numeric["c"]
    assert ref.edges == [float(np.nextafter(3.5, -np.inf)), 3.5]
    assert ref.counts == [0, 100, 0]
    assert count_numeric(ref, np.array([3.4, 3.5, 3.6, 3.6])).tolist() == [1, 1, 2]


def test_all_nan_feature_has_a_single_bin_and_empty_sample():
    profile = build_profile({"x": np.full(5, np.nan)}, {})
    assert profile.numeric["x"].edges == []
    assert profile.numeric["x"].counts == [0]
    assert profile.sample["x"] == []


def test_sample_is_bounded_sorted_finite_and_reproducible():
    rng = np.random.default_rng(2)
    x = rng.normal(size=5000)
    x[:10] = np.nan
    x[10:20] = np.inf
    a = build_profile({"x": x}, {}, sample_size=300, seed=7).sample["x"]
    b = build_profile({"x": x}, {}, sample_size=300, seed=7).sample["x"]
    c = build_profile({"x": x}, {}, sample_size=300, seed=8).sample["x"]
    assert a == b != c
    assert len(a) == 300
    assert a == sorted(a)
    assert np.all(np.isfinite(a))
    assert set(a) <= set(x[20:].tolist())
    assert len(build_profile({"x": x[:50]}, {}, sample_size=300).sample["x"]) == 30


def test_categorical_counts_order_unseen_and_missing():
    values = np.array(["b", "a", "b", None, "c", "b", "a", float("nan")], dtype=object)
    ref = build_profile({}, {"k": values}).categorical["k"]
    assert ref.categories == ["b", "a", "c"]
    assert ref.counts == [3, 2, 1, 0]
    live = ["a", "z", "z", None, "b", float("nan"), np.float32("nan")]
    assert count_categorical(ref, live).tolist() == [1, 1, 0, 2]


def test_categorical_values_are_compared_as_strings():
    ref = build_profile({}, {"k": np.array([1, 2, 2, 3])}).categorical["k"]
    assert ref.categories == ["2", "1", "3"]
    assert count_categorical(ref, ["2", 2, 1, True]).tolist() == [2, 1, 0, 1]


def test_rare_categories_are_folded_into_the_last_bucket():
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 2 + ["d"]
    ref = build_profile({}, {"k": np.array(values)}, max_categories=2).categorical["k"]
    assert ref.categories == ["a", "b"]
    assert ref.counts == [5, 4, 3]


def test_profile_round_trips_through_json():
    rng = np.random.default_rng(3)
    profile = build_profile(
        {"x": rng.normal(size=200), "y": rng.integers(0, 3, size=200).astype(float)},
        {"k": rng.choice(["u", "v"], size=200)},
        sample_size=50,
    )
    text = profile.model_dump_json()
    assert json.loads(text)["n_rows"] == 200
    assert DriftProfile.model_validate_json(text) == profile


def test_columns_must_have_equal_length():
    with pytest.raises(ValueError, match="same length"):
        build_profile({"x": np.zeros(3)}, {"k": np.array(["a"])})


@pytest.mark.parametrize(
    ("edges", "counts"),
    [([0.0, 1.0], [1, 2]), ([1.0, 0.0], [1, 2, 3]), ([0.0, 0.0], [1, 2, 3]), ([0.0], [1, -1])],
)
def test_numeric_reference_rejects_bad_shapes(edges, counts):
    with pytest.raises(ValidationError):
        NumericReference(edges=edges, counts=counts)


def test_categorical_reference_rejects_bad_shapes():
    with pytest.raises(ValidationError):
        CategoricalReference(categories=["a", "b"], counts=[1, 2])
    with pytest.raises(ValidationError):
        CategoricalReference(categories=["a", "a"], counts=[1, 2, 0])


def test_drift_package_imports_only_numpy_scipy_and_pydantic():
    import subprocess
    import sys

    code = (
        "import sys, kubeloop.drift; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'kopf', 'kubernetes', 'sklearn'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, 1, 3, 7, 1, 3]),
        np.array([3.0, 1.0, np.nan, 2.5, 1.0]),
        np.array(["b", "a", "b", "zz"]),
        np.array([True, False, True]),
    ],
)
def test_typed_arrays_count_like_python_values(values):
    ref = build_profile({}, {"k": np.array(values[:3])}).categorical["k"]
    as_objects = np.array(values.tolist(), dtype=object)
    assert count_categorical(ref, values).tolist() == count_categorical(ref, as_objects).tolist()
    assert count_categorical(ref, values).tolist() == count_categorical(ref, list(values.tolist())).tolist()


def test_hand_written_profile_sample_is_sorted_on_load():
    profile = DriftProfile(n_rows=3, numeric={}, categorical={}, sample={"x": [3.0, 1.0, 2.0]})
    assert profile.sample["x"] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("n_edges", [0, 1, 9, 64, 65, 300])
def test_count_numeric_paths_agree_with_a_plain_histogram(n_edges):
    rng = np.random.default_rng(n_edges)
    edges = np.unique(rng.normal(size=n_edges))
    values = np.r_[rng.normal(size=5000), edges[: n_edges // 2], np.nan, np.nan, np.inf, -np.inf]
    ref = NumericReference(edges=edges.tolist(), counts=[0] * (len(edges) + 1))
    finite_edges = np.r_[-np.inf, edges, np.inf]
    # np.histogram bins are left-closed; mirror the values to count right-closed bins.
    want, _ = np.histogram(-values[~np.isnan(values)], bins=-finite_edges[::-1])
    assert count_numeric(ref, values).tolist() == want[::-1].tolist()


def test_integer_categories_with_negative_and_wide_values_count_right():
    values = np.array([-3, -3, 7, 2**40, 7, 0])
    ref = build_profile({}, {"k": values}).categorical["k"]
    assert dict(zip(ref.categories, ref.counts, strict=False)) == {"-3": 2, "7": 2, "0": 1, str(2**40): 1}
    narrow = np.array([-3, -3, 7, 7, 0], dtype=np.int16)
    assert count_categorical(ref, narrow).tolist() == [2, 2, 1, 0, 0]
