"""Agreement in the archive: labels by source, the agreement report, divergence, false positives.

The statistics live in `agreement`; this module gathers the archive's labels for them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import duckdb

from dialogues.analyse import agreement
from dialogues.annotate.annotations import CURRENT_SQL
from dialogues.domain import sources as source_names
from dialogues.domain.errors import UserError
from dialogues.domain.labels import DEFAULT, LabelSet
from dialogues.domain.sources import ADJUDICATED, HUMAN_PREFIX, TAGGER_PREFIX
from dialogues.store.sql import is_in

# --- labels by source ---------------------------------------------------------------------


def labels_by_source(
    db: duckdb.DuckDBPyConnection, target: str = "answer"
) -> dict[str, dict[str, str]]:
    """message id → {source: label} for every current human label and every tag of a target."""
    rows = db.execute(
        f"""
        SELECT message_id, {source_names.annotator_sql("annotator")}, label
        FROM ({CURRENT_SQL}) WHERE target = ? AND label IS NOT NULL
        UNION ALL
        SELECT message_id, {source_names.tagger_sql("tagger_id")}, label FROM tags WHERE target = ?
        """,
        [target, target],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for message_id, source, label in rows:
        out.setdefault(message_id, {})[source] = label
    return out


def sources(db: duckdb.DuckDBPyConnection, target: str = "answer") -> list[str]:
    """Every source with at least one label for a target: humans, adjudicated, taggers."""
    found = {s for by in labels_by_source(db, target).values() for s in by}
    return source_names.ordered(found)


def message_groups(db: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str | None]]:
    """message id → model, family (the model's family, else the model id) and run."""
    rows = db.execute(
        """
        SELECT m.id, m.model_id, coalesce(mo.family, m.model_id), c.run_id, c.set_id,
               coalesce(m.prompt_hash, m.prompt_key, m.id)
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        LEFT JOIN models mo ON mo.id = m.model_id
        WHERE m.role = 'assistant'
        """
    ).fetchall()
    return {r[0]: {"model": r[1], "family": r[2], "run": r[3], "set": r[4], "prompt": r[5]}
            for r in rows}  # fmt: skip


def failures(db: duckdb.DuckDBPyConnection, target: str = "answer") -> dict[str, dict[str, str]]:
    """source → {message id: why the tagger left it unlabelled} (its latest failure)."""
    rows = db.execute(
        f"""
        SELECT '{TAGGER_PREFIX}' || tagger_id, message_id, reason FROM tag_failures
        WHERE target = ?
        QUALIFY row_number() OVER (PARTITION BY tagger_id, message_id ORDER BY created_at DESC) = 1
        """,
        [target],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for source, message_id, reason in rows:
        out.setdefault(source, {})[message_id] = reason
    return out


def judge_family(db: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """The family of the model behind a judge source ('tagger:judge:<model>@v'), if known."""
    prefix = f"{TAGGER_PREFIX}judge:"
    if not source.startswith(prefix):
        return None
    model = source[len(prefix) :].rsplit("@", 1)[0]
    row = db.execute(
        "SELECT coalesce(family, id) FROM models WHERE id = ? OR backend = ? LIMIT 1",
        [model, model],
    ).fetchone()
    return str(row[0]) if row else model


def _within(
    ratings: dict[str, dict[str, str]],
    groups: dict[str, dict[str, str | None]],
    set_ids: tuple[str, ...],
    run_ids: tuple[str, ...],
) -> dict[str, dict[str, str]]:
    """Only the ratings of responses in the chosen prompt sets and runs (empty: all)."""
    if not set_ids and not run_ids:
        return ratings
    keep = {m for m, g in groups.items()
            if (not set_ids or g["set"] in set_ids) and (not run_ids or g["run"] in run_ids)}  # fmt: skip
    return {m: by for m, by in ratings.items() if m in keep}


def divergence(
    db: duckdb.DuckDBPyConnection,
    source: str,
    labels: LabelSet = DEFAULT,
    set_ids: tuple[str, ...] = (),
    run_ids: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Per model: how often one source's labels of the thinking and of the answer disagree.

    Engages = a label outside `labels.positive`; deflects = inside it (deflection or partial).
    `agree` counts exact label matches; n counts responses with both targets labelled.
    `set_ids` and `run_ids` narrow it as they narrow the agreement report.
    """
    groups = message_groups(db)
    answers = {
        m: by[source]
        for m, by in _within(labels_by_source(db, "answer"), groups, set_ids, run_ids).items()
        if source in by
    }
    thoughts = {
        m: by[source] for m, by in labels_by_source(db, "reasoning").items() if source in by
    }
    per: dict[str, dict[str, Any]] = {}
    for message_id in sorted(answers.keys() & thoughts.keys()):
        model = groups.get(message_id, {}).get("model") or "?"
        row = per.setdefault(model, {"model": model, "source": source, "n": 0, "both_engage": 0,
                                     "both_deflect": 0, "thinking_engages_answer_deflects": 0,
                                     "answer_engages_thinking_deflects": 0, "agree": 0})  # fmt: skip
        answer_out = answers[message_id] in labels.positive
        thought_out = thoughts[message_id] in labels.positive
        row["n"] += 1
        row["agree"] += answers[message_id] == thoughts[message_id]
        key = {
            (False, False): "both_engage",
            (True, True): "both_deflect",
            (True, False): "thinking_engages_answer_deflects",
            (False, True): "answer_engages_thinking_deflects",
        }[(answer_out, thought_out)]
        row[key] += 1
    for row in per.values():
        row["agree_rate"] = row["agree"] / row["n"]
    return [per[m] for m in sorted(per)]


# --- agreement over sources ---------------------------------------------------------------


def _interval(ci: Any) -> list[float | None] | None:
    return None if ci is None else [ci.low, ci.high]


def _pair_dict(row: agreement.PairRow) -> dict[str, Any]:
    out = {"a": row.a, "b": row.b, "n": row.n, "percent": row.percent, "kappa": row.kappa,
           "percent_ci": _interval(row.percent_ci), "kappa_ci": _interval(row.kappa_ci)}  # fmt: skip
    if row.group is not None:
        out["family"] = row.group
    return out


def _tagger_dict(row: agreement.TaggerRow) -> dict[str, Any]:
    out = {"tagger": row.tagger, "reference": row.reference, "n": row.n,
           "precision": row.precision, "recall": row.recall, "f1": row.f1, "kappa": row.kappa,
           "percent": row.percent, "precision_ci": _interval(row.precision_ci),
           "recall_ci": _interval(row.recall_ci), "f1_ci": _interval(row.f1_ci),
           "kappa_ci": _interval(row.kappa_ci), "weighted_kappa": row.weighted_kappa,
           "weighted_kappa_ci": _interval(row.weighted_kappa_ci),
           "per_class": [asdict(c) for c in row.per_class], "coverage": row.coverage,
           "intervals_by": "prompt" if row.clustered else "item",
           "confusion": {"labels": list(row.labels), "rows": "reference", "columns": "tagger",
                         "matrix": row.confusion}}  # fmt: skip
    if row.group is not None:
        out["family"] = row.group
    return out


def agreement_report(
    db: duckdb.DuckDBPyConnection,
    reference: str = ADJUDICATED,
    *,
    target: str = "answer",
    labels: LabelSet = DEFAULT,
    n_boot: int = agreement.N_BOOT,
    with_divergence: bool = False,
    set_ids: tuple[str, ...] = (),
    run_ids: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Pairs of human annotators, every tagger against `reference`, by family, with intervals.

    `set_ids` and `run_ids` narrow every figure to responses of those prompt sets and runs.

    Pairs and Fleiss/Krippendorff cover `human:*` sources only: 'adjudicated' is derived from
    the annotators, so pairing it with them would inflate agreement; it serves as the
    default reference instead. Family is the model's family, or its id when none is recorded.
    Tagger intervals resample whole prompts; `run_ids`/`set_ids` keep only those responses.
    """
    groups = message_groups(db)
    present = {g["run"] for g in groups.values()}
    missing = [r for r in run_ids if r not in present]
    if missing:
        raise UserError(f"--run: no responses from run {missing[0]!r} in the archive")
    ratings = _within(labels_by_source(db, target), groups, set_ids, run_ids)
    found = {s for by in ratings.values() for s in by}
    if reference not in found:
        known = ", ".join(sorted(s for s in found if not s.startswith(TAGGER_PREFIX))) or "none"
        raise UserError(f"no {target} labels from reference {reference!r}; sources: {known}")
    humans = sorted(s for s in found if s.startswith(HUMAN_PREFIX))
    taggers = sorted(s for s in found if s.startswith(TAGGER_PREFIX))
    observed = {lab for by in ratings.values() for lab in by.values()}
    label_list = list(labels.labels) + sorted(observed - set(labels.labels))
    human_ratings = {m: {s: by[s] for s in humans if s in by} for m, by in ratings.items()}
    human_ratings = {m: by for m, by in human_ratings.items() if len(by) >= 2}
    ref = {m: by[reference] for m, by in ratings.items() if reference in by}
    family = {m: g["family"] for m, g in groups.items()}
    prompt = {m: g["prompt"] for m, g in groups.items()}
    why = failures(db, target)
    options: dict[str, Any] = {"n_boot": n_boot}
    tag_opts = {"reference_name": reference, "labels": label_list, "positive": labels.positive,
                "clusters": prompt, "order": labels.labels, **options}  # fmt: skip
    report: dict[str, Any] = {
        "pairs": [_pair_dict(r) for r in agreement.pairwise(human_ratings, **options)],
        "taggers": [],
        "fleiss_kappa": agreement.fleiss_kappa(
            [[by.get(s) for s in humans] for by in human_ratings.values()]
        ),
        "krippendorff_alpha": agreement.krippendorff_alpha(
            [[by.get(s) for s in humans] for by in human_ratings.values()]
        ),
        "target": target,
        "runs": list(run_ids),
        "label_set": labels.id,
        "positive": sorted(labels.positive),
        "by_family": {
            "pairs": [_pair_dict(r) for r in
                      agreement.pairwise_by_group(human_ratings, family, **options)],
            "taggers": [],
        },
    }  # fmt: skip
    for source in taggers:
        predicted = {m: by[source] for m, by in ratings.items() if source in by}
        reasons = why.get(source, {})
        row = agreement.tagger_vs_reference(predicted, ref, tagger=source, why=reasons, **tag_opts)
        report["taggers"].append(_tagger_dict(row))
        own = judge_family(db, source)
        for r in agreement.tagger_vs_reference_by_group(
            predicted, ref, family, tagger=source, why=reasons, **tag_opts
        ):
            out = _tagger_dict(r)
            # A judge scoring its own family may prefer its own kind of answer (self-preference).
            out["same_family_judge"] = own is not None and own == r.group
            report["by_family"]["taggers"].append(out)
    if with_divergence:
        report["divergence"] = [
            row for source in sorted(found) for row in divergence(db, source, labels, set_ids, run_ids)
        ]  # fmt: skip
    return report


def false_positives(
    db: duckdb.DuckDBPyConnection,
    source: str,
    reference: str = ADJUDICATED,
    *,
    target: str = "answer",
    labels: LabelSet = DEFAULT,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Responses the reference says engage but `source` puts on the refusal side."""
    ratings = labels_by_source(db, target)
    hits = [
        (m, by[reference], by[source])
        for m, by in ratings.items()
        if reference in by
        and source in by
        and by[reference] not in labels.positive
        and by[source] in labels.positive
    ]
    hits.sort()
    groups = message_groups(db)
    params: list[Any] = []
    wanted = is_in("id", [m for m, _, _ in hits[:limit]], params)
    previews = dict(
        db.execute(
            f"SELECT id, left(coalesce({'content' if target == 'answer' else 'reasoning'}, ''), 200)"
            f" FROM messages WHERE {wanted}",
            params,
        ).fetchall()
    )
    return [
        {"message_id": m, "reference_label": r, "tagger_label": t,
         "model": groups.get(m, {}).get("model"), "preview": previews.get(m, "")}
        for m, r, t in hits[:limit]
    ]  # fmt: skip


def _fmt(value: float | None, ci: list[float | None] | None = None) -> str:
    if value is None:
        return "—"
    if ci and ci[0] is not None and ci[1] is not None:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def _detail_lines(t: dict[str, Any]) -> list[str]:
    """Per-class figures and coverage of one tagger row."""
    lines = [f"      {c['label']}: precision {_fmt(c['precision'])} recall {_fmt(c['recall'])} "
             f"F1 {_fmt(c['f1'])} (n={c['support']})" for c in t["per_class"] if c["support"]
             or c["precision"] is not None]  # fmt: skip
    cov = t["coverage"]
    why = ", ".join(f"{k} {v}" for k, v in cov["why"].items())
    lines.append(f"      labelled {cov['labelled']} of {cov['reference']}"
                 + (f" (unlabelled: {why})" if why else "")
                 + f"; intervals resample by {t['intervals_by']}")  # fmt: skip
    return lines


def report_lines(report: dict[str, Any]) -> list[str]:
    """An agreement report as lines of text for a terminal."""
    lines = [f"annotator pairs ({report['target']}):"]
    for fam, pairs in (("", report["pairs"]), ("by family", report["by_family"]["pairs"])):
        if fam and pairs:
            lines.append("annotator pairs by family:")
        for p in pairs:
            where = f"[{p['family']}] " if "family" in p else ""
            lines.append(f"  {where}{p['a']} vs {p['b']}: n={p['n']} "
                         f"agreement {_fmt(p['percent'], p['percent_ci'])} "
                         f"kappa {_fmt(p['kappa'], p['kappa_ci'])}")  # fmt: skip
    lines.append(f"fleiss kappa {_fmt(report['fleiss_kappa'])}, "
                 f"krippendorff alpha {_fmt(report['krippendorff_alpha'])}")  # fmt: skip
    for fam, rows in (("", report["taggers"]), ("by family", report["by_family"]["taggers"])):
        if rows:
            lines.append(f"taggers vs {rows[0]['reference']}{' by family' if fam else ''} "
                         f"(positive = {' or '.join(report['positive'])}):")  # fmt: skip
        for t in rows:
            where = f"[{t['family']}] " if "family" in t else ""
            if t.get("same_family_judge"):
                where += "(judge of the same family: self-preference risk) "
            lines.append(f"  {where}{t['tagger']}: n={t['n']} "
                         f"precision {_fmt(t['precision'], t['precision_ci'])} "
                         f"recall {_fmt(t['recall'], t['recall_ci'])} "
                         f"F1 {_fmt(t['f1'], t['f1_ci'])} kappa {_fmt(t['kappa'], t['kappa_ci'])} "
                         f"weighted kappa {_fmt(t['weighted_kappa'], t['weighted_kappa_ci'])}")  # fmt: skip
            lines.extend(_detail_lines(t))
    for d in report.get("divergence", []):
        lines.append(f"divergence {d['source']} {d['model']}: n={d['n']} both engage "
                     f"{d['both_engage']}, thinking engages/answer deflects "
                     f"{d['thinking_engages_answer_deflects']}, reverse "
                     f"{d['answer_engages_thinking_deflects']}, agree {d['agree_rate']:.3f}")  # fmt: skip
    return lines
