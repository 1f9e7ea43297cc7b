"""The studio's "Colours from a photo..." in a real browser: Debian's Chromium, driven by Playwright for Python.

The setup is test_studio_browser.py's (the shipped model on a free port,
Chromium from the system, never `playwright install`; it skips without
Chromium on a workstation and fails in CI). A person's session: open the cat,
load a colour photo of it (mirrored, cropped, a little smaller) as the
reference, see its matched points on the photo as the studio's own points,
select one and delete it: the result changes.
"""

import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from test_studio_browser import _wait, _wait_result, _write, chromium, image_pixels, studio_page, studio_url  # noqa: F401 - fixtures

from colorfusion import io

pytestmark = pytest.mark.slow


@pytest.fixture
def files(tmp_path):
    import cv2
    from skimage import data  # ships with scikit-image: no download

    cat = data.chelsea()
    reference = cv2.resize(np.ascontiguousarray(cat[20:280, 30:430][:, ::-1]), (360, 234), interpolation=cv2.INTER_AREA)
    return {"photo": io.write_image(tmp_path / "cat.jpg", cat),
            "reference": io.write_image(tmp_path / "cat_in_colour.jpg", reference),
            "bad": _write(tmp_path / "notes.jpg", b"these are notes, not a photo")}


def test_colours_from_a_photo_show_as_points_one_deleted_changes_the_result(chromium, studio_url, files):  # noqa: F811
    with studio_page(chromium, studio_url) as (page, problems):
        assert page.locator("#reference").is_disabled()  # no photo yet

        page.set_input_files("#file", str(files["photo"]))
        _wait_result(page, 1)
        automatic = _pixels(page)
        assert page.locator("#marks-bw .mark").count() == 0

        # A reference that is not a photo: its message, and nothing changes.
        page.set_input_files("#reference-file", str(files["bad"]))
        page.wait_for_selector("#message:not([hidden])", timeout=60_000)
        message = page.inner_text("#message-text")
        assert "notes.jpg" in message and "reference" in message, message
        assert page.locator("#marks-bw .mark").count() == 0

        # The colour photo: its matched points appear, as points of the studio, and the colours follow.
        page.set_input_files("#reference-file", str(files["reference"]))
        _wait_result(page, 2)
        assert page.locator("#message").is_hidden()
        marks = page.locator("#marks-bw .mark.reference")
        count = marks.count()
        assert count >= 3, count
        assert page.locator("#marks-result .mark.reference").count() == count  # on both panes
        with_reference = _pixels(page)
        assert np.abs(with_reference - automatic).mean() > 1.0

        # Select one and delete it: one point fewer, and the result changes.
        marks.nth(0).click()
        _wait(page, "!document.getElementById('point-tools').hidden")
        page.click("#delete-hint")
        _wait_result(page, 3)
        assert page.locator("#marks-bw .mark").count() == count - 1
        after = _pixels(page)
        assert np.abs(after - with_reference).max() > 8, "deleting a point left the result as it was"

        # Undo brings the point back, and its colours.
        page.click("#undo")
        _wait_result(page, 4)
        assert page.locator("#marks-bw .mark").count() == count
        assert np.abs(_pixels(page) - with_reference).max() < 3
        assert not problems, problems


def _pixels(page) -> np.ndarray:
    """The result image as the page shows it, RGB float (h, w, 3)."""
    time.sleep(0.05)  # the new image decoded
    return image_pixels(page, "result")[..., :3]
