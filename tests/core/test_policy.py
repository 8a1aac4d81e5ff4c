"""The decision policy: the condition language (every operator, function and error), the YAML
file (rules, segments, thresholds and every way it can be refused), and the shipped default
policy, which decides as the model card does while the lists are empty."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

import pytest

from fraud_core.contract import SHIPPED, builtin_contract, load_contract
from fraud_core.contract.model import Attribute
from fraud_core.model.artifact import ModelCard
from fraud_core.policy import (
    LIST_NAMES,
    MAX_CHARS,
    MAX_DEPTH,
    MAX_RULES,
    OrderFacts,
    PolicyError,
    PolicyFields,
    compile_condition,
    decision_for,
    default_policy,
    load_policy,
)

FIELDS = PolicyFields.of(builtin_contract())
CARD = {"review": 0.2, "decline": 0.9}
FEATURE = "customer_id__order_count__24h"


def facts(
    listed: Iterable[tuple[str, str]] = (), new: Iterable[str] = (), **values: object
) -> OrderFacts:
    """An order with every name missing but those given."""
    filled = FIELDS.blank_values()
    for name, value in values.items():
        assert name in filled, name
        filled[name] = float(value) if isinstance(value, int | float) else value
    return OrderFacts(filled, frozenset(listed), frozenset(new))


ORDER = facts(
    amount=120.5,
    score=0.3,
    hour=23,
    customer_id="c-1",
    email="it's@mailinator.com",
    ip_addr="10.0.0.0/24",
    **{FEATURE: 4},
)


def holds(text: str, order: OrderFacts = ORDER) -> bool:
    return compile_condition(text, FIELDS, "rule 'r'")(order)


def refused(text: str, fields: PolicyFields = FIELDS) -> str:
    with pytest.raises(PolicyError) as err:
        compile_condition(text, fields, "rule 'big_first_order'")
    message = str(err.value)
    assert message.startswith("rule 'big_first_order'"), message
    return message


# -- the language: operators ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount == 120.5", True),
        ("amount == 120", False),
        ("amount != 120", True),
        ("amount != 120.5", False),
        ("amount < 121", True),
        ("amount < 120.5", False),
        ("amount <= 120.5", True),
        ("amount <= 120", False),
        ("amount > 120", True),
        ("amount > 120.5", False),
        ("amount >= 120.5", True),
        ("amount >= 121", False),
        ("130 > amount", True),  # a literal on the left
        ("130 < amount", False),
        ("amount > score", True),  # two fields
        ("amount < score", False),
        ("customer_id == 'c-1'", True),
        ("customer_id == 'c-2'", False),
        ("customer_id != 'c-2'", True),
        ('customer_id != "c-1"', False),
        ("hour in [22, 23]", True),
        ("hour in [0, 1, 2]", False),
        ("hour not in [0, 1, 2]", True),
        ("hour not in [22, 23]", False),
        ("customer_id in ['c-1', 'c-2']", True),
        ("customer_id in ['c-3']", False),
        ("customer_id not in ['c-3']", True),
        ("customer_id not in ['c-1']", False),
        ("amount > 100 and hour == 23", True),
        ("amount > 100 and hour == 22", False),
        ("amount > 1000 or hour == 23", True),
        ("amount > 1000 or hour == 22", False),
        ("hour > 1 and hour > 2 and hour > 3 and hour > 4", True),  # a longer chain
        ("hour > 1 and hour > 2 and hour > 3 and hour > 40", False),
        ("hour > 40 or hour > 30 or hour > 20 or hour > 10", True),
        ("hour > 40 or hour > 30 or hour > 25 or hour > 24", False),
        ("not amount > 1000", True),
        ("not amount > 100", False),
        ("amount + 10 == 130.5", True),
        ("amount + 10 == 130", False),
        ("amount - 20.5 == 100", True),
        ("amount - 20 == 100", False),
        ("amount * 2 == 241", True),
        ("amount * 2 == 240", False),
        ("amount / 2 == 60.25", True),
        ("amount / 2 == 60", False),
        ("-amount == -120.5", True),
        ("-amount > 0", False),
        ("- -amount == amount", True),
        (f"amount / {FEATURE} > 30", True),  # two fields in arithmetic
        (f"amount / {FEATURE} > 31", False),
        ("hour in [-1, 2 * 11 + 1]", True),  # literal items are folded
        ("true", True),
        ("false", False),
        ("true and amount > 0", True),
        ("false or amount < 0", False),
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("10 - 2 - 3 == 5", True),  # left-associative
        ("8 / 2 / 2 == 2", True),
        ("-2 * 3 == -6", True),
        ("listed('block') == false", True),  # == on two true/false values
    ],
)
def test_each_operator(text, expected):
    assert holds(text) is expected


def test_precedence_of_not_and_or():
    # not binds tighter than or: (not A) or B, not not (A or B)
    assert holds("not amount > 100 or hour == 23") is True
    assert holds("not (amount > 100 or hour == 23)") is False
    # and binds tighter than or: A or (B and C), not (A or B) and C
    assert holds("amount > 100 or hour == 1 and hour == 2") is True
    assert holds("(amount > 100 or hour == 1) and hour == 2") is False
    # comparison binds tighter than not: not (amount > 1000)
    assert holds("not amount > 1000 and hour == 23") is True


def test_missing_numbers_are_nan():
    order = facts(score=0.5)  # amount missing
    for text in ["amount > 0", "amount < 0", "amount == amount", "amount >= 0", "amount <= 0"]:
        assert holds(text, order) is False, text
    assert holds("amount != 5", order) is True
    assert holds("amount in [1, 2]", order) is False
    assert holds("amount not in [1, 2]", order) is True
    assert holds("amount + 1 > 0", order) is False  # NaN carries through arithmetic
    assert holds("is_missing(amount * 2)", order) is True
    assert holds("not amount > 0 and not amount <= 0", order) is True


def test_division_by_zero_is_nan_and_never_raises():
    assert holds("is_missing(amount / 0)") is True
    assert holds("is_missing(1 / 0)") is True  # folded at compile time
    assert holds("is_missing(amount / (hour - 23))") is True
    assert holds("is_missing(1 / (hour - 23))") is True
    assert holds("amount / (hour - 23) > 0") is False
    assert holds("amount / (hour - 23) != 1") is True
    assert holds("is_missing(amount / hour)") is False


def test_string_escapes():
    assert holds(r"email == 'it\'s@mailinator.com'") is True
    assert holds('email == "it\'s@mailinator.com"') is True
    order = facts(email='a"b\\c')
    assert holds(r'email == "a\"b\\c"', order) is True
    assert holds(r"email == 'a\"b\\c'", order) is True
    assert "unknown escape '\\n'" in refused(r"email == 'a\nb'")
    assert "not closed" in refused("email == 'abc")


# -- the language: functions ------------------------------------------------------------------


def test_listed_with_and_without_kind():
    order = facts(listed={("block", "email"), ("watch", "ip_addr")})
    assert holds("listed('block')", order) is True
    assert holds("listed('block', 'email')", order) is True
    assert holds("listed('block', 'customer_id')", order) is False
    assert holds("listed('watch', 'ip_addr')", order) is True
    assert holds("listed('allow')", order) is False
    assert holds("listed('block')", facts()) is False
    assert holds("not listed('allow')", order) is True


def test_is_new():
    order = facts(new={"customer_id"})
    assert holds("is_new('customer_id')", order) is True
    assert holds("is_new('email')", order) is False
    assert holds("is_new('customer_id')", facts()) is False


def test_text_functions():
    assert holds("starts_with(email, 'it')") is True
    assert holds("starts_with(email, 'mailinator')") is False
    assert holds("ends_with(email, '@mailinator.com')") is True
    assert holds("ends_with(email, '@gmail.com')") is False
    assert holds("contains(email, 'mailinator')") is True
    assert holds("contains(email, 'gmail')") is False
    assert holds("contains(email, '')") is True
    assert holds("ends_with(email, '@mailinator.com')", facts()) is False  # "" when missing
    assert holds("starts_with('abc', 'ab')") is True  # folded


def test_is_missing():
    assert holds("is_missing(amount)") is False
    assert holds("is_missing(amount)", facts()) is True
    assert holds("is_missing(location_lat)") is True
    assert holds(f"is_missing({FEATURE})") is False


# -- the language: errors ---------------------------------------------------------------------


def test_unknown_names_suggest_the_nearest():
    message = refused("is_new('customer_id') and amout > 500")
    assert "unknown name 'amout'" in message
    assert "did you mean 'amount'" in message
    assert "column 27" in message
    message = refused("customer_id__order_count_24h > 1")
    assert "did you mean 'customer_id__order_count__24h'" in message
    assert "unknown name 'zzz'" in refused("zzz > 1")
    message = refused("lsited('block')")
    assert "unknown function 'lsited'" in message and "did you mean 'listed'" in message
    assert "listed is a function" in refused("listed")
    assert "'amount' is a value, not a function" in refused("amount(1) > 2")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("amount == 'x'", "`amount == 'x'`: compares a number with a string"),
        ("email == 5", "`email == 5`: compares a string with a number"),
        ("listed('block') == 1", "compares a true/false value with a number"),
        ("email > 5", "`email > 5`: > compares numbers, and `email` is a string"),
        ("amount <= email", "<= compares numbers, and `email` is a string"),
        ("amount + email > 1", "+ works on numbers, and `email` is a string"),
        ("email * 2 > 1", "* works on numbers, and `email` is a string"),
        ("-email == 'a'", "`email` is a string: minus needs a number"),
        ("amount and hour > 1", "`amount` is a number: and joins true/false values"),
        ("hour > 1 or email", "`email` is a string: or joins true/false values"),
        ("not amount", "`amount` is a number: not needs true or false"),
        ("amount in ['a']", "`'a'` is a string, and `amount` is a number"),
        ("email in [1, 2]", "`1` is a number, and `email` is a string"),
        ("listed('allow') in [true]", "in takes a number or a string"),
        ("amount in [hour]", "a list holds only literals"),
        ("amount in (1, 2)", "in takes a list of literals"),
        ("amount in []", "the list is empty"),
        ("amount", "`amount` is a number, and a condition must be true or false"),
        ("email", "`email` is a string, and a condition must be true or false"),
        ("amount + 1", "`amount + 1` is a number"),
        ("starts_with(amount, 'a')", "starts_with reads a string, and `amount` is a number"),
        ("ends_with(email, email)", "must be a string literal in quotes, got `email`"),
        ("contains(email, 1)", "must be a string literal in quotes, got `1`"),
        ("is_missing(email)", "is_missing takes a number, and `email` is a string"),
        ("listed(email)", "listed: the list must be a string literal"),
        ("listed('blok')", "unknown list 'blok' (did you mean 'block'?)"),
        ("listed('block', 'emial')", "unknown entity kind 'emial' (did you mean 'email'?)"),
        ("is_new('custmer_id')", "unknown entity kind 'custmer_id' (did you mean 'customer_id'?)"),
        ("is_new('location_lat')", "unknown entity kind 'location_lat'"),
        ("listed()", "listed takes 1 or 2 arguments, got 0"),
        ("listed('block', 'email', 'x')", "listed takes 1 or 2 arguments, got 3"),
        ("is_new('email', 'x')", "is_new takes 1 argument, got 2"),
        ("ends_with(email)", "ends_with takes 2 arguments, got 1"),
    ],
)
def test_type_errors_name_the_rule_and_the_reason(text, reason):
    assert reason in refused(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the condition is empty"),
        ("   ", "the condition is empty"),
        ("(amount > 1", "column 1: missing ')'"),
        ("listed('block'", "missing ')'"),
        ("amount > 1)", "column 11: ')' without a matching '('"),
        ("(amount > 1 hour", "expected ')' to close the '(' at column 1"),
        ("amount > 1 hour > 2", "`amount > 1` is followed by the name 'hour'"),
        ("amount > 1 < 2", "comparisons do not chain"),
        ("amount = 1", "column 8: unexpected character '=': use == to compare"),
        ("amount > 1 && hour > 1", "unexpected character '&': use and"),
        ("amount > 1 || hour > 1", "unexpected character '|': use or"),
        ("!listed('block')", "unexpected character '!'"),
        ("amount > 1 ; hour > 2", "unexpected character ';'"),
        ("amount >", "the condition ends where a value is expected"),
        ("amount > and", "expected a value, got 'and'"),
        ("hour in [1, 2", "expected ',' or ']' in the list"),
    ],
)
def test_syntax_errors_say_where(text, reason):
    assert reason in refused(text)


def test_too_long_or_too_deep_is_refused():
    long = " or ".join(["amount > 1"] * 200)
    assert len(long) > MAX_CHARS
    assert f"more than {MAX_CHARS:,}" in refused(long)
    deep = "(" * (MAX_DEPTH + 1) + "amount > 1" + ")" * (MAX_DEPTH + 1)
    assert f"nested deeper than {MAX_DEPTH}" in refused(deep)
    assert f"nested deeper than {MAX_DEPTH}" in refused("not " * (MAX_DEPTH + 1) + "true")
    assert f"nested deeper than {MAX_DEPTH}" in refused("-" * (MAX_DEPTH + 1) + "amount > 1")
    # a long sum nests its closures as deep as it is long
    chain = "amount" + " + 1" * (MAX_DEPTH + 1) + " > 0"
    assert f"nested deeper than {MAX_DEPTH}" in refused(chain)
    # a long or-chain does not: it is flattened
    assert holds(" or ".join([f"hour == {h}" for h in range(60)])) is True
    # what stays under both limits compiles
    assert holds("(" * MAX_DEPTH + "amount > 1" + ")" * MAX_DEPTH) is True


# -- the fields a condition reads -------------------------------------------------------------


def test_policy_fields_of_the_builtin_contract():
    contract = builtin_contract()
    assert {"amount", "score", "hour", "location_lat", "location_long"} <= set(FIELDS.numbers)
    assert set(contract.spec.feature_names) <= set(FIELDS.numbers)
    assert FIELDS.strings == ("customer_id", "email", "ip_addr")
    assert FIELDS.kinds == ("customer_id", "email", "ip_addr")
    assert LIST_NAMES == ("block", "allow", "watch")
    blank = FIELDS.blank_values()
    assert math.isnan(blank["amount"]) and blank["email"] == ""
    # every name can be read by a condition
    for name in FIELDS.numbers:
        assert compile_condition(f"is_missing({name})", FIELDS)(facts()) is True
    for name in FIELDS.strings:
        assert compile_condition(f"{name} == ''", FIELDS)(facts()) is True


def test_policy_fields_of_the_card_present_contract():
    contract = load_contract(SHIPPED / "card_present.yaml")
    fields = PolicyFields.of(contract)
    assert {"amount", "score", "hour", "distance_km", "card__order_count__24h"} <= set(
        fields.numbers
    )
    assert set(contract.spec.feature_names) <= set(fields.numbers)
    assert fields.strings == ("card", "terminal", "merchant", "mcc", "entry_mode")
    assert fields.kinds == ("card", "terminal", "merchant")
    values = fields.blank_values() | {"mcc": "6011", "entry_mode": "manual", "amount": 900.0}
    order = OrderFacts(values, new=frozenset({"card"}))
    rule = compile_condition(
        "mcc in ['6011', '6051'] and entry_mode == 'manual' and is_new('card')", fields
    )
    assert rule(order) is True
    assert "unknown name 'customer_id'" in refused("customer_id == 'x'", fields)


def test_colliding_names_are_refused():
    contract = builtin_contract()
    clash = dataclasses.replace(
        contract, attributes=(*contract.attributes, Attribute("score", "risk", "numeric"))
    )
    with pytest.raises(PolicyError, match="'score' is declared twice"):
        PolicyFields.of(clash)
    with pytest.raises(PolicyError, match="declared twice"):
        PolicyFields(numbers=("amount",), strings=("amount",), kinds=())
    with pytest.raises(PolicyError, match="not a plain name"):
        PolicyFields(numbers=("in",), strings=(), kinds=())


# -- the policy file --------------------------------------------------------------------------

SPRING = """
name: spring-2027
description: block a known bad domain, review big first orders
rules:
  - name: allow_listed
    when: listed("allow")
    action: approve
  - name: block_listed
    when: listed("block")
    action: decline
  - name: bad_domain
    when: ends_with(email, "@mailinator.com")
    action: decline
    tags: [disposable_email]
  - name: big_first_order
    when: is_new("customer_id") and amount > 500
    action: review
    tags: [first_order, disposable_email]
  - name: watch
    when: listed("watch")
    tags: [watched]
