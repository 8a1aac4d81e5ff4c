"""The condition language of a policy: a small, typed expression language compiled to nested
Python closures. Nothing is evaluated as Python and no user code runs: a condition can only
compare, combine and do arithmetic on the names a `PolicyFields` declares and call a fixed set
of functions.

    expr   := and ('or' and)*
    and    := not ('and' not)*
    not    := 'not' not | cmp
    cmp    := sum (('=='|'!='|'<'|'<='|'>'|'>=') sum | ['not'] 'in' '[' literal (',' literal)* ']')?
    sum    := prod (('+'|'-') prod)*
    prod   := unary (('*'|'/') unary)*
    unary  := '-' unary | atom
    atom   := NUMBER | STRING | 'true' | 'false' | NAME | NAME '(' args ')' | '(' expr ')'

Types are number (float, NaN when missing), string and bool, checked when the condition is
compiled, so a condition that compiles never fails on an order: every comparison with NaN is
false except `!=`, and a division by zero gives NaN.

Speed: the service evaluates every rule of a policy on every order, so the work is done at
compile time: literals are folded, literal lists become frozensets, a field compared with a
literal is one closure doing one dict lookup, and `and` / `or` chains are flattened.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from fraud_core.policy.fields import (
    KEYWORDS,
    LIST_NAMES,
    NUMBER,
    STRING,
    OrderFacts,
    PolicyError,
    PolicyFields,
)

BOOL = "bool"
MAX_CHARS = 2_000
MAX_DEPTH = 50
FUNCTIONS = ("listed", "is_new", "starts_with", "ends_with", "contains", "is_missing")

Condition = Callable[[OrderFacts], bool]
_Fn = Callable[[OrderFacts], Any]

_A = {NUMBER: "a number", STRING: "a string", BOOL: "a true/false value"}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
# longest first: "<=" before "<"
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",")
_HINTS = {"=": "use == to compare", "&": "use and", "|": "use or", "!": "use not, or != to compare"}
_ESCAPES = ("\\", "'", '"')
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CMP = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# `c < x` is `x > c`, NaN included: lets a literal on the left use the field-vs-literal closures
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def compile_condition(
    text: str, fields: PolicyFields, where: str = "condition", reads: set[str] | None = None
) -> Condition:
    """`text` as a function of one order's facts returning True or False. PolicyError naming
    `where` (a label such as "rule 'big_first_order'"), the column and the reason when the text
    is not a valid condition over `fields`. `reads`, when given, gains the names the condition
    reads (so a caller fills only those in `OrderFacts`)."""
    if len(text) > MAX_CHARS:
        raise PolicyError(
            f"{where}: the condition is {len(text):,} characters long, more than {MAX_CHARS:,}"
        )
    parser = _Parser(text, fields, where)
    node = parser.parse()
    if node.type != BOOL:
        parser.fail(
            node.start,
            f"`{parser.source(node)}` is {_A[node.type]}, and a condition must be true or false "
            "(compare it, as in `amount > 100`)",
        )
    if reads is not None:
        reads |= parser.reads
    if node.fn is None:
        value = bool(node.const)
        return lambda f: value
    return node.fn


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "number" | "string" | "name" | "end" | the operator or keyword itself
    value: Any
    start: int  # offset of its first character in the text
    end: int


@dataclass(frozen=True, slots=True)
class _Node:
    """A type-checked sub-expression: a closure (`fn`), or a constant (`fn` None, `const`)."""

    type: str
    fn: _Fn | None
    const: Any
    field: str | None  # the name it reads, when it is a bare field
    start: int
    end: int
    depth: int  # of nested closures: bounded so that evaluation never recurses deeply


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    if not close:
        return ""
    if len(close) == 1:
        return f" (did you mean {close[0]!r}?)"
    return f" (did you mean {', '.join(repr(c) for c in close[:-1])} or {close[-1]!r}?)"


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the condition"
    if tok.kind == "name":
        return f"the name {tok.value!r}"
    if tok.kind == "number":
        return f"the number {tok.value:g}"
    if tok.kind == "string":
        return f"the string {tok.value!r}"
    return f"'{tok.kind}'"


class _Parser:
    """Recursive descent over the tokens, type-checking and building closures as it goes."""

    def __init__(self, text: str, fields: PolicyFields, where: str) -> None:
        self.text = text
        self.fields = fields
        self.types = fields.types
        self.where = where
        self.nesting = 0
        self.reads: set[str] = set()  # the names the condition reads
        self.tokens = self.tokenize()
        self.i = 0

    # -- errors and tokens --------------------------------------------------------------

    def fail(self, pos: int, message: str) -> NoReturn:
        raise PolicyError(f"{self.where}, column {pos + 1}: {message}")

    def source(self, node: _Node) -> str:
        return self.text[node.start : node.end]

    def tokenize(self) -> list[_Token]:
        text, n = self.text, len(self.text)
        tokens: list[_Token] = []
        i = 0
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif c in "'\"":
                end, value = self.string(i)
                tokens.append(_Token("string", value, i, end))
                i = end
            elif m := _NUMBER_RE.match(text, i):
                tokens.append(_Token("number", float(m.group()), i, m.end()))
                i = m.end()
            elif m := _NAME_RE.match(text, i):
                word = m.group()
                tokens.append(_Token(word if word in KEYWORDS else "name", word, i, m.end()))
                i = m.end()
            else:
                op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
                if op is None:
                    hint = _HINTS.get(c)
                    self.fail(i, f"unexpected character {c!r}" + (f": {hint}" if hint else ""))
                tokens.append(_Token(op, op, i, i + len(op)))
                i += len(op)
        tokens.append(_Token("end", None, n, n))
        return tokens

    def string(self, start: int) -> tuple[int, str]:
        """The string literal opening at `start`: (offset after it, its value)."""
        text = self.text
        quote = text[start]
        out: list[str] = []
        i = start + 1
        while i < len(text):
            c = text[i]
            if c == "\\":
                escaped = text[i + 1 : i + 2]
                if escaped == "":
                    break
                if escaped not in _ESCAPES:
                    self.fail(i, f"unknown escape '\\{escaped}': a string knows \\\\, \\' and \\\"")
                out.append(escaped)
                i += 2
            elif c == quote:
                return i + 1, "".join(out)
            else:
                out.append(c)
                i += 1
        self.fail(start, f"the string opened here is not closed with {quote}")

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def enter(self, tok: _Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            self.fail(tok.start, f"the condition is nested deeper than {MAX_DEPTH} levels")

    def node(
        self,
        type_: str,
        fn: _Fn,
        start: int,
        end: int,
        children: tuple[_Node, ...] = (),
        field: str | None = None,
    ) -> _Node:
        """A closure node, refused when its closures would nest deeper than MAX_DEPTH."""
        depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_DEPTH:
            self.fail(start, f"the condition is nested deeper than {MAX_DEPTH} levels")
        return _Node(type_, fn, None, field, start, end, depth)

    def constant(self, type_: str, value: Any, start: int, end: int) -> _Node:
        return _Node(type_, None, value, None, start, end, 0)

    # -- grammar ----------------------------------------------------------------------------

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            self.fail(0, "the condition is empty")
        node = self.expr()
        tok = self.peek()
        if tok.kind == ")":
            self.fail(tok.start, "')' without a matching '('")
        if tok.kind != "end":
            self.fail(
                tok.start,
                f"`{self.source(node)}` is followed by {_describe(tok)}: "
                "join conditions with and / or",
            )
        return node

    def expr(self) -> _Node:
        parts = [self.and_()]
        while self.peek().kind == "or":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else self.logic("or", parts)

    def and_(self) -> _Node:
        parts = [self.not_()]
        while self.peek().kind == "and":
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else self.logic("and", parts)

    def not_(self) -> _Node:
        tok = self.peek()
        if tok.kind != "not":
            return self.cmp()
        self.take()
        self.enter(tok)
        operand = self.not_()
        self.nesting -= 1
        if operand.type != BOOL:
            self.fail(
                operand.start,
                f"`{self.source(operand)}` is {_A[operand.type]}: not needs true or false",
            )
        if operand.fn is None:
            return self.constant(BOOL, not operand.const, tok.start, operand.end)
        a = operand.fn
        return self.node(BOOL, lambda f: not a(f), tok.start, operand.end, (operand,))

    def cmp(self) -> _Node:
        left = self.sum()
        tok = self.peek()
        if tok.kind in _COMPARISONS:
            self.take()
            node = self.compare(tok.kind, left, self.sum())
        elif tok.kind == "in" or (tok.kind == "not" and self.tokens[self.i + 1].kind == "in"):
            self.take()
            negated = tok.kind == "not"
            if negated:
                self.take()
            node = self.membership(left, negated)
        else:
            return left
        nxt = self.peek()
        if nxt.kind in _COMPARISONS or nxt.kind == "in":
            self.fail(
                nxt.start,
                f"comparisons do not chain: after `{self.source(node)}` write `and` and the "
                "next comparison",
            )
        return node

    def sum(self) -> _Node:
        node = self.prod()
        while self.peek().kind in ("+", "-"):
            op = self.take().kind
            node = self.arithmetic(op, node, self.prod())
        return node

    def prod(self) -> _Node:
        node = self.unary()
        while self.peek().kind in ("*", "/"):
            op = self.take().kind
            node = self.arithmetic(op, node, self.unary())
        return node

    def unary(self) -> _Node:
        tok = self.peek()
        if tok.kind != "-":
            return self.atom()
        self.take()
        self.enter(tok)
        operand = self.unary()
        self.nesting -= 1
        if operand.type != NUMBER:
            self.fail(
                operand.start,
                f"`{self.source(operand)}` is {_A[operand.type]}: minus needs a number",
            )
        if operand.fn is None:
            return self.constant(NUMBER, -operand.const, tok.start, operand.end)
        a = operand.fn
        return self.node(NUMBER, lambda f: -a(f), tok.start, operand.end, (operand,))

    def atom(self) -> _Node:
        tok = self.take()
        kind = tok.kind
        if kind == "number":
            return self.constant(NUMBER, tok.value, tok.start, tok.end)
        if kind == "string":
            return self.constant(STRING, tok.value, tok.start, tok.end)
        if kind in ("true", "false"):
            return self.constant(BOOL, kind == "true", tok.start, tok.end)
        if kind == "(":
            self.enter(tok)
            inner = self.expr()
            self.nesting -= 1
            close = self.closing(tok)
            # the same value, quoted with its parentheses in messages
            return _Node(
                inner.type, inner.fn, inner.const, inner.field, tok.start, close.end, inner.depth
            )
        if kind == "name":
            if self.peek().kind == "(":
                return self.call(tok)
            return self.name(tok)
        if kind == "end":
            self.fail(tok.start, "the condition ends where a value is expected")
        self.fail(tok.start, f"expected a value, got {_describe(tok)}")

    def closing(self, opening: _Token) -> _Token:
        tok = self.peek()
        if tok.kind == ")":
            return self.take()
        if tok.kind == "end":
            self.fail(opening.start, "missing ')': the '(' here is not closed")
        self.fail(
            tok.start,
            f"expected ')' to close the '(' at column {opening.start + 1}, got {_describe(tok)}",
        )

    def name(self, tok: _Token) -> _Node:
        name = tok.value
        type_ = self.types.get(name)
        if type_ is None:
            if name in FUNCTIONS:
                self.fail(tok.start, f"{name} is a function: call it, as in {name}(...)")
            self.fail(tok.start, f"unknown name {name!r}{_did_you_mean(name, self.types)}")
        self.reads.add(name)
        return self.node(type_, _read(name), tok.start, tok.end, field=name)

    # -- operators --------------------------------------------------------------------------

    def logic(self, op: str, parts: list[_Node]) -> _Node:
        start, end = parts[0].start, parts[-1].end
        for p in parts:
            if p.type != BOOL:
                self.fail(
                    p.start, f"`{self.source(p)}` is {_A[p.type]}: {op} joins true/false values"
                )
        decisive = op == "or"  # the value of one part that settles the whole
        if any(p.fn is None and p.const is decisive for p in parts):
            return self.constant(BOOL, decisive, start, end)
        live = [p for p in parts if p.fn is not None]
        if not live:
            return self.constant(BOOL, not decisive, start, end)
        fns = [p.fn for p in live]
        fn = fns[0] if len(fns) == 1 else (_all(fns) if op == "and" else _any(fns))
        return self.node(BOOL, fn, start, end, tuple(live))

    def compare(self, op: str, left: _Node, right: _Node) -> _Node:
        start, end = left.start, right.end
        quoted = self.text[start:end]
        if op in ("==", "!="):
            if left.type != right.type:
                self.fail(start, f"`{quoted}`: compares {_A[left.type]} with {_A[right.type]}")
        elif left.type != NUMBER or right.type != NUMBER:
            bad = left if left.type != NUMBER else right
            self.fail(
                bad.start,
                f"`{quoted}`: {op} compares numbers, and `{self.source(bad)}` is {_A[bad.type]}",
            )
        if left.fn is None and right.fn is None:
            return self.constant(BOOL, _CMP[op](left.const, right.const), start, end)
        if left.fn is None:
            op, left, right = _MIRROR[op], right, left
        if right.fn is None:
            fn = (
                _field_vs_literal(op, left.field, right.const)
                if left.field is not None
                else _value_vs_literal(op, left.fn, right.const)
            )
        else:
            fn = _value_vs_value(_CMP[op], left.fn, right.fn)
        return self.node(BOOL, fn, start, end, (left, right))

    def membership(self, left: _Node, negated: bool) -> _Node:
        word = "not in" if negated else "in"
        if left.type not in (NUMBER, STRING):
            self.fail(
                left.start,
                f"`{self.source(left)}` is {_A[left.type]}: {word} takes a number or a string",
            )
        opening = self.peek()
        if opening.kind != "[":
            self.fail(
                opening.start,
                f"{word} takes a list of literals such as [1, 2] or ['a', 'b'], "
                f"got {_describe(opening)}",
            )
        self.take()
        if self.peek().kind == "]":
            self.fail(opening.start, "the list is empty")
        items: list[Any] = []
        while True:
            item = self.sum()
            if item.fn is not None:
                self.fail(item.start, f"`{self.source(item)}`: a list holds only literals")
            if item.type != left.type:
                self.fail(
                    item.start,
                    f"`{self.source(item)}` is {_A[item.type]}, and `{self.source(left)}` "
                    f"is {_A[left.type]}: the list's items must be of its type",
                )
            # NaN equals nothing: as an item it could never match
            if not (item.type == NUMBER and math.isnan(item.const)):
                items.append(item.const)
            tok = self.take()
            if tok.kind == "]":
                break
            if tok.kind != ",":
                self.fail(tok.start, f"expected ',' or ']' in the list, got {_describe(tok)}")
        values = frozenset(items)
        start, end = left.start, tok.end
        if left.fn is None:
            return self.constant(BOOL, (left.const in values) != negated, start, end)
        return self.node(BOOL, _membership(left, values, negated), start, end, (left,))

    def arithmetic(self, op: str, left: _Node, right: _Node) -> _Node:
        start, end = left.start, right.end
        for side in (left, right):
            if side.type != NUMBER:
                self.fail(
                    side.start,
                    f"`{self.text[start:end]}`: {op} works on numbers, and "
                    f"`{self.source(side)}` is {_A[side.type]}",
                )
        if left.fn is None and right.fn is None:
            return self.constant(NUMBER, _ARITHMETIC[op](left.const, right.const), start, end)
        return self.node(NUMBER, _arithmetic(op, left, right), start, end, (left, right))

    # -- functions ----------------------------------------------------------------------------

    def call(self, tok: _Token) -> _Node:
        name = tok.value
        if name not in FUNCTIONS:
            if name in self.types:
                self.fail(tok.start, f"{name!r} is a value, not a function")
            self.fail(
                tok.start,
                f"unknown function {name!r}{_did_you_mean(name, FUNCTIONS)}: the functions are "
                + ", ".join(FUNCTIONS),
            )
        opening = self.take()
        self.enter(opening)
        args: list[_Node] = []
        if self.peek().kind != ")":
            args.append(self.expr())
            while self.peek().kind == ",":
                self.take()
                args.append(self.expr())
        self.nesting -= 1
        close = self.closing(opening)
        start, end = tok.start, close.end
        arity = {"listed": (1, 2), "is_new": (1,), "is_missing": (1,)}.get(name, (2,))
        if len(args) not in arity:
            wanted = " or ".join(str(a) for a in arity)
            self.fail(
                start,
                f"{name} takes {wanted} argument{'s' if arity != (1,) else ''}, got {len(args)}",
            )
        if name == "listed":
            return self.listed(args, start, end)
        if name == "is_new":
            kind = self.kind(name, args[0])
            return self.node(BOOL, lambda f: kind in f.new, start, end)
        if name == "is_missing":
            return self.is_missing(args[0], start, end)
        return self.text_test(name, args, start, end)

    def literal(self, function: str, arg: _Node, what: str) -> str:
        if arg.fn is not None or arg.type != STRING:
            self.fail(
                arg.start,
                f"{function}: {what} must be a string literal in quotes, got `{self.source(arg)}`",
            )
        return arg.const

    def kind(self, function: str, arg: _Node) -> str:
        kind = self.literal(function, arg, "the entity kind")
        if kind not in self.fields.kinds:
            self.fail(
                arg.start,
                f"{function}: unknown entity kind {kind!r}{_did_you_mean(kind, self.fields.kinds)}"
                f": the kinds are {', '.join(self.fields.kinds)}",
            )
        return kind

    def listed(self, args: list[_Node], start: int, end: int) -> _Node:
        name = self.literal("listed", args[0], "the list")
        if name not in LIST_NAMES:
            self.fail(
                args[0].start,
                f"listed: unknown list {name!r}{_did_you_mean(name, LIST_NAMES)}: the lists are "
                + ", ".join(LIST_NAMES),
            )
        if len(args) == 2:
            key = (name, self.kind("listed", args[1]))
            return self.node(BOOL, lambda f: key in f.listed, start, end)
        pairs = frozenset((name, kind) for kind in self.fields.kinds)
        return self.node(BOOL, lambda f: not pairs.isdisjoint(f.listed), start, end)

    def is_missing(self, arg: _Node, start: int, end: int) -> _Node:
        if arg.type != NUMBER:
            self.fail(
                arg.start,
                f"is_missing takes a number, and `{self.source(arg)}` is {_A[arg.type]} "
                '(a missing string is "")',
            )
        # NaN is the one value not equal to itself
        if arg.fn is None:
            return self.constant(BOOL, arg.const != arg.const, start, end)
        if arg.field is not None:
            n = arg.field
            return self.node(BOOL, lambda f: (v := f.values[n]) != v, start, end, (arg,))
        a = arg.fn
        return self.node(BOOL, lambda f: (v := a(f)) != v, start, end, (arg,))

    def text_test(self, name: str, args: list[_Node], start: int, end: int) -> _Node:
        subject, pattern = args
        if subject.type != STRING:
            self.fail(
                subject.start,
                f"{name} reads a string, and `{self.source(subject)}` is {_A[subject.type]}",
            )
        part = self.literal(name, pattern, "the second argument")
        if subject.fn is None:
            return self.constant(BOOL, _TEXT_TESTS[name](subject.const, part), start, end)
        return self.node(BOOL, _text_test(name, subject, part), start, end, (subject,))


# -- closures ---------------------------------------------------------------------------------
# Built by factories so that each closure captures exactly the cells it reads.


def _read(n: str) -> _Fn:
    return lambda f: f.values[n]


def _all(fns: list[_Fn]) -> _Fn:
    if len(fns) == 2:
        a, b = fns
        return lambda f: a(f) and b(f)
    if len(fns) == 3:
        a, b, c = fns
        return lambda f: a(f) and b(f) and c(f)
    chain = tuple(fns)

    def every(f: OrderFacts) -> bool:
        # a plain loop: all() over a generator costs a frame more per evaluation
        for g in chain:  # noqa: SIM110
            if not g(f):
                return False
        return True

    return every


def _any(fns: list[_Fn]) -> _Fn:
    if len(fns) == 2:
        a, b = fns
        return lambda f: a(f) or b(f)
    if len(fns) == 3:
        a, b, c = fns
        return lambda f: a(f) or b(f) or c(f)
    chain = tuple(fns)

    def some(f: OrderFacts) -> bool:
        for g in chain:  # noqa: SIM110
            if g(f):
                return True
        return False

    return some


def _field_vs_literal(op: str, n: str, c: Any) -> _Fn:
    """`name <op> literal`: the commonest condition, one closure and one dict lookup."""
    if op == "==":
        return lambda f: f.values[n] == c
    if op == "!=":
        return lambda f: f.values[n] != c
    if op == "<":
        return lambda f: f.values[n] < c
    if op == "<=":
        return lambda f: f.values[n] <= c
    if op == ">":
        return lambda f: f.values[n] > c
    return lambda f: f.values[n] >= c


def _value_vs_literal(op: str, a: _Fn, c: Any) -> _Fn:
    if op == "==":
        return lambda f: a(f) == c
    if op == "!=":
        return lambda f: a(f) != c
    if op == "<":
        return lambda f: a(f) < c
    if op == "<=":
        return lambda f: a(f) <= c
    if op == ">":
        return lambda f: a(f) > c
    return lambda f: a(f) >= c


def _value_vs_value(compare: Callable[[Any, Any], bool], a: _Fn, b: _Fn) -> _Fn:
    return lambda f: compare(a(f), b(f))


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:  # a condition never raises on an order
        return math.nan


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _div,
}


def _arithmetic(op: str, left: _Node, right: _Node) -> _Fn:
    """`left <op> right`, at least one of them not a constant."""
    if right.fn is None:
        a, c = left.fn, right.const
        assert a is not None
        if op == "+":
            return lambda f: a(f) + c
        if op == "-":
            return lambda f: a(f) - c
        if op == "*":
            return lambda f: a(f) * c
        if c == 0:
            return lambda f: math.nan
        return lambda f: a(f) / c
    b = right.fn
    if left.fn is None:
        c = left.const
        if op == "+":
            return lambda f: c + b(f)
        if op == "-":
            return lambda f: c - b(f)
        if op == "*":
            return lambda f: c * b(f)
        # the divisor is tested inline rather than in _div: one call less per evaluation
        return lambda f: c / y if (y := b(f)) else math.nan
    a = left.fn
    if op == "+":
        return lambda f: a(f) + b(f)
    if op == "-":
        return lambda f: a(f) - b(f)
    if op == "*":
        return lambda f: a(f) * b(f)
    return lambda f: a(f) / y if (y := b(f)) else math.nan


def _membership(left: _Node, values: frozenset[Any], negated: bool) -> _Fn:
    if left.field is not None:
        n = left.field
        if negated:
            return lambda f: f.values[n] not in values
        return lambda f: f.values[n] in values
    a = left.fn
    assert a is not None
    if negated:
        return lambda f: a(f) not in values
    return lambda f: a(f) in values


_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "starts_with": str.startswith,
    "ends_with": str.endswith,
    "contains": operator.contains,
}


def _text_test(name: str, subject: _Node, part: str) -> _Fn:
    """`name(subject, part)`, spelt out per function on a field: one closure call, not two."""
    if subject.field is not None:
        n = subject.field
        if name == "starts_with":
            return lambda f: f.values[n].startswith(part)
        if name == "ends_with":
            return lambda f: f.values[n].endswith(part)
        return lambda f: part in f.values[n]
    a = subject.fn
    assert a is not None
    test = _TEXT_TESTS[name]
    return lambda f: test(a(f), part)
