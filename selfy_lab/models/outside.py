"""A module written outside the package, inserted like the built-in motion modules (``--block
PACKAGE.MODULE:CLASS``).

The class is built as ``CLASS(channels=C, frames=T, **block_options)`` and called on the frames of a clip as
a 2-D batch, (B*T, C, H, W), returning the same shape. The current directory is importable, as for
``python -m``. Anything that goes wrong - no such module, no such class, a constructor that fails, an output of
another shape - is a ``ValueError`` naming the block and what to fix.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import torch
import torch.nn as nn


def import_class(spec: str) -> type:
    """``PACKAGE.MODULE:CLASS`` -> the class."""
    module_name, class_name = spec.split(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"block '{spec}': cannot import module '{module_name}' ({e}); run from the folder that "
                         f"holds it or put it on PYTHONPATH") from None
    except Exception as e:  # the user's module failed while it was imported
        raise ValueError(f"block '{spec}': importing '{module_name}' failed: {type(e).__name__}: {e}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"block '{spec}': module '{module_name}' has no '{class_name}'")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"block '{spec}': '{class_name}' is not a torch.nn.Module class")
    return cls


class OutsideBlock(nn.Module):
    """The user's module on a clip: (B, T, C, H, W) -> its output on (B*T, C, H, W), checked for shape."""

    def __init__(self, spec: str, channels: int, frames: int, options: dict[str, Any] | None = None):
        super().__init__()
        cls = import_class(spec)
        try:
            self.module = cls(channels=channels, frames=frames, **(options or {}))
        except Exception as e:
            raise ValueError(f"block '{spec}': {cls.__name__}(channels={channels}, frames={frames}"
                             f"{''.join(f', {k}={v!r}' for k, v in (options or {}).items())}) failed: "
                             f"{type(e).__name__}: {e}") from None
        self.spec, self.channels, self.frames = spec, channels, frames

    def check(self, side: int = 8) -> None:
        """One forward pass on a zero clip of two frames' batch, in eval mode: the output keeps the shape."""
        x = torch.zeros(2 * self.frames, self.channels, side, side)
        was = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                y = self.module(x)
        except Exception as e:
            raise ValueError(f"block '{self.spec}' failed on a (B*T, C, H, W) = {tuple(x.shape)} input: "
                             f"{type(e).__name__}: {e}") from None
        finally:
            self.module.train(was)
        self._check_shape(x, y)

    def _check_shape(self, x: torch.Tensor, y) -> None:
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"block '{self.spec}' returned {got} for an input of {tuple(x.shape)}: it must return "
                             f"the (B*T, C, H, W) shape it is given")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        y = self.module(x.flatten(0, 1))  # (B*T, C, H, W)
        if y.shape != (B * T, C, H, W):
            self._check_shape(x.flatten(0, 1), y)
        return y.view(B, T, C, H, W)


def build_outside_block(spec: str, channels: int, frames: int, options: dict[str, Any] | None = None) -> OutsideBlock:
    block = OutsideBlock(spec, channels, frames, options)
    block.check()
    return block
