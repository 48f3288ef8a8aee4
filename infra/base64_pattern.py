"""A regular expression over base64 text that matches exactly the encodings of the kubectl recipe's
pull secret for given registry hosts.

Why by hand: the admission policy must tell, on an update, whether the old `.dockerconfigjson` is the
recipe's (only ECR registries) before letting the function adopt it, and Kubernetes' admission CEL
(1.34) has neither base64 nor JSON decoding; a Secret's data reaches CEL as its base64 text. No
library compiles a byte language to a regex over its base64 encoding, so this module does: a
deterministic automaton over bytes, regrouped three bytes to four base64 characters, then state
elimination into one RE2-compatible expression.

The byte language: {"auths":{"<HOST>":{ X }}} with HOST one of the hosts and X any bytes but braces.
If the decoded bytes are valid JSON and match it, the document is an object with the single key
"auths", whose value is an object with the single key HOST (X holds no nested object, so the three
closing braces at the end are the structural ones). Canonical, padded, standard base64 only.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from lambda_fn.secret_contract import RECIPE_CLOSING, RECIPE_ENTRY, RECIPE_OPENING

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ALL_BYTES = frozenset(range(256))
ByteSet = frozenset[int]


class _Automaton:
    """A deterministic automaton over bytes: edges labelled with byte sets."""

    def __init__(self) -> None:
        self.edges: dict[int, list[tuple[ByteSet, int]]] = defaultdict(list)
        self.accepting: set[int] = set()
        self.states = 0

    def state(self) -> int:
        self.states += 1
        return self.states - 1

    def edge(self, source: int, label: Iterable[int], target: int) -> None:
        label = frozenset(label)
        if any(other & label for other, _ in self.edges[source]):
            raise ValueError("the automaton must stay deterministic")
        self.edges[source].append((label, target))


def _recipe_automaton(hosts: Sequence[str]) -> tuple[_Automaton, int]:
    """{"auths":{"H":{ [^{}]* }}} for H in hosts; the hosts share a trie, so it stays deterministic."""
    automaton = _Automaton()
    start, inside = automaton.state(), automaton.state()
    trie: dict[tuple[int, int], int] = {}
    for host in hosts:
        text = RECIPE_OPENING + host.encode() + RECIPE_ENTRY
        state = start
        for position, byte in enumerate(text):
            if (state, byte) not in trie:
                target = inside if position == len(text) - 1 else automaton.state()
                automaton.edge(state, [byte], target)
                trie[state, byte] = target
            state = trie[state, byte]
    automaton.edge(inside, ALL_BYTES - {ord("{"), ord("}")}, inside)
    closing = [automaton.state() for _ in RECIPE_CLOSING]
    for source, target, byte in zip([inside, *closing[:-1]], closing, RECIPE_CLOSING, strict=True):
        automaton.edge(source, [byte], target)
    automaton.accepting.add(closing[-1])
    return automaton, start


def _char_class(indices: Iterable[int]) -> str:
    ordered = sorted(indices)
    if len(ordered) == 64:
        return "[A-Za-z0-9+/]"
    if len(ordered) == 1:
        return re.escape(ALPHABET[ordered[0]])

    def segment(index: int) -> int:  # ranges never cross A-Z, a-z, 0-9 or the two symbols
        return 0 if index < 26 else 1 if index < 52 else 2 if index < 62 else index

    runs: list[list[int]] = []
    for index in ordered:
        if runs and index == runs[-1][-1] + 1 and segment(index) == segment(runs[-1][-1]):
            runs[-1].append(index)
        else:
            runs.append([index])
    parts = []
    for run in runs:
        chars = ["\\" + ALPHABET[i] if ALPHABET[i] in "+/" else ALPHABET[i] for i in run]
        parts.append(f"{chars[0]}-{chars[-1]}" if len(run) >= 3 else "".join(chars))
    return "[" + "".join(parts) + "]"


def _alternation(rows: Iterable[str]) -> str:
    unique = sorted(set(rows))
    return unique[0] if len(unique) == 1 else "(?:" + "|".join(unique) + ")"


def _three_bytes(b0: ByteSet, b1: ByteSet, b2: ByteSet) -> str:
    """The four-character groups that encode a byte from each set."""
    groups: dict[tuple[frozenset[int], frozenset[int], int], set[int]] = defaultdict(set)
    for c1 in range(64):
        first = frozenset(c0 for c0 in range(64) if ((c0 << 2) | (c1 >> 4)) in b0)
        if not first:
            continue
        for c2 in range(64):
            if (((c1 & 15) << 4) | (c2 >> 2)) not in b1:
                continue
            last = frozenset(c3 for c3 in range(64) if (((c2 & 3) << 6) | c3) in b2)
            if last:
                groups[first, last, c1].add(c2)
    merged: dict[tuple[frozenset[int], frozenset[int], frozenset[int]], set[int]] = defaultdict(set)
    for (first, last, c1), thirds in groups.items():
        merged[first, last, frozenset(thirds)].add(c1)
    return _alternation(
        _char_class(first) + _char_class(seconds) + _char_class(thirds) + _char_class(last)
        for (first, last, thirds), seconds in merged.items()
    )


def _two_bytes(b0: ByteSet, b1: ByteSet) -> str:
    """A final group of two bytes: three characters and `=` (the third's low two bits zero)."""
    groups: dict[tuple[frozenset[int], frozenset[int]], set[int]] = defaultdict(set)
    for c1 in range(64):
        first = frozenset(c0 for c0 in range(64) if ((c0 << 2) | (c1 >> 4)) in b0)
        third = frozenset(c2 for c2 in range(0, 64, 4) if (((c1 & 15) << 4) | (c2 >> 2)) in b1)
        if first and third:
            groups[first, third].add(c1)
    return _alternation(
        _char_class(first) + _char_class(seconds) + _char_class(third) + "="
        for (first, third), seconds in groups.items()
    )


def _one_byte(b0: ByteSet) -> str:
    """A final group of one byte: two characters and `==` (the second's low four bits zero)."""
    groups: dict[frozenset[int], set[int]] = defaultdict(set)
    for c1 in range(0, 64, 16):
        first = frozenset(c0 for c0 in range(64) if ((c0 << 2) | (c1 >> 4)) in b0)
        if first:
            groups[first].add(c1)
    return _alternation(_char_class(first) + _char_class(seconds) + "==" for first, seconds in groups.items())


def _either(left: str | None, right: str) -> str:
    if left is None or left == right:
        return right
    return f"(?:{left}|{right})"


def _to_regex(automaton: _Automaton, start: int) -> str:
    """Regroup the automaton's byte edges into base64 groups, then eliminate its states."""
    final, entry = -1, -2
    edges: dict[tuple[int, int], str] = {}
    pending, seen = [start], {start}
    while pending:
        state = pending.pop()
        if state in automaton.accepting:
            edges[state, final] = _either(edges.get((state, final)), "")
        for b0, after0 in automaton.edges[state]:
            if after0 in automaton.accepting:
                edges[state, final] = _either(edges.get((state, final)), _one_byte(b0))
            for b1, after1 in automaton.edges[after0]:
                if after1 in automaton.accepting:
                    edges[state, final] = _either(edges.get((state, final)), _two_bytes(b0, b1))
                for b2, after2 in automaton.edges[after1]:
                    edges[state, after2] = _either(edges.get((state, after2)), _three_bytes(b0, b1, b2))
                    if after2 not in seen:
                        seen.add(after2)
                        pending.append(after2)
    edges[entry, start] = ""
    for state in sorted(seen, reverse=True):
        loop = edges.pop((state, state), None)
        star = "" if loop is None else f"(?:{loop})*"
        incoming = [(source, label) for (source, target), label in edges.items() if target == state]
        outgoing = [(target, label) for (source, target), label in edges.items() if source == state]
        for source, _ in incoming:
            del edges[source, state]
        for target, _ in outgoing:
            del edges[state, target]
        for (source, before), (target, after) in itertools.product(incoming, outgoing):
            edges[source, target] = _either(edges.get((source, target)), before + star + after)
    return "^" + edges[entry, final] + "$"


def recipe_secret_pattern(hosts: Sequence[str]) -> str:
    """The RE2 regex (anchored) for the base64 `.dockerconfigjson` of a one-registry pull secret for
    one of `hosts`, as `kubectl create secret docker-registry` writes it."""
    if not hosts:
        raise ValueError("at least one registry host")
    automaton, start = _recipe_automaton(sorted(set(hosts)))
    return _to_regex(automaton, start)


def base64_fragments(text: bytes) -> list[str]:
    """The base64 characters that encode `text` wherever it lies in a payload: one fragment per position
    of its first byte in a three-byte group, each the characters fixed by `text`'s bytes alone. A payload
    holds `text` only if its base64 contains one of them (a cheap `contains` for CEL, where a regex over
    a whole written secret runs out of cost budget; see docs/security.md)."""
    fragments = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + text).decode()
        first = -(-8 * offset // 6)  # the first character with no bit of the padding before
        last = 8 * (offset + len(text)) // 6  # one past the last with no bit of what follows
        fragments.append(encoded[first:last])
    return fragments
