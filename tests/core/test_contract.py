"""The data contract (issue 15): the built-in one is today's platform, and a bad contract is
refused with one error naming the file, the line, the key and the reason."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from fraud_core.contract import (
    CONTRACT_ENV,
    DEFAULT_CONTRACT_PATH,
    ContractError,
    active_contract,
    contract_from_text,
    load_contract,
)
from fraud_core.contract.model import Entity, Transform
from fraud_core.contract.transforms import apply_transform, entity_keys, keyed_digest
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.schema import ENTITY_KINDS

BUILTIN = DEFAULT_CONTRACT_PATH.read_text()
KEY = "k" * 32


def test_the_builtin_contract_is_todays_platform():
    contract = active_contract(env={})
    assert contract.spec == DEFAULT_SPEC
    assert contract.spec.feature_names == DEFAULT_SPEC.feature_names
    assert contract.entity_kinds == ENTITY_KINDS
    assert contract.primary.name == "customer_id"
    assert contract.source.amount.unit == "major"
    assert [a.name for a in contract.attributes] == ["location_lat", "location_long"]


def test_fraud_contract_selects_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(BUILTIN.replace("name: ecommerce", "name: mine"))
    assert active_contract(env={CONTRACT_ENV: str(path)}).name == "mine"
    with pytest.raises(ContractError, match=r"nowhere\.yaml: cannot read the contract"):
        active_contract(env={CONTRACT_ENV: str(tmp_path / "nowhere.yaml")})


def test_the_digest_follows_the_meaning_not_the_text():
    plain = contract_from_text(BUILTIN)
    reworded = "# another comment\n" + BUILTIN.replace("    unit: major ", "    unit: major  ")
    assert contract_from_text(reworded).digest == plain.digest
    changed = contract_from_text(BUILTIN.replace("history_n: 10", "history_n: 12"))
    assert changed.digest != plain.digest


def test_switched_off_features_stay_in_the_spec_and_change_the_digest_only_when_set():
    plain = contract_from_text(BUILTIN)
    assert "switched_off" not in plain.model_terms()["features"]  # older digests unchanged
    text = BUILTIN.replace(
        "  risk_delay: 7d", "  risk_delay: 7d\n  switched_off: [email__first_seen, order_hour_utc]"
    )
    assert text != BUILTIN
    off = contract_from_text(text)
    assert off.spec.switched_off == ("email__first_seen", "order_hour_utc")
    assert off.spec.feature_names == plain.spec.feature_names  # still computed and served
    assert off.digest != plain.digest
    assert off.model_terms()["features"]["switched_off"] == ["email__first_seen", "order_hour_utc"]


def _line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)


# (what is wrong, edit of the built-in text, the line's marker, the key path, the reason)
BAD = [
    (
        "a misspelt key",
        lambda t: t.replace("    zone: UTC", "    zon: UTC"),
        "zon: UTC",
        "source.order_time.zon",
        "unknown key .*did you mean 'zone'",
    ),
    (
        "an unknown top-level key",
        lambda t: t + "\nextra: 1\n",
        "extra: 1",
        "extra",
        "unknown key",
    ),
    (
        "a key given twice",
        lambda t: t.replace("  history_n: 10 ", "  history_n: 10\n  history_n: 11 "),
        "history_n: 11",
        "features.history_n",
        "given twice",
    ),
    (
        "no primary entity",
        lambda t: t.replace("    primary: true ", "    primary: false "),
        "entities:",
        "entities",
        "no entity is marked `primary: true`",
    ),
    (
        "two primary entities",
        lambda t: t.replace("  - name: email\n", "  - name: email\n    primary: true  # too\n"),
        "# too",
        r"entities\[1\]\.primary",
        "only one entity may be primary",
    ),
    (
        "a duplicate entity name",
        lambda t: t.replace("  - name: ip_addr", "  - name: email  # again"),
        "# again",
        r"entities\[2\]\.name",
        "declared twice",
    ),
    (
        "an unknown transform",
        lambda t: t.replace("    column: email\n", "    column: email\n    transform: lowercase\n"),
        "transform: lowercase",
        r"entities\[1\]\.transform",
        "unknown transform 'lowercase' \\(one of: lower_strip, email_domain, ip_prefix, prefix\\)",
    ),
    (
        "a transform without its size",
        lambda t: t.replace(
            "    column: ip_addr\n", "    column: ip_addr\n    transform: ip_prefix\n"
        ),
        "transform: ip_prefix",
        r"entities\[2\]\.transform",
        "ip_prefix needs its IPv4 prefix bits",
    ),
    (
        "a counterpart that is no entity",
        lambda t: t.replace("counterparts: [email, ip_addr]", "counterparts: [email, device]"),
        "counterparts: [email, device]",
        r"entities\[0\]\.counterparts\[1\]",
        "'device' is not an entity",
    ),
    (
        "a distinct window that is not a window",
        lambda t: t.replace("distinct_windows: [24h, 30d]", "distinct_windows: [24h, 2d]"),
        "distinct_windows",
        r"features\.distinct_windows\[1\]",
        "'2d' is not one of features.windows",
    ),
    (
        "a duration without a unit",
        lambda t: t.replace("risk_delay: 7d", "risk_delay: seven"),
        "risk_delay",
        "features.risk_delay",
        "not a duration",
    ),
    (
        "a number given as text",
        lambda t: t.replace("history_n: 10 ", 'history_n: "10" '),
        "history_n",
        "features.history_n",
        "must be int, not str",
    ),
    (
        "a column with two roles",
        lambda t: t.replace("    column: order_amount", "    column: order_date  # amount"),
        "# amount",
        "source.amount.column",
        "column 'order_date' already has a role at source.order_time.column",
    ),
    (
        "an unknown time zone",
        lambda t: t.replace("zone: UTC", "zone: Mars/Olympus"),
        "zone: Mars",
        "source.order_time.zone",
        "neither UTC, offset nor a time zone name",
    ),
    (
        "a missing role",
        lambda t: t.replace("  order_id: order_id\n", ""),
        "source:",
        "source",
        "missing key 'order_id'",
    ),
    (
        "a personal entity without a key variable",
        lambda t: t.replace("    column: email\n", "    column: email\n    personal: true\n"),
        "personal: true",
        r"entities\[1\]\.personal",
        "needs privacy.key_env",
    ),
    (
        "an unset key variable",
        lambda t: (
            t.replace("    column: email\n", "    column: email\n    personal: true\n")
            + "\nprivacy:\n  key_env: FRAUD_TEST_UNSET_KEY\n"
        ),
        "key_env",
        "privacy.key_env",
        r"\$FRAUD_TEST_UNSET_KEY is unset",
    ),
    (
        "an entity named like one of the platform's columns",
        lambda t: t.replace("  - name: ip_addr", "  - name: order_date"),
        "- name: order_date",
        r"entities\[2\]\.name",
        "'order_date' is reserved",
    ),
    (
        "an aggregated categorical attribute",
        lambda t: t.replace(
            "    range: [-180, 180]",
            "    range: [-180, 180]\n  - name: country\n    type: categorical\n"
            "    aggregate: true  # no",
        ),
        "# no",
        r"attributes\[2\]\.aggregate",
        "only a numeric attribute is aggregated",
    ),
    (
        "an aggregated attribute that may be missing",
        lambda t: t.replace(
            "    range: [-180, 180]",
            "    range: [-180, 180]\n    required: false\n    aggregate: true  # sum?",
        ),
        "# sum?",
        r"attributes\[1\]\.aggregate",
        "must be required: a missing value has no sum",
    ),
    (
        "decimals beyond the exact range",
        lambda t: t.replace(
            "    range: [-180, 180]", "    range: [-180, 180]\n    aggregate: true\n    decimals: 9"
        ),
        "decimals: 9",
        r"attributes\[1\]\.decimals",
        "must be 0 to 6",
    ),
    (
        "an aggregated attribute named like the amount's features",
        lambda t: t.replace("  - name: location_long", "  - name: amount  # clash").replace(
            "    range: [-180, 180]", "    range: [-180, 180]\n    aggregate: true"
        ),
        "# clash",
        r"attributes\[1\]\.name",
        "the feature 'order_amount' would come out twice",
    ),
    (
        "a switched-off feature the contract does not compute",
        lambda t: t.replace(
            "  risk_delay: 7d", "  risk_delay: 7d\n  switched_off: [email__first_sen] # off"
        ),
        "# off",
        r"features\.switched_off\[0\]",
        "'email__first_sen' is not one of this contract's 110 features; did you mean "
        "'email__first_seen'",
    ),
    (
        "an unknown version",
        lambda t: t.replace("version: 1", "version: 2"),
        "version: 2",
        "version",
        "version 2 is not known",
    ),
]


@pytest.mark.parametrize(
    ("edit", "marker", "path", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_contract_is_refused_naming_line_key_and_reason(edit, marker, path, reason):
    text = edit(BUILTIN)
    assert text != BUILTIN
    with pytest.raises(ContractError) as caught:
        contract_from_text(text, "mine.yaml", env={})
    message = str(caught.value)
    line = _line_of(text, marker)
    assert re.match(rf"mine\.yaml:{line}: {path}: .*{reason}", message), message


def test_yaml_that_does_not_parse_names_its_line():
    with pytest.raises(
        ContractError, match=r"^x\.yaml:4: not valid YAML: .* \(in what starts at line 3\)"
    ):
        contract_from_text("version: 1\nname: x\nsource: [unclosed\n", "x.yaml")
    with pytest.raises(ContractError, match="the file is empty"):
        contract_from_text("# nothing\n", "x.yaml")
    with pytest.raises(ContractError, match="contract: must be a mapping"):
        contract_from_text("- a\n- b\n", "x.yaml")


def test_yaml_tags_that_build_objects_are_refused():
    text = BUILTIN.replace("name: ecommerce", "name: !!python/object/apply:os.system ['true']")
    with pytest.raises(ContractError, match=r"x\.yaml:5: name: the tag .*python/object/apply"):
        contract_from_text(text, "x.yaml")


def test_a_personal_entity_loads_with_its_key_set():
    text = BUILTIN.replace("    column: email\n", "    column: email\n    personal: true\n")
    text += "\nprivacy:\n  key_env: FRAUD_TEST_KEY\n"
    contract = contract_from_text(text, env={"FRAUD_TEST_KEY": KEY})
    assert contract.entity("email").personal
    assert contract.privacy_key_env == "FRAUD_TEST_KEY"
    with pytest.raises(ContractError, match="shorter than 16"):
        contract_from_text(text, env={"FRAUD_TEST_KEY": "short"})


def test_six_entities_with_transforms_make_a_spec():
    text = """
