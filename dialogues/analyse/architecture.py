"""Architecture vs scale: a GEE logistic model of the outcome, clustered by prompt, or a reason.

Model: y ~ condition + family + training + log10(parameters), binomial family, logit link,
`statsmodels` GEE with `cov_struct=Exchangeable()` and groups = prompt (set_id, prompt_key),
robust (sandwich) standard errors. Why GEE and not a mixed model: the question is about
population-averaged rates ("does family matter, at a given size?"), GEE gives frequentist
Wald tests per term with errors that respect the prompt clustering, and it fits reliably;
statsmodels' binomial mixed model (BinomialBayesMixedGLM) is variational Bayes, with no
likelihood-ratio or Wald tests to report. Model-level terms are only learnt from differences
between models, so the design is checked first, at the model level:
- a term needs variation (two families, two sizes, two trainings; training may be absent and
  is then left out, said in `notes`);
- family and scale must not be confounded (each family at one size, one model per family):
  the model-level design [1, family, training, log10 parameters] must have full column rank;
- there must be more models than model-level columns, or the terms would just name the models.
When a check fails, `identifiable` is false and `reason` says what design would answer.

`share` per term: the variance of the term's contribution to the linear predictor over the
latent-scale total (variance of the whole linear predictor + π²/3). Terms that are correlated
share variance, so shares need not add up.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from dialogues.analyse import inference

METHOD = ("GEE, binomial logit, exchangeable within prompt, robust SE; Wald test per term "
          "(y ~ condition + family + training + log10 parameters)")  # fmt: skip


@dataclass(frozen=True)
class Architecture:
    """The fitted terms, or why the design cannot separate them."""

    identifiable: bool
    reason: str | None
    terms: list[dict[str, Any]] = field(default_factory=list)
    """Coefficients: term, estimate (log odds), ci, p."""
    tests: list[dict[str, Any]] = field(default_factory=list)
    """Per term: term, df, chi2, p (Wald), share (latent-scale variance)."""
    method: str = METHOD
    source: str | None = None
    metric: str = "deflection"
    n: int = 0
    n_clusters: int = 0
    n_models: int = 0
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def model_table(data: pd.DataFrame) -> pd.DataFrame:
    """One row per model: family, training, parameters (first non-null value)."""
    cols = ["family", "training", "parameters"]
    return data.groupby("model", sort=True)[cols].first().reset_index()


def _design(models: pd.DataFrame, terms: list[str]) -> np.ndarray:
    """The model-level design matrix [1, family dummies, training dummies, log10 parameters]."""
    parts = [np.ones((len(models), 1))]
    for term in terms:
        if term == "scale":
            parts.append(np.log10(models["parameters"].astype(float).to_numpy())[:, None])
        else:
            dummies = pd.get_dummies(models[term].astype(str), drop_first=True, dtype=float)
            parts.append(dummies.to_numpy())
    return np.hstack(parts)


def check_design(models: pd.DataFrame) -> tuple[list[str], str | None, list[str]]:
    """The model-level terms to fit, a reason when they cannot be separated, and notes."""
    notes: list[str] = []
    if len(models) < 2:
        return [], "one model: architecture and scale need several models", notes
    families, sizes = models["family"].nunique(), models["parameters"].nunique()
    if families < 2 and sizes < 2:
        return [], "one family at one size: add models of another family and another size", notes
    if families < 2:
        return [], (f"every model is of family {models['family'].iloc[0]!r}: scale alone cannot "
                    "be set against architecture; add a model of another family"), notes  # fmt: skip
    if sizes < 2:
        return [], ("every model has the same parameter count: add a second size of at least "
                    "one family"), notes  # fmt: skip
    terms = ["family", "scale"]
    if models["training"].nunique() > 1:
        terms.insert(1, "training")
    else:
        notes.append("training: one value among these models, left out of the model")
    x = _design(models, terms)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return terms, ("family and scale are confounded (each family at one size, or sizes "
                       "that line up with families): add a second size of at least one family"), notes  # fmt: skip
    if len(models) <= x.shape[1]:
        return terms, (f"{len(models)} models for {x.shape[1]} model-level coefficients: the "
                       "terms would only name the models (e.g. one model per family); add a "
                       "model, such as a second size of one family"), notes  # fmt: skip
    return terms, None, notes


def _formula(terms: list[str], reference: str | None, conditions: list[str]) -> str:
    """The GEE formula for the chosen terms."""
    rhs = [f"C(condition, Treatment({reference!r}))"] if len(conditions) > 1 else []
    rhs += [{"family": "C(family)", "training": "C(training)", "scale": "log10_parameters"}[t]
            for t in terms]  # fmt: skip
    return "y ~ " + " + ".join(rhs)


def fit_frame(data: pd.DataFrame, metric: str = "deflection") -> pd.DataFrame:
    """The rows a fit uses: a known outcome and model metadata, with cluster and log10 size."""
    value = inference.METRIC_COLUMN[metric]
    frame = data.dropna(subset=[value, "family", "parameters"]).copy()
    frame = frame[frame["parameters"].astype(float) > 0]
    frame["y"] = frame[value].astype(float)
    frame["training"] = frame["training"].fillna("unknown")
    frame["log10_parameters"] = np.log10(frame["parameters"].astype(float))
    frame["cluster"] = frame["set_id"].astype(str) + "\x00" + frame["prompt_key"].astype(str)
    return frame.sort_values("cluster").reset_index(drop=True)


def fit(
    data: pd.DataFrame, metric: str = "deflection", *, reference: str | None = None,
    source: str | None = None,
) -> Architecture:  # fmt: skip
    """Check the design, then fit the GEE and test each term; a reason instead when it cannot."""
    if source is None and not data.empty:
        source = str(data["source"].value_counts().idxmax())
    frame = fit_frame(data[data["source"] == source] if source else data, metric)
    base = dict(source=source, metric=metric, n=len(frame),
                n_clusters=int(frame["cluster"].nunique()) if len(frame) else 0)  # fmt: skip
    models = model_table(frame) if len(frame) else pd.DataFrame()
    missing = sorted(set(data["model"]) - set(models.get("model", [])))
    notes = (
        [f"left out (no family or parameters): {', '.join(map(str, missing))}"] if missing else []
    )
    if len(frame) == 0:
        return Architecture(False, "no labelled answers from models with a family and a "
                            "parameter count (set them with `dialogues models-set`)",
                            notes=notes, **base)  # type: ignore[arg-type]  # fmt: skip
    terms, reason, more = check_design(models)
    notes += more
    base["n_models"] = len(models)
    if reason:
        return Architecture(False, reason, notes=notes, **base)  # type: ignore[arg-type]
    if frame["y"].nunique() < 2:
        return Architecture(False, "the outcome never varies: nothing to model", notes=notes,
                            **base)  # type: ignore[arg-type]  # fmt: skip
    conditions = inference.reference_first(frame["condition"].dropna().unique(), reference)
    formula = _formula(terms, conditions[0] if conditions else None, conditions)
    return _fitted(frame, formula, notes, base)


def gee(frame: pd.DataFrame, formula: str) -> Any:
    """The statsmodels GEE fit itself (tests call the library the same way to compare)."""
    model = smf.gee(formula, groups="cluster", data=frame, family=sm.families.Binomial(),
                    cov_struct=sm.cov_struct.Exchangeable())  # fmt: skip
    return model.fit()


def _fitted(
    frame: pd.DataFrame, formula: str, notes: list[str], base: dict[str, Any]
) -> Architecture:
    """Fit and summarise; a fit that warns of non-convergence or separation gives a reason."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = gee(frame, formula)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return Architecture(False, f"the fit failed: {exc}", notes=notes, **base)
    trouble = [w for w in caught if issubclass(w.category, ConvergenceWarning)
               or "separation" in str(w.message).lower()]  # fmt: skip
    if trouble or not np.all(np.isfinite(res.params)) or not np.all(np.isfinite(res.bse)):
        why = str(trouble[0].message).splitlines()[0] if trouble else "non-finite estimates"
        return Architecture(False, f"the fit did not converge ({why})", notes=notes, **base)
    ci = res.conf_int()
    terms = [{"term": name, "estimate": float(res.params[name]),
              "ci": [float(ci.loc[name, 0]), float(ci.loc[name, 1])],
              "p": float(res.pvalues[name])} for name in res.params.index]  # fmt: skip
    return Architecture(True, None, terms=terms, tests=_term_tests(res), notes=notes, **base)


def _term_tests(res: Any) -> list[dict[str, Any]]:
    """Wald chi-square per term and the share of latent-scale variance of its contribution."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = res.wald_test_terms(skip_single=False, scalar=True).table
    exog = pd.DataFrame(res.model.exog, columns=res.model.exog_names)
    linear = exog.to_numpy() @ res.params.to_numpy()
    total = float(np.var(linear)) + math.pi**2 / 3
    found = []
    for term, row in table.iterrows():
        if term == "Intercept":
            continue
        cols = [c for c in res.params.index if c == term or c.startswith(f"{term}[")]
        part = exog[cols].to_numpy() @ res.params[cols].to_numpy()
        found.append({"term": str(term), "df": int(row["df_constraint"]),
                      "chi2": float(row["statistic"]), "p": float(row["pvalue"]),
                      "share": float(np.var(part) / total)})  # fmt: skip
    return found
