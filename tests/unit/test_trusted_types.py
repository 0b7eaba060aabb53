"""The skops allow-list (modelops.serving.loader.TRUSTED_TYPES) covers the pipelines users package.

Each case fits a small, realistic estimator or pipeline (on numpy matrices, or on pandas
DataFrames with string columns), dumps it with skops, loads it with the server's loader and
checks the copy predicts exactly what the original does. The negative cases are the things the
allow-list must keep out: callables that run code when the model runs.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import skops.io
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
    RandomTreesEmbedding,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import (
    SelectKBest,
    VarianceThreshold,
    chi2,
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    HuberRegressor,
    Lars,
    LarsCV,
    Lasso,
    LassoCV,
    LassoLars,
    LassoLarsCV,
    LassoLarsIC,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
    OrthogonalMatchingPursuit,
    OrthogonalMatchingPursuitCV,
    PassiveAggressiveClassifier,
    PassiveAggressiveRegressor,
    Perceptron,
    PoissonRegressor,
    QuantileRegressor,
    RANSACRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDOneClassSVM,
    SGDRegressor,
    TheilSenRegressor,
    TweedieRegressor,
)
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.neighbors import (
    KernelDensity,
    KNeighborsClassifier,
    KNeighborsRegressor,
    KNeighborsTransformer,
    LocalOutlierFactor,
    NearestCentroid,
    NearestNeighbors,
    NeighborhoodComponentsAnalysis,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
    RadiusNeighborsTransformer,
)
from sklearn.neural_network import BernoulliRBM, MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR, OneClassSVM
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
from sklearn.utils import all_estimators

from modelops.serving.loader import TRUSTED_TYPES, ModelLoadError, load_skops, save_model

# Tiny data, fixed seed: the whole module runs in seconds.
_RNG = np.random.default_rng(12)
N = 60
X = _RNG.normal(size=(N, 4))
X_NAN = X.copy()
X_NAN[::7, 1] = np.nan
X_NAN[3::11, 2] = np.nan
X_POS = np.abs(X)  # counts-like, for chi2 and the multinomial naive Bayes
X_COUNTS = _RNG.poisson(3.0, size=(N, 4)).astype(float)
X_CATS = _RNG.integers(0, 4, size=(N, 3))
Y_BIN = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
Y_3 = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.5])
Y_STR = np.array(["bronze", "silver", "gold"])[Y_3]  # string class labels
Y_REG = 2.0 * X[:, 0] - X[:, 1] + 0.1 * _RNG.normal(size=N)
Y_POS = np.exp(0.3 * X[:, 0]) + 0.1  # strictly positive, for Poisson/Gamma/Tweedie
Y_MULTI = np.column_stack([Y_REG, X[:, 2] + X[:, 3]])

CITIES = np.array(["berlin", "lisbon", "oslo", "porto", "rome"])
PLANS = np.array(["basic", "plus", "pro"])
DF = pd.DataFrame(
    {
        "age": _RNG.integers(18, 80, size=N).astype(float),
        "income": _RNG.lognormal(10.0, 0.5, size=N),
        "city": CITIES[_RNG.integers(0, len(CITIES), size=N)],
        "plan": PLANS[_RNG.integers(0, len(PLANS), size=N)],
    }
)
DF_NAN = DF.copy()
DF_NAN.loc[::9, "age"] = np.nan
DF_NAN.loc[4::10, "city"] = np.nan
DF_CAT = DF.astype({"city": "category", "plan": "category"})  # HistGradientBoosting "from_dtype"
Y_DF_BIN = ((DF["plan"] != "basic") & (DF["age"] < 55)).to_numpy().astype(int)
Y_DF_REG = DF["income"].to_numpy() / 1000.0 + (DF["city"] == "oslo").to_numpy() * 5.0
NUMERIC = ["age", "income"]
CATEGORICAL = ["city", "plan"]

Case = tuple[BaseEstimator, Any, Any]

pytestmark = pytest.mark.filterwarnings("ignore:Class PassiveAggressive.*:FutureWarning")


def _frame_preprocessing(encoder: BaseEstimator) -> ColumnTransformer:
    """The usual DataFrame front end: scale the numeric columns, encode the string ones by name."""
    return ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", encoder, CATEGORICAL)],
        verbose_feature_names_out=False,
    )


def _ordinal() -> OrdinalEncoder:
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)


#: name -> (unfitted estimator, X, y). Ensembles are kept small so each case fits in milliseconds.
CASES: dict[str, Callable[[], Case]] = {
    # --- preprocessing, on DataFrames with string columns selected by name -----------------------
    "ColumnTransformer+OneHotEncoder(DataFrame)": lambda: (
        make_pipeline(
            _frame_preprocessing(OneHotEncoder(handle_unknown="ignore")), LogisticRegression()
        ),
        DF,
        Y_DF_BIN,
    ),
    "OneHotEncoder(dense, drop=first, DataFrame)": lambda: (
        make_pipeline(
            _frame_preprocessing(
                OneHotEncoder(drop="first", sparse_output=False, handle_unknown="ignore")
            ),
            Ridge(),
        ),
        DF,
        Y_DF_REG,
    ),
    "OneHotEncoder(min_frequency, numpy strings)": lambda: (
        make_pipeline(
            OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist"),
            LogisticRegression(),
        ),
        DF[CATEGORICAL].to_numpy(dtype=object),
        Y_DF_BIN,
    ),
    "OrdinalEncoder(DataFrame)": lambda: (
        make_pipeline(_frame_preprocessing(_ordinal()), DecisionTreeClassifier(random_state=0)),
        DF,
        Y_DF_BIN,
    ),
    "TargetEncoder(DataFrame, classification)": lambda: (
        make_pipeline(_frame_preprocessing(TargetEncoder()), LogisticRegression()),
        DF,
        Y_DF_BIN,
    ),
    "TargetEncoder(DataFrame, regression)": lambda: (
        make_pipeline(_frame_preprocessing(TargetEncoder()), Ridge()),
        DF,
        Y_DF_REG,
    ),
    "SimpleImputer(DataFrame, strings)": lambda: (
        make_pipeline(
            ColumnTransformer(
                [
                    (
                        "num",
                        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                        NUMERIC,
                    ),
                    (
                        "cat",
                        make_pipeline(
                            SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore"),
                        ),
                        CATEGORICAL,
                    ),
                ]
            ),
            LogisticRegression(),
        ),
        DF_NAN,
        Y_DF_BIN,
    ),
    "ColumnTransformer(remainder=passthrough, set_output=pandas)": lambda: (
        make_pipeline(
            ColumnTransformer(
                [("cat", _ordinal(), CATEGORICAL)],
                remainder="passthrough",
                verbose_feature_names_out=False,
            ).set_output(transform="pandas"),
            RandomForestClassifier(n_estimators=5, random_state=0),
        ),
        DF,
        Y_DF_BIN,
    ),
    # --- preprocessing, on numpy matrices ---------------------------------------------------------
    "KBinsDiscretizer": lambda: (
        make_pipeline(
            KBinsDiscretizer(n_bins=4, quantile_method="averaged_inverted_cdf"),
            LogisticRegression(),
        ),
        X,
        Y_BIN,
    ),
    "KBinsDiscretizer(ordinal, uniform)": lambda: (
        make_pipeline(KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform"), Ridge()),
        X,
        Y_REG,
    ),
    "PolynomialFeatures": lambda: (make_pipeline(PolynomialFeatures(2), Ridge()), X, Y_REG),
    "SplineTransformer": lambda: (make_pipeline(SplineTransformer(n_knots=4), Ridge()), X, Y_REG),
    "StandardScaler": lambda: (make_pipeline(StandardScaler(), LogisticRegression()), X, Y_BIN),
    "MinMaxScaler": lambda: (make_pipeline(MinMaxScaler(), LogisticRegression()), X, Y_BIN),
    "RobustScaler": lambda: (make_pipeline(RobustScaler(), Ridge()), X, Y_REG),
    "PowerTransformer": lambda: (make_pipeline(PowerTransformer(), Ridge()), X, Y_REG),
    "PowerTransformer(box-cox)": lambda: (
        make_pipeline(PowerTransformer(method="box-cox"), Ridge()),
        X_POS + 0.1,
        Y_REG,
    ),
    "QuantileTransformer": lambda: (
        make_pipeline(QuantileTransformer(n_quantiles=20), LogisticRegression()),
        X,
        Y_BIN,
    ),
    "QuantileTransformer(normal)": lambda: (
        make_pipeline(QuantileTransformer(n_quantiles=20, output_distribution="normal"), Ridge()),
        X,
        Y_REG,
    ),
    "SimpleImputer": lambda: (make_pipeline(SimpleImputer(), LogisticRegression()), X_NAN, Y_BIN),
    "SimpleImputer(constant, add_indicator)": lambda: (
        make_pipeline(SimpleImputer(strategy="constant", add_indicator=True), Ridge()),
        X_NAN,
        Y_REG,
    ),
    "KNNImputer": lambda: (make_pipeline(KNNImputer(n_neighbors=3), Ridge()), X_NAN, Y_REG),
    "SelectKBest(f_classif)": lambda: (
        make_pipeline(SelectKBest(f_classif, k=2), LogisticRegression()),
        X,
        Y_BIN,
    ),
    "SelectKBest(f_regression)": lambda: (
        make_pipeline(SelectKBest(f_regression, k=2), Ridge()),
        X,
        Y_REG,
    ),
    "SelectKBest(chi2)": lambda: (
        make_pipeline(MinMaxScaler(), SelectKBest(chi2, k=2), LogisticRegression()),
        X,
        Y_3,
    ),
    "SelectKBest(mutual_info_classif)": lambda: (
        make_pipeline(SelectKBest(mutual_info_classif, k=2), LogisticRegression()),
        X,
        Y_BIN,
    ),
    "SelectKBest(mutual_info_regression)": lambda: (
        make_pipeline(SelectKBest(mutual_info_regression, k=2), Ridge()),
        X,
        Y_REG,
    ),
    "VarianceThreshold": lambda: (
        make_pipeline(VarianceThreshold(0.1), LogisticRegression()),
        np.column_stack([X, np.ones(N)]),
        Y_BIN,
    ),
    "PCA": lambda: (make_pipeline(PCA(n_components=2), LogisticRegression()), X, Y_BIN),
    "PCA(whiten, randomized)": lambda: (
        make_pipeline(PCA(n_components=2, whiten=True, svd_solver="randomized"), Ridge()),
        X,
        Y_REG,
    ),
    "TruncatedSVD": lambda: (make_pipeline(TruncatedSVD(n_components=2), Ridge()), X, Y_REG),
    # --- linear models ----------------------------------------------------------------------------
    "LinearRegression": lambda: (LinearRegression(), X, Y_REG),
    "Ridge": lambda: (Ridge(), X, Y_REG),
    "RidgeCV": lambda: (RidgeCV(), X, Y_REG),
    "RidgeClassifier": lambda: (RidgeClassifier(), X, Y_3),
    "RidgeClassifierCV": lambda: (RidgeClassifierCV(), X, Y_BIN),
    "Lasso": lambda: (Lasso(alpha=0.05), X, Y_REG),
    "LassoCV": lambda: (LassoCV(cv=3), X, Y_REG),
    "ElasticNet": lambda: (ElasticNet(alpha=0.05), X, Y_REG),
    "ElasticNetCV": lambda: (ElasticNetCV(cv=3), X, Y_REG),
    "MultiTaskLasso": lambda: (MultiTaskLasso(alpha=0.05), X, Y_MULTI),
    "MultiTaskLassoCV": lambda: (MultiTaskLassoCV(cv=3), X, Y_MULTI),
    "MultiTaskElasticNet": lambda: (MultiTaskElasticNet(alpha=0.05), X, Y_MULTI),
    "MultiTaskElasticNetCV": lambda: (MultiTaskElasticNetCV(cv=3), X, Y_MULTI),
    "Lars": lambda: (Lars(), X, Y_REG),
    "LarsCV": lambda: (LarsCV(cv=3), X, Y_REG),
    "LassoLars": lambda: (LassoLars(alpha=0.01), X, Y_REG),
    "LassoLarsCV": lambda: (LassoLarsCV(cv=3), X, Y_REG),
    "LassoLarsIC": lambda: (LassoLarsIC(), X, Y_REG),
    "OrthogonalMatchingPursuit": lambda: (OrthogonalMatchingPursuit(), X, Y_REG),
    "OrthogonalMatchingPursuitCV": lambda: (OrthogonalMatchingPursuitCV(cv=3), X, Y_REG),
    "BayesianRidge": lambda: (BayesianRidge(), X, Y_REG),
    "ARDRegression": lambda: (ARDRegression(), X, Y_REG),
    "LogisticRegression": lambda: (LogisticRegression(), X, Y_BIN),
    "LogisticRegression(multinomial, string labels)": lambda: (LogisticRegression(), X, Y_STR),
    "LogisticRegressionCV": lambda: (LogisticRegressionCV(cv=3), X, Y_3),
    "SGDClassifier": lambda: (SGDClassifier(random_state=0), X, Y_BIN),
    "SGDClassifier(log_loss)": lambda: (SGDClassifier(loss="log_loss", random_state=0), X, Y_3),
    "SGDRegressor": lambda: (SGDRegressor(random_state=0), X, Y_REG),
    "SGDOneClassSVM": lambda: (SGDOneClassSVM(random_state=0), X, None),
    "Perceptron": lambda: (Perceptron(random_state=0), X, Y_BIN),
    "PassiveAggressiveClassifier": lambda: (PassiveAggressiveClassifier(random_state=0), X, Y_3),
    "PassiveAggressiveRegressor": lambda: (PassiveAggressiveRegressor(random_state=0), X, Y_REG),
    "HuberRegressor": lambda: (HuberRegressor(), X, Y_REG),
    "QuantileRegressor": lambda: (QuantileRegressor(alpha=0.0), X, Y_REG),
    "TheilSenRegressor": lambda: (
        TheilSenRegressor(max_subpopulation=200, random_state=0),
        X,
        Y_REG,
    ),
    "RANSACRegressor": lambda: (RANSACRegressor(random_state=0), X, Y_REG),
    "PoissonRegressor": lambda: (PoissonRegressor(), X, Y_POS),
    "GammaRegressor": lambda: (GammaRegressor(), X, Y_POS),
    "TweedieRegressor": lambda: (TweedieRegressor(), X, Y_REG),
    "TweedieRegressor(power=1.5, log link)": lambda: (TweedieRegressor(power=1.5), X, Y_POS),
    # --- trees and ensembles ----------------------------------------------------------------------
    "DecisionTreeClassifier": lambda: (DecisionTreeClassifier(max_depth=4, random_state=0), X, Y_3),
    "DecisionTreeRegressor": lambda: (DecisionTreeRegressor(max_depth=4, random_state=0), X, Y_REG),
    "ExtraTreeClassifier": lambda: (ExtraTreeClassifier(random_state=0), X, Y_BIN),
    "ExtraTreeRegressor": lambda: (ExtraTreeRegressor(random_state=0), X, Y_REG),
    "RandomForestClassifier": lambda: (
        RandomForestClassifier(n_estimators=5, random_state=0),
        X,
        Y_STR,
    ),
    "RandomForestRegressor": lambda: (
        RandomForestRegressor(n_estimators=5, random_state=0),
        X,
        Y_REG,
    ),
    "ExtraTreesClassifier": lambda: (
        ExtraTreesClassifier(n_estimators=5, random_state=0),
        X,
        Y_BIN,
    ),
    "ExtraTreesRegressor": lambda: (ExtraTreesRegressor(n_estimators=5, random_state=0), X, Y_REG),
    "RandomTreesEmbedding": lambda: (RandomTreesEmbedding(n_estimators=5, random_state=0), X, None),
    "IsolationForest": lambda: (IsolationForest(n_estimators=5, random_state=0), X, None),
    "GradientBoostingClassifier": lambda: (
        GradientBoostingClassifier(n_estimators=5, random_state=0),
        X,
        Y_BIN,
    ),
    "GradientBoostingClassifier(multiclass, init=zero)": lambda: (
        GradientBoostingClassifier(n_estimators=5, init="zero", random_state=0),
        X,
        Y_3,
    ),
    "GradientBoostingRegressor": lambda: (
        GradientBoostingRegressor(n_estimators=5, random_state=0),
        X,
        Y_REG,
    ),
    "GradientBoostingRegressor(huber, init=DummyRegressor)": lambda: (
        GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=0),
        X,
        Y_REG,
    ),
    "HistGradientBoostingClassifier": lambda: (
        HistGradientBoostingClassifier(max_iter=5, random_state=0),
        X_NAN,
        Y_3,
    ),
    "HistGradientBoostingRegressor": lambda: (
        HistGradientBoostingRegressor(max_iter=5, random_state=0),
        X_NAN,
        Y_REG,
    ),
    "HistGradientBoostingClassifier(native categorical, from_dtype)": lambda: (
        HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=5, random_state=0
        ),
        DF_CAT,
        Y_DF_BIN,
    ),
    "HistGradientBoostingRegressor(native categorical, from_dtype)": lambda: (
        HistGradientBoostingRegressor(
            categorical_features="from_dtype", max_iter=5, random_state=0
        ),
        DF_CAT,
        Y_DF_REG,
    ),
    "HistGradientBoostingClassifier(native categorical, by name)": lambda: (
        make_pipeline(
            ColumnTransformer(
                [("cat", _ordinal(), CATEGORICAL)],
                remainder="passthrough",
                verbose_feature_names_out=False,
            ).set_output(transform="pandas"),
            HistGradientBoostingClassifier(
                categorical_features=CATEGORICAL, max_iter=5, random_state=0
            ),
        ),
        DF,
        Y_DF_BIN,
    ),
    "HistGradientBoostingClassifier(native categorical, by index)": lambda: (
        make_pipeline(
            ColumnTransformer([("cat", _ordinal(), CATEGORICAL), ("num", "passthrough", NUMERIC)]),
            HistGradientBoostingClassifier(categorical_features=[0, 1], max_iter=5, random_state=0),
        ),
        DF,
        Y_DF_BIN,
    ),
    "AdaBoostClassifier": lambda: (AdaBoostClassifier(n_estimators=5, random_state=0), X, Y_3),
    "AdaBoostRegressor": lambda: (AdaBoostRegressor(n_estimators=5, random_state=0), X, Y_REG),
    "AdaBoostClassifier(LogisticRegression)": lambda: (
        AdaBoostClassifier(LogisticRegression(), n_estimators=3, random_state=0),
        X,
        Y_BIN,
    ),
    "BaggingClassifier": lambda: (BaggingClassifier(n_estimators=3, random_state=0), X, Y_BIN),
    "BaggingRegressor": lambda: (BaggingRegressor(n_estimators=3, random_state=0), X, Y_REG),
    "BaggingClassifier(KNeighborsClassifier)": lambda: (
        BaggingClassifier(KNeighborsClassifier(3), n_estimators=3, random_state=0),
        X,
        Y_3,
    ),
    "BaggingRegressor(SVR, max_features)": lambda: (
        BaggingRegressor(SVR(), n_estimators=3, max_features=0.5, random_state=0),
        X,
        Y_REG,
    ),
    "VotingClassifier(soft)": lambda: (
        VotingClassifier(
            [
                ("lr", LogisticRegression()),
                ("rf", RandomForestClassifier(n_estimators=5, random_state=0)),
                ("nb", GaussianNB()),
                ("svc", SVC(probability=True, random_state=0)),
            ],
            voting="soft",
        ),
        X,
        Y_3,
    ),
    "VotingClassifier(hard)": lambda: (
        VotingClassifier(
            [
                ("lr", LogisticRegression()),
                ("knn", KNeighborsClassifier(3)),
                ("dt", DecisionTreeClassifier(max_depth=3, random_state=0)),
            ]
        ),
        X,
        Y_STR,
    ),
    "VotingRegressor": lambda: (
        VotingRegressor(
            [
                ("ridge", Ridge()),
                ("gb", GradientBoostingRegressor(n_estimators=5, random_state=0)),
                ("knn", KNeighborsRegressor(3)),
            ]
        ),
        X,
        Y_REG,
    ),
    "StackingClassifier": lambda: (
        StackingClassifier(
            [
                ("rf", RandomForestClassifier(n_estimators=5, random_state=0)),
                ("svc", SVC(random_state=0)),
                ("hgb", HistGradientBoostingClassifier(max_iter=5, random_state=0)),
            ],
            final_estimator=LogisticRegression(),
            cv=3,
        ),
        X,
        Y_3,
    ),
    "StackingRegressor": lambda: (
        StackingRegressor(
            [
                ("lasso", Lasso(alpha=0.05)),
                ("et", ExtraTreesRegressor(n_estimators=5, random_state=0)),
                ("mlp", MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0)),
            ],
            final_estimator=RidgeCV(),
            cv=3,
        ),
        X,
        Y_REG,
    ),
    "StackingClassifier(DataFrame pipelines)": lambda: (
        StackingClassifier(
            [
                (
                    "lr",
                    make_pipeline(
                        _frame_preprocessing(OneHotEncoder(handle_unknown="ignore")),
                        LogisticRegression(),
                    ),
                ),
                (
                    "rf",
                    make_pipeline(
                        _frame_preprocessing(_ordinal()),
                        RandomForestClassifier(n_estimators=5, random_state=0),
                    ),
                ),
            ],
            cv=3,
        ),
        DF,
        Y_DF_BIN,
    ),
    # --- naive Bayes ------------------------------------------------------------------------------
    "GaussianNB": lambda: (GaussianNB(), X, Y_3),
    "MultinomialNB": lambda: (MultinomialNB(), X_COUNTS, Y_3),
    "ComplementNB": lambda: (ComplementNB(), X_COUNTS, Y_BIN),
    "BernoulliNB": lambda: (BernoulliNB(), X, Y_BIN),
    "CategoricalNB": lambda: (CategoricalNB(), X_CATS, Y_3),
    "CategoricalNB(OrdinalEncoder, DataFrame)": lambda: (
        make_pipeline(ColumnTransformer([("cat", OrdinalEncoder(), CATEGORICAL)]), CategoricalNB()),
        DF,
        Y_DF_BIN,
    ),
    # --- nearest neighbours -----------------------------------------------------------------------
    "KNeighborsClassifier": lambda: (KNeighborsClassifier(5), X, Y_3),
    "KNeighborsClassifier(kd_tree, distance)": lambda: (
        KNeighborsClassifier(5, algorithm="kd_tree", weights="distance"),
        X,
        Y_BIN,
    ),
    "KNeighborsClassifier(ball_tree, manhattan)": lambda: (
        KNeighborsClassifier(5, algorithm="ball_tree", metric="manhattan"),
        X,
        Y_BIN,
    ),
    "KNeighborsClassifier(brute, cosine)": lambda: (
        KNeighborsClassifier(5, algorithm="brute", metric="cosine"),
        X,
        Y_BIN,
    ),
    "KNeighborsRegressor": lambda: (KNeighborsRegressor(5), X, Y_REG),
    "KNeighborsRegressor(ball_tree, minkowski p=3)": lambda: (
        KNeighborsRegressor(5, algorithm="ball_tree", p=3),
        X,
        Y_REG,
    ),
    "KNeighborsRegressor(kd_tree, euclidean)": lambda: (
        KNeighborsRegressor(5, algorithm="kd_tree", metric="euclidean"),
        X,
        Y_REG,
    ),
    "RadiusNeighborsClassifier": lambda: (
        RadiusNeighborsClassifier(radius=3.0, outlier_label="most_frequent"),
        X,
        Y_3,
    ),
    "RadiusNeighborsRegressor": lambda: (RadiusNeighborsRegressor(radius=3.0), X, Y_REG),
    "NearestCentroid": lambda: (NearestCentroid(), X, Y_3),
    "NearestNeighbors": lambda: (NearestNeighbors(n_neighbors=3), X, None),
    "KNeighborsTransformer": lambda: (KNeighborsTransformer(n_neighbors=3), X, None),
    "RadiusNeighborsTransformer": lambda: (RadiusNeighborsTransformer(radius=2.0), X, None),
    "KernelDensity": lambda: (KernelDensity(bandwidth=0.5), X, None),
    "LocalOutlierFactor(novelty)": lambda: (
        LocalOutlierFactor(n_neighbors=5, novelty=True),
        X,
        None,
    ),
    "NeighborhoodComponentsAnalysis": lambda: (
        make_pipeline(
            NeighborhoodComponentsAnalysis(n_components=2, max_iter=5, random_state=0),
            KNeighborsClassifier(3),
        ),
        X,
        Y_3,
    ),
    # --- support vector machines ------------------------------------------------------------------
    "SVC": lambda: (SVC(), X, Y_3),
    "SVC(probability=True)": lambda: (SVC(probability=True, random_state=0), X, Y_3),
    "SVC(linear, probability=True, binary)": lambda: (
        SVC(kernel="linear", probability=True, random_state=0),
        X,
        Y_BIN,
    ),
    "SVC(poly, ovr)": lambda: (SVC(kernel="poly", degree=2, decision_function_shape="ovr"), X, Y_3),
    "CalibratedClassifierCV(SVC, sigmoid, ensemble=False)": lambda: (
        CalibratedClassifierCV(SVC(random_state=0), ensemble=False),
        X,
        Y_3,
    ),
    "CalibratedClassifierCV(LinearSVC, isotonic)": lambda: (
        CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=3),
        X,
        Y_BIN,
    ),
    "NuSVC": lambda: (NuSVC(nu=0.3), X, Y_BIN),
    "LinearSVC": lambda: (LinearSVC(), X, Y_3),
    "SVR": lambda: (SVR(), X, Y_REG),
    "NuSVR": lambda: (NuSVR(), X, Y_REG),
    "LinearSVR": lambda: (LinearSVR(random_state=0), X, Y_REG),
    "OneClassSVM": lambda: (OneClassSVM(nu=0.1), X, None),
    "SVC(DataFrame pipeline)": lambda: (
        make_pipeline(
            _frame_preprocessing(OneHotEncoder(handle_unknown="ignore")),
            SVC(probability=True, random_state=0),
        ),
        DF,
        Y_DF_BIN,
    ),
    # --- neural networks --------------------------------------------------------------------------
    "MLPClassifier": lambda: (
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0),
        X,
        Y_3,
    ),
    "MLPClassifier(sgd)": lambda: (
        MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", max_iter=30, random_state=0),
        X,
        Y_BIN,
    ),
    "MLPClassifier(lbfgs)": lambda: (
        MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0),
        X,
        Y_STR,
    ),
    "MLPRegressor": lambda: (
        make_pipeline(
            StandardScaler(), MLPRegressor(hidden_layer_sizes=(8, 4), max_iter=30, random_state=0)
        ),
        X,
        Y_REG,
    ),
    "MLPRegressor(sgd, DataFrame)": lambda: (
        make_pipeline(
            _frame_preprocessing(OneHotEncoder(handle_unknown="ignore")),
            MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=30, random_state=0),
        ),
        DF,
        Y_DF_REG / 100.0,
    ),
    "BernoulliRBM": lambda: (
        make_pipeline(
            MinMaxScaler(), BernoulliRBM(n_components=4, n_iter=3, random_state=0), GaussianNB()
        ),
        X,
        Y_BIN,
    ),
}

#: The scikit-learn modules whose every estimator must load (issue #12: linear, tree, ensemble,
#: naive Bayes, k-NN, SVM and neural network models).
MODEL_MODULES = (
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
    "sklearn.naive_bayes",
    "sklearn.neighbors",
    "sklearn.svm",
    "sklearn.neural_network",
)

#: Methods compared between the original and the loaded copy, where the estimator has them.
METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
    "transform",
)


def _fit(name: str) -> tuple[BaseEstimator, Any]:
    with warnings.catch_warnings():
        # Tiny data and few iterations: convergence is not what is tested here, nor scikit-learn's
        # deprecations (PassiveAggressive*, SVC(probability=True), LogisticRegressionCV's defaults).
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        estimator, data, target = CASES[name]()
        estimator.fit(data, target)
    return estimator, data


def _assert_same(got: Any, want: Any) -> None:
    """Labels exactly; floats to the last bits (BLAS may round a product differently per call)."""
    got = got.toarray() if scipy.sparse.issparse(got) else np.asarray(got)
    want = want.toarray() if scipy.sparse.issparse(want) else np.asarray(want)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, want)


def _loads_with_the_servers_allow_list(estimator: BaseEstimator, file: Path) -> Any:
    skops.io.dump(estimator, file)
    return load_skops(file)


@pytest.mark.parametrize("name", list(CASES))
def test_fitted_model_loads_and_predicts_the_same(name: str, tmp_path: Path) -> None:
    original, data = _fit(name)
    loaded = _loads_with_the_servers_allow_list(original, tmp_path / "model.skops")
    assert type(loaded) is type(original)
    compared = []
    with np.errstate(divide="ignore"):  # predict_log_proba of a probability 0
        for method in METHODS:
            if hasattr(original, method):
                _assert_same(getattr(loaded, method)(data), getattr(original, method)(data))
                compared.append(method)
    if hasattr(original, "kneighbors"):  # the neighbours themselves (NearestNeighbors has no more)
        for got, want in zip(loaded.kneighbors(data), original.kneighbors(data), strict=True):
            _assert_same(got, want)
        compared.append("kneighbors")
    assert {"predict", "transform", "score_samples", "kneighbors"} & set(compared), compared


def test_every_model_of_the_promised_families_has_a_case() -> None:
    covered = {type(step).__name__ for name in CASES for step in _steps(CASES[name]()[0])}
    promised = {name for name, cls in all_estimators() if cls.__module__.startswith(MODEL_MODULES)}
    assert promised - covered == set()


def _steps(estimator: Any) -> list[Any]:
    """The estimator and everything it nests (pipeline steps, column transformers, ensembles)."""
    found = [estimator]
    for value in estimator.get_params(deep=True).values():
        if isinstance(value, BaseEstimator):
            found.append(value)
        elif isinstance(value, list):
            found.extend(
                v[1] for v in value if isinstance(v, tuple) and isinstance(v[1], BaseEstimator)
            )
    return found


# --- what must stay out ---------------------------------------------------------------------------


def _double(values: Any) -> Any:
    """An arbitrary user function: harmless here, but the loader cannot know that."""
    return values * 2


def _score(features: Any, target: Any) -> Any:
    return f_classif(features, target)


FUNCTION = f"{__name__}._double"

#: name -> (unfitted estimator, X, y, the type the loader must name when it refuses it).
REFUSED: dict[str, tuple[Callable[[], BaseEstimator], Any, Any, str]] = {
    "FunctionTransformer(user function)": (
        lambda: make_pipeline(FunctionTransformer(_double), LogisticRegression()),
        X,
        Y_BIN,
        FUNCTION,
    ),
    "FunctionTransformer(math.sqrt)": (
        lambda: FunctionTransformer(math.sqrt),
        X_POS,
        None,
        "math.sqrt",
    ),
    "FunctionTransformer(functools.partial of an untrusted function)": (
        lambda: make_pipeline(
            FunctionTransformer(functools.partial(np.clip, a_min=-1.0, a_max=1.0)), Ridge()
        ),
        X,
        Y_REG,
        "numpy.clip",
    ),
    "FunctionTransformer(inverse_func=user function)": (
        lambda: FunctionTransformer(np.log1p, inverse_func=_double, check_inverse=False),
        X_POS,
        None,
        FUNCTION,
    ),
    "FunctionTransformer(builtins.eval)": (
        lambda: FunctionTransformer(eval, validate=False),
        None,
        None,
        "builtins.eval",
    ),
    "SelectKBest(user score function)": (
        lambda: make_pipeline(SelectKBest(_score, k=2), LogisticRegression()),
        X,
        Y_BIN,
        f"{__name__}._score",
    ),
    "KNeighborsClassifier(metric=user function)": (
        lambda: KNeighborsClassifier(3, algorithm="brute", metric=_distance),
        X,
        Y_BIN,
        f"{__name__}._distance",
    ),
    "ColumnTransformer(callable column selector)": (
        lambda: make_pipeline(
            ColumnTransformer([("num", StandardScaler(), _numeric_columns)]), LogisticRegression()
        ),
        DF,
        Y_DF_BIN,
        f"{__name__}._numeric_columns",
    ),
}


def _distance(a: Any, b: Any) -> float:
    return float(np.abs(a - b).sum())


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    return NUMERIC


def _fitted_refused(name: str) -> tuple[BaseEstimator, str]:
    build, data, target, named = REFUSED[name]
    estimator = build()
    if data is not None:
        estimator.fit(data, target)
    return estimator, named


def test_a_partial_is_trusted_only_for_what_it_wraps(tmp_path: Path) -> None:
    """Native categorical HistGradientBoosting keeps ``partial(check_array)``: loaded, while the
    same wrapper around anything else is refused by the name of what it wraps."""
    original, data = _fit("HistGradientBoostingClassifier(native categorical, by name)")
    file = tmp_path / "model.skops"
    skops.io.dump(original, file)
    assert {"functools.partial", "sklearn.utils.validation.check_array"} <= set(
        skops.io.get_untrusted_types(file=file)
    )  # the premise: what the allow-list has to cover for this model
    _assert_same(load_skops(file).predict_proba(data), original.predict_proba(data))
    wrapped = FunctionTransformer(functools.partial(os.system, "true"))
    skops.io.dump(wrapped, file)
    with pytest.raises(ModelLoadError, match=r"refused: posix\.system$"):
        load_skops(file)


@pytest.mark.parametrize("name", list(REFUSED))
def test_callables_are_refused_when_loading(name: str, tmp_path: Path) -> None:
    estimator, named = _fitted_refused(name)
    file = tmp_path / "model.skops"
    skops.io.dump(estimator, file)
    assert named in skops.io.get_untrusted_types(file=file)  # the test's own premise
    with pytest.raises(ModelLoadError, match=rf"untrusted types, refused: .*{re.escape(named)}"):
        load_skops(file)


@pytest.mark.parametrize("name", list(REFUSED))
def test_callables_are_refused_when_saving(name: str, tmp_path: Path) -> None:
    estimator, named = _fitted_refused(name)
    with pytest.raises(
        ModelLoadError, match=rf"untrusted types the server would refuse: .*{re.escape(named)}"
    ):
        save_model(estimator, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing published, no temporary file left


#: The only functions (rather than classes) on the list: pure computations over arrays.
TRUSTED_FUNCTIONS = {
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",  # what a BSpline converts input with
    "sklearn.utils.validation.check_array",  # native categorical HGB: numeric pass
}


def test_no_trusted_type_runs_code() -> None:
    """Names that would let a file call arbitrary code are never on the list."""
    assert len(set(TRUSTED_TYPES)) == len(TRUSTED_TYPES)  # no duplicates
    for name in TRUSTED_TYPES:
        assert name.startswith(("sklearn.", "numpy.", "scipy.", "functools.")), name
        assert "FunctionTransformer" not in name
        assert name != "numpy.ufunc"
        module, _, attribute = name.rpartition(".")
        trusted = getattr(importlib.import_module(module), attribute)
        assert isinstance(trusted, type) or name in TRUSTED_FUNCTIONS, name
