"""Fixtures with known answers, for the tests, the benchmarks and the notebooks (not used by colorizing itself).

- `testing.clips`: clips made from colour photos with known motion (every
  frame's true colour, the true motion between frames), and writing them as
  video files.
"""
