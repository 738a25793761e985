"""Relation phrases: how a relation id reads in a sentence (`causedBy` -> "is caused by"), for
graphs whose relations come without one (triples, the hobby project's JSON)."""

from __future__ import annotations

import re

from kgreason.kg.graph import KGError

# --- relation phrases ----------------------------------------------------------------------------
_AUXILIARIES = {
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "can",
    "may",
    "does",
    "do",
    "must",
    "should",
    "will",
}
_PREPOSITIONS = {
    "by", "to", "of", "in", "on", "with", "from", "for", "at", "as", "into", "onto", "via", "about",
    "after", "before", "under", "over", "within", "without", "than", "like", "near", "behind",
}  # fmt: skip
# Irregular past participles that do not end in -ed: "written_by" reads "is written by".
_IRREGULAR_PARTICIPLES = {
    "born", "built", "made", "written", "known", "found", "run", "held", "led", "sold", "taught",
    "given", "taken", "seen", "shown", "driven", "drawn", "grown", "thrown", "chosen", "spoken",
    "bought", "brought", "caught", "fed", "kept", "left", "lost", "meant", "paid", "said", "sent",
    "set", "split", "spent", "struck", "won", "bound", "hidden", "frozen", "broken", "worn", "done",
}  # fmt: skip
# Common relation verbs written in their base form ("depend_on"), conjugated to "depends on".
_BASE_VERBS = {
    "affect", "belong", "call", "cause", "connect", "contain", "depend", "fix", "follow", "include",
    "influence", "inherit", "lead", "link", "map", "need", "own", "point", "precede", "produce",
    "read", "refer", "require", "resolve", "run", "trigger", "use", "write", "import", "export",
    "extend", "implement", "invoke", "mention", "diagnose", "treat", "prevent", "replace", "host",
}  # fmt: skip
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_identifier(identifier: str) -> list[str]:
    """Split snake_case, kebab-case, camelCase, CamelCase and spaced ids into words.

    Acronyms stay whole: "TLSHandshakeError" -> ["TLS", "Handshake", "Error"].
    """
    words: list[str] = []
    for chunk in re.split(r"[\s_\-./:]+", identifier.strip()):
        words.extend(_WORD_RE.findall(chunk))
    return words


def humanize(identifier: str) -> str:
    """A readable form of an id: acronyms kept, other words lower-cased ("TLS handshake error")."""
    return " ".join(
        w if (w.isupper() and len(w) > 1) or w.isdigit() else w.lower() for w in split_identifier(identifier)
    )


def derive_phrase(relation_id: str) -> str:
    """A readable English phrase for a bare relation id, used in questions and traces.

    The phrase must read as "<head> PHRASE <tail>":
    - already a verb phrase ("is_a", "has_part", "leads_to", "uses_tool") -> words as they are;
    - past participle ("caused_by", "located_in", "written_by", "related_to") -> "is ...";
    - base-form verb ("depend_on") -> third person ("depends on");
    - noun with a preposition ("part_of", "capital-of") -> "is ...";
    - bare noun ("parent", "birthPlace") -> "has ..." ("has parent", "has birth place").
    """
    words = [w.lower() for w in split_identifier(relation_id)]
    if not words:
        raise KGError(f"relation id {relation_id!r} has no words to derive a phrase from")
    first, last = words[0], words[-1]
    if first in _AUXILIARIES:
        return " ".join(words)
    if _is_participle(first):
        return " ".join(["is", *words])
    if first in _BASE_VERBS:
        return " ".join([_third_person(first), *words[1:]])
    if _looks_like_third_person_verb(first) and len(words) > 1:
        return " ".join(words)
    if last in _PREPOSITIONS:
        return " ".join(["is", *words])
    if len(words) == 1 and _looks_like_third_person_verb(first):
        return first
    return " ".join(["has", *words])


def _is_participle(word: str) -> bool:
    return word in _IRREGULAR_PARTICIPLES or (len(word) > 3 and word.endswith("ed"))


def _looks_like_third_person_verb(word: str) -> bool:
    # "leads", "uses", "causes"; not "ss"/"us"/"is" endings of nouns like "status", "access".
    return len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


