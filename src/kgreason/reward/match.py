"""Finding entity mentions and relation phrases in a trace, and reading claimed hops from it.

Why an automaton: the reward runs on every sampled completion (k per question, every round), and
a loop over the vocabulary costs O(|vocabulary| x |text|) per completion, which dominates once a
graph has thousands of names. An Aho-Corasick automaton over every surface form (ids, labels,
aliases) finds all of them in one pass over the text, whatever the vocabulary size.

Matching rules (the same for entities and relation phrases):

* case-insensitive (text and names are lower-cased the same way, keeping character offsets);
* runs of spaces/tabs count as one space, so "Clock  skew" still names "Clock skew";
* a match must sit on word boundaries: "OOM" is not found inside "ZOOM";
* where matches overlap, the longest wins ("Disk full error" beats "Disk full"); between equal
  lengths the leftmost wins.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import ahocorasick

from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import ClaimedHop

_SPACES_RE = re.compile(r"[^\S\n]+")
_NEWLINES_RE = re.compile(r"\s*\n\s*")
# Clause ends: sentence punctuation followed by a space or the end, semicolons, new lines.
_CLAUSE_END_RE = re.compile(r"[.!?](?=\s|$)|[;\n]")
# A leading auxiliary verb is often dropped or changed by a model ("caused by", "was caused by").
_AUX_RE = re.compile(r"^(?:is|are|was|were|can be|may be)\s+")


def normalize(text: str) -> str:
    """Lower-case and collapse horizontal whitespace; new lines are kept (they end clauses)."""
    text = _NEWLINES_RE.sub("\n", _SPACES_RE.sub(" ", text))
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters change length when lower-cased (e.g. "İ"); keep those as they are so
    # offsets into the normalised text stay one character per character.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def on_word_boundaries(text: str, start: int, end: int) -> bool:
    """True when text[start:end] is not glued to a word character on either side.

    A side only needs a boundary when the match itself starts (ends) with a word character, so
    names such as "C++" or ".NET" still match before punctuation.
    """
    if start > 0 and _is_word_char(text[start]) and _is_word_char(text[start - 1]):
        return False
    return not (end < len(text) and _is_word_char(text[end - 1]) and _is_word_char(text[end]))


def select_longest(spans: Iterable[tuple[int, int, object]]) -> list[tuple[int, int, object]]:
    """Keep non-overlapping (start, end, value) spans, longest first, then leftmost; return in text order.

    Spans only compete with spans they overlap, so the text is cut into clusters of transitively
    overlapping spans and the greedy choice runs inside each cluster. The result is the same as
    one greedy pass over all spans, but the cost stays proportional to the number of spans on a
    long trace (one pass keeping a sorted list of every kept span is quadratic).
    """
    ordered = sorted(spans, key=lambda s: (s[0], s[1]))
    kept: list[tuple[int, int, object]] = []
    i = 0
    while i < len(ordered):
        j, reach = i + 1, ordered[i][1]
        while j < len(ordered) and ordered[j][0] < reach:
            reach = max(reach, ordered[j][1])
            j += 1
        kept.extend(ordered[i:j] if j == i + 1 else _greedy_longest(ordered[i:j]))
        i = j
    return kept


def _greedy_longest(spans: Sequence[tuple[int, int, object]]) -> list[tuple[int, int, object]]:
    """Longest first, then leftmost, skipping spans that overlap a kept one (one cluster)."""
    kept_starts: list[int] = []
    kept: list[tuple[int, int, object]] = []
    for start, end, value in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        i = bisect.bisect_left(kept_starts, start)
        if i > 0 and kept[i - 1][1] > start:  # overlaps the kept span on its left
            continue
        if i < len(kept) and kept[i][0] < end:  # overlaps the kept span on its right
            continue
        kept_starts.insert(i, start)
        kept.insert(i, (start, end, value))
    return kept


class PhraseAutomaton:
    """An Aho-Corasick automaton from normalised surface strings to values, word-boundary aware."""

    def __init__(self, entries: Iterable[tuple[str, object]]) -> None:
        self._values: dict[str, list[object]] = {}
        for surface, value in entries:
            key = normalize(surface).strip()
            if not key:
                continue
            bucket = self._values.setdefault(key, [])
            if value not in bucket:
                bucket.append(value)
        self._automaton = ahocorasick.Automaton()
        for key, values in self._values.items():
            self._automaton.add_word(key, (len(key), tuple(values)))
        self.size = len(self._values)
        if self.size:
            self._automaton.make_automaton()

    def lookup(self, surface: str) -> tuple[object, ...]:
        """Values of an exact surface string (after normalisation), or ()."""
        return tuple(self._values.get(normalize(surface).strip(), ()))

    def find(self, normalized_text: str) -> list[tuple[int, int, tuple[object, ...]]]:
        """Non-overlapping matches (start, end, values) in `normalized_text`, in text order."""
        if not self.size or not normalized_text:
            return []
        spans = []
        for end_idx, (length, values) in self._automaton.iter(normalized_text):
            start, end = end_idx - length + 1, end_idx + 1
            if on_word_boundaries(normalized_text, start, end):
                spans.append((start, end, values))
        return select_longest(spans)


@dataclass(frozen=True)
class Mention:
    """One entity mention: where it is, the text it matched, and every entity with that name."""

    start: int
    end: int
    surface: str
    entity_ids: tuple[str, ...]

    @property
    def entity(self) -> str:
        return self.entity_ids[0]


@dataclass(frozen=True)
class PhraseMatch:
    """One relation phrase: the relation(s) it may name and whether it reads tail-to-head."""

    start: int
    end: int
    surface: str
    senses: tuple[tuple[str, bool], ...]  # (relation id, inverse)


def entity_surface_forms(kg: KnowledgeGraph) -> Iterator[tuple[str, str]]:
    """(surface form, entity id) for ids, labels and aliases.

    One-character names are skipped when an entity has longer ones: "a" as an id would otherwise
    match the article in every sentence.
    """
    for ent in kg.entities.values():
        names = ent.names()
        long_names = [n for n in names if len(n.strip()) >= 2]
        for name in long_names or names:
            yield name, ent.id


def relation_surface_forms(kg: KnowledgeGraph) -> Iterator[tuple[str, tuple[str, bool]]]:
    """(surface form, (relation id, inverse)) for each phrase, its inverse, and loose variants.

    Exact phrases come first so that, where two relations share a string, the exact one is the
    first sense tried.
    """
    exact: list[tuple[str, tuple[str, bool]]] = []
    loose: list[tuple[str, tuple[str, bool]]] = []
    for rel in kg.relations.values():
        for phrase, inverse in ((rel.phrase, False), (rel.inverse_phrase, True)):
            if not phrase:
                continue
            exact.append((phrase, (rel.id, inverse)))
            bare = _AUX_RE.sub("", normalize(phrase).strip())
            if bare and bare != normalize(phrase).strip():
                loose.append((bare, (rel.id, inverse)))
        loose.append((rel.id, (rel.id, False)))
        loose.append((rel.id.replace("_", " ").replace("-", " "), (rel.id, False)))
    yield from exact
    yield from loose


class EntityMatcher:
    """Entity mentions over ids, labels and aliases with one automaton built once per graph."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self._automaton = PhraseAutomaton(entity_surface_forms(kg))

    @property
    def vocabulary_size(self) -> int:
        return self._automaton.size

    def find(self, text: str, normalized: bool = False) -> list[Mention]:
        norm = text if normalized else normalize(text)
        return [Mention(s, e, norm[s:e], tuple(v)) for s, e, v in self._automaton.find(norm)]  # type: ignore[arg-type]

    def lookup(self, name: str) -> tuple[str, ...]:
        """Entity ids whose id, label or alias is exactly `name` (case-insensitive)."""
        return tuple(self._automaton.lookup(name))  # type: ignore[arg-type]

    def resolve(self, text: str) -> str | None:
        """The entity an option text names: an exact name first, else its longest mention."""
        exact = self.lookup(text)
        if exact:
            return exact[0]
        mentions = self.find(text)
        if not mentions:
            return None
        return max(mentions, key=lambda m: m.end - m.start).entity


