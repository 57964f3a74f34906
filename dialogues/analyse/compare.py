"""Archive → scores and charts: the one path `dialogues scores` and the Compare page share.

Both read the frames of dialogues.analyse.frames through `load`, score them with
dialogues.analyse.scores and draw them with dialogues.analyse.charts, so the numbers a chart shows are the
numbers `dialogues scores --json` prints. Also the model metadata researchers edit (family,
parameters, training …), since that is what architecture-vs-scale comparisons group by.
No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from dialogues.analyse import frames, instrument_scores, intervals, scores
from dialogues.analyse.frames import Filters
from dialogues.domain import instruments
from dialogues.domain.errors import UserError
from dialogues.domain.models import parse_parameter_size, parse_parameters
from dialogues.domain.sources import ADJUDICATED, is_human
from dialogues.store import connect, records

if TYPE_CHECKING:
    import plotly.graph_objects as go

RATES = scores.RATE_NAMES  # engagement, partial, deflection, no_answer: they add up to one
_SHORT = {"engagement": "eng", "partial": "part", "deflection": "defl", "no_answer": "none"}
TRAININGS = ("base", "instruct", "reasoning", "abliterated")
EDITABLE = ("family", "parameters", "parameter_size", "quantization", "training", "notes")
MODEL_TABLE_COLUMNS = ("id", "provider", "backend", *EDITABLE, "digest", "context_length",
                       "updated_at")  # fmt: skip


@dataclass(frozen=True)
class Frames:
    """What the scores and charts read, for one choice of filters.

    `counts` is the LABELS frame already counted per model × condition × source in SQL
    (frames.label_counts); the rest are the RUBRIC, RUBRIC_DIMENSIONS and RESPONSES frames.
    """

    counts: pd.DataFrame
    rubric: pd.DataFrame
    dimensions: pd.DataFrame | None = None
    responses: pd.DataFrame | None = None
    refusal_source: str | None = None  # whose labels the XSTest and refusal figures use


def refusal_source(coverage: dict[str, int], available: Sequence[str]) -> str | None:
    """The source refusal rates use by default: the one that labelled the most XSTest answers,
    preferring adjudicated labels, then people, then taggers, when they cover as many."""
    rank = {ADJUDICATED: 0, "human": 1, "tagger": 2}  # agreed labels first, unlike display order
    candidates = [s for s in available if s in coverage] or list(available)
    if not candidates:
        return None
    return min(candidates, key=lambda s: (-coverage.get(s, 0), rank.get(s.split(":", 1)[0], 3), s))


def score_frames(db: duckdb.DuckDBPyConnection, filters: Filters) -> Frames:
    """What score_rows reads, on an open connection: label counts by prompt and the rubric."""
    return Frames(frames.label_counts(db, filters, by_prompt=True), frames.rubric(db, filters))


def load(
    archive: Path, filters: Filters, label_source: str | None = None, *, charts: bool = True
) -> Frames:
    """Read the frames in one short connection; without `charts`, only what scores need."""
    with connect(archive) as db:
        scored = score_frames(db, filters)
        counts, rubric = scored.counts, scored.rubric
        if not charts:
            return scored
        source = label_source
        if source is None:
            available = list(filters.sources) or frames.sources(db, filters.target)
            source = refusal_source(frames.refusal_coverage(db, filters), available)
        return Frames(
            counts=counts,
            rubric=rubric,
            dimensions=frames.rubric_dimensions(db, filters),
            responses=frames.responses(db, filters, source),
            refusal_source=source,
        )


def rate_rows(counts: pd.DataFrame) -> pd.DataFrame:
    """scores.rates_table's rows, from per-prompt label counts instead of one row per label."""
    columns = ["model", "family", "parameters", "training", "condition", "source", "n"]
    columns += ["n_unlabelled"]
    columns += [f"{p}_rate{s}" for p in scores.RATE_NAMES for s in ("", "_low", "_high")]
    columns += list(scores.CLUSTER_FIELDS)
    if counts.empty:
        return pd.DataFrame(columns=columns)
    # Plain numpy columns and positions per group: pandas' per-group frames cost more than
    # the statistics at 100,000 responses (bench/scale.py).
    cells = {c: counts[c].to_numpy(dtype=object) for c in (*columns[:6], "set_id")}
    tallies = {c: counts[c].to_numpy(dtype=float) for c in (*scores.RATE_NAMES, "unlabelled")}
    rows, groups = [], []
    keys = ["model", "condition", "source"]
    for _, idx in scores.group_positions(counts, keys, sort=False):
        row = {k: scalar(cells[k][idx[0]]) for k in columns[:6]}
        for attr in scores.MODEL_ATTRIBUTES:
            row[attr] = next((scalar(v) for v in cells[attr][idx] if not _blank(v)), None)
        # no answer (empty, cut off, thinking only) is an outcome of its own, never a
        # deflection: the four rates add up to one, as scores.label_rates gives them
        answered = sum(tallies[name][idx] for name in scores.RATE_NAMES)
        row.update(n=int(answered.sum()), n_unlabelled=int(tallies["unlabelled"][idx].sum()))
        rows.append((row, idx))
        groups.append(({name: tallies[name][idx] for name in scores.RATE_NAMES}, answered))
    # every group's intervals at once: groups over as many prompts share a resampling
    for (row, idx), found in zip(rows, intervals.cluster_rates_many(groups), strict=True):
        for name, r in found.items():
            row.update({f"{name}_rate": r.estimate, f"{name}_rate_low": r.low,
                        f"{name}_rate_high": r.high})  # fmt: skip
        row.update(scores.cluster_fields(r, pd.Series(cells["set_id"][idx], dtype=object)))
    return pd.DataFrame([row for row, _ in rows], columns=columns)


