"""Fail loudly when installing colorfusion moved one of Kaggle's pinned packages.

Usage (with the interpreter of the environment to check):

    python constraints/check_pins.py constraints/kaggle.txt [--before FREEZE_FILE]

Every `name==version` line of the constraints file whose package is
installed must be installed at exactly that version; a pinned package that
is not installed is listed as such (Kaggle has it, colorfusion does not need
it). With `--before` (a `pip freeze` taken before the install), the packages
the install added or changed are listed too. Exit code 1 when a pin moved.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines; comments and other lines are skipped."""
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line.split("#", 1)[0])
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed_versions() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def moved_pins(pins: dict[str, str], installed: dict[str, str]) -> list[str]:
    """`"name pinned -> installed"` for each pinned package installed at another version."""
    return [f"{name} {version} -> {installed[name]}" for name, version in sorted(pins.items())
            if name in installed and installed[name] != version]


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What an install did: `"+name version"` added, `"name old -> new"` changed, `"-name version"` removed."""
    lines = [f"+{name} {after[name]}" for name in sorted(after.keys() - before.keys())]
    lines += [f"{name} {before[name]} -> {after[name]}" for name in sorted(after.keys() & before.keys())
              if before[name] != after[name]]
    lines += [f"-{name} {before[name]}" for name in sorted(before.keys() - after.keys())]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("constraints", type=Path)
    parser.add_argument("--before", type=Path, help="`pip freeze` output taken before the install")
    args = parser.parse_args(argv)
    pins = read_pins(args.constraints.read_text())
    installed = installed_versions()
    if args.before is not None:
        done = changes(read_pins(args.before.read_text()), installed)
        print("the install changed: " + (", ".join(done) if done else "nothing"))
    absent = sorted(name for name in pins if name not in installed)
    kept = sorted(name for name in pins if installed.get(name) == pins[name])
    print(f"Kaggle pins kept: {', '.join(f'{n}=={pins[n]}' for n in kept) or 'none'}")
    if absent:
        print(f"pinned, not installed (not needed): {', '.join(absent)}")
    moved = moved_pins(pins, installed)
    if moved:
        print(f"ERROR: installing colorfusion moved Kaggle's packages ({args.constraints}): " + ", ".join(moved),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
