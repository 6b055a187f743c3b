"""The block registry: one table names every block, one door builds each (and a user's) by one contract, and the
names the CLI and the experiment files accept are the table's."""
import inspect

import pytest
import torch

from selfy_lab.config.blocks import REGISTRY, block_entry, list_blocks
from selfy_lab.config.run import ModelConfig
from selfy_lab.models.blocks import _builder, block_option_names, create_block
from selfy_lab.config.vocabulary import BLOCKS, MOTION_BLOCKS, SELFY_BLOCKS

from helpers import cli_inproc, one_line_error

BUILT = [e.name for e in REGISTRY if e.family != "none"]


def test_the_vocabulary_is_the_registry():
    assert BLOCKS == list_blocks() and SELFY_BLOCKS == list_blocks("selfy") and MOTION_BLOCKS == list_blocks("motion")
    assert BLOCKS[0] == "none" and len(set(BLOCKS)) == len(BLOCKS)
    assert {e.family for e in REGISTRY} == {"none", "selfy", "motion"}
    with pytest.raises(ValueError, match="unknown block 'warp'"):
        block_entry("warp")


@pytest.mark.parametrize("name", BUILT)
def test_every_builder_follows_the_contract(name):
    """CLASS(channels, *, frames, stage, **options): the subject positional, the rest keyword-only; a motion
    module's OPTIONS are keyword-only arguments of its constructor, each with a default."""
    params = inspect.signature(_builder(block_entry(name).target)).parameters
    first, *rest = params.values()
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD) for p in rest), name
    assert {"frames", "stage", "zero_init"} <= set(params)
    for option in block_option_names(name):
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY and params[option].default is not inspect._empty


@pytest.mark.parametrize("name", BUILT)
def test_every_registered_block_maps_a_clip_to_its_shape_and_learns(name):
    """Through the one door, on the one layout: (B, T, C, H, W) -> same, and every parameter gets a gradient."""
    torch.manual_seed(0)
    options = dict(offsets=(-1, 0, 1), window=(3, 3), reduce=1) if block_entry(name).family == "selfy" else {}
    block = create_block(name, 16, frames=4, stage="res3", zero_init=False, options=options)
    x = torch.rand(2, 4, 16, 6, 6, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None for p in block.parameters() if p.requires_grad), name


def test_the_door_refuses_what_a_block_does_not_take():
    with pytest.raises(ValueError, match="no block to build"):
        create_block("none", 16, frames=4, stage="res3")
    with pytest.raises(ValueError, match=r"block 'tea' has no option wide \(its options: excite_bn\)"):
        create_block("tea", 16, frames=4, stage="res3", options={"wide": 2})
    with pytest.raises(ValueError, match="expected true or false"):
        create_block("tea", 16, frames=4, stage="res3", options={"excite_bn": "maybe"})


def test_the_cli_and_the_configuration_offer_the_registry():
    with pytest.raises(ValueError) as e:
        ModelConfig(block="warp")
    assert all(name in str(e.value) for name in BLOCKS)
    p = cli_inproc("flops", "--block", "warp")
    assert one_line_error(p, "unknown block 'warp'") and "cost-b" in p.stderr
    with pytest.raises(ValueError, match="is for the motion modules"):  # inside every residual block: only those
        ModelConfig(block="stcb", position="res3:every")                # whose entry says where
    assert ModelConfig(block="cp", position="res3:every").position == ("res3:every",)
