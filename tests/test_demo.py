"""The main job end to end at a tiny size: every stage runs and the report shows each."""

from fashionkit.demo import CONDITIONS, run_demo


def test_demo_runs_every_stage_and_writes_the_report(tmp_path):
    result = run_demo(tmp_path / "demo", images=20, minutes=0.3, size=64, detect_images=3,
                      progress=False)
    out = result.out_dir
    assert (out / "world" / "train.json").is_file()
    assert (out / "run" / "metrics.csv").is_file() and (out / "run" / "loss_curves.png").is_file()
    assert (out / "evaluation.json").is_file()
    assert set(result.metrics) >= {"mask AP", "mask AP50", "mask AP IoU+F1"}
    assert (out / "detect" / "visuals").is_dir()
    assert len(list((out / "detect" / "visuals").glob("*_overlay.png"))) == 3
    assert result.wardrobe_items >= 18  # the example items at least
    assert [label for label, _ in CONDITIONS] == list(result.outfits)
    for suggestions in result.outfits.values():
        assert suggestions, "each condition gets outfits from the example wardrobe"
        assert all(o["explanation"] for o in suggestions)
    page = result.report.read_text()
    for needle in ("synthetic data only", "Table 4", "Fig. 10", "loss_curves.png",
                   "_overlay.png", "_supercategories.png", "Outfit suggestions",
                   "fashionkit train --recipe paper"):
        assert needle in page, needle
