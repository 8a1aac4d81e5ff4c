"""`fraud model list | rollback` on a registry whose `current.json` was tampered with: the
rollback repairs the pointer (it is what a rollback is for) and `list` still lists."""

from __future__ import annotations

import json

import numpy as np
import xgboost as xgb

from fraud_cli.main import main
from fraud_core.model.artifact import CURRENT_FILE, ModelCard, current_version, save_version


def test_rollback_repairs_a_pointer_outside_the_registry(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1, "objective": "binary:logistic"},
        xgb.DMatrix(x, (x[:, 0] > 0).astype(int), feature_names=["a", "b"]),
        3,
    )
    registry = tmp_path / "models"
    card = save_version(
        registry,
        booster,
        ModelCard(version="", feature_names=["a", "b"], thresholds={"review": 0.5, "decline": 0.9}),
    )
    (registry / CURRENT_FILE).write_text(json.dumps({"version": "../../elsewhere"}))

    assert main(["model", "--data-dir", str(tmp_path), "list"]) == 0
    listed = capsys.readouterr()
    assert card.version in listed.out and "roll back" in listed.err

    assert main(["model", "--data-dir", str(tmp_path), "rollback", card.version]) == 0
    assert "invalid pointer" in capsys.readouterr().out
    assert current_version(registry) == card.version
