"""A learned tagger: word and character n-gram TF-IDF with a calibrated linear model.

It learns the study's own coding from the archive's human labels (adjudicated where there is
one, else the annotators' majority). Its version is a hash of its features, settings and
training labels, so new labels make a new tagger and the old tags stay. It never reports on
its own training data: a labelled response gets the prediction of a model fitted without its
prompt (group k-fold by prompt, so a prompt is never on both sides), and the fold metrics are
stored with the tagger. Unlabelled responses get the model fitted on every label.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import cohen_kappa_score, f1_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_union
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from dialogues.annotate.annotations import ADJUDICATED, CURRENT_SQL
from dialogues.annotate.tagging import HEURISTIC, Tag, features, no_answer, no_answer_tag
from dialogues.domain.errors import UserError
from dialogues.domain.labels import DEFAULT, NO_ANSWER, LabelSet
from dialogues.store import connect
from dialogues.store.sql import is_in

NAME = "learned"


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the model besides its training labels."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    sublinear_tf: bool = True
    signals: bool = True  # add the heuristic's deflection counts beside the n-grams
    c: float = 0.5  # inverse regularisation of the linear SVM
    class_weight: str | None = "balanced"  # partial refusals are rare; do not let them vanish
    calibration: str = "sigmoid"
    calibration_folds: int = 3
    folds: int = 5  # group k-fold by prompt for the out-of-fold predictions
    min_per_class: int = 8  # below this a class cannot be split over the folds sensibly
    max_chars: int = 4000  # the opening carries the decision; long answers cost time only


@dataclass(frozen=True)
class Example:
    """One labelled response: its id, text, label and group (the prompt it answers)."""

    message_id: str
    text: str
    label: str
    group: str


def signals(texts: Sequence[str]) -> np.ndarray:
    """The heuristic's deflection counts per text, capped and scaled to about 0..1."""
    rows = []
    for text in texts:
        f = features(text)
        words = max(f["words"], 1)
        counts = [min(f[k], 3) / 3 for k in ("refusal_phrases", "disclaimers", "caveats",
                                             "denials", "reframes", "pivots")]  # fmt: skip
        rows.append([float(f["refusal_opening"]), *counts, f["answer_words"] / words,
                     f["answer_before_deflection"] / words, np.log1p(words) / 5,
                     f["deflective_sentences"] / max(f["sentences"], 1)])  # fmt: skip
    return np.array(rows, dtype=float)


def pipeline(settings: Settings) -> Pipeline:
    """The unfitted model: TF-IDF word and char n-grams into a calibrated linear SVM."""
    # Why the signals: n-grams alone learn one model's wording of a refusal ("Sorry, but I
    # can't assist") and miss another's; the counts carry what refusals share across models.
    parts: list[Any] = [
        TfidfVectorizer(ngram_range=settings.word_ngrams, sublinear_tf=settings.sublinear_tf,
                        lowercase=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=settings.char_ngrams,
                        sublinear_tf=settings.sublinear_tf, lowercase=True, min_df=2),
    ]  # fmt: skip
    if settings.signals:
        parts.append(FunctionTransformer(signals))
    union = make_union(*parts)
    # A linear SVM fits in a fraction of a logistic regression's time on these sparse features;
    # the calibration turns its margins into probabilities.
    linear = LinearSVC(C=settings.c, class_weight=settings.class_weight, random_state=0)
    model = CalibratedClassifierCV(
        linear, method=settings.calibration, cv=settings.calibration_folds
    )
    return Pipeline([("features", union), ("model", model)])


def check_counts(examples: Sequence[Example], settings: Settings) -> None:
    """A UserError saying how many more labels are needed, if too few to train on."""
    if not examples:
        raise UserError("the learned tagger needs human labels to train on; the archive has none")
    counts = Counter(e.label for e in examples)
    if len(counts) < 2:
        (only,) = counts
        raise UserError(
            f"the learned tagger needs at least two classes; every label is {only!r} "
            f"(label at least {settings.min_per_class} responses another way)"
        )
    short = {k: settings.min_per_class - n for k, n in counts.items() if n < settings.min_per_class}
    if short:
        need = ", ".join(f"{k}: {n} more" for k, n in sorted(short.items()))
        raise UserError(
            f"too few labels to train the learned tagger ({need}; "
            f"each class needs {settings.min_per_class})"
        )
    groups = len({e.group for e in examples})
    if groups < settings.folds:
        raise UserError(
            f"the learned tagger needs labels on at least {settings.folds} prompts for its "
            f"group k-fold; the labels cover {groups}"
        )


