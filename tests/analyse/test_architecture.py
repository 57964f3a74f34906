"""The architecture model: its coefficients are a direct statsmodels GEE fit's; bad designs say why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from dialogues.analyse import architecture

MODELS = {"l1": ("llama", 1e9, 0.0), "l8": ("llama", 8e9, 0.4), "q3": ("qwen", 3e9, 1.2),
          "q14": ("qwen", 14e9, 1.5)}  # fmt: skip


def answers(models: dict, seed: int = 1, prompts: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(prompts):
        u = rng.normal(0, 1)
        for name, (family, size, shift) in models.items():
            for condition, c in (("cold", 0.0), ("warm", 0.6)):
                chance = 1 / (1 + np.exp(-(-1.0 + u + shift + c)))
                rows.append({"model": name, "family": family, "parameters": size,
                             "training": "instruct", "source": "s", "condition": condition,
                             "set_id": "x", "prompt_key": f"p{p}", "repeat": 0,
                             "y": float(rng.random() < chance), "engaged": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_coefficients_equal_a_direct_statsmodels_gee_fit():
    data = answers(MODELS)
    found = architecture.fit(data)
    assert found.identifiable and found.reason is None
    frame = data.assign(log10_parameters=np.log10(data.parameters),
                        cluster=data.set_id + "\x00" + data.prompt_key).sort_values("cluster")  # fmt: skip
    direct = smf.gee("y ~ C(condition, Treatment('cold')) + C(family) + log10_parameters",
                     groups="cluster", data=frame, family=sm.families.Binomial(),
                     cov_struct=sm.cov_struct.Exchangeable()).fit()  # fmt: skip
    got = {t["term"]: t for t in found.terms}
    for name in direct.params.index:
        assert got[name]["estimate"] == pytest.approx(direct.params[name], rel=1e-6)
        assert got[name]["p"] == pytest.approx(direct.pvalues[name], rel=1e-6)
    assert {t["term"] for t in found.tests} == {"C(condition, Treatment('cold'))", "C(family)",
                                                "log10_parameters"}  # fmt: skip
    assert all(0 <= t["share"] < 1 for t in found.tests)
    assert "training" in found.notes[0]


@pytest.mark.parametrize(
    "models,says",
    [
        ({"l1": MODELS["l1"], "q3": MODELS["q3"]}, "confounded"),  # each family at one size
        ({k: MODELS[k] for k in ("l1", "l8", "q3")}, "only name the models"),
        ({"l1": MODELS["l1"], "l8": MODELS["l8"]}, "another family"),
        ({"l1": MODELS["l1"], "q3": ("qwen", 1e9, 1.2)}, "second size"),
        ({"l1": MODELS["l1"]}, "one model"),
    ],
)
def test_designs_that_cannot_separate_the_terms_say_so_without_numbers(models, says):
    found = architecture.fit(answers(models))
    assert found.identifiable is False and says in found.reason
    assert found.terms == [] and found.tests == []


def test_models_without_metadata_are_left_out_and_named():
    data = answers(MODELS)
    data.loc[data.model == "q14", "family"] = None
    found = architecture.fit(data)
    assert "q14" in found.notes[0]
