"""`fraud policy | lists | audit | model challenger` in process: a policy checked (an error names
the rule), submitted, shown and activated; list entries added, listed and removed on a real Redis
under a prefix of the test's own; every change in `fraud audit`."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import redis
import xgboost as xgb

from fraud_cli.main import main
from fraud_core import audit
from fraud_core.model.artifact import CHALLENGER_FILE, ModelCard, current_version, save_version
from fraud_core.online_keys import KEY_PREFIX_ENV, OnlineKeys
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout

from ..serving.support import delete_prefix

GOOD = "name: cli\nrules:\n  - name: big\n    when: amount > 700\n    action: review\n"
BAD = "name: cli\nrules:\n  - name: typo_rule\n    when: amount > 'x'\n    action: review\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    handle = ensure_redis()
    prefix = f"test-cli:{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", handle.url)
    monkeypatch.setenv(KEY_PREFIX_ENV, prefix)
    monkeypatch.setenv("FRAUD_ACTOR", "lead")
    yield tmp_path, handle.url, prefix
    delete_prefix(handle.url, prefix)


def test_a_policy_from_the_command_line(env, capsys) -> None:
    data, _, _ = env
    good, bad = data / "good.yaml", data / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    assert main(["policy", "check", str(good)]) == 0
    assert "1 rules" in capsys.readouterr().out
    assert main(["policy", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "typo_rule" in err and "string" in err
    assert main(["policy", "submit", str(good), "--reason", "review big orders"]) == 0
    version = capsys.readouterr().out.split()[2]
    assert version.startswith("p-")
    assert main(["policy", "show"]) == 0
    shown = capsys.readouterr().out
    assert "active    the built-in default" in shown and f"candidate {version}" in shown
    assert main(["policy", "activate", version, "--reason", "urgent"]) == 0
    assert main(["policy", "activate", "p-000000000000", "--reason", "x"]) == 2
    capsys.readouterr()
    assert main(["audit", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split('"action": "')[1].split('"')[0] for line in lines] == [
        "policy.activate",
        "policy.submit",
    ]
    assert all('"actor": "cli:lead"' in line for line in lines)


def test_list_entries_from_the_command_line(env, capsys) -> None:
    data, url, prefix = env
    assert main(["lists", "add", "block", "email", "Bad@Example.com", "--reason", "ring"]) == 0
    assert main(["lists", "add", "watch", "customer_id", "C9", "--reason", "x",
                 "--ttl-days", "1"]) == 0  # fmt: skip
    assert main(["lists", "add", "block", "phone", "1", "--reason", "x"]) == 2
    capsys.readouterr()
    assert main(["lists", "ls", "--list", "block"]) == 0
    out = capsys.readouterr().out
    assert "Bad@Example.com" in out and "1 live entries" in out
    client = redis.Redis.from_url(url)
    try:
        keys = OnlineKeys(prefix)
        assert client.hlen(keys.lists) == 2 and int(client.get(keys.lists_version)) == 2
        assert main(["lists", "rm", "block", "email", "Bad@Example.com", "--reason", "ok"]) == 0
        assert main(["lists", "rm", "block", "email", "Bad@Example.com", "--reason", "ok"]) == 1
        assert client.hlen(keys.lists) == 1
    finally:
        client.close()
    actions = [r["action"] for r in audit.read(DataLayout(data).audit, newest_first=False)]
    assert actions == ["list.add", "list.add", "list.remove"]


def test_a_challenger_from_the_command_line(env, capsys) -> None:
    data, _, _ = env
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1, "objective": "binary:logistic"},
        xgb.DMatrix(x, (x[:, 0] > 0).astype(int), feature_names=["a", "b"]),
        3,
    )
    card = save_version(
        data / "models",
        booster,
        ModelCard(version="", feature_names=["a", "b"], thresholds={"review": 0.5, "decline": 0.9}),
    )
    assert main(["model", "challenger", card.version, "--reason", "try it"]) == 0
    assert current_version(data / "models", CHALLENGER_FILE) == card.version
    assert main(["model", "challenger", "--reason", "neither"]) == 2
    assert main(["model", "challenger", "--clear", "--reason", "done"]) == 0
    assert current_version(data / "models", CHALLENGER_FILE) is None
    assert main(["audit", "--action", "model.challenger"]) == 0
    out = capsys.readouterr().out
    assert out.count("model.challenger") == 2 and "why: try it" in out