def _texts(examples: Sequence[Example], settings: Settings) -> list[str]:
    return [e.text[: settings.max_chars] for e in examples]


def fit(examples: Sequence[Example], settings: Settings) -> Pipeline:
    """The model fitted on these examples."""
    model = pipeline(settings)
    model.fit(_texts(examples, settings), [e.label for e in examples])
    return model


@dataclass
class Fold:
    """How one fold's model did on the prompts held out from it."""

    fold: int
    n_train: int
    n_test: int
    f1: float  # binary, positive = the label set's refusal side
    macro_f1: float
    kappa: float


def _binary(labels: Sequence[str], positive: frozenset[str]) -> list[int]:
    return [int(x in positive) for x in labels]


def out_of_fold(
    examples: Sequence[Example], settings: Settings, positive: frozenset[str]
) -> tuple[list[dict[str, float]], list[Fold]]:
    """Per example, class probabilities from a model that never saw its prompt; fold metrics."""
    texts = _texts(examples, settings)
    y = np.array([e.label for e in examples])
    groups = [e.group for e in examples]
    probs: list[dict[str, float]] = [{} for _ in examples]
    folds = []
    splitter = GroupKFold(n_splits=settings.folds)
    for k, (train, test) in enumerate(splitter.split(texts, y, groups)):
        model = pipeline(settings)
        model.fit([texts[i] for i in train], y[train])
        got = model.predict_proba([texts[i] for i in test])
        classes = list(model.classes_)
        predicted = [classes[j] for j in got.argmax(axis=1)]
        for i, row in zip(test, got, strict=True):
            probs[i] = {c: float(p) for c, p in zip(classes, row, strict=True)}
        truth = list(y[test])
        folds.append(Fold(
            k, len(train), len(test),
            float(f1_score(_binary(truth, positive), _binary(predicted, positive),
                           zero_division=0.0)),
            float(f1_score(truth, predicted, average="macro", zero_division=0.0)),
            float(cohen_kappa_score(truth, predicted)),
        ))  # fmt: skip
    return probs, folds


