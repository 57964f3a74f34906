"""Archive → analysis: contrasts, rates per prompt set, the architecture model; and the report.

The one path `dialogues analyse`, `dialogues report` and the Analysis page share. The
statistics live in dialogues.analyse.inference and .architecture; this module picks the data,
calls them, and writes `report.md`, a self-contained `report.html` (plotly.js inlined) and the
tables as CSV beside them. No Streamlit here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dialogues.analyse import architecture, inference, intervals, outcomes
from dialogues.analyse import frames as frames_module
from dialogues.analyse.frames import Filters
from dialogues.domain.errors import UserError
from dialogues.domain.labels import DEFAULT, LabelSet
from dialogues.store import connect

METRICS = ("deflection", "engagement", "sei")


@dataclass(frozen=True)
class Options:
    """What to analyse and how."""

    metric: str = "deflection"
    reference: str | None = None  # the condition others are set against; default 'cold'
    correction: str = "holm"  # or 'bh'
    test: str = "t"  # SEI: 't' or 'wilcoxon'

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise UserError(f"--metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.correction not in inference.CORRECTIONS:
            raise UserError(f"--correction must be holm or bh, got {self.correction!r}")


def load(
    archive: Path, filters: Filters, labels: LabelSet = DEFAULT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The OUTCOMES and RUBRIC frames for some filters, in one short connection."""
    with connect(archive) as db:
        return outcomes.load(db, filters, labels), frames_module.rubric(db, filters)


def rate_rows(data: pd.DataFrame, metric: str = "deflection") -> list[dict[str, Any]]:
    """Per model × condition × source × prompt set: the rate with its cluster interval."""
    value = inference.METRIC_COLUMN[metric]
    rows = []
    keys = ["model", "condition", "source", "set_id"]
    for key, group in data.groupby(keys, sort=True, dropna=False):
        r = inference.cluster_rate(group, value)
        rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, "rate": r.estimate,
                     "ci": [r.low, r.high] if r.low is not None else None, "n": r.n,
                     "n_clusters": r.n_clusters, "ci_method": r.method, "reason": r.reason})  # fmt: skip
    return rows


