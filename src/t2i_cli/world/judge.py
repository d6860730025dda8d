"""The independent judge of `t2i eval`: it reads an image against a scene spec.

It is neither the model under test nor the CLIP reranker. It segments an image into objects by colour
(knowing the prompt's background; segment.py) and names each object with a small CNN trained on renders
(models.classifier.ObjectClassifier, trained by judge_training.train_judge). Colour, position and count
come from the segmentation, the kind from the classifier; where a position or relation puts an object
is the world's own rule (spec.in_position, spec.in_relation).

What each task judges (tasks.TASK_CHECKS): single_object the kind only (GenEval's split); colours and heldout
kind and colour; position a single object's centroid in the named third or corner cell, or for
"a above/below/left of/right of b" the offset from b's centroid to a's within 60 degrees of that direction
(since t2i 0.9.0; the order along one axis alone passed two objects side by side half the time); counting
exactly n regions of the kind and colour; two_objects both kinds; colour_attribution both kinds, each in its
own colour.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from t2i_cli import weights
from t2i_cli.errors import WeightsError
from t2i_cli.models.classifier import ObjectClassifier
from t2i_cli.world.segment import Region, as_uint8, background_plate, crop_region, segment
from t2i_cli.world.spec import OBJECTS, ObjectSpec, SceneSpec, in_position, in_relation
from t2i_cli.world.tasks import TASK_CHECKS


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block on n torch CPU threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Detection:
    """A segmented region and the object kind the classifier sees in it."""

    region: Region  # where, how big, which colour
    kind: str  # one of spec.OBJECTS
    confidence: float  # the classifier's probability for kind


def _pair_exists(first: list[Detection], second: list[Detection], relation: str = "and") -> bool:
    """Two different detections, one from each list, placed as the relation says."""
    return any(a is not b and in_relation(a.region.centroid, b.region.centroid, relation)
               for a in first for b in second)


def judge_checks(detections: list[Detection], spec: SceneSpec) -> dict[str, bool]:
    """Every check that applies to the spec, from what was detected (see TASK_CHECKS for which count)."""
    def of_kind(o: ObjectSpec) -> list[Detection]:
        return [d for d in detections if d.kind == o.kind]

    def exact(o: ObjectSpec) -> list[Detection]:
        return [d for d in of_kind(o) if d.region.colour == o.colour]

    first = spec.objects[0]
    checks = {"object": bool(of_kind(first))}
    if spec.relation is not None:
        a, b = spec.objects
        checks["both"] = _pair_exists(of_kind(a), of_kind(b))
        checks["attribution"] = _pair_exists(exact(a), exact(b))
        if spec.relation != "and":
            checks["position"] = _pair_exists(of_kind(a), of_kind(b), spec.relation)
    elif spec.count > 1:
        checks["colour"] = checks["object"] and all(d.region.colour == first.colour for d in of_kind(first))
        checks["count"] = len(exact(first)) == spec.count
    else:
        checks["colour"] = bool(exact(first))
        if first.position is not None:
            checks["position"] = any(in_position(d.region.centroid, first.position)
                                     for d in exact(first) or of_kind(first))
    return checks


FAILURES = ("both missing", "object missing", "wrong class", "colours swapped", "wrong colour", "wrong relation")


def failure_kind(detections: list[Detection], spec: SceneSpec) -> str | None:
    """Why an image fails a two-object spec, as the judge sees it (None when the pair is right): both
    kinds missing; one missing (a detection of its colour with another kind is a wrong class, else the
    object is missing); both there but the colours swapped between them, or otherwise wrong; colours
    right but the relation wrong. Which failure comes first is that order."""
    if spec.relation is None or len(spec.objects) != 2:
        raise ValueError("failure_kind reads two-object specs")
    a, b = spec.objects
    kinds = {d.kind for d in detections}
    missing = [o for o in (a, b) if o.kind not in kinds]
    if len(missing) == 2:
        return "both missing"
    if missing:
        o = missing[0]
        return "wrong class" if any(d.region.colour == o.colour and d.kind != o.kind for d in detections) \
            else "object missing"
    checks = judge_checks(detections, spec)
    if not checks["attribution"]:
        colours = {o.kind: {d.region.colour for d in detections if d.kind == o.kind} for o in (a, b)}
        swapped = a.kind != b.kind and b.colour in colours[a.kind] and a.colour in colours[b.kind]
        return "colours swapped" if swapped else "wrong colour"
    if not checks.get("position", True):
        return "wrong relation"
    return None


class Judge:
    """Reads an image against a scene spec: colour segmentation for colour, position and count, the
    object classifier on each region's crop for the kind. Independent of the model under test and of CLIP."""

    def __init__(self, classifier: ObjectClassifier):
        self.classifier = classifier.eval()

    @torch.inference_mode()
    def detect(self, image: Any, background: str | None) -> list[Detection]:
        """The objects of an image (uint8 array, PIL image or (3, H, W) tensor), largest first."""
        img = as_uint8(image)
        regions = segment(img, background)
        if not regions:
            return []
        plate = background_plate(img, background)
        crops = torch.stack([crop_region(img, r, plate, self.classifier.cfg.crop) for r in regions])
        device = next(self.classifier.parameters()).device
        with torch_threads(1):  # a few 32 px crops: threads only cost, most of all on shared cores
            probs = self.classifier(crops.to(device)).float().softmax(-1).cpu()  # (R, n_classes)
        conf, idx = probs.max(-1)
        return [Detection(r, OBJECTS[int(i)], float(c)) for r, i, c in zip(regions, idx, conf, strict=True)]

    def check(self, image: Any, spec: SceneSpec) -> dict[str, bool]:
        """Which of the spec's checks the image satisfies."""
        return judge_checks(self.detect(image, spec.background), spec)

    def passes(self, task: str, image: Any, spec: SceneSpec) -> bool:
        """Whether the image passes a task: every check the task judges holds."""
        checks = self.check(image, spec)
        return all(checks.get(c, False) for c in TASK_CHECKS[task])



def load_judge(path: Path, device: str | torch.device = "cpu") -> Judge:
    """A Judge around the classifier saved at path (weights.save_model(model, path, "judge")). Its config is
    checked at load as every model's is (weights.load_model: types, sizes, the tensors it holds); a judge
    must also name exactly the world's object kinds."""
    classifier = weights.load_model(path, "judge", device)
    if classifier.cfg.n_classes != len(OBJECTS):
        raise WeightsError(f"{path} tells {classifier.cfg.n_classes} object kinds apart, the world has "
                           f"{len(OBJECTS)}; it is not a judge of this world (leave --judge out for the "
                           f"shipped one)")
    return Judge(classifier)  # type: ignore[arg-type]
