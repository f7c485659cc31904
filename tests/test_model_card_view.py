"""The app's view of MODEL_CARD.md: text kept, charts split out, missing card explained."""
from __future__ import annotations

from PIL import Image

from gauntlet.model_card import load_model_card, split_summary


def test_charts_are_split_from_the_text(tmp_path):
    (tmp_path / "docs").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "docs" / "a.png")
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Card\n| a | b |\n![Matrix of a](docs/a.png)\n![Gone](docs/missing.png)\n"
                    "![Outside](../../etc/passwd)\n")
    text, charts = load_model_card(card)
    assert charts == [(str((tmp_path / "docs" / "a.png").resolve()), "Matrix of a")]
    assert "# Card" in text and "| a | b |" in text and "Matrix of a" not in text
    assert "Gone" in text and "Outside" in text, "lines that are not local charts stay as text"


def test_missing_card_says_how_to_make_it(tmp_path):
    text, charts = load_model_card(tmp_path / "MODEL_CARD.md")
    assert "python -m training.model_card" in text and charts == []


def test_the_card_opens_with_its_summary_before_the_checkpoint_detail():
    text, _ = load_model_card()
    summary, details = split_summary(text)
    assert "## Summary" in summary and "| `lite0-mixed` |" in summary and "### " not in summary
    assert details.startswith("## Checkpoints") and "### " in details
    assert split_summary("# Card without detail") == ("# Card without detail", "")
