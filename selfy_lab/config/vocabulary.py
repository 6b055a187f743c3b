"""The toolkit's vocabulary: the names a configuration may take (backbones, blocks, extractors, datasets and
their conventions, presets), one owner for each; the block names are the block registry's (``blocks.py``). No
torch, no other imports from the package."""
from __future__ import annotations

import re
from typing import Any

from .blocks import list_blocks

BACKBONE_RE = re.compile(r"^(tsn|tsm)-r(18|34|50)(?:-w(\d+))?$")
BACKBONE_EXAMPLES = ("tsn-r18", "tsm-r18", "tsn-r34", "tsm-r34", "tsn-r50", "tsm-r50", "tsn-r18-w16", "tsm-r18-w16")
SELFY_BLOCKS = list_blocks("selfy")  # SELFY, STCB and their Table 5 combinations (models/selfy.py)
MOTION_BLOCKS = list_blocks("motion")  # the field's other modules (models/motion/)
BLOCKS = list_blocks()  # every --block name; or the user's PACKAGE.MODULE:CLASS (is_outside_block)
EXTRACTORS = ("smax", "kscm", "mlp", "conv", "conv3d")
INTEGRATORS = ("conv", "mlp", "fc", "none")
SIMILARITIES = ("cosine", "dot", "embedded_gaussian")
FUSIONS = ("R+V", "R")
RESIDUALS = ("reference", "paper")
FUSE_HEADS = ("reference", "paper")
STSS_MEMORY = ("auto", "save", "recompute")  # keep the STSS volume for the backward pass, or recompute it there
SHIFT_PLACES = ("residual", "inplace")  # where TSM shifts: each residual branch, or each block's input
# STSS resolution reduction per insertion point (reference code: res3's 28x28 -> 14x14 at 224 input)
DEFAULT_REDUCE = {"pool1": 4, "res2": 4, "res3": 2, "res4": 1, "res5": 1}
# a ResNet's output stride at each position (the stem's convolution and pooling, then one halving a stage)
STAGE_STRIDE = {"pool1": 4, "res2": 4, "res3": 8, "res4": 16, "res5": 32}
REDUCE_CHOICES = (1, 2, 4)
LIST_FORMATS = ("auto", "tsn", "two-column", "ssv2-json", "diving48-json", "kinetics-csv")  # data/lists.py reads each
HIERARCHIES = ("none", "diff", "selfy")  # HCML's motion encoder (models/hcml.py)
AUX_LOSSES = ("none", "hcml")
HCML_TARGETS = ("motion", "backbone")  # what a level predicts (models/hcml.py)
HCML_PREDICTORS = ("motion", "motion+appearance")
OBJECTIVES = ("supervised", "hcml")  # hcml: self-supervised pretraining of the motion hierarchy, labels unread
PREVIOUS_STAGE = {"res2": "pool1", "res3": "res2", "res4": "res3", "res5": "res4"}


FLIPS = ("none", "skip", "swap")
ON_MISSING = ("stop", "skip")  # a listed clip that is not on disk: stop before training, or count and skip it
SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("sgd", "adamw")
PRESET_NAMES = ("smoke", "quick", "paper")
# what a sweep reports, declared by its experiment file (``report:``) and recorded in its sweep.yaml:
# offsets: accuracy vs temporal range; comparison: a block comparison (its table, accuracy vs GFLOPs);
# robustness: a block comparison whose models `corrupt` scores next (the same tables now); recipes: a tuning
# sweep's cells and each method's best recipe; none: the sweep's variants alone (the table `selfy-lab ablate` prints)
REPORTS = ("offsets", "comparison", "robustness", "recipes", "none")
COMPARISON_REPORTS = ("comparison", "robustness")  # the reports of a block comparison

# Dataset conventions (``--data-root``, ``--train-list``, ``--val-list``, ``--categories`` and
# ``--frame-template`` override them). List files hold ``<folder or video> <num_frames> <label>``.
DATASETS: dict[str, dict[str, Any]] = {
    "synthetic": dict(num_classes=16, flip="none", metric="top1"),
    # any folder of video files and frame folders, searched recursively, no list and no labels: for pretraining
    # (the classifier it builds is never used; fine-tune the result on a labelled dataset)
    "videos": dict(num_classes=2, flip="none", metric="top1"),
    "something-v1": dict(num_classes=174, template="{:05d}.jpg", train_list="train_videofolder.txt",
                         val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1",
                         list_format="tsn"),  # SS-V1 ships frames only: its lists are TSN lists
    "something-v2": dict(num_classes=174, template="{:06d}.jpg", train_list="train_videofolder.txt",
                         val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1"),
    "diving48": dict(num_classes=48, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                     val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="top1"),
    "gym99": dict(num_classes=99, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                  val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="mean_class"),
    # Kinetics as its official CSVs ship (class names: the train CSV's labels, sorted); MMAction2's `path label`
    # lists work too with --train-list / --val-list and its label map as --categories
    **{f"kinetics{n}": dict(num_classes=n, template="{:05d}.jpg", train_list="train.csv", val_list="validate.csv",
                            categories="train.csv", flip="none", metric="top1") for n in (400, 600, 700)},
    # a labelled dataset of one's own: lists in any of LIST_FORMATS and a class-name file, one name a line, whose
    # length sets the class count (num_classes 0: read from it when the run is resolved)
    "custom": dict(num_classes=0, template="{:05d}.jpg", train_list="train.txt", val_list="val.txt",
                   categories="categories.txt", flip="none", metric="top1"),
    "gym288": dict(num_classes=288, template="img_{:05d}.jpg", train_list="train_videofolder.txt",
                   val_list="val_videofolder.txt", categories="category.txt", flip="skip", metric="mean_class"),
}
