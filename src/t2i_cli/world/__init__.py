"""The procedural captioned world t2i renders for itself (vocabulary in WORLD.md), and its evaluation.

    spec            the vocabulary and every world rule: held-out pairs, backgrounds, position cells
    captions        the caption grammar and its parser
    render          the clip-art renderer
    splits          scene seeds, the scene distribution, the train/val/heldout splits
    segment         colour segmentation of clip-art into objects (the judge's eyes)
    judge           the independent judge: segmentation + object classifier -> checks per scene spec
    judge_training  training the judge's classifier on renders
    tasks           the GenEval-style task prompt sets, and wrong scenes that the judge must reject
    negatives       hard negatives: a scene changed in one thing its caption says (reranker training)
    evaluate        scoring: a model on the tasks, the judge on real renders, a dVAE on val scenes

`from t2i_cli import world` gives the scene API below; the judge and the evaluation (torch) are imported
from their own modules.
"""

from t2i_cli.world.captions import caption_for, parse_prompt, plural, vocabulary_words
from t2i_cli.world.render import render, render_with_masks
from t2i_cli.world.spec import (
    ALL_PAIRS,
    BACKGROUNDS,
    CLASHES,
    COLOURS,
    HELDOUT_PAIRS,
    OBJECTS,
    OPPOSITE,
    PAPER,
    POSITION_CELLS,
    POSITIONS,
    RELATIONS,
    SIZES,
    SPATIAL_RELATIONS,
    SPLITS,
    TRAIN_PAIRS,
    ObjectSpec,
    SceneSpec,
)
from t2i_cli.world.splits import sample_spec, scene, scene_caption, scene_seed

__all__ = [
    "ALL_PAIRS", "BACKGROUNDS", "CLASHES", "COLOURS", "HELDOUT_PAIRS", "OBJECTS", "OPPOSITE", "PAPER",
    "POSITION_CELLS", "POSITIONS", "RELATIONS", "SIZES", "SPATIAL_RELATIONS", "SPLITS", "TRAIN_PAIRS",
    "ObjectSpec", "SceneSpec", "caption_for", "parse_prompt", "plural", "render", "render_with_masks",
    "sample_spec", "scene", "scene_caption", "scene_seed", "vocabulary_words",
]
