"""Datasets: bundled (offline) loaders, download loaders behind a switch, stratified splits."""

from rose.data.splits import BUNDLED, DOWNLOADED, SplitData, load, prepare, save

__all__ = ["BUNDLED", "DOWNLOADED", "SplitData", "load", "prepare", "save"]
