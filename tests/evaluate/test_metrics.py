"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmfactor.errors import InputError
from mmfactor.evaluate.metrics import (
    classification_metrics,
    mean_std,
    regression_metrics,
    sentiment_metrics,
)

# Six MOSI-style samples. Sample 2 has label exactly 0 (dropped by the non0 convention),
# sample 3 has prediction exactly 0 (positive under has0, negative under non0), and labels /
# predictions 1.5 and 2.5 exercise round-half-to-even in Acc-7.
Y_TRUE = np.array([-3.0, -1.2, 0.0, 0.4, 2.6, 1.5])
Y_PRED = np.array([-2.2, 0.3, -0.4, 0.0, 3.4, 2.5])


def test_sentiment_metrics_by_hand() -> None:
    m = sentiment_metrics(Y_TRUE, Y_PRED)

    # has0, all 6 samples, y >= 0 positive:
    #   truth [-, -, +, +, +, +], pred [-, +, -, +, +, +] -> agree on 0, 3, 4, 5: 4/6.
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # weighted F1: positive (support 4): TP 3 (3,4,5), FP 1 (1), FN 1 (2) -> P = R = 3/4,
    # F1 = 3/4; negative (support 2): TP 1 (0), FP 1 (2), FN 1 (1) -> F1 = 1/2.
    # (4 * 3/4 + 2 * 1/2) / 6 = 4/6.
    assert m["f1_has0"] == pytest.approx((4 * 0.75 + 2 * 0.5) / 6)

    # non0: drop sample 2 (label 0); y > 0 positive on samples 0, 1, 3, 4, 5:
    #   truth [-, -, +, +, +], pred [-, +, - (0.0 is not > 0), +, +] -> agree on 0, 4, 5: 3/5.
    assert m["acc2_non0"] == pytest.approx(3 / 5)
    # positive (support 3): TP 2 (4, 5), FP 1 (1), FN 1 (3) -> F1 = 2/3;
    # negative (support 2): TP 1 (0), FP 1 (3), FN 1 (1) -> F1 = 1/2.
    # (3 * 2/3 + 2 * 1/2) / 5 = 3/5.
    assert m["f1_non0"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)

    # acc7: clip to [-3, 3], round half to even:
    #   truth [-3, -1, 0, 0, 3, 2 (1.5 -> 2)], pred [-2, 0, 0 (-0.4), 0, 3 (3.4 clipped),
    #   2 (2.5 -> 2)] -> agree on 2, 3, 4, 5: 4/6. (Rounding half away from zero would give
    #   3 for 2.5 and 3/6.)
    assert m["acc7"] == pytest.approx(4 / 6)

    # mae: |0.8| + |1.5| + |0.4| + |0.4| + |0.8| + |1.0| = 4.9 over 6 (unclipped predictions).
    assert m["mae"] == pytest.approx(4.9 / 6)

    # Pearson: mean truth 0.3 / 6 = 0.05, mean pred 3.6 / 6 = 0.6;
    #   dt = [-3.05, -1.25, -0.05, 0.35, 2.55, 1.45], dp = [-2.8, -0.3, -1.0, -0.6, 2.8, 1.9]
    #   sum dt*dp = 8.54 + 0.375 + 0.05 - 0.21 + 7.14 + 2.755 = 18.65
    #   sum dt^2 = 9.3025 + 1.5625 + 0.0025 + 0.1225 + 6.5025 + 2.1025 = 19.595
    #   sum dp^2 = 7.84 + 0.09 + 1.0 + 0.36 + 7.84 + 3.61 = 20.74
    assert m["corr"] == pytest.approx(18.65 / math.sqrt(19.595 * 20.74))  # ~0.9251

    assert set(m) == {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"}
    assert all(isinstance(v, float) for v in m.values())


def test_sentiment_metrics_all_zero_labels_and_constant_prediction() -> None:
    m = sentiment_metrics(np.zeros(4), np.full(4, 0.3))
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["f1_non0"])  # nothing left
    # Exact below: accuracies are count ratios (4 / 4), and 0.0 is the constant returned for
    # an undefined correlation (a branch, not a computed value).
    assert m["acc2_has0"] == 1.0  # 0 >= 0 and 0.3 >= 0
    assert m["acc7"] == 1.0  # round(0.3) = 0 = label
    assert m["mae"] == pytest.approx(0.3)
    assert m["corr"] == 0.0  # undefined for constant arrays; reported as 0


