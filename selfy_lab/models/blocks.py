"""The one door every block enters by: :func:`create_block`, for the registry's entries (``selfy_lab.config.blocks``)
and for a user's ``PACKAGE.MODULE:CLASS`` alike, with one contract::

    CLASS(channels, *, frames, stage, **options)    # then called on a clip's map: (B, T, C, H, W) -> same

A built-in module's ``--block-options`` are its class's ``OPTIONS`` (keyword arguments of its constructor,
typed as their defaults); the model's ``zero_init`` goes to every built-in block. A user's module gets its
options as given, is checked once on a zero clip, and anything that goes wrong - no such module or class, a
constructor that fails, an output of another shape - is a ``ValueError`` naming the block and what to fix.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

import torch
import torch.nn as nn

from ..config.blocks import block_entry, is_outside_block


def _builder(target: str):
    """``module:attribute`` under ``selfy_lab.models`` -> the class or function it names."""
    module, attr = target.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


def block_option_names(name: str) -> tuple[str, ...]:
    """The ``--block-options`` a registered block takes (none for SELFY's family: its fields are the model's)."""
    entry = block_entry(name)
    return _options_of(_builder(entry.target)) if entry.family == "motion" else ()


def _options_of(builder) -> tuple[str, ...]:
    return tuple(getattr(builder, "OPTIONS", ()))


def _typed_option(name: str, builder, option: str, value: Any) -> Any:
    """An option's value as the type of its default in the constructor: a switch takes true / false (or yes /
    no / 1 / 0), a count an integer, a ratio a number; anything else is one line naming the choices."""
    default = inspect.signature(builder).parameters[option].default
    shown = str(value)[:40]
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"block '{name}' option {option}={shown}: expected true or false (or yes / no / 1 / 0)")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"block '{name}' option {option}={shown}: expected an integer (default {default})")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"block '{name}' option {option}={shown}: expected a number (default {default})")
    return value


def _checked_options(name: str, builder, options: dict[str, Any]) -> dict[str, Any]:
    allowed = _options_of(builder)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"block '{name}' has no option {', '.join(unknown)} (its options: {', '.join(allowed) or 'none'})")
    return {k: _typed_option(name, builder, k, v) for k, v in options.items()}


def create_block(name: str, channels: int, *, frames: int, stage: str, zero_init: bool = True,
                 options: dict[str, Any] | None = None) -> nn.Module:
    """The block ``name`` (a registry entry or ``PACKAGE.MODULE:CLASS``) for a C = ``channels`` map of
    ``frames``-frame clips after (or inside) ``stage``, called on (B, T, C, H, W). ``options``: a motion
    module's ``--block-options`` (a built-in one's checked and typed; a user's as given); SELFY's family: the
    STSS fields of the model. ``zero_init``: the model's, for the built-in blocks."""
    options = dict(options or {})
    if is_outside_block(name):
        return OutsideBlock(name, channels, frames=frames, stage=stage, options=options)
    entry = block_entry(name)
    if entry.family == "none":
        raise ValueError("block 'none' is the plain backbone: there is no block to build")
    builder = _builder(entry.target)
    if entry.family == "motion":
        options = _checked_options(name, builder, options)
    return builder(channels, frames=frames, stage=stage, zero_init=zero_init, **dict(entry.fixed), **options)


def import_class(spec: str) -> type:
    """``PACKAGE.MODULE:CLASS`` -> the class (the current directory is importable, as for ``python -m``)."""
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
    """A user's module built by the contract, checked once on a zero clip and on every call for its shape
    (the module is this one's ``module``)."""

    def __init__(self, spec: str, channels: int, *, frames: int, stage: str, options: dict[str, Any] | None = None):
        super().__init__()
        cls = import_class(spec)
        options = dict(options or {})
        try:
            self.module = cls(channels, frames=frames, stage=stage, **options)
        except Exception as e:
            raise ValueError(f"block '{spec}': {cls.__name__}({channels}, frames={frames}, stage={stage!r}"
                             f"{''.join(f', {k}={v!r}' for k, v in options.items())}) failed: "
                             f"{type(e).__name__}: {e} (the contract: CLASS(channels, *, frames, stage, "
                             f"**options))") from None
        self.spec, self.channels, self.frames = spec, channels, frames
        self.check()

    def check(self, side: int = 8) -> None:
        """One forward pass on a zero clip of two, in eval mode: the output keeps the shape."""
        x = torch.zeros(2, self.frames, self.channels, side, side)  # (B, T, C, H, W)
        was = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                y = self.module(x)
        except Exception as e:
            raise ValueError(f"block '{self.spec}' failed on a (B, T, C, H, W) = {tuple(x.shape)} input: "
                             f"{type(e).__name__}: {e}") from None
        finally:
            self.module.train(was)
        self._check_shape(x, y)

    def _check_shape(self, x: torch.Tensor, y) -> None:
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"block '{self.spec}' returned {got} for an input of {tuple(x.shape)}: it must return "
                             f"the (B, T, C, H, W) shape it is given")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)  # (B, T, C, H, W)
        if y.shape != x.shape:
            self._check_shape(x, y)
        return y