class RelationMatcher:
    """Relation phrases (and inverse phrases) with one automaton built once per graph."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self._automaton = PhraseAutomaton(relation_surface_forms(kg))

    def find(self, text: str, normalized: bool = False) -> list[PhraseMatch]:
        norm = text if normalized else normalize(text)
        return [PhraseMatch(s, e, norm[s:e], tuple(v)) for s, e, v in self._automaton.find(norm)]  # type: ignore[arg-type]


# Step labels a model puts before its clauses: "1." and "2." at a clause start; "2)", "(3)",
# "Step 3:", "Hop 4 -" anywhere. They are blanked out before matching, so they are never part of an
# entity name and their dot never cuts a clause; each becomes a clause start (";") instead.
# (One `[^\S\n]*` after the clause start, not two in a row: two can split a run of spaces in as many
# ways as it is long, which made a long blank run cost the square of its length.)
# A dot between two digits is a decimal point, not a clause end: "of 3.14." names 3.14, while
# "... Server3. 2. Server3 ..." still has its step label (a space follows that dot).
_STEP_AT_CLAUSE_START_RE = re.compile(
    r"(?:^|(?<=[;:!?])|(?<=\D\.)|(?<=\.)(?=[^\S\n]))[^\S\n]*(?P<label>\d{1,3}\.)(?=\s|$)", re.MULTILINE)
_STEP_ANYWHERE_RE = re.compile(
    r"(?<![\w.])(?P<label>(?:step|hop)[^\S\n]*#?\d{1,3}[^\S\n]*[:.)\-]?|\(\d{1,3}\)|\d{1,3}\))(?=\s|$)"
)
# A claim is an affirmative declarative clause. These words (outside entity names and relation
# phrases, which are masked first) make a clause negated, hedged or conditional, so it claims
# nothing: "X is not caused by Y", "It is false that ...", "X might be caused by Y", "if ...",
# "X is caused by Y or Z".
_NEGATION_WORDS = (
    "not", "no", "never", "neither", "nor", "none", "nothing", "nobody", "cannot", "false", "untrue",
    "incorrect", "wrong", "impossible", "deny", "denies", "denied", "doubt", "doubtful",
)
_HEDGE_WORDS = (
    "might", "may", "maybe", "perhaps", "possibly", "possible", "probably", "probable", "likely",
    "unlikely", "presumably", "apparently", "seemingly", "seem", "seems", "seemed", "could", "would",
    "should", "if", "unless", "whether", "either", "or", "suppose", "supposedly", "assume", "assuming",
    "guess", "think", "believe", "suspect", "hypothetically", "uncertain", "unsure", "unclear", "allegedly",
)
# A "?" anywhere, or one of these as a clause's first word, makes it a question.
_QUESTION_WORDS = frozenset((
    "does", "do", "did", "is", "are", "was", "were", "can", "could", "will", "would", "shall", "should",
    "has", "have", "had", "may", "might", "must", "why", "how", "what", "which", "who", "whom", "whose",
    "when", "where",
))
_CUE_RE = re.compile(r"\b(?:" + "|".join(_NEGATION_WORDS + _HEDGE_WORDS) + r")\b|\b\w+n['’]t\b|\?")
_FIRST_WORD_RE = re.compile(r"\W*(\w+)")


@dataclass(frozen=True)
class TraceReading:
    """Everything read from a trace: its normalised text, mentions in order, relation phrases, claimed hops."""

    text: str
    mentions: list[Mention]
    phrases: list[PhraseMatch]
    hops: list[ClaimedHop]
    non_claims: int = 0  # clauses naming two or more entities that claim nothing (negated, hedged, questions)
    # relation phrases in affirmative clauses that no hop was read from: a claim the graph cannot
    # check ("5. Netcat Tool uses Flux Capacitor", a name the graph does not know); such a trace is
    # not faithful, though its readable hops still earn chain credit
    unread_claims: int = 0


def read_trace(
    kg: KnowledgeGraph, entities: EntityMatcher, relations: RelationMatcher, trace: str
) -> TraceReading:
    """Mentions, phrases and claimed hops of a trace.

    Step labels ("1.", "2)", "Step 3:") are blanked out first, except inside a name the graph knows
    ("Bad Gateway (502)"). Clauses end at sentence
    punctuation, semicolons, new lines and step labels (never inside a mention, so "node.js"
    survives). Only affirmative declarative clauses claim anything: a clause with a negation or
    hedge word, a "?", or a question word first claims nothing. Inside a claiming clause, each
    pair of consecutive mentions of different entities is one claimed hop; the relation is the
    first relation phrase between them. A forward phrase ("A is caused by B") claims the edge
    (A, caused_by, B); an inverse phrase ("B causes A") claims the same edge, so hops are always
    recorded in the graph's direction.

    Every step is one pass over the text or a binary search per mention, phrase or cue, so the
    cost grows with the trace's length times a logarithm, never with its square.
    """
    norm = normalize(trace)
    # a name may hold what looks like a step label ("Bad Gateway (502)", "1. FC Nürnberg"): a label
    # inside a longer name the graph knows stays part of it (a name that is only a label, "Step 2",
    # stays a label)
    text = blank_step_labels(norm, keep=_inside_longer_span(entities.find(norm, normalized=True)))
    phrases = relations.find(text, normalized=True)
    # a name that is a word of a relation phrase ("film" in "has the film", "a" in "is a kind of") is
    # part of the phrase there, not a mention: read as one, it split the clause into two hops
    in_phrase = _wholly_inside_longer(phrases)
    mentions = [m for m in entities.find(text, normalized=True) if not in_phrase(m.start, m.end)]
    inside_mention = _span_cover(mentions)
    cuts = [m.start() for m in _CLAUSE_END_RE.finditer(text) if not inside_mention(m.start())]
    groups = _clause_groups(mentions, cuts)
    phrase_clauses = [bisect.bisect_left(cuts, p.start) for p in phrases]
    silent = _non_claiming_clauses(text, cuts, mentions, phrases,
                                   sorted({k for k, g in groups if len(g) > 1} | set(phrase_clauses)))
    phrase_starts = [p.start for p in phrases]
    hops: list[ClaimedHop] = []
    used: set[int] = set()  # starts of the phrases a hop was read from
    non_claims = 0
    for clause, group in groups:
        if clause in silent:
            non_claims += len({m.entity_ids for m in group}) > 1
            continue
        for left, right in zip(group, group[1:], strict=False):
            phrase = _first_phrase_between(phrases, phrase_starts, left.end, right.start)
            if set(left.entity_ids) & set(right.entity_ids) and phrase is None:
                continue  # the same entity named twice ("..., and ClockSkew ...") is no hop
            # ("X is related to X" is one: a claimed self-loop, a real edge only if the graph has it)
            hops.append(_claimed_hop(kg, left, right, phrase))
            if phrase is not None:
                used.add(phrase.start)
    # a phrase that overlaps a name is part of it ("Salvador (city in the state of Bahia, Brazil)")
    unread = sum(1 for p, clause in zip(phrases, phrase_clauses, strict=True)
                 if p.start not in used and clause not in silent
                 and not inside_mention(p.start) and not inside_mention(p.end - 1))
    return TraceReading(norm, mentions, phrases, hops, non_claims, unread)


def blank_step_labels(norm: str, keep: Callable[[int, int], bool] | None = None) -> str:
    """`norm` with step labels replaced by a clause break and spaces (same length, same offsets);
    a label whose span (start, end) `keep` holds stays (part of an entity name)."""
    chars: list[str] | None = None
    for regex in (_STEP_AT_CLAUSE_START_RE, _STEP_ANYWHERE_RE):
        for m in regex.finditer(norm):
            start, end = m.span("label")
            if keep is not None and keep(start, end):
                continue
            if chars is None:
                chars = list(norm)
            chars[start] = ";"
            for i in range(start + 1, end):
                chars[i] = " "
    return norm if chars is None else "".join(chars)


def _clause_groups(mentions: Sequence[Mention], cuts: Sequence[int]) -> list[tuple[int, list[Mention]]]:
    """Mentions grouped by clause: (clause index, its mentions in order); a cut at c ends the clause before c."""
    groups: list[tuple[int, list[Mention]]] = []
    for mention in mentions:
        clause = bisect.bisect_left(cuts, mention.start)
        if groups and groups[-1][0] == clause:
            groups[-1][1].append(mention)
        else:
            groups.append((clause, [mention]))
    return groups


def _non_claiming_clauses(text: str, cuts: Sequence[int], mentions: Sequence[Mention],
                          phrases: Sequence[PhraseMatch], candidates: Sequence[int]) -> set[int]:
    """Indices of the clauses that are negated, hedged or questions (checked where a hop could be)."""
    if not candidates:
        return set()
    in_mention, in_phrase = _span_cover(mentions), _span_cover(phrases)
    wanted = set(candidates)
    silent: set[int] = set()
    for m in _CUE_RE.finditer(text):
        pos = m.start()
        if in_mention(pos) or in_phrase(pos):
            continue  # "No Route To Host" is a name, "is not related to" may be a relation phrase
        clause = bisect.bisect_left(cuts, pos)
        if clause in wanted:
            silent.add(clause)
    for clause in wanted - silent:
        start = cuts[clause - 1] + 1 if clause > 0 else 0
        end = cuts[clause] if clause < len(cuts) else len(text)
        first = _FIRST_WORD_RE.match(text, start, end)
        if first and first.group(1) in _QUESTION_WORDS and not in_mention(first.start(1)):
            silent.add(clause)
    return silent


def _first_phrase_between(phrases: Sequence[PhraseMatch], starts: Sequence[int], lo: int, hi: int) -> PhraseMatch | None:
    """The first phrase inside [lo, hi). Phrases do not overlap, so their ends rise with their
    starts: if the first one starting at or after `lo` ends past `hi`, so do all later ones."""
    i = bisect.bisect_left(starts, lo)
    if i < len(phrases) and phrases[i].end <= hi:
        return phrases[i]
    return None


def _span_cover(spans: Sequence[Mention] | Sequence[PhraseMatch]) -> Callable[[int], bool]:
    """pos -> whether it falls inside one of `spans` (non-overlapping, in text order)."""
    starts = [m.start for m in spans]

    def inside(pos: int) -> bool:
        i = bisect.bisect_right(starts, pos) - 1
        return i >= 0 and spans[i].start <= pos < spans[i].end

    return inside


def _wholly_inside_longer(spans: Sequence[PhraseMatch]) -> Callable[[int, int], bool]:
    """(start, end) -> whether it lies wholly inside one of `spans` (non-overlapping, in text order)
    that is longer than it."""
    starts = [p.start for p in spans]

    def inside(start: int, end: int) -> bool:
        i = bisect.bisect_right(starts, start) - 1
        return i >= 0 and spans[i].start <= start and end <= spans[i].end and spans[i].end - spans[i].start > end - start

    return inside


def _inside_longer_span(spans: Sequence[Mention]) -> Callable[[int, int], bool]:
    """(start, end) -> whether one of `spans` (non-overlapping, in text order) overlaps it and reaches
    past it on at least one side: the range is part of a longer span, not all of one."""
    starts = [m.start for m in spans]

    def inside(start: int, end: int) -> bool:
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        for m in spans[first:bisect.bisect_left(starts, end)]:
            if m.start < end and m.end > start and (m.start < start or m.end > end):
                return True
        return False

    return inside


def _claimed_hop(kg: KnowledgeGraph, left: Mention, right: Mention, phrase: PhraseMatch | None) -> ClaimedHop:
    """The hop a clause claims; among ambiguous names/phrases, a reading that is a real edge wins."""
    if phrase is None:
        return ClaimedHop(head=left.entity, relation=None, tail=right.entity, valid=False)
    first: ClaimedHop | None = None
    for relation, inverse in phrase.senses:
        for a in left.entity_ids:
            for b in right.entity_ids:
                head, tail = (b, a) if inverse else (a, b)
                valid = kg.has_edge(head, relation, tail)
                hop = ClaimedHop(head=head, relation=relation, tail=tail, valid=valid)
                if valid:
                    return hop
                first = first or hop
    assert first is not None
    return first
