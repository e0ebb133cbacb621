"""The sandbox's tasks: sizes, splits, scaling, the sparse task's truth, and errors that list choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import datasets as skdata

from decaylab.sandbox.datasets import DATASETS, DataSpec, check_spec, load


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_splits_into_disjoint_float_inputs(name: str) -> None:
    data = load(DataSpec(name))
    assert data.x_train.dtype == torch.float32
    assert len(data.x_train) == len(data.y_train)
    assert len(data.x_test) == len(data.y_test)
    total = len(data.x_train) + len(data.x_test)
    assert len(data.x_test) == pytest.approx(0.25 * total, abs=1)
    if data.task == "classification":
        assert data.y_train.dtype == torch.int64
        assert set(data.y_train.tolist()) == set(range(data.num_classes))
    else:
        assert data.num_classes == 0
        assert data.out_features == 1


def test_digits_are_1x8x8_images_in_unit_range_with_the_bundled_counts() -> None:
    data = load(DataSpec("digits"))
    assert data.is_image
    assert data.input_shape == (1, 8, 8)
    assert len(data.x_train) + len(data.x_test) == 1797
    assert float(data.x_train.min()) >= 0.0
    assert float(data.x_train.max()) <= 1.0
    assert data.num_classes == 10


def test_classification_split_is_stratified() -> None:
    data = load(DataSpec("wine"))
    train = np.bincount(data.y_train.numpy()) / len(data.y_train)
    test = np.bincount(data.y_test.numpy()) / len(data.y_test)
    assert np.abs(train - test).max() < 0.05


def test_tabular_inputs_are_standardized_on_the_training_split_only() -> None:
    data = load(DataSpec("breast_cancer"))
    assert torch.allclose(data.x_train.mean(0), torch.zeros(30), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(30), atol=1e-4)
    assert not torch.allclose(data.x_test.mean(0), torch.zeros(30), atol=1e-3)  # test statistics were not used


def test_sparse_task_true_features_are_the_nonzero_coefficients_of_make_regression() -> None:
    spec = DataSpec("sparse_regression", features=20, informative=3, samples=80, data_seed=4)
    data = load(spec)
    _, _, coef = skdata.make_regression(
        n_samples=80, n_features=20, n_informative=3, noise=10.0, coef=True, random_state=4
    )
    assert data.true_features == tuple(np.flatnonzero(coef))
    assert len(data.true_features) == 3
    assert data.in_features == 20
    assert float(data.y_train.mean()) == pytest.approx(0.0, abs=1e-5)  # standardized target


def test_same_data_seed_same_split_other_seed_other_split() -> None:
    a, b = load(DataSpec("moons", data_seed=1)), load(DataSpec("moons", data_seed=1, noise=0.25))
    c = load(DataSpec("moons", data_seed=2))
    assert torch.equal(a.x_train, b.x_train)  # noise 0.25 is the default: the same task
    assert not torch.equal(a.x_train, c.x_train)


def test_train_size_keeps_a_stratified_subset() -> None:
    data = load(DataSpec("digits", train_size=100))
    assert len(data.x_train) == 100
    assert len(set(data.y_train.tolist())) == 10
    assert len(data.x_test) == len(load(DataSpec("digits")).x_test)  # the test split is unchanged


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (DataSpec("mnist"), "dataset: unknown dataset 'mnist'; choose from digits, breast_cancer"),
        (DataSpec("digits", samples=100), "samples: bundled data set 'digits' has no 'samples' option"),
        (
            DataSpec("moons", features=3),
            "features: the moons task has no 'features' option (its options: samples, noise)",
        ),
        (DataSpec("sparse_regression", features=4, informative=5), "informative: expected at most features=4"),
        (DataSpec("digits", test_fraction=1.0), "test_fraction: expected a finite number > 0 and < 1"),
        (DataSpec("moons", samples=5), "samples: expected an integer >= 10"),
        (DataSpec("moons", noise=-1.0), "noise: expected a finite number >= 0"),
        (DataSpec("digits", train_size=1), "train_size: expected an integer >= 2"),
    ],
)
def test_bad_specs_name_the_field(spec: DataSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_spec(spec)