segments:
  - name: high_value
    when: amount >= 1000
    thresholds: {review: 0.05, decline: 0.5}
  - name: night
    when: hour < 6
thresholds: {review: 0.1, decline: 0.8}
"""


def test_the_first_matching_action_decides_and_every_match_is_reported():
    policy = load_policy(SPRING, FIELDS)
    assert policy.name == "spring-2027"
    assert [r.name for r in policy.rules] == [
        "allow_listed",
        "block_listed",
        "bad_domain",
        "big_first_order",
        "watch",
    ]
    order = facts(
        amount=600,
        score=0.01,
        hour=12,
        email="x@mailinator.com",
        new={"customer_id"},
        listed={("watch", "ip_addr")},
    )
    outcome = policy.decide(order, CARD)
    assert outcome.decision == "decline"
    assert outcome.decided_by == "bad_domain"
    assert outcome.rules == ("bad_domain", "big_first_order", "watch")
    assert outcome.tags == ("disposable_email", "first_order", "watched")
    assert outcome.segment == ""
    # the allow list comes first, so it wins over everything after it
    allowed = dataclasses.replace(order, listed=frozenset({("allow", "email")}))
    outcome = policy.decide(allowed, CARD)
    assert (outcome.decision, outcome.decided_by) == ("approve", "allow_listed")
    assert outcome.rules == ("allow_listed", "bad_domain", "big_first_order")
    # a rule without action only tags: the score decides
    watched = facts(amount=50, score=0.01, hour=12, listed={("watch", "email")})
    outcome = policy.decide(watched, CARD)
    assert (outcome.decision, outcome.decided_by) == ("approve", "score")
    assert (outcome.rules, outcome.tags) == (("watch",), ("watched",))
    # nothing matches
    outcome = policy.decide(facts(amount=50, score=0.01, hour=12), CARD)
    assert outcome.rules == () and outcome.tags == () and outcome.decided_by == "score"


def test_segment_thresholds_then_the_policys_then_the_cards():
    policy = load_policy(SPRING, FIELDS)
    score = 0.6
    in_segment = facts(amount=1500, score=score, hour=12)
    assert policy.thresholds_for(in_segment, CARD) == (
        "high_value",
        {"review": 0.05, "decline": 0.5},
    )
    outcome = policy.decide(in_segment, CARD)
    assert (outcome.decision, outcome.segment, outcome.decided_by) == (
        "decline",
        "high_value",
        "score",
    )
    # no segment: the policy's thresholds
    outcome = policy.decide(facts(amount=50, score=score, hour=12), CARD)
    assert (outcome.decision, outcome.segment) == ("review", "")
    # a segment without thresholds: the policy's too, and the segment is reported
    outcome = policy.decide(facts(amount=50, score=score, hour=3), CARD)
    assert (outcome.decision, outcome.segment) == ("review", "night")
    # a segment matching first wins over a later one
    assert policy.decide(facts(amount=1500, score=score, hour=3), CARD).segment == "high_value"
    # no policy thresholds: the card's
    no_thresholds = SPRING.replace("thresholds: {review: 0.1, decline: 0.8}\n", "")
    policy = load_policy(no_thresholds, FIELDS)
    assert policy.thresholds is None
    outcome = policy.decide(facts(amount=50, score=score, hour=3), {"review": 0.7, "decline": 0.9})
    assert (outcome.decision, outcome.segment) == ("approve", "night")
    outcome = policy.decide(
        facts(amount=1500, score=score, hour=3), {"review": 0.7, "decline": 0.9}
    )
    assert (outcome.decision, outcome.segment) == ("decline", "high_value")


def test_decision_for_compares_as_the_model_card_does():
    card = ModelCard(version="0" * 16, feature_names=[], thresholds={"review": 0.2, "decline": 0.9})
    for score in [0.0, 0.1999, 0.2, 0.5, 0.8999, 0.9, 1.0, math.nan]:
        assert decision_for(score, card.thresholds) == card.decision(score)
    assert decision_for(math.nan, CARD) == "approve"


def test_the_version_is_the_texts_checksum():
    one = load_policy(SPRING, FIELDS)
    assert re.fullmatch(r"p-[0-9a-f]{12}", one.version)
    assert load_policy(SPRING, FIELDS).version == one.version
    assert one.text == SPRING
    assert load_policy(SPRING + "# a comment\n", FIELDS).version != one.version
    assert load_policy(SPRING.replace("500", "501"), FIELDS).version != one.version


def test_the_default_policy_decides_as_the_card_while_the_lists_are_empty():
    policy = default_policy(FIELDS)
    assert policy.name == "default"
    assert [(r.name, r.action, r.tags) for r in policy.rules] == [
        ("allow_listed", "approve", ()),
        ("block_listed", "decline", ()),
        ("watch_listed", None, ("watched",)),
    ]
    assert policy.segments == () and policy.thresholds is None
    card = ModelCard(version="0" * 16, feature_names=[], thresholds=dict(CARD))
    for score in [0.0, 0.1, 0.2, 0.5, 0.9, 0.95, math.nan]:
        outcome = policy.decide(facts(score=score, amount=10_000, hour=3), card.thresholds)
        assert outcome.decision == card.decision(score)
        assert (outcome.rules, outcome.tags, outcome.decided_by) == ((), (), "score")
    blocked = policy.decide(facts(score=0.0, listed={("block", "ip_addr")}), CARD)
    assert (blocked.decision, blocked.decided_by) == ("decline", "block_listed")
    watched = policy.decide(facts(score=0.95, listed={("watch", "email")}), CARD)
    assert (watched.decision, watched.tags) == ("decline", ("watched",))


def test_a_boolean_when_reads_as_a_literal():
    policy = load_policy("name: p\nsegments:\n  - name: everyone\n    when: true\n", FIELDS)
    assert policy.decide(facts(score=0.5), CARD).segment == "everyone"


def refused_policy(text: str) -> str:
    with pytest.raises(PolicyError) as err:
        load_policy(text, FIELDS)
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: p\nrules: [", "the policy is not valid YAML (line"),
        ("name: p\n  rules: x", "the policy is not valid YAML"),
        ("", "the policy is empty"),
        ("- a\n- b\n", "the policy must be a mapping"),
        ("name: p\nrule: []\n", "unknown key 'rule' (did you mean 'rules'?)"),
        ("rules: []\n", "the policy: name must be"),
        ("name: a b\n", "the policy: name must be"),
        ("name: p\nname: q\n", "the policy: the key 'name' is given twice (line 2)"),
        ("name: p\nrules: {a: 1}\n", "the policy: rules must be a list"),
        ("name: p\nthresholds: {review: 0.9, decline: 0.5}\n", "the policy: the review threshold"),
    ],
)
def test_a_bad_policy_file_is_refused(text, reason):
    assert reason in refused_policy(text)


def rule(body: str, name: str = "big_first_order") -> str:
    return f"name: p\nrules:\n  - name: {name}\n{body}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (rule("    when: amount > 1\n    action: block\n"), "action 'block' is not one of"),
        (
            rule("    when: amount > 1\n    actoin: review\n"),
            "unknown key 'actoin' (did you mean 'action'?)",
        ),
        (rule("    action: review\n"), "when is missing"),
        (rule("    when: amout > 1\n"), "unknown name 'amout' (did you mean 'amount'?)"),
        (rule("    when: 5\n"), "when must be a condition in text"),
        (rule("    when: amount > 1\n    tags: watched\n"), "tags must be a list"),
        (rule("    when: amount > 1\n    tags: [Bad-Tag]\n"), "the tag 'Bad-Tag' must be"),
        (rule("    when: amount > 1\n    when: amount > 2\n"), "the key 'when' is given twice"),
        (rule("    when: amount > 1\n", name="Big-Order"), "rule 'Big-Order': the name must be"),
        (rule("    when: amount > 1\n", name="score"), "'score' names the score's decision"),
        (
            rule("    when: amount > 1\n") + "  - name: big_first_order\n    when: hour > 1\n",
            "the name is given to two rules",
        ),
    ],
)
def test_a_bad_rule_is_refused_by_name(text, reason):
    message = refused_policy(text)
    assert reason in message
    assert "rule '" in message


def test_rules_without_a_name_are_numbered():
    message = refused_policy("name: p\nrules:\n  - name: a\n    when: true\n  - when: true\n")
    assert "rule #2: name is missing" in message


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("thresholds: {review: 0.9, decline: 0.5}", "the review threshold (0.9) is above"),
        ("thresholds: {review: 0.1}", "thresholds must be"),
        ("thresholds: {review: 0.1, decline: 0.5, approve: 0}", "thresholds must be"),
        ("thresholds: {review: -0.1, decline: 0.5}", "must be a probability in [0, 1]"),
        ("thresholds: {review: 0.1, decline: 2}", "must be a probability in [0, 1]"),
        ("thresholds: {review: yes, decline: 0.5}", "must be a probability in [0, 1]"),
        ("thresholds: [0.1, 0.5]", "thresholds must be"),
    ],
)
def test_bad_segment_thresholds_are_refused_by_name(body, reason):
    text = f"name: p\nsegments:\n  - name: high_value\n    when: amount > 1\n    {body}\n"
    message = refused_policy(text)
    assert message.startswith("segment 'high_value': ")
    assert reason in message


def test_every_problem_is_reported_at_once():
    text = (
        "name: p\n"
        "rules:\n"
        "  - name: one\n    when: amout > 1\n"
        "  - name: two\n    when: amount > 1\n    action: block\n"
        "segments:\n"
        "  - name: one\n    when: hour > 1\n    thresholds: {review: 0.9, decline: 0.1}\n"
    )
    message = refused_policy(text)
    assert message.startswith("3 problems in the policy:")
    assert "rule 'one', column 1: unknown name 'amout'" in message
    assert "rule 'two': action 'block'" in message
    assert "segment 'one': the review threshold" in message


def test_at_most_max_rules():
    rules = "".join(f"  - name: r{i}\n    when: amount > {i}\n" for i in range(MAX_RULES + 1))
    assert f"{MAX_RULES + 1} rules, at most {MAX_RULES}" in refused_policy(
        f"name: p\nrules:\n{rules}"
    )
    fine = "".join(f"  - name: r{i}\n    when: amount > {i}\n" for i in range(MAX_RULES))
    assert len(load_policy(f"name: p\nrules:\n{fine}", FIELDS).rules) == MAX_RULES
