"""A simple, transparent baseline beside LightGBM (``model=logistic``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


def _log1p(a: np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(a, 0, None))


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """One-hot categoricals, log-scaled and imputed numbers (with missing indicators), logistic regression.

    Takes the processor's output (pandas categoricals and numbers) like LightGBM does, so the two are
    interchangeable behind ``model=``.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, class_weight: str | None = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LogisticBaseline:
        numeric = Pipeline(
            [
                # heights and weights span four orders of magnitude; log keeps giants from dominating
                ("log", FunctionTransformer(_log1p, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
            ]
        )
        prep = ColumnTransformer(
            [
                (
                    "cat",
                    OneHotEncoder(handle_unknown="ignore"),
                    make_column_selector(dtype_include="category"),
                ),
                ("num", numeric, make_column_selector(dtype_exclude="category")),
            ]
        )
        self.model_ = make_pipeline(
            prep, LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight)
        )
        self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(X)
