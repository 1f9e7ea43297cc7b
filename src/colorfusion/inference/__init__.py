"""Colorizing with a trained model: the engine (`colorizer`), folders of files (`batch`), film clips (`video`).

Nothing here trains: this package never imports `training`.
"""
