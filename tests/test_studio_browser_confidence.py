"""The studio's "where unsure" toggle in a real browser (Debian's Chromium, Playwright), as a person uses it.

The setup is the studio's browser test's (`test_studio_browser`: the shipped
model served on a free port, Chromium from the system, skipped on a
workstation without it and failing in CI). A photo opens; the toggle shades
the regions where the model is unsure and numbers three to five "click
here" places, where the shading is darkest; a click on the first adds a
point there, the colorization and the shading follow it, and the toggle
off hides it all.

STUDIO_BREAK_CONFIDENCE=no_marks | stale_shading serves the page with that
bug put in on purpose: the test must then fail.
"""


import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import test_studio_browser as studio_browser  # after the skips: it needs the studio's server
from test_studio_browser import _wait, _wait_result, image_pixels, studio_page

# The browser test's fixtures: Chromium, the shipped model's studio on a free port, the cat photo.
chromium, studio_url, files = studio_browser.chromium, studio_browser.studio_url, studio_browser.files

pytestmark = pytest.mark.slow

BREAKAGES = {  # the toggle's code (static/confidence.js), with one bug each (STUDIO_BREAK_CONFIDENCE)
    "no_marks": ("found.places.map(", "[].map("),
    "stale_shading": ('JSON.stringify(["unsure", state.photo.id, wireHints(state.hints)])',
                      'JSON.stringify(["unsure", state.photo.id])'),
}


def test_the_unsure_toggle_shades_and_marks_where_a_click_helps(chromium, studio_url, files):
    with studio_page(chromium, studio_url, "STUDIO_BREAK_CONFIDENCE", BREAKAGES) as (page, problems):
        page.set_input_files("#file", str(files["photo"]))
        _wait_result(page, 1)
        assert page.locator("#unsure").is_hidden() and page.locator(".unsure-mark").count() == 0

        # On: the shading, and three to five numbered places where it is darkest.
        page.check("#show-unsure")
        _wait_shading(page, 1)
        marks = page.locator("#marks-unsure .unsure-mark")
        assert page.locator("#unsure").is_visible()
        assert 3 <= marks.count() <= 5, marks.count()
        assert [marks.nth(i).inner_text() for i in range(marks.count())] == [
            str(i + 1) for i in range(marks.count())]
        shade = _shade(page)
        first = _place(marks.nth(0))
        assert _shade_at(shade, first) > np.percentile(shade, 75), (_shade_at(shade, first), shade.mean())

        # A click on the first place: a point there; the result and the shading follow it.
        mark_box = marks.nth(0).bounding_box()
        page.mouse.click(mark_box["x"] + mark_box["width"] / 2, mark_box["y"] + mark_box["height"] / 2)
        _wait_result(page, 2)
        _wait_shading(page, 2)
        assert page.locator("#marks-result .mark").count() == 1
        hint = page.locator("#marks-result .mark").get_attribute("title")
        x, y = (int(v) for v in hint.split(")")[0].strip("(").split(", "))
        assert abs(x - first[0]) <= 3 and abs(y - first[1]) <= 3, (hint, first)
        after = _shade(page)
        assert np.abs(after - shade).max() > 2  # the shading of the new points, not the old one
        assert 0 < page.locator("#marks-unsure .unsure-mark").count() <= 5

        # Off: nothing drawn.
        page.uncheck("#show-unsure")
        assert page.locator("#unsure").is_hidden() and page.locator("#marks-unsure").is_hidden()
        assert not problems, problems


def _wait_shading(page, version: int):
    _wait(page, f"Number(document.getElementById('unsure').dataset.version) >= {version} "
                f"&& document.body.dataset.busy === '0'")


def _place(mark):
    """A mark's place in the photo's pixels."""
    return int(mark.get_attribute("data-x")), int(mark.get_attribute("data-y"))


def _shade(page) -> np.ndarray:
    """The shading's opacity (0-255) at display size, read from the page's own image."""
    return image_pixels(page, "unsure")[..., 3]


def _shade_at(shade, place, photo=(451, 300), radius=4) -> float:
    """The mean opacity around a place of the photo (451 x 300: skimage's chelsea)."""
    height, width = shade.shape
    col, row = int(place[0] * width / photo[0]), int(place[1] * height / photo[1])
    return float(shade[max(0, row - radius):row + radius + 1, max(0, col - radius):col + radius + 1].mean())