def test_sentiment_metrics_accepts_column_vectors() -> None:
    m = sentiment_metrics(Y_TRUE[:, None], Y_PRED[:, None])
    assert m["acc2_has0"] == pytest.approx(4 / 6)


def test_classification_metrics_by_hand() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y_true, y_pred)
    # correct on samples 0, 2, 3, 4: 4/6
    assert m["accuracy"] == pytest.approx(4 / 6)
    # class 0: TP 1, FP 1, FN 1 -> 1/2; class 1: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8;
    # class 2: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3. Equal supports: weighted = macro.
    f1 = (0.5 + 0.8 + 2 / 3) / 3
    assert m["f1_macro"] == pytest.approx(f1)
    assert m["f1_weighted"] == pytest.approx(f1)
    # Recalls 1/2, 1, 1/2: balanced accuracy 2/3 (equal supports: the accuracy).
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)


def test_balanced_accuracy_weighs_each_true_class_alike() -> None:
    # 9 negatives, 1 positive: always guessing 0 is 90% accurate, 50% balanced.
    y_true = np.array([0] * 9 + [1])
    m = classification_metrics(y_true, np.zeros(10, dtype=np.int64))
    assert m["accuracy"] == pytest.approx(0.9) and m["balanced_accuracy"] == pytest.approx(0.5)
    # Recalls 8/9 and 1; a predicted class absent from y_true (2) adds no recall term.
    m = classification_metrics(y_true, np.array([0] * 8 + [2, 1]))
    assert m["balanced_accuracy"] == pytest.approx((8 / 9 + 1) / 2)


def test_classification_metrics_unpredicted_class_counts_zero_without_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]))
    # F1: class 0 = 1, class 1: P 1/2, R 1 -> 2/3, class 2 never predicted -> 0.
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_regression_metrics_by_hand() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0]))
    # errors [0, 1, -1, 0]: mse 2/4, mae 2/4; SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5,
    # r2 = 1 - 2/5; both centred [-1.5, -0.5, 0.5, 1.5] vs [-1.5, 0.5, -0.5, 1.5]:
    # corr = (2.25 - 0.25 - 0.25 + 2.25) / 5 = 0.8.
    assert m == pytest.approx({"mse": 0.5, "mae": 0.5, "r2": 0.6, "corr": 0.8})


def test_regression_metrics_constant_cases() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.full(3, 2.0))
    # Exact: constant cases return fixed values from a branch (corr 0.0; R^2 1.0 / 0.0 for a
    # constant target, scikit-learn's force_finite convention), not computed values.
    assert m["corr"] == 0.0
    assert m["r2"] == pytest.approx(0.0)  # predicting the mean
    assert regression_metrics(np.ones(3), np.ones(3))["r2"] == 1.0
    assert regression_metrics(np.ones(3), np.zeros(3))["r2"] == 0.0


def test_mean_std() -> None:
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    # deviations -1.5, -0.5, 0.5, 1.5: sum of squares 5, ddof=1 -> 5/3
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx(math.sqrt(5 / 3))
    # Exact: the mean of one value is that value, std is 0.0 by a branch for n = 1, and the
    # mean / deviations of [2.0, 2.0] are exact in floating point.
    assert mean_std([0.7]) == (0.7, 0.0)
    assert mean_std(np.array([2.0, 2.0])) == (2.0, 0.0)
    with pytest.raises(InputError):
        mean_std([])


@pytest.mark.parametrize(
    "fn", [classification_metrics, regression_metrics, sentiment_metrics], ids=lambda f: f.__name__
)
def test_metrics_reject_mismatched_or_empty(fn) -> None:
    with pytest.raises(InputError, match="differ in length"):
        fn(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match="at least one"):
        fn(np.zeros(0), np.zeros(0))
    with pytest.raises(InputError, match="1-D"):
        fn(np.zeros((3, 2)), np.zeros((3, 2)))
