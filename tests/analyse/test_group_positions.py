"""scores.group_positions: the groups pandas' groupby gives, as plain row positions."""

from __future__ import annotations

import pandas as pd
import pytest

from dialogues.analyse.scores import group_positions


@pytest.mark.parametrize("sort", [True, False])
def test_the_same_groups_in_the_same_order_as_pandas_null_keys_included(sort: bool) -> None:
    frame = pd.DataFrame({
        "model": ["b", "a", "b", None, "a", "b", None],
        "source": ["x", "y", "x", "x", "y", None, "x"],
        "v": range(7),
    })  # fmt: skip
    expected = [
        (key, sorted(group["v"]))
        for key, group in frame.groupby(["model", "source"], sort=sort, dropna=False)
    ]
    found = [(key, sorted(frame["v"].to_numpy()[idx]))
             for key, idx in group_positions(frame, ["model", "source"], sort=sort)]  # fmt: skip
    assert len(found) == len(expected) == 4
    for (k1, v1), (k2, v2) in zip(found, expected, strict=True):
        assert [None if pd.isna(x) else x for x in k1] == [None if pd.isna(x) else x for x in k2]
        assert v1 == v2


def test_an_empty_frame_has_no_groups() -> None:
    frame = pd.DataFrame({"model": [], "source": []})
    assert list(group_positions(frame, ["model", "source"], sort=True)) == []