def sei_rows(rubric: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model × condition × source: mean SEI of complete batteries with its t-interval."""
    data = inference.sei_values(rubric)
    rows = []
    for (model, condition, source), group in rubric.groupby(["model", "condition", "source"],
                                                           sort=True, dropna=False):  # fmt: skip
        done = data[(data.model == model) & (data.condition == condition) & (data.source == source)]
        r = intervals.mean_t(done["sei"].tolist())
        rows.append({"model": model, "condition": condition, "source": source, "metric": "sei",
                     "rate": r.estimate, "ci": [r.low, r.high] if r.low is not None else None,
                     "n": r.n, "n_clusters": r.n_clusters, "ci_method": r.method,
                     "reason": r.reason, "coverage": f"{len(done)} of {len(group)} complete",
                     "probe_only": str(source).startswith("tagger:")})  # fmt: skip
    return rows


def analyse(
    data: pd.DataFrame, rubric: pd.DataFrame, options: Options = Options()
) -> dict[str, Any]:
    """The `analyse --json` document: contrasts (adjusted), rates, architecture."""
    if options.metric == "sei":
        found = inference.sei_contrasts(rubric, reference=options.reference, test=options.test)
        rates = sei_rows(rubric)
        arch = architecture.Architecture(
            False, "the architecture model is fitted to a binary outcome: use --metric "
            "deflection or engagement", method=architecture.METHOD, metric="sei")  # fmt: skip
    else:
        found = inference.condition_contrasts(data, options.metric, options.reference)
        found += inference.model_contrasts(data, options.metric)
        rates = rate_rows(data, options.metric)
        arch = architecture.fit(data, options.metric, reference=options.reference)
    contrasts = inference.adjust(found, options.correction)
    return {"metric": options.metric, "correction": options.correction,
            "contrasts": [c.as_json() for c in contrasts], "rates": rates,
            "architecture": arch.as_json()}  # fmt: skip


def archive_analysis(
    archive: Path, filters: Filters, options: Options = Options(), labels: LabelSet = DEFAULT
) -> dict[str, Any]:
    """`dialogues analyse`: the analysis of an archive for some filters."""
    data, rubric = load(archive, filters, labels)
    return analyse(data, rubric, options)


# --- text --------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(ci: Any, digits: int = 3) -> str:
    return "" if not ci else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def contrast_line(c: dict[str, Any]) -> str:
    """One contrast as text: who, b − a with interval, p and adjusted p, or the reason."""
    where = f"{c['model']}: " if c["kind"] == "conditions" else f"{c['condition']}: "
    head = f"{where}{c['b']} − {c['a']} ({c['metric']}, {c['source']}, {c['n_pairs']} pairs, " \
           f"{c['n_clusters']} clusters)"  # fmt: skip
    body = (
        f"{_num(c['estimate'])}{_ci(c['ci'])}  p {_num(c['p'], 4)}  adj {_num(c['p_adjusted'], 4)}"
    )
    return f"{head}  {body}" + (f"  — {c['reason']}" if c["reason"] else "")


def lines(result: dict[str, Any]) -> list[str]:
    """The analysis for a terminal."""
    out = [f"{result['metric']}: rates ({'per prompt set, ' if result['metric'] != 'sei' else ''}"
           "95% intervals over clusters)"]  # fmt: skip
    for r in result["rates"]:
        where = f" {r['set_id']}" if "set_id" in r else ""
        out.append(f"  {r['model']}  {r['condition']}  {r['source']}{where}  "
                   f"{_num(r['rate'])}{_ci(r['ci'])}  n={r['n']} clusters={r['n_clusters']}"
                   + (f"  — {r['reason']}" if r["reason"] else ""))  # fmt: skip
    for kind in ("conditions", "models"):
        chosen = [c for c in result["contrasts"] if c["kind"] == kind]
        out.append(f"{kind} (b − a, {result['correction']}-adjusted p):")
        out += [f"  {contrast_line(c)}" for c in chosen] or ["  none"]
    arch = result["architecture"]
    out.append(f"architecture vs scale: {arch['method']}")
    if not arch["identifiable"]:
        out.append(f"  not answered: {arch['reason']}")
    for t in arch.get("tests", []):
        out.append(f"  {t['term']}: chi2 {t['chi2']:.2f} (df {t['df']}) p {t['p']:.4f} "
                   f"share {t['share']:.3f}")  # fmt: skip
    out += [f"  note: {n}" for n in arch.get("notes", [])]
    return out


# --- the report ---------------------------------------------------------------------------------


def tables(result: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The report's tables, as written beside it in CSV."""

    def flat(rows: list[dict[str, Any]]) -> pd.DataFrame:
        df = pd.DataFrame(rows)
        if "ci" in df.columns:
            df["ci_low"] = [c[0] if c else None for c in df["ci"]]
            df["ci_high"] = [c[1] if c else None for c in df["ci"]]
            df = df.drop(columns="ci")
        return df

    arch = result["architecture"]
    return {"rates": flat(result["rates"]), "contrasts": flat(result["contrasts"]),
            "architecture_terms": flat(arch.get("terms", [])),
            "architecture_tests": pd.DataFrame(arch.get("tests", []))}  # fmt: skip


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """The report's plotly figures: rates with intervals, and the contrasts as a forest plot."""
    from dialogues.analyse import charts  # plotly is slow to import; `analyse` never needs it

    t = tables(result)
    return {"rates": charts.interval_dots(t["rates"], "Rates with 95% intervals over clusters"),
            "contrasts": charts.contrast_forest(t["contrasts"])}  # fmt: skip


def markdown(result: dict[str, Any], filters: Filters) -> str:
    """report.md: what was analysed, then every line of the analysis and the table files."""
    head = ["# Analysis report", "", f"Metric: {result['metric']}; comparisons corrected with "
            f"{result['correction']}.", f"Filters: {filters}", "", "```"]  # fmt: skip
    body = [*lines(result), "```", "", "Tables: " + ", ".join(f"`{n}.csv`" for n in tables(result))]
    return "\n".join(head + body) + "\n"


def html_page(result: dict[str, Any], filters: Filters) -> str:
    """report.html: the figures (plotly.js inlined once, so it opens offline) and the text."""
    parts = []
    for i, (name, fig) in enumerate(figures(result).items()):
        div = fig.to_html(full_html=False, include_plotlyjs=i == 0, div_id=f"fig-{name}")
        parts.append(f"<section><h2>{html.escape(name)}</h2>{div}</section>")
    text = html.escape("\n".join(lines(result)))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Analysis report</title>"
            "</head><body><h1>Analysis report</h1>"
            f"<p>Filters: {html.escape(str(filters))}</p>{''.join(parts)}"
            f"<h2>Results</h2><pre>{text}</pre></body></html>")  # fmt: skip


def write(result: dict[str, Any], filters: Filters, out: Path) -> list[Path]:
    """Write report.md, report.html and the CSV tables into `out`; returns the paths."""
    # Everything is built before the first file is written: a failure writes nothing.
    texts = {f"{name}.csv": table.to_csv(index=False) for name, table in tables(result).items()}
    texts["report.md"] = markdown(result, filters)
    texts["report.html"] = html_page(result, filters)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in texts]
