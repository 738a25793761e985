"""Turn two public benchmark graphs into kgreason graphs (issue 28: the recipe on real graphs).

Both come from the public repository villmow/datasets_knowledge_embedding (MIT licence, Tim
Dettmers; fetched once, nothing is downloaded at run time):

- WN18RR (Dettmers et al. 2018, from WordNet, Princeton University): `WN18RR/text/{train,valid,test}.txt`,
  synset names such as `land_reform.n.01` (lemma, part of speech, sense number: names with dots and
  digits), 11 lexical relations, a sparse hierarchy (`_hypernym` is 37% of the edges).
- FB15k-237 (Toutanova and Chen 2015, from Freebase): `FB15k-237/{valid,test}.txt` (the repository
  stores no train.txt) with English names from `FB15k-237/entity2wikidata.json`; a name two entities
  share gets the Wikidata description in brackets ("Denton (city in Texas, United States)"): long
  names with punctuation. Relations are Freebase property paths; each reads as "has the <last
  segment>" / "is the <last segment> of", with the subject type (or the whole path) added where two
  paths would otherwise read the same.

    python scripts/import_public_graphs.py REPO_CHECKOUT OUT_DIR

writes OUT_DIR/{wn18rr,fb15k237}.tsv and their relation sidecars; then
`kgreason kg import OUT_DIR/wn18rr.tsv --relations OUT_DIR/wn18rr_relations.tsv --out wn18rr.json`
(the same for fb15k237).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

WN18RR_RELATIONS = {  # relation: (phrase, inverse phrase, symmetric)
    "_hypernym": ("is a kind of", "has the kind", False),
    "_instance_hypernym": ("is an instance of", "has the instance", False),
    "_derivationally_related_form": ("is a word form related to", "is a word form related to", True),
    "_also_see": ("is also seen with", "is also seen with", True),
    "_similar_to": ("is similar to", "is similar to", True),
    "_verb_group": ("is in the verb group of", "is in the verb group of", True),
    "_member_meronym": ("has the member", "is a member of", False),
    "_has_part": ("has the part", "is a part of", False),
    "_synset_domain_topic_of": ("belongs to the topic", "is the topic of", False),
    "_member_of_domain_usage": ("belongs to the usage domain", "is the usage domain of", False),
    "_member_of_domain_region": ("belongs to the region", "is the region of", False),
}


def write_sidecar(path: Path, rows: dict[str, tuple[str, str, bool]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["relation", "phrase", "inverse_phrase", "symmetric"])
        for rel, (phrase, inverse, sym) in sorted(rows.items()):
            w.writerow([rel, phrase, inverse, "true" if sym else ""])


def wn18rr(repo: Path, out: Path) -> None:
    rows = []
    for split in ("train", "valid", "test"):
        for line in (repo / "WN18RR" / "text" / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            h, r, t = line.strip().split("\t")
            rows.append((h.replace("_", " "), r, t.replace("_", " ")))
    with (out / "wn18rr.tsv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(rows)
    write_sidecar(out / "wn18rr_relations.tsv", WN18RR_RELATIONS)
    print(f"wn18rr: {len(rows)} triples")


def distinct_phrases(paths: list[str]) -> dict[str, tuple[str, str, bool]]:
    """Each Freebase property path read as "has the <last segment>" / "is the <last segment> of", with
    the path's subject type before it ("has the film genre", "has the tv program genre") when another
    path ends the same, and all of the path's words when that still collides: a question names its
    chain by phrases, so two relations that read the same would make its answer ambiguous as written
    (kgreason refuses such a graph)."""
    def words(parts: list[str]) -> str:
        return " ".join(p.replace("_", " ").strip(". ") for p in parts if p.strip(". "))

    forms = {}  # path -> its readings, shortest first: last segment, subject type + it, every segment
    for path in paths:
        parts = [p for p in path.strip("/").split("/") if p]
        forms[path] = [words(parts[-1:]), words(parts[1:2] + parts[-1:]), words(parts)]
    chosen: dict[str, str] = {}
    for level in range(3):
        taken = Counter(chosen.get(p) or forms[p][level] for p in paths)
        for path in paths:
            if path not in chosen and (taken[forms[path][level]] == 1 or level == 2):
                chosen[path] = forms[path][level]
    return {p: (f"has the {w}", f"is the {w} of", False) for p, w in chosen.items()}


def fb15k237(repo: Path, out: Path) -> None:
    names = json.loads((repo / "FB15k-237" / "entity2wikidata.json").read_text(encoding="utf-8"))
    label_count = Counter(v["label"] for v in names.values() if v.get("label"))
    described = Counter((v["label"], v.get("description")) for v in names.values() if v.get("label"))

    def name(mid: str) -> str | None:
        v = names.get(mid)
        if not v or not v.get("label"):
            return None
        if label_count[v["label"]] > 1 and v.get("description") and described[(v["label"], v["description"])] == 1:
            return f"{v['label']} ({v['description']})"
        return v["label"] if label_count[v["label"]] == 1 else f"{v['label']} ({mid})"

    rows, dropped, relations = [], 0, {}
    for split in ("valid", "test"):
        for line in (repo / "FB15k-237" / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            h, r, t = line.strip().split("\t")
            hn, tn = name(h), name(t)
            if hn is None or tn is None or hn == tn:
                dropped += 1
                continue
            rows.append((hn, r, tn))
            relations[r] = None
    relations = distinct_phrases(sorted(relations))
    with (out / "fb15k237.tsv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(rows)
    write_sidecar(out / "fb15k237_relations.tsv", relations)
    print(f"fb15k237: {len(rows)} triples, {dropped} dropped (an entity without an English name, or a self-loop)")


if __name__ == "__main__":
    repo, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    wn18rr(repo, out)
    fb15k237(repo, out)
