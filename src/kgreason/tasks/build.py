"""The data stage, one function for every caller: a graph and its task files in one folder.

`kgreason run` builds it inside the run folder (data/), an experiment once for all its arms
(<experiment>/data/). kg.json is written first and manifest.json last, so a folder with a manifest
is complete and is reused as it is; an interrupted build starts again. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kgreason.io import InputError, read_json
from kgreason.tasks.defaults import DataOptions


def data_folder_complete(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() and (folder / "kg.json").is_file()


def build_data_folder(folder: str | Path, opts: DataOptions, progress: bool = False) -> dict[str, Any]:
    """Open the graph `opts.kg` (a registered source such as builtin:devops, or a file), generate the
    eval / train_easy / train_hard splits and facts, and write them with kg.json into `folder`.
    Returns the graph's size and the split counts."""
    from kgreason.kg.kgjson import save_kg
    from kgreason.kg.sources import open_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, write_dataset

    folder = Path(folder)
    if data_folder_complete(folder):
        manifest = read_json(folder / "manifest.json")
        manifest = manifest if isinstance(manifest, dict) else {}
        screened = any("screened_to" in (d or {}) for d in (manifest.get("distractors") or {}).values())
        saved = (manifest.get("config") or {}).get("max_shortcut")
        if screened and saved != opts.max_shortcut:
            # A screened split (tasks/screen.py) was kept to half of the limit it was made with:
            # reusing it under another limit would judge items screened for a different one.
            raise InputError(f"{folder}: its held-out split was screened for --max-shortcut {saved} (None: the "
                             f"family's), not {opts.max_shortcut}; use a new run folder to screen for the new limit")
        return {"reused": True, "counts": manifest.get("counts", {})}
    kg = open_kg(opts.kg, seed=opts.seed)
    sizes = {"eval": opts.eval_size, "train_easy": opts.train_easy, "train_hard": opts.train_hard}
    splits = tuple(replace(s, size=sizes.get(s.name, s.size)) for s in DEFAULT_SPLITS)
    config = TaskConfig(seed=opts.seed, mode=opts.mode, splits=splits, family=opts.family,
                        max_shortcut=opts.max_shortcut)
    dataset = generate_with_image_decoys(kg, config, opts.image_decoys, opts.max_shortcut, progress=progress)
    from kgreason.tasks.refusal import guard_shortcuts

    guard_shortcuts(opts.kg, kg, dataset, opts.max_shortcut, opts.allow_shortcuts)  # refuses before writing
    folder.mkdir(parents=True, exist_ok=True)
    save_kg(kg, folder / "kg.json")
    write_dataset(dataset, folder)  # manifest.json last: it marks the folder complete
    counts = {name: len(tasks) for name, tasks in dataset.splits.items()} | {"facts": len(dataset.facts)}
    return {"kg": {"entities": len(kg.entities), "edges": len(kg.edges)}, "counts": counts}


IMAGE_OVERGENERATE = 6.0  # spare gold paths per held-out item then: the balancer needs more to choose from


def generate_with_image_decoys(kg: Any, config: Any, image_decoys: str, max_shortcut: float | None,
                               **generate_kw: Any) -> Any:
    """generate() with `image_decoys` on, off, or (auto) off first and on again when the shortcut check
    finds a chain-image rule over the limit on a held-out split, with IMAGE_OVERGENERATE spares; the
    manifest records which (config.image_decoys). Every split's decoys then come from the image too (so
    training items teach no chain-image shortcut either); held-out splits get the spares. Families
    without options (free form) have no decoys: for them the setting changes nothing."""
    from kgreason.families import get_family
    from kgreason.tasks.generate import generate
    from kgreason.tasks.refusal import CHAIN_IMAGE_RULES, check_shortcuts

    if not get_family(config.family).offers_options:  # no decoys to draw (free form): as asked, without
        return generate(kg, config, **generate_kw)
    image = replace(config, image_decoys=True, overgenerate=max(config.overgenerate, IMAGE_OVERGENERATE))
    if image_decoys == "on":
        return generate(kg, image, **generate_kw)
    dataset = generate(kg, config, **generate_kw)
    if image_decoys == "off":
        return dataset
    held_out = [s.name for s in config.splits if s.held_out]
    check = check_shortcuts(kg, dataset.splits, held_out, max_shortcut)
    funnelled = sorted({b for row in check["held_out"].values() for b in row["over"]} & CHAIN_IMAGE_RULES)
    if not funnelled:
        dataset.manifest["shortcut_check"] = check  # guard_shortcuts reads it instead of scoring again
        return dataset
    import sys

    print(f"the decoys lie outside the stated chains' image ({', '.join(funnelled)} over the limit): generating "
          "again with decoys from the image (--image-decoys on)", file=sys.stderr, flush=True)
    return generate(kg, image, **generate_kw)


# --- which file is which -----------------------------------------------------------------------------
DEFAULT_TRAINING_FILES = {"facts": "facts.jsonl", "easy": "train_easy.jsonl", "hard": "train_hard.jsonl"}


@dataclass(frozen=True)
class DataLayout:
    """Which file of a data folder holds each training material, and which splits are held out.

    Read from manifest.json's split specs (`kgreason tasks generate --eval-name/--splits` may rename
    them): `easy` is the one training split of at most 3 hops, `hard` the one of at least 4, `facts`
    the facts file; a folder without a manifest (or with several candidates) uses the default names."""

    files: dict[str, str]
    held_out: tuple[str, ...]


def data_layout(folder: str | Path) -> DataLayout:
    files = dict(DEFAULT_TRAINING_FILES)
    held_out: tuple[str, ...] = ("eval",)
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return DataLayout(files, held_out)
    manifest = read_json(path)
    config = manifest.get("config") if isinstance(manifest, dict) else None
    specs = config.get("splits") if isinstance(config, dict) else None
    if not isinstance(specs, list) or not all(isinstance(s, dict) and s.get("name") for s in specs):
        return DataLayout(files, held_out)
    files["facts"] = f"{config.get('facts_name') or 'facts'}.jsonl"
    train = [s for s in specs if not s.get("held_out")]
    for material, fits in (("easy", lambda s: int(s.get("max_hops", 99)) <= 3),
                           ("hard", lambda s: int(s.get("min_hops", 0)) >= 4)):
        found = [s["name"] for s in train if fits(s)]
        if len(found) == 1:
            files[material] = f"{found[0]}.jsonl"
    held_out = tuple(s["name"] for s in specs if s.get("held_out")) or held_out
    return DataLayout(files, held_out)
