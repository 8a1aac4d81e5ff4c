"""A fraud team's decision policy: one YAML file of rules (a condition with an action, or only
tags), segments (a condition that picks the score thresholds) and default thresholds. Loading
checks every key and compiles every condition, so a policy that loads decides every order;
`Policy.decide` turns one order's facts and the model's score into approve, review or decline.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraud_core.model.artifact import check_thresholds, decision_for
from fraud_core.policy.expr import Condition, compile_condition
from fraud_core.policy.fields import LIST_NAMES, OrderFacts, PolicyError, PolicyFields

__all__ = [  # what the policy's users import from here, the fields' names included
    "ACTIONS",
    "DECIDED_BY_SCORE",
    "DEFAULT_POLICY_PATH",
    "LIST_NAMES",
    "MAX_RULES",
    "OrderFacts",
    "Outcome",
    "Policy",
    "PolicyError",
    "PolicyFields",
    "Rule",
    "Segment",
    "decision_for",
    "default_policy",
    "load_policy",
]

ACTIONS = ("approve", "review", "decline")
SCORE = "score"  # the name conditions read the model's score under
DECIDED_BY_SCORE = "score"  # `Outcome.decided_by` when no rule decides: no rule may take it
MAX_RULES = 500
MAX_SEGMENTS = 500
# Rule, segment and tag names go into the decision log and the UI: keep them plain.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A policy's own name may read like a release ("spring-2027").
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
POLICY_KEYS = ("name", "description", "rules", "segments", "thresholds")
RULE_KEYS = ("name", "when", "action", "tags", "description")
SEGMENT_KEYS = ("name", "when", "thresholds", "description")
SHIPPED = Path(__file__).with_name("shipped")
DEFAULT_POLICY_PATH = SHIPPED / "default.yaml"


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    action: str | None  # None: the rule only tags
    tags: tuple[str, ...]
    description: str = ""
    condition: Condition | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Segment:
    name: str
    when: str
    thresholds: dict[str, float] | None  # None: the policy's, else the model card's
    description: str = ""
    condition: Condition | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: str  # approve | review | decline
    rules: tuple[str, ...]  # names of every matching rule, in policy order
    segment: str  # the matching segment's name, "" when none
    tags: tuple[str, ...]  # tags of the matching rules, deduplicated, in order
    decided_by: str  # the deciding rule's name, or "score"


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    rules: tuple[Rule, ...]
    segments: tuple[Segment, ...]
    thresholds: dict[str, float] | None
    text: str  # the file's text as loaded
    # every name its conditions read, and the score (the thresholds read it): what a caller must
    # put in `OrderFacts.values`
    reads: frozenset[str] = frozenset({SCORE})
    # "p-" + the first 12 hex digits of the text's SHA-256: the registry and the decision log
    # know a policy by it
    version: str = field(init=False)
    # what `decide` iterates: plain tuples, built once
    _rule_plan: tuple[tuple[str, Condition, str | None, tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False
    )
    _segment_plan: tuple[tuple[str, Condition, dict[str, float] | None], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for item in (*self.rules, *self.segments):
            if item.condition is None:
                raise PolicyError(f"{item.name!r} has no compiled condition: use load_policy")
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        object.__setattr__(self, "version", f"p-{digest[:12]}")
        rule_plan = tuple((r.name, r.condition, r.action, r.tags) for r in self.rules)
        segment_plan = tuple((s.name, s.condition, s.thresholds) for s in self.segments)
        object.__setattr__(self, "_rule_plan", rule_plan)
        object.__setattr__(self, "_segment_plan", segment_plan)

    def decide(self, facts: OrderFacts, card_thresholds: Mapping[str, float]) -> Outcome:
        """Every rule is evaluated and every match reported; the first matching rule with an
        action decides, else the score against `thresholds_for` does."""
        matched: list[str] = []
        tags: list[str] = []
        action: str | None = None
        decided_by = DECIDED_BY_SCORE
        for name, condition, rule_action, rule_tags in self._rule_plan:
            if condition(facts):
                matched.append(name)
                if rule_tags:
                    tags += rule_tags
                if action is None and rule_action is not None:
                    action = rule_action
                    decided_by = name
        segment, thresholds = self.thresholds_for(facts, card_thresholds)
        if action is None:
            action = decision_for(facts.values[SCORE], thresholds)
        return Outcome(
            action,
            tuple(matched),
            segment,
            tuple(dict.fromkeys(tags)) if tags else (),
            decided_by,
        )

    def thresholds_for(
        self, facts: OrderFacts, card_thresholds: Mapping[str, float]
    ) -> tuple[str, Mapping[str, float]]:
        """(the first matching segment's name or "", the thresholds that apply): that segment's,
        else the policy's, else the model card's."""
        fallback = card_thresholds if self.thresholds is None else self.thresholds
        for name, condition, thresholds in self._segment_plan:
            if condition(facts):
                return name, fallback if thresholds is None else thresholds
        return "", fallback


def load_policy(text: str, fields: PolicyFields) -> Policy:
    """The policy in `text` (YAML), its conditions compiled against `fields`. PolicyError
    listing every problem found, each naming the rule or segment and the reason."""
    data = _read_yaml(text)
    problems: list[str] = []
    _unknown_keys(data, POLICY_KEYS, "the policy", problems)
    name = data.get("name")
    if not isinstance(name, str) or POLICY_NAME.fullmatch(name) is None:
        problems.append(
            f"the policy: name must be letters, digits, '.', '_' or '-' (at most 64), got {name!r}"
        )
    description = _text(data, "description", "the policy", problems)
    thresholds = None
    if data.get("thresholds") is not None:
        thresholds = _thresholds(data["thresholds"], "the policy", problems)
    reads = {SCORE}  # the thresholds read the score; the conditions add theirs
    rules = tuple(
        _rule(item, where, fields, problems, reads)
        for item, where in _items(data, "rules", "rule", MAX_RULES, problems)
    )
    segments = tuple(
        _segment(item, where, fields, problems, reads)
        for item, where in _items(data, "segments", "segment", MAX_SEGMENTS, problems)
    )
    if problems:
        raise PolicyError(
            problems[0]
            if len(problems) == 1
            else f"{len(problems)} problems in the policy:\n  " + "\n  ".join(problems)
        )
    return Policy(
        name=name,
        description=description,
        rules=rules,
        segments=segments,
        thresholds=thresholds,
        text=text,
        reads=frozenset(reads),
    )


def default_policy(fields: PolicyFields) -> Policy:
    """The shipped policy: the allow and block lists decide, the watch list tags, the model
    card's thresholds do the rest (with empty lists: the card's decision)."""
    return load_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"), fields)


# -- reading ------------------------------------------------------------------------------------


def _read_yaml(text: str) -> dict[str, Any]:
    try:
        # composed first only to find keys given twice, which the loader would silently merge
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), "the policy")
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise PolicyError(f"the policy is not valid YAML{at}: {problem}") from None
    if duplicates:
        raise PolicyError("; ".join(duplicates))
    if data is None:
        raise PolicyError("the policy is empty")
    if not isinstance(data, dict):
        raise PolicyError(
            f"the policy must be a mapping (name, rules, segments, thresholds), "
            f"got {type(data).__name__}"
        )
    return data


def _duplicate_keys(node: yaml.Node | None, where: str) -> list[str]:
    """'<where>: the key 'k' is given twice (line n)' for every mapping key given twice, the
    items of `rules` and `segments` named after their `name`."""
    out: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                out.append(
                    f"{where}: the key {key!r} is given twice (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
            if (
                where == "the policy"
                and key in ("rules", "segments")
                and isinstance(value_node, yaml.SequenceNode)
            ):
                for i, item in enumerate(value_node.value):
                    out += _duplicate_keys(item, _node_label(key[:-1], i, item))
            else:
                out += _duplicate_keys(value_node, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _duplicate_keys(item, where)
    return out


def _node_label(what: str, i: int, node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == "name" and isinstance(
                value_node, yaml.ScalarNode
            ):
                return _label(what, i, value_node.value)
    return _label(what, i, None)


def _label(what: str, i: int, name: object) -> str:
    """ "rule 'big_first_order'", or "rule #3" (1-based) while the name is not usable."""
    return f"{what} {name!r}" if isinstance(name, str) and name else f"{what} #{i + 1}"


def _unknown_keys(data: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown key {key!r}{hint}; the keys are {', '.join(known)}")


def _text(data: dict, key: str, where: str, problems: list[str]) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: {key} must be text, got {value!r}")
        return ""
    return value


def _items(
    data: dict, key: str, what: str, limit: int, problems: list[str]
) -> list[tuple[Any, str]]:
    """The entries of the list under `key`, each with its label; their names checked for
    format and duplicates."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"the policy: {key} must be a list, got {type(items).__name__}")
        return []
    if len(items) > limit:
        problems.append(f"the policy: {len(items)} {key}, at most {limit}")
        return []
    out: list[tuple[Any, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        where = _label(what, i, name)
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping (name, when, ...), got {item!r}")
            continue
        if name is None:
            problems.append(f"{where}: name is missing")
        elif not isinstance(name, str) or NAME.fullmatch(name) is None:
            problems.append(
                f"{where}: the name must be a-z, 0-9 and _, starting with a letter, at most 64"
            )
        elif name in seen:
            problems.append(f"{where}: the name is given to two {key}")
        elif what == "rule" and name == DECIDED_BY_SCORE:
            problems.append(f"{where}: {name!r} names the score's decision, not a rule")
        if isinstance(name, str):
            seen.add(name)
        out.append((item, where))
    return out


def _condition(
    item: dict, where: str, fields: PolicyFields, problems: list[str], reads: set[str]
) -> tuple[str, Condition | None]:
    when = item.get("when")
    if isinstance(when, bool):  # YAML reads an unquoted `true` as a boolean
        when = "true" if when else "false"
    if when is None:
        problems.append(f"{where}: when is missing")
        return "", None
    if not isinstance(when, str):
        problems.append(f"{where}: when must be a condition in text, got {when!r}")
        return "", None
    try:
        return when, compile_condition(when, fields, where, reads)
    except PolicyError as err:
        problems.append(str(err))
        return when, None


def _rule(
    item: dict, where: str, fields: PolicyFields, problems: list[str], reads: set[str]
) -> Rule | None:
    _unknown_keys(item, RULE_KEYS, where, problems)
    when, condition = _condition(item, where, fields, problems, reads)
    action = item.get("action")
    if action is not None and action not in ACTIONS:
        problems.append(
            f"{where}: action {action!r} is not one of {', '.join(ACTIONS)} "
            "(or leave it out: the rule only tags)"
        )
    tags = item.get("tags")
    if tags is None:
        tags = []
    if not isinstance(tags, list):
        problems.append(f"{where}: tags must be a list such as [watched], got {tags!r}")
        tags = []
    for tag in tags:
        if not isinstance(tag, str) or NAME.fullmatch(tag) is None:
            problems.append(
                f"{where}: the tag {tag!r} must be a-z, 0-9 and _, starting with a letter, "
                "at most 64"
            )
    description = _text(item, "description", where, problems)
    if condition is None:
        return None
    return Rule(item.get("name", ""), when, action, tuple(tags), description, condition)


def _segment(
    item: dict, where: str, fields: PolicyFields, problems: list[str], reads: set[str]
) -> Segment | None:
    _unknown_keys(item, SEGMENT_KEYS, where, problems)
    when, condition = _condition(item, where, fields, problems, reads)
    thresholds = None
    if item.get("thresholds") is not None:
        thresholds = _thresholds(item["thresholds"], where, problems)
    description = _text(item, "description", where, problems)
    if condition is None:
        return None
    return Segment(item.get("name", ""), when, thresholds, description, condition)


def _thresholds(value: object, where: str, problems: list[str]) -> dict[str, float] | None:
    try:
        check_thresholds(value)  # the model card's own check: 0 <= review <= decline <= 1
    except ValueError as err:
        problems.append(f"{where}: {err}")
        return None
    assert isinstance(value, dict)
    return {"review": float(value["review"]), "decline": float(value["decline"])}