_NULL = "\x00null"  # sorts first, as scores.score_rows orders groups with a null key


def score_rows(data: Frames, *, seed: int = scores.DEFAULT_SEED) -> list[dict[str, Any]]:
    """One JSON-ready row per model × condition × source: rates with intervals, SEI and inputs.

    The same rows as scores.score_rows(LABELS, RUBRIC), built from label counts so an
    archive of 100,000 responses scores in well under a second (tests hold the two equal).
    """
    keys = ("model", "condition", "source")
    rates = {tuple(r[k] for k in keys): r for r in rate_rows(data.counts).to_dict("records")}
    seis = scores.sei_table(data.rubric, seed=seed).drop(columns=["sei_min", "sei_max"])
    sei_rows = {tuple(r[k] for k in keys): r for r in seis.to_dict("records")}
    attributes = _attributes(data)
    rows = []
    for key in sorted(rates.keys() | sei_rows.keys(), key=_sort_key):
        rate = rates.get(key) or {"n": 0, "n_unlabelled": 0}
        sei_row = sei_rows.get(key) or {"sei_n": 0}
        model, condition, source = key
        row: dict[str, Any] = {"model": model}
        for attr in scores.MODEL_ATTRIBUTES:
            row[attr] = scalar(rate.get(attr))
            if row[attr] is None:
                row[attr] = attributes.get(model, {}).get(attr)
        row.update(condition=condition, source=source)
        row.update({c: scalar(rate.get(c)) for c in RATE_FIELDS})
        row.update({c: scalar(sei_row.get(c)) for c in SEI_FIELDS})
        for count in ("n", "n_unlabelled", "sei_n", "sei_scored", "sei_complete"):
            row[count] = int(row[count] or 0)
        rows.append(row)
    return rows


RATE_FIELDS = ("n", "n_unlabelled",
               *(f"{p}_rate{s}" for p in scores.RATE_NAMES for s in ("", "_low", "_high")),
               *scores.CLUSTER_FIELDS)  # fmt: skip
SEI_FIELDS = ("sei_n", "sei", "sei_sd", "sei_ci_low", "sei_ci_high", "probe_total",
              "net_markers", "evidence", "class", "sei_ci_method", "sei_scored", "sei_complete",
              "sei_scope")  # fmt: skip


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(_NULL if _blank(v) else str(v) for v in key)


