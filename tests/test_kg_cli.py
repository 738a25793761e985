"""`kgreason kg build | import | stats` through kgreason.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.kg.kgjson import load_kg


def test_build_stats_import_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kg.json"
    assert main(["kg", "build", "--out", str(out), "--seed", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    kg = load_kg(out)
    assert len(kg.entities) >= 200 and len(kg.edges) >= 600

    assert main(["kg", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["edges"] == len(kg.edges) and stats["entities"] == len(kg.entities)
    assert set(stats["types"]) == {"symptom", "cause", "fix", "diagnostic", "tool"}

    assert main(["kg", "stats", str(out)]) == 0
    assert f"{len(kg.edges)} edges" in capsys.readouterr().out

    again = tmp_path / "again.json"
    assert main(["kg", "import", str(out), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_import_tsv_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.tsv"
    src.write_text("head\trelation\ttail\nA\tcaused_by\tB\nA\tcaused_by\tB\nB\tfixed_by\tB\nB\tfixed_by\tC\n")
    out = tmp_path / "kg.json"
    assert main(["kg", "import", str(src), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "dropped 1 duplicate edge(s)" in captured.err and f"{src}:3" in captured.err
    assert "dropped 1 self-loop edge(s)" in captured.err and f"{src}:4" in captured.err
    assert '"is caused by"' in captured.out
    assert load_kg(out).follow("A", ["caused_by", "fixed_by"]) == {"C"}


def test_bad_input_exits_2_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("A,caused_by,B\nA,caused_by\n")
    assert main(["kg", "import", str(src), "--out", str(tmp_path / "kg.json")]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2: expected 3 CSV columns" in err
    assert not (tmp_path / "kg.json").exists()


def test_bad_size_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kg", "build", "--out", str(tmp_path / "kg.json"), "--size", "enormous"]) == 2
    assert "unknown size 'enormous'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["kg", "--help"], ["kg", "build", "--help"], ["kg", "import", "--help"], ["kg", "stats", "--help"]],
)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: kgreason kg" in capsys.readouterr().out


def test_group_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kg"]) == 2
    assert "build" in capsys.readouterr().out


HOBBY_KG = Path(__file__).parent / "data" / "hobby_kg.json"


def test_import_hobby_kg_reports_reverse_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kg.json"
    assert main(["kg", "import", str(HOBBY_KG), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "symmetric relation 'related_to': added 38 reverse edge(s)" in captured.err
    assert "212 entities (212 typed), 6 relations, 667 edges" in captured.out
    assert 'relation uses_tool: "uses" (inverse "is used by")' in captured.out
    assert 'relation related_to: "is related to" (symmetric: stored both ways)' in captured.out
    assert len(load_kg(out).edges) == 667


def test_import_flags_override_sidecar_and_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sidecar = tmp_path / "relations.yaml"
    sidecar.write_text("uses_tool:\n  phrase: makes use of\n  inverse_phrase: is used in\n")
    out = tmp_path / "kg.json"
    argv = ["kg", "import", str(HOBBY_KG), "--out", str(out), "--relations", str(sidecar)]
    assert main([*argv, "--phrase", "uses_tool=employs", "--asymmetric", "related_to"]) == 0
    captured = capsys.readouterr()
    assert "629 edges, 0 warning(s)" in captured.out and captured.err == ""
    kg = load_kg(out)
    assert (
        kg.relations["uses_tool"].phrase == "employs"
        and kg.relations["uses_tool"].inverse_phrase == "is used in"
    )
    assert not kg.relations["related_to"].symmetric


def test_bad_sidecar_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sidecar = tmp_path / "relations.yaml"
    sidecar.write_text("uses_tool:\n  phrase: uses\nrelated_to:\n  symmetric: maybe\n")
    out = tmp_path / "kg.json"
    assert main(["kg", "import", str(HOBBY_KG), "--out", str(out), "--relations", str(sidecar)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"kgreason: error: {sidecar}:4: relation 'related_to': 'symmetric' must be true or false, got 'maybe'\n"
    )
    assert not out.exists()


def test_import_builtin_umls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "umls.json"
    assert main(["kg", "import", "builtin:umls", "--out", str(out)]) == 0
    assert "135 entities (0 typed), 46 relations, 7299 edges, 0 warning(s)" in capsys.readouterr().out