version: 1
name: card_shop
source:
  order_id: id
  order_time: {column: created_at, zone: offset}
  amount: {column: amount_cents, unit: minor}
entities:
  - {name: user, column: user_id, primary: true, counterparts: [card, device]}
  - {name: card, column: card_number, counterparts: [user]}
  - {name: card_bin, column: card_number, transform: prefix/6, counterparts: [user]}
  - {name: device, column: device_id, transform: lower_strip}
  - {name: email_domain, column: email, transform: email_domain}
  - {name: ip_net, column: ip, transform: ip_prefix/24, counterparts: [user]}
attributes:
  - {name: country, type: categorical, required: false}
features:
  history_n: 5
  windows: [15m, 1d]
  risk_windows: [30d]
  risk_delay: 14d
"""
    contract = contract_from_text(text)
    spec = contract.spec
    assert [e.kind for e in spec.entities] == [
        "user",
        "card",
        "card_bin",
        "device",
        "email_domain",
        "ip_net",
    ]
    assert spec.windows == {"15m": 900, "1d": 86_400}
    assert spec.distinct_windows == ()
    assert spec.risk_delay_s == 14 * 86_400
    assert "card_bin__order_count__15m" in spec.feature_names
    assert "user__distinct_card__last5" in spec.feature_names
    assert contract.entity("card_bin").transform == Transform("prefix", 6)
    assert contract.source.amount.unit == "minor"


def test_transforms():
    values = pd.Series(["  Alice@Example.COM ", "bob@mail.org", "no-at-sign", None], dtype="string")
    assert apply_transform(Transform("lower_strip"), values).tolist() == [
        "alice@example.com",
        "bob@mail.org",
        "no-at-sign",
        pd.NA,
    ]
    assert apply_transform(Transform("email_domain"), values).tolist() == [
        "example.com",
        "mail.org",
        pd.NA,
        pd.NA,
    ]
    ips = pd.Series(["83.12.200.7", "2001:db8::1", "not an ip", "83.12.200.99"], dtype="string")
    assert apply_transform(Transform("ip_prefix", 24), ips).tolist() == [
        "83.12.200.0/24",
        "2001:db8::/64",
        pd.NA,
        "83.12.200.0/24",
    ]
    assert apply_transform(Transform("ip_prefix", 16, 32), ips).tolist()[:2] == [
        "83.12.0.0/16",
        "2001:db8::/32",
    ]
    cards = pd.Series(["4111111111111111", " 5500000000000004"], dtype="string")
    assert apply_transform(Transform("prefix", 6), cards).tolist() == ["411111", "550000"]


def test_a_personal_entity_is_keyed_by_a_digest_of_the_transformed_value():
    entity = Entity("email", "email", transform=Transform("lower_strip"), personal=True)
    values = pd.Series(["A@x.org", "a@x.org ", "b@x.org"], dtype="string")
    keyed = entity_keys(entity, values, KEY.encode())
    assert keyed[0] == keyed[1] != keyed[2]
    assert len(keyed[0]) == 64 and "x.org" not in keyed[0]
    assert keyed[0] != keyed_digest(pd.Series(["a@x.org"], dtype="string"), b"other key" * 4)[0]
    with pytest.raises(ValueError, match="personal"):
        entity_keys(entity, values, None)


def test_the_shipped_contract_loads_from_its_path():
    assert load_contract(DEFAULT_CONTRACT_PATH).name == "ecommerce"


def test_the_service_serves_a_contract_whose_labels_reach_every_entity(tmp_path):
    from fraud_core.contract import applied_contract, serving_contract
    from fraud_serving.settings import Settings

    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(BUILTIN.replace("name: ecommerce", "name: our_shop"))
    assert serving_contract(env={CONTRACT_ENV: str(renamed)}).name == "our_shop"

    other = tmp_path / "other.yaml"
    other.write_text(
        BUILTIN.replace("history_n: 10", "history_n: 5").replace("unit: major", "unit: minor")
    )
    env = {CONTRACT_ENV: str(other), "FRAUD_API_KEYS": "k"}
    assert applied_contract(env=env).spec.history_n == 5
    settings = Settings.from_env(env)
    assert settings.contract.spec.history_n == 5 and settings.contract.name == "ecommerce"
    other.write_text(BUILTIN)  # the file changed: read again
    assert applied_contract(env=env).spec.history_n == 10

    # a label finds an order's entities through the primary entity's counterparts
    other.write_text(
        BUILTIN.replace("counterparts: [email, ip_addr]", "counterparts: [ip_addr]", 1)
    )
    expected = r"entities\[0\]\.counterparts of the primary entity 'customer_id' leave out email"
    with pytest.raises(ContractError, match=expected):
        serving_contract(env=env)
    with pytest.raises(ContractError, match=expected):
        Settings.from_env(env)
    assert applied_contract(env=env).entity("customer_id").counterparts == ("ip_addr",)


def test_a_data_folder_keeps_the_contract_it_was_built_under(tmp_path):
    from fraud_assets.resources import DataLayoutResource

    data = tmp_path / "data"
    shorter = tmp_path / "shorter.yaml"
    shorter.write_text(BUILTIN.replace("history_n: 10", "history_n: 5"))
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(
        BUILTIN.replace("name: ecommerce", "name: our_shop").replace(
            "column: order_amount", "column: total"
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(CONTRACT_ENV, raising=False)
        layout = DataLayoutResource(data_dir=str(data)).layout()  # the first use records it
        assert json.loads(layout.contract_record.read_text())["name"] == "ecommerce"
        patch.setenv(CONTRACT_ENV, str(shorter))
        expected = (
            r"holds data under contract 'ecommerce', which differs from contract 'ecommerce' "
            r"in features\.history_n: use another FRAUD_DATA_DIR"
        )
        with pytest.raises(ContractError, match=expected):
            DataLayoutResource(data_dir=str(data)).layout()
        patch.setenv(CONTRACT_ENV, str(renamed))  # other column names, the same meaning
        assert DataLayoutResource(data_dir=str(data)).layout().root == layout.root
        patch.setenv(CONTRACT_ENV, str(shorter))  # a new folder takes any contract
        assert DataLayoutResource(data_dir=str(tmp_path / "other")).layout()

        # the same terms, features of an earlier version of the platform: refused, named
        record = json.loads(layout.contract_record.read_text())
        assert record["feature_names"] == load_contract(DEFAULT_CONTRACT_PATH).spec.feature_names
        record["feature_names"] = record["feature_names"][:-2]
        layout.contract_record.write_text(json.dumps(record))
        patch.setenv(CONTRACT_ENV, str(renamed))
        with pytest.raises(ContractError, match=r"computes 2 more \(ip_addr__risk_order_count"):
            DataLayoutResource(data_dir=str(data)).layout()
        del record["feature_names"]  # a record from before they were kept: terms only
        layout.contract_record.write_text(json.dumps(record))
        assert DataLayoutResource(data_dir=str(data)).layout().root == layout.root


def test_the_order_columns_come_from_the_contract():
    from fraud_core.schema import COLUMN_NAMES, ENTITY_KINDS, columns_of

    builtin = contract_from_text(BUILTIN)
    assert (
        "order_id",
        "order_date",
        *ENTITY_KINDS,
        "order_amount",
        "location_lat",
        "location_long",
        "is_fraud",
        "label_date",
    ) == COLUMN_NAMES
    text = BUILTIN.replace("  - name: ip_addr\n", "  - name: device\n").replace(
        "ip_addr]", "device]"
    )
    text = text.replace(
        "    type: numeric\n    range: [-180, 180]", "    type: categorical\n    required: false"
    )
    other = contract_from_text(text)
    columns = {c.name: c for c in columns_of(other)}
    assert "device" in columns and "ip_addr" not in columns
    assert str(columns["location_long"].type) == "string" and not columns["location_long"].required
    assert columns["email"].description == "e-mail address given with the order"
    # descriptions are for people: they change neither the digest nor what a version applies
    reworded = BUILTIN.replace("account id of the buyer", "the buyer's account")
    assert contract_from_text(reworded).digest == builtin.digest
