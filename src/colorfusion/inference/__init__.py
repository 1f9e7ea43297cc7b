"""Colorizing with a trained model: the engine and its clients.

The engine: `engine` (the one pipeline: read, L, runner, ab, RGB, with the
hooks its clients need), `interface` (what a runner is, without Keras),
`runners` (a Keras model behind it, compiled per shape) and `exported` (an exported file's runners:
ONNX Runtime, LiteRT). Its clients, above it: `batch` (folders), `video`
(clips; `motion` the colour carried along their flow), `suggest` (the
studio's session of clicks, suggested colours); `colorizer` (`Colorizer`,
the engine with a model, and the package's one-call conveniences) sits on
top. Nothing here trains: this package never imports `training`.
"""
