"""The shipped 5×7 glyph set, its loader's checks and the subset picker."""
import numpy as np
import pytest

from protocols.patterns import PatternFileError, load_patterns, parse_patterns, pick_subset, render


def test_font_has_letters_and_digits_of_35_pixels():
    ps = load_patterns()
    assert ps.shape == (7, 5) and ps.patterns.shape == (36, 35)
    assert set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == set(ps.names)


def test_glyphs_are_the_classic_5x7_font():
    ps = load_patterns()
    assert ps.render("A") == "..#..\n.#.#.\n#...#\n#...#\n#####\n#...#\n#...#"
    assert ps.render("T").splitlines()[1] == "#.#.#"  # the glcdfont T has serifs on row 2
    assert ps.render("0").splitlines()[2] == "#..##"  # slashed zero
    # published statistics of the letters (±1 coding): closest pairs and pixel bias
    letters = ps.select("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    m = letters.overlaps()
    i = letters.names.index
    assert m[i("D"), i("O")] == pytest.approx(31 / 35)
    assert m[i("C"), i("O")] == pytest.approx(29 / 35)
    assert letters.mean_overlap() == pytest.approx(0.2749, abs=1e-4)
    assert letters.patterns.mean() == pytest.approx(-0.1319, abs=1e-4)


def test_overlaps_of_the_issue_sets():
    ps = load_patterns()
    assert ps.select("LTXO").mean_overlap() <= 0.3
    assert ps.select("CODG").mean_overlap(absolute=False) >= 0.6
    assert ps.select("DOQU").mean_overlap(absolute=False) >= 0.6


def test_pick_subset_hits_requested_overlap():
    ps = load_patterns()
    letters = [c for c in ps.names if c.isalpha()]
    similar = pick_subset(ps, 4, 0.75, candidates=letters)
    assert abs(ps.select(similar).mean_overlap() - 0.75) < 0.01
    dissimilar = pick_subset(ps, 4, 0.0, candidates=letters)
    assert ps.select(dissimilar).mean_overlap() < 0.1
    assert pick_subset(ps, 4, 0.75, candidates=letters) == similar  # deterministic
    greedy = pick_subset(ps, 6, 0.5, exhaustive_limit=10)
    assert abs(ps.select(greedy).mean_overlap() - 0.5) < 0.03


GOOD = "shape 2 3\nglyph a\n#.#\n.#.\nglyph b\n###\n...\n"


def test_parse_and_render_roundtrip():
    ps = parse_patterns(GOOD)
    assert ps.names == ("a", "b")
    assert ps["a"].tolist() == [1, -1, 1, -1, 1, -1]
    assert render(ps["b"], ps.shape) == "###\n..."


@pytest.mark.parametrize(
    "text, message",
    [
        ("shape 2 3\nglyph a\n#.#\n.x.\n", r"glyph 'a' row 2 has 'x'"),
        ("shape 2 3\nglyph a\n#.#\n.#\n", r"glyph 'a' row 2 has 2 pixels, expected 3"),
        ("shape 2 3\nglyph a\n#.#\nglyph b\n###\n...\n", r"glyph 'a' \(line 2\) has 1 rows, expected 2"),
        ("shape 2 3\nglyph a\n#.#\n...\n###\n", r"glyph 'a' has more than 2 rows"),
        ("glyph a\n#.#\n", r"missing 'shape"),
        ("shape 2 3\n#.#\n", r"before any 'glyph"),
        ("shape 2 3\nglyph a\n#.#\n.#.\nglyph a\n###\n...\n", r"glyph 'a' appears twice"),
        ("; nothing\n", r"no glyphs"),
    ],
)
def test_loader_names_the_bad_entry(text, message):
    with pytest.raises(PatternFileError, match=message):
        parse_patterns(text, source="t.txt")


def test_unknown_names_are_named():
    with pytest.raises(PatternFileError, match="no glyph 'a'"):
        load_patterns("font5x7", ["A", "a"])
    with pytest.raises(PatternFileError, match="unknown pattern set 'nope'"):
        load_patterns("nope")


def test_load_from_path(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text(GOOD)
    assert load_patterns(p, ["b"]).patterns.shape == (1, 6)
    assert isinstance(load_patterns(p).patterns, np.ndarray)