def digest(examples: Sequence[Example], settings: Settings) -> str:
    """A short hash of the features, settings and training labels: the tagger's version."""
    payload = {
        "settings": asdict(settings),
        "features": "tfidf word+char_wb, heuristic signals | calibrated linear svm",
        "heuristic": HEURISTIC.version if settings.signals else None,
        "sklearn": sklearn_version,
        "labels": sorted((e.message_id, e.label, e.group,
                          hashlib.sha256(e.text.encode()).hexdigest()) for e in examples),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def _best(probs: dict[str, float]) -> tuple[str, float]:
    label = max(probs, key=lambda k: probs[k])
    return label, probs[label]


@dataclass
class LearnedTagger:
    """A fitted model plus the out-of-fold tags of its own training responses."""

    model: Pipeline
    settings: Settings
    version: str
    counts: dict[str, int]
    folds: list[Fold]
    oof: dict[str, dict[str, float]] = field(default_factory=dict)  # message id → probabilities
    runs: list[str] = field(default_factory=list)  # the runs trained on ([] = all)
    name: str = NAME
    kind = "learned"

    def _tag(self, probs: dict[str, float], how: str) -> Tag:
        label, p = _best(probs)
        features = {"probabilities": probs, "prediction": how}
        return Tag(label, p, features, f"{self.name}@{self.version}")

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Class probabilities of the model fitted on every label."""
        got = self.model.predict_proba([t[: self.settings.max_chars] for t in texts])
        classes = list(self.model.classes_)
        return [{c: float(p) for c, p in zip(classes, row, strict=True)} for row in got]

    def tag(self, text: str) -> Tag:
        """Label one response with the model fitted on every label (no_answer if it has none)."""
        reason = no_answer(text)
        if reason:
            return no_answer_tag(reason, f"{self.name}@{self.version}")
        return self._tag(self.probabilities([text])[0], "full-model")

    def tag_for(self, message_id: str, text: str) -> Tag:
        """A training response gets its out-of-fold label; any other the full model's."""
        if message_id in self.oof:
            return self._tag(self.oof[message_id], "out-of-fold")
        return self.tag(text)

    def summary(self) -> dict[str, Any]:
        """Cross-validated figures: mean and per fold."""
        mean = {k: float(np.mean([getattr(f, k) for f in self.folds]))
                for k in ("f1", "macro_f1", "kappa")}  # fmt: skip
        return {"n": sum(self.counts.values()), "counts": self.counts, "cv_mean": mean,
                "folds": [asdict(f) for f in self.folds]}  # fmt: skip

    def describe(self) -> str:
        """One line: which tagger, how many labels, and its cross-validated figures."""
        cv = self.summary()["cv_mean"]
        return (f"{self.name}@{self.version}: trained on {sum(self.counts.values())} labels; "
                f"cross-validated by prompt F1 {cv['f1']:.3f}, kappa {cv['kappa']:.3f}")  # fmt: skip

    def config(self) -> dict[str, Any]:
        """What the taggers table records: settings, training runs, counts and fold metrics."""
        return {"settings": asdict(self.settings), "runs": self.runs, **self.summary()}


def train(
    examples: Sequence[Example],
    settings: Settings | None = None,
    *,
    labels: LabelSet = DEFAULT,
    runs: Sequence[str] = (),
) -> LearnedTagger:
    """Check the labels, compute out-of-fold predictions and fit the full model."""
    settings = settings or Settings()
    check_counts(examples, settings)
    probs, folds = out_of_fold(examples, settings, labels.positive)
    return LearnedTagger(
        model=fit(examples, settings),
        settings=settings,
        version=digest(examples, settings),
        counts=dict(sorted(Counter(e.label for e in examples).items())),
        folds=folds,
        oof={e.message_id: p for e, p in zip(examples, probs, strict=True)},
        runs=list(runs),
    )


def _majority(labels: list[str]) -> str | None:
    """The label most annotators chose, or None on a tie."""
    top = Counter(labels).most_common(2)
    return top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None


def examples_from_archive(
    db: duckdb.DuckDBPyConnection, runs: Sequence[str] = (), target: str = "answer"
) -> list[Example]:
    """Human-labelled responses: adjudicated label, else the annotators' majority; by prompt."""
    known = {r for (r,) in db.execute("SELECT id FROM runs").fetchall()}
    unknown = [r for r in runs if r not in known]
    if unknown:
        raise UserError(f"training runs: no run {unknown[0]!r} in the archive")
    run_params: list[Any] = []
    where = f"AND {is_in('c.run_id', runs, run_params)}" if runs else ""
    rows = db.execute(
        f"""
        SELECT a.message_id, a.annotator, a.label, coalesce(m.content, '') AS text,
               m.reasoning, m.finish_reason, coalesce(m.prompt_hash, m.prompt_key,
               m.conversation_id) AS grp, c.run_id
        FROM ({CURRENT_SQL}) a
        JOIN messages m ON m.id = a.message_id
        JOIN conversations c ON c.id = m.conversation_id
        WHERE a.target = ? AND a.label IS NOT NULL {where}
        ORDER BY a.message_id, a.annotator
        """,
        [target, *run_params],
    ).fetchall()
    by: dict[str, dict[str, Any]] = {}
    for mid, annotator, label, text, reasoning, finish, grp, run in rows:
        item = by.setdefault(mid, {"text": text, "group": grp, "run": run, "humans": [],
                                   "missing": no_answer(text, reasoning, finish)})  # fmt: skip
        if annotator == ADJUDICATED:
            item["adjudicated"] = label
        else:
            item["humans"].append(label)
    for run in runs:
        if not any(item["run"] == run for item in by.values()):
            raise UserError(f"training runs: run {run!r} has no human labels to learn from")
    out = []
    for mid, item in by.items():
        label = item.get("adjudicated") or _majority(item["humans"])
        # A reply without an answer is no_answer by rule, never a text to learn from.
        if label and label != NO_ANSWER and not item["missing"]:
            out.append(Example(mid, item["text"], label, item["group"]))
    return out


def train_from(
    archive: Path,
    runs: Sequence[str] = (),
    *,
    settings: Settings | None = None,
    labels: LabelSet = DEFAULT,
) -> LearnedTagger:
    """Train on an archive file's human labels (all runs, or only `runs`): what
    `dialogues tag --tagger learned` and the Compare page do. The labels are read in one
    short connection; training, which takes seconds, holds none."""
    with connect(archive) as db:
        examples = examples_from_archive(db, runs)
    return train(examples, settings, labels=labels, runs=runs)