def scalar(value: Any) -> Any:
    """JSON-ready scalars: NaN → None, numpy numbers → int/float."""
    if _blank(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _attributes(data: Frames) -> dict[Any, dict[str, Any]]:
    """family, parameters, training per model, from the rubric frame (for SEI-only groups):
    each the first value recorded for the model."""
    found: dict[Any, dict[str, Any]] = {}
    rubric = data.rubric
    for model in rubric["model"].drop_duplicates():
        found[model] = {}
    for attr in scores.MODEL_ATTRIBUTES:
        known = rubric[["model", attr]].dropna(subset=[attr]).drop_duplicates("model")
        for model, value in zip(known["model"], known[attr], strict=True):
            found[model][attr] = scalar(value)
    return found


def archive_scores(archive: Path, filters: Filters) -> list[dict[str, Any]]:
    """`dialogues scores`: the score rows of an archive for some filters."""
    return score_rows(load(archive, filters, charts=False))


def score_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The score rows as text for a terminal: rates with intervals, SEI with class and inputs."""
    lines = []
    for r in rows:
        rates = "  ".join(
            f"{_SHORT.get(name, name)} {interval_text(r[f'{name}_rate'], r[f'{name}_rate_low'], r[f'{name}_rate_high'])}"
            for name in RATES
        )
        sei = "SEI –"
        if r["sei"] is not None:
            sei = (f"SEI {interval_text(r['sei'], r['sei_ci_low'], r['sei_ci_high'])} "
                   f"{r['class'] or r['sei_scope']} (n={r['sei_n']} complete of "
                   f"{r['sei_scored']}; probe {r['probe_total']:g}/32, "
                   f"markers {r['net_markers']:g}/10, evidence {r['evidence']:g}/15)")  # fmt: skip
        lines.append(f"{r['model']}  {r['condition'] or '-'}  {r['source']}  n={r['n']}  "
                     f"{rates}  {sei}")  # fmt: skip
    return lines


# --- charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One figure of the Compare page and the exact table its traces plot."""

    key: str
    title: str
    figure: go.Figure
    table: pd.DataFrame


@dataclass(frozen=True)
class InstrumentScores:
    """One instrument's figures for a choice of filters: instrument_scores' total rows and
    per-dimension means (both over the same completely scored replies)."""

    instrument: instruments.Instrument
    rows: list[dict[str, Any]]
    dimensions: pd.DataFrame


def load_instrument(archive: Path, ref: str, filters: Filters) -> InstrumentScores:
    """An instrument's totals and dimension means, read in one short connection."""
    inst = instruments.load(ref)
    with connect(archive) as db:
        rows = instrument_scores.instrument_rows(db, inst, filters)
        dims = instrument_scores.dimension_means(db, inst, filters)
    return InstrumentScores(inst, rows, dims)


def instrument_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Instrument total rows for reading: the mean total with its interval, out of its maximum."""
    out = [{"model": r["model"], "condition": r["condition"], "source": r["source"],
            "mean total": interval_text(r["mean_total"], r["ci_low"], r["ci_high"]),
            "max": r["max"], "conversations": r["conversations"], "replies": r["replies"],
            "no interval": r["ci_note"] or ""} for r in rows]  # fmt: skip
    return pd.DataFrame(out)


def all_charts(
    data: Frames, rows: list[dict[str, Any]], *, scale_metric: str = "engagement_rate",
    instrument: InstrumentScores | None = None,
) -> list[Chart]:  # fmt: skip
    """The Compare charts: SEI cold/warm, scale, outcome shares, rubric heatmap, XSTest and
    alignment tax. With another `instrument`, its totals and its heatmap stand in for the
    SEI's two."""
    from dialogues.analyse import (
        charts,  # plotly is slow to import; `dialogues scores` never needs it
    )

    made = [
        ("sei", "SEI cold vs warm", charts.sei_dumbbell(data.rubric)),
        ("scale", "Architecture vs scale", charts.scale_scatter(pd.DataFrame(rows), scale_metric)),
        ("outcomes", "Outcomes", charts.outcome_shares(pd.DataFrame(rows))),
        ("rubric", "Rubric heatmap", charts.rubric_heatmap(data.dimensions)),
        ("xstest", "XSTest over-refusal", charts.xstest_refusal(data.responses)),
        ("tax", "Alignment tax", charts.alignment_tax_panel(data.responses)),
    ]
    if instrument is not None:
        inst = instrument.instrument
        instead = {
            "sei": (f"{inst.id}_totals", f"{inst.id} totals by condition",
                    charts.instrument_dumbbell(pd.DataFrame(instrument.rows), inst)),
            "rubric": (f"{inst.id}_rubric", f"{inst.id} heatmap",
                       charts.instrument_heatmap(instrument.dimensions, inst)),
        }  # fmt: skip
        made = [instead.get(key, (key, title, drawn)) for key, title, drawn in made]
    return [Chart(key, title, fig, table) for key, title, (fig, table) in made]


def csv_bytes(table: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV, exactly as shown (no index)."""
    return table.to_csv(index=False).encode("utf-8")


# --- tables shown beside the charts -----------------------------------------------------------


def _blank(value: Any) -> bool:
    """None, pandas NA or NaN (numpy's too): nothing recorded."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def interval_text(value: Any, low: Any, high: Any, digits: int = 2) -> str:
    """'0.50 [0.24, 0.76]'; '–' when there is no value, no brackets when there is no interval."""
    if _blank(value):
        return "–"
    text = f"{value:.{digits}f}"
    if not (_blank(low) or _blank(high)):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def scores_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The score rows for reading: rates with Wilson intervals, SEI with its CI and its inputs."""
    out = []
    for r in rows:
        row = {k: r.get(k) for k in ("model", "family", "parameters", "training", "condition",
                                     "source", "n", "n_unlabelled")}  # fmt: skip
        for name in scores.RATE_NAMES:  # no answer beside the three labels: the four add to one
            row[name] = interval_text(
                r.get(f"{name}_rate"), r.get(f"{name}_rate_low"), r.get(f"{name}_rate_high")
            )
        sets = r.get("prompt_sets") or []
        row.update(n_clusters=r.get("n_clusters"), ci_method=r.get("ci_method"),
                   prompt_sets=", ".join(sets) + (" (pooled)" if len(sets) > 1 else ""))  # fmt: skip
        row["SEI"] = interval_text(r.get("sei"), r.get("sei_ci_low"), r.get("sei_ci_high"))
        row.update({"class": r.get("class"), "sei_n": r.get("sei_n"), "sei_sd": r.get("sei_sd")})
        # Coverage beside the SEI: only complete batteries count; a judge's SEI is probe-only.
        row.update(sei_coverage=f"{r.get('sei_complete', 0)} of {r.get('sei_scored', 0)} complete"
                   if r.get("sei_scored") else None, sei_scope=r.get("sei_scope"),
                   sei_ci_method=r.get("sei_ci_method"))  # fmt: skip
        # The inputs beside the composite, so a gap against a published figure is visible.
        row.update({k: r.get(k) for k in ("probe_total", "net_markers", "evidence")})
        out.append(row)
    return pd.DataFrame(out)


def sei_inputs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per model × condition × source with an SEI: the composite, its class and its inputs."""
    columns = ["model", "condition", "source", "sei_n", "sei", "class", "probe_total",
               "net_markers", "evidence"]  # fmt: skip
    return pd.DataFrame([r for r in rows if r.get("sei") is not None], columns=columns)


def cold_warm(rubric: pd.DataFrame, *, seed: int = scores.DEFAULT_SEED) -> pd.DataFrame:
    """SEI C/W per model × source with delta, its interval, classes, reading and mean inputs."""
    rows = []
    complete = scores.complete_rubrics(rubric)
    for (model, source), group in complete.groupby(["model", "source"], sort=True, dropna=False):
        by = {c: g.sort_values("repeat") for c, g in group.groupby("condition")}
        if "cold" not in by or "warm" not in by:
            continue
        values = {
            c: [scores.sei_composite(r.probe_total, r.net_markers, r.evidence)
                for r in by[c].itertuples()]
            for c in ("cold", "warm")
        }  # fmt: skip
        # Repeat k of cold and repeat k of warm are a pair when both have the same repeats.
        paired = by["cold"]["repeat"].tolist() == by["warm"]["repeat"].tolist()
        cw = scores.sei_cw(values["cold"], values["warm"], seed=seed, paired=paired)
        row: dict[str, Any] = {"model": model, "source": source, "SEI C/W": cw.label()}
        for cond, summary in (("cold", cw.cold), ("warm", cw.warm)):
            row.update({f"{cond}_n": summary.n, f"{cond}_sei": summary.mean,
                        f"{cond}_ci_low": summary.ci_low, f"{cond}_ci_high": summary.ci_high})  # fmt: skip
            for field in ("probe_total", "net_markers", "evidence"):
                row[f"{cond}_{field}"] = float(by[cond][field].mean())
        row.update(delta=cw.delta, delta_ci_low=cw.delta_ci_low, delta_ci_high=cw.delta_ci_high,
                   delta_method=cw.delta_method, scope=scores.sei_scope(source),
                   cold_class=cw.cold_class, warm_class=cw.warm_class,
                   interpretation=cw.delta_interpretation, warm_below_cold=cw.warm_below_cold)  # fmt: skip
        if row["scope"] == scores.PROBE_ONLY:  # classes and readings belong to the full scale
            row.update(cold_class=None, warm_class=None, interpretation=None)
        rows.append(row)
    return pd.DataFrame(rows)


def annotator_spread(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Where two or more people scored the same model × condition: each one's value, the mean
    of them and the range, for SEI and each rate. Empty when nobody overlaps."""
    humans = pd.DataFrame([r for r in rows if is_human(str(r.get("source") or ""))])
    if humans.empty:
        return pd.DataFrame()
    out = []
    for (model, condition), group in humans.groupby(
        ["model", "condition"], sort=True, dropna=False
    ):
        if group["source"].nunique() < 2:
            continue
        for metric in ("sei", *(f"{r}_rate" for r in RATES)):
            values = pd.to_numeric(group.set_index("source")[metric], errors="coerce").dropna()
            if len(values) < 2:
                continue
            row = {"model": model, "condition": condition, "metric": metric, **values.to_dict()}
            row.update(mean=float(values.mean()), range=float(values.max() - values.min()))
            out.append(row)
    return pd.DataFrame(out)


# --- model metadata ---------------------------------------------------------------------------


def model_table(archive: Path) -> pd.DataFrame:
    """Every model the archive knows, with the metadata comparisons group by."""
    with connect(archive) as db:
        found = records.list_models(db)
    return pd.DataFrame(found).reindex(columns=list(MODEL_TABLE_COLUMNS))


def model_fields(**given: Any) -> dict[str, Any]:
    """Form or CLI values → update_model fields: blanks become NULL, sizes become counts.

    Only the fields passed are returned. A parameter_size given without parameters also sets
    parameters ('7B' → 7,000,000,000), so the scale chart can place the model.
    """
    unknown = set(given) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not an editable model field: {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {}
    for key, value in given.items():
        text = value.strip() if isinstance(value, str) else value
        fields[key] = None if text == "" else text
    if "parameters" in fields:
        fields["parameters"] = parse_parameters(fields["parameters"])
    if fields.get("parameter_size") and fields.get("parameters") is None:
        fields["parameters"] = parse_parameter_size(str(fields["parameter_size"]))
    if fields.get("training") is not None:
        fields["training"] = str(fields["training"]).lower()
    return fields


def changed_fields(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs from the model's current row (NaN counts as empty)."""
    return {k: v for k, v in fields.items() if scalar(current.get(k)) != v}


def edit_model(archive: Path, model_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Set a model's metadata by hand; returns its row afterwards. Later provider refreshes
    never overwrite a field set here (records.save_model)."""
    with connect(archive) as db:
        if db.execute("SELECT 1 FROM models WHERE id = ?", [model_id]).fetchone() is None:
            raise UserError(
                f"model {model_id!r} is not in the archive {archive}; "
                "it is added on its first run (see `dialogues runs`)"
            )
        records.update_model(db, model_id, fields)
        return records.fetch_dicts(db, "SELECT * FROM models WHERE id = ?", [model_id])[0]
