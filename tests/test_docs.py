"""The docs: every relative link in README.md, CONTRIBUTING.md and docs/*.md resolves, and README stays short.

A link resolves when the file or folder it names exists, relative to the page
that holds it; a `#anchor` (alone, or after a `.md` file) must name a heading
of that page, spelled as GitHub spells heading anchors. Links inside code
(fenced blocks, `inline code`) are text, not links, and are not checked;
addresses with a scheme (https:, mailto:) are not either.

Also: the README's quick start is `make demo` and `make test`, targets the
Makefile has, and every ```python example of the docs is valid Python.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 160

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (an image in a link).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"""<a\s+(?:name|id)=["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_pages():
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [page for page in pages if page.exists()]


def prose_lines(text):
    """(line number, line) of the text outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def links(text):
    """(line number, target) of every link and image in the text."""
    for number, line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        match = REFERENCE_DEF.match(line)
        if match:
            yield number, match.group(1)


def github_anchor(heading):
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation out, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor of a markdown page: its headings (duplicates get -1, -2, ...) and explicit <a name=...>."""
    seen, found = {}, set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            anchor = github_anchor(match.group(2))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def broken_links(page, root=ROOT):
    """'page:line: target (why)' for each relative link of the page that does not resolve."""
    broken = []
    for number, target in links(page.read_text(encoding="utf-8")):
        if SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?")[0]
        resolved = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root).as_posix()}:{number}: {target}"
        if path_part.startswith("/"):
            broken.append(f"{where} (absolute path: write it relative to the page)")
        elif not resolved.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{where} (no heading with anchor #{anchor} in {resolved.name})")
    return broken


def test_the_pages_are_there():
    names = {page.relative_to(ROOT).as_posix() for page in doc_pages()}
    assert {"README.md", "CONTRIBUTING.md", "docs/index.md", "docs/architecture.md"} <= names


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def code_blocks(text, language):
    """The fenced code blocks of one language in the text."""
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)]


def test_readme_quick_start_is_make_demo_and_make_test_and_both_are_targets():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = code_blocks(readme, "bash")
    commands = {m.group(1) for block in blocks for m in re.finditer(r"^make (\S+)", block, re.MULTILINE)}
    assert {"demo", "test"} <= commands
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE))
    assert commands <= targets, f"README runs make targets the Makefile lacks: {sorted(commands - targets)}"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_python_examples_are_valid_python(page):
    for block in code_blocks(page.read_text(encoding="utf-8"), "python"):
        # Notebook shell lines (`!pip install ...`) are not Python.
        code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith(("!", "%")))
        ast.parse(code, filename=str(page))


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "there.md").write_text("# A `code` heading: with punctuation!\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](../there.md#a-code-heading-with-punctuation) [ok](../there.md#twice-1) [ok](#page)\n"
        "[missing](../nowhere.md) [bad anchor](../there.md#twice-2) ![img](../imgs/none.png)\n"
        "`[in code](../nowhere.md)` [web](https://example.com/x)\n"
        "```\n[in a block](../nowhere.md)\n```\n"
        "[ref]: ../also_missing.md\n",
        encoding="utf-8",
    )
    broken = broken_links(page, root=tmp_path)
    assert [entry.split(": ", 1)[1] for entry in broken] == [
        "../nowhere.md (no such file)",
        "../there.md#twice-2 (no heading with anchor #twice-2 in there.md)",
        "../imgs/none.png (no such file)",
        "../also_missing.md (no such file)",
    ]
