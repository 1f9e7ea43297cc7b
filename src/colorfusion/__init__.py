"""colorfusion: automatic colorization of grayscale photographs with Keras 3.

Modules, one job each (see the README for the flow of data):

- `color`: sRGB <-> CIE Lab and the model-facing scalings
- `io`: read any image file as uint8 RGB; atomic writes
"""

__version__ = "0.1.0"
