"""Hand-made mutants of the dVAE, the CLIP scores, the hard negatives and training's schedule, checkpoint and
resume: each is applied to a copy of the working tree, the test files most related to it run (stopping at the
first failure), and the mutant is tallied killed (a test failed), survived, or equivalent (it survived and
cannot change what a user sees: the reason is given with it). The source itself is never changed.

    OMP_NUM_THREADS=1 python bench/mutants_training.py [--only ID,ID] [--out F.json] > F.txt
    OMP_NUM_THREADS=1 python bench/mutants_training.py --only SURVIVORS --extra-only --extra "OTHER TESTS" \
        --extra tests/test_s45_hG.py --out after.json
    python bench/mutants_training.py --tally F.txt ... --after after.json ...

--extra adds test files (or node ids) run after the part's own tests, for the mutants they let through, in the
order given (-x: the first that fails is named); --extra-only runs them alone. --tally adds up earlier runs: per
module, killed by its own tests, by other existing tests, by the new tests (test_s45_hG.py), equivalent, survived.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DVAE, CLIP, NEG, TRAIN = (
    "src/t2i_cli/models/dvae.py",
    "src/t2i_cli/models/clip.py",
    "src/t2i_cli/world/negatives.py",
    "src/t2i_cli/train.py",
)

# The tests each part's mutants run: the files that exercise it (grep -l of its names), narrowed with -k where a
# file holds much else.
GROUPS = {
    "dvae": [
        "tests/test_dvae.py",
        "tests/test_fsq.py",
        "tests/test_pins_s34.py",
        "-k",
        "not presets_train and not default_preset and not data_source and not white_backgrounds and not "
        "learns_white and not judge and not cuda and not tokenizer and not words_are and not word_read",
    ],
    "clip": [
        "tests/test_word_region.py",
        "tests/test_pins_s34.py",
        "-k",
        "not explain and not train_clip and not train_refuses and not clip_run_can_start and not cuda and "
        "not bf16 and not tokenizer and not words_are and not word_read and not gumbel and not psnr and not "
        "code_usage and not pixel_eps and not batch_of_one and not reconstruction_loss and not shipped_dvae",
    ],
    "neg": [
        "tests/test_s42_mutation.py",
        "tests/test_pins_world.py",
        "tests/test_word_region.py",
        "-k",
        "negative or count_off or twin or drop or kind or recolour or heldout",
    ],
    "train": [
        "tests/test_pins_s35.py",
        "tests/test_ema.py",
        "tests/test_reliability.py",
        "tests/test_train.py",
        "-k",
        "pins_s35 or test_ema or warms_up or seeds_its_own or stalled_needs or edited_optimizer or not_whole or "
        "another_shape",
    ],
}

# (id, file, [(old, new), ...], equivalent-because or "")
MUTANTS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    # --- dvae.py
    ("D01", DVAE, [("return 10 * torch.log10(1 / mse)", "return 20 * torch.log10(1 / mse)")], ""),
    ("D02", DVAE, [(".mean(dim=(1, 2, 3)).clamp_min(1e-10)", ".mean().clamp_min(1e-10)")], ""),
    ("D03", DVAE, [("return float(entropy.exp()), int", "return float(entropy), int")], ""),
    ("D04", DVAE, [("int((counts > 0).sum())", "int((counts > 1).sum())")], ""),
    ("D05", DVAE, [("entropy = -(p[p > 0]", "entropy = (p[p > 0]")], ""),
    (
        "D06",
        DVAE,
        [("minlength=n_codes).float()", "minlength=0).float()")],
        "the histogram's trailing zeros add nothing to the entropy or to the count of used codes",
    ),
    ("D07", DVAE, [("cfg.n_hid * min(2**i, 4)", "cfg.n_hid * min(2**i, 8)")], ""),
    ("D08", DVAE, [("_conv(w[-1], self.code_channels, 1)", "_conv(w[-1], self.code_channels, 3)")], ""),
    ("D11", DVAE, [("return self.net(x * 2 - 1)", "return self.net(x)")], ""),
    ("D12", DVAE, [("for _ in range(cfg.n_res if i > 0 else 0)", "for _ in range(cfg.n_res)")], ""),
    ("D13", DVAE, [("for _ in range(cfg.n_res if i + 1 < len(w) else 0)", "for _ in range(cfg.n_res)")], ""),
    ("D14", DVAE, [("return x + self.conv2(", "return self.conv2(")], ""),
    ("D15", DVAE, [("half_l = (lv - 1) * (1 + 1e-3) / 2", "half_l = (lv - 1) * (1 - 1e-3) / 2")], ""),
    ("D16", DVAE, [("offset = (lv % 2 == 0)", "offset = (lv % 2 == 1)")], ""),
    ("D17", DVAE, [(".round().long() + self.half_width.long()", ".round().long()")], ""),
    ("D18", DVAE, [("// self.basis) % self.levels", "// self.basis)")], ""),
    ("D19", DVAE, [("(1, *levels[:-1])", "(1, *levels[1:])")], ""),
    ("D20", DVAE, [("return self._integers(z) / self.half_width", "return self._integers(z) / self.half_l")], ""),
    ("D21", DVAE, [("return bounded + (bounded.round() - bounded).detach()", "return bounded.round()")], ""),
    ("D22", DVAE, [("if not (-0.5 <= low and high <= 1.5):", "if not (-0.5 <= low):")], ""),
    (
        "D23",
        DVAE,
        [("    if images.numel():\n        low, high = (float(v)", "    if True:\n        low, high = (float(v)")],
        "",
    ),
    ("D24", DVAE, [("if cfg.downsample < 2 or", "if cfg.downsample < 1 or")], ""),
    ("D25", DVAE, [("if cfg.image_side % cfg.downsample:", "if False:")], ""),
    ("D26", DVAE, [("((x - eps) / (1 - 2 * eps))", "((x - eps) / (1 - eps))")], ""),
    ("D27", DVAE, [("((x - eps) / (1 - 2 * eps)).clamp(0, 1)", "((x - eps) / (1 - 2 * eps))")], ""),
    (
        "D28",
        DVAE,
        [("return x if eps <= 0 else", "return x if eps < 0 else")],
        "at eps 0 the mapping is (x - 0) / 1 clamped to [0, 1], and a sigmoid is in [0, 1] already",
    ),
    (
        "D29",
        DVAE,
        [('loss == "logit_laplace" and self.cfg.pixel_eps <= 0', 'loss == "logit_laplace" and self.cfg.pixel_eps < 0')],
        "",
    ),
    ("D30", DVAE, [("z = self.codebook(logits.argmax(dim=1))", "z = self.codebook(logits.argmin(dim=1))")], ""),
    ("D31", DVAE, [("F.gumbel_softmax(logits, tau=tau, dim=1)", "F.gumbel_softmax(logits, tau=tau, dim=-1)")], ""),
    ("D32", DVAE, [("self.codebook(values.detach() if hard else values)", "self.codebook(values)")], ""),
    ("D33", DVAE, [("rec = ((recon - x) ** 2).mean()", "rec = (recon - x).abs().mean()")], ""),
    ("D34", DVAE, [("torch.logit(eps + (1 - 2 * eps) * x)", "torch.logit(eps + (1 - eps) * x)")], ""),
    ("D35", DVAE, [("if len(recon) > 1:", "if len(recon) > 0:")], ""),
    ("D36", DVAE, [("recon.detach().std(dim=0).mean()", "recon.detach().std(dim=1).mean()")], ""),
    ("D37", DVAE, [("+ math.log(self.cfg.n_codes)", "- math.log(self.cfg.n_codes)")], ""),
    ("D38", DVAE, [("return recon, rec + kl_weight * kl,", "return recon, rec - kl_weight * kl,")], ""),
    (
        "D39",
        DVAE,
        [("log_q = F.log_softmax(logits.float(), dim=1)", "log_q = F.log_softmax(logits.float(), dim=-1)")],
        "",
    ),
    ("D40", DVAE, [('parts = {"recon_l1": l1.detach()', 'parts = {"recon_l1": rec.detach()')], ""),
    (
        "D41",
        DVAE,
        [
            (
                "        check_images(images)\n        out = self._encode_as_stored",
                "        out = self._encode_as_stored",
            )
        ],
        "",
    ),
    ("D42", DVAE, [("if low < 0 or high >= self.cfg.n_codes:", "if low < 0 or high > self.cfg.n_codes:")], ""),
    ("D43", DVAE, [("if low < 0 or high >= self.cfg.n_codes:", "if low < -1 or high >= self.cfg.n_codes:")], ""),
    ("D44", DVAE, [("        self.decoder.to(dtype)\n", "")], ""),
    ("D46", DVAE, [("any(not 2 <= v <= 64 for v in levels)", "any(not 1 <= v <= 64 for v in levels)")], ""),
    # --- clip.py
    ("C01", CLIP, [("scores = F.normalize(img, dim=-1) @", "scores = img @")], ""),
    ("C02", CLIP, [("scores = scores + word_region_scores(", "scores = scores + 0 * word_region_scores(")], ""),
    (
        "C03",
        CLIP,
        [("word_region_scores(regions, words, real, self.cfg", "word_region_scores(regions, words, ~real, self.cfg")],
        "",
    ),
    ("C04", CLIP, [("torch.softmax(sharpness * sim, dim=-1)", "torch.softmax(sharpness * sim, dim=-2)")], ""),
    ("C05", CLIP, [("torch.softmax(sharpness * sim, dim=-1)", "torch.softmax(sim, dim=-1)")], ""),
    (
        "C06",
        CLIP,
        [("cos = F.cosine_similarity(context, w.unsqueeze(0), dim=-1)", "cos = (context * w.unsqueeze(0)).sum(-1)")],
        "",
    ),
    ("C07", CLIP, [("/ keep.sum(-1).clamp(min=1)", "/ keep.shape[-1]")], ""),
    ("C08", CLIP, [("return (cos * keep).sum(-1)", "return cos.sum(-1)")], ""),
    (
        "C09",
        CLIP,
        [
            (
                "r, w = F.normalize(regions, dim=-1), F.normalize(words, dim=-1)",
                "r, w = regions, F.normalize(words, dim=-1)",
            )
        ],
        "",
    ),
    ("C10", CLIP, [("        is_pad[:, 0] = False  #", "        pass  #")], ""),
    (
        "C11",
        CLIP,
        [("is_pad = text >= self.cfg.n_pad_start", "is_pad = text > self.cfg.n_pad_start")],
        "the id n_pad_start is padding position 0's (n_bpe + p), and position 0 is always pooled",
    ),
    ("C12", CLIP, [("(h * keep).sum(1) / keep.sum(1)", "(h * keep).sum(1) / keep.shape[1]")], ""),
    ("C13", CLIP, [("(h * keep).sum(1) / keep.sum(1)", "h.sum(1) / keep.sum(1)")], ""),
    ("C14", CLIP, [("words = self.word_proj(self.ln(h))", "words = self.word_proj(h)")], ""),
    (
        "C15",
        CLIP,
        [
            ("self.net[:12](x * 2 - 1)", "self.net[:8](x * 2 - 1)"),
            ("self.net[12:](h)", "self.net[8:](h)"),
            ("nn.Conv2d(chans[-2], cfg.embed_dim", "nn.Conv2d(chans[-3], cfg.embed_dim"),
        ],
        "",
    ),
    ("C16", CLIP, [("h.amax(dim=(2, 3))], dim=1)", "h.mean(dim=(2, 3))], dim=1)")], ""),
    ("C17", CLIP, [("self.net[:12](x * 2 - 1)", "self.net[:12](x)")], ""),
    (
        "C18",
        CLIP,
        [
            (
                'mode="area" if images.shape[-1] > side else "bilinear"',
                'mode="bilinear" if images.shape[-1] > side else "area"',
            )
        ],
        "",
    ),
    ("C19", CLIP, [("if images.shape[-1] == side and images.shape[-2] == side:", "if images.shape[-1] == side:")], ""),
    (
        "C20",
        CLIP,
        [("+ F.cross_entropy(logits.float().t(), target)) / 2", "+ F.cross_entropy(logits.float(), target)) / 2")],
        "",
    ),
    ("C21", CLIP, [("scale = self.logit_scale.exp().clamp(max=100)", "scale = self.logit_scale.clamp(max=100)")], ""),
    ("C22", CLIP, [("target = offset + torch.arange(", "target = torch.arange(")], ""),
    (
        "C23",
        CLIP,
        [("by_text = scale * self.scores(every_i, mine_t).t()", "by_text = scale * self.scores(mine_i, every_t)")],
        "",
    ),
    ("C24", CLIP, [("return (img * txt).sum(-1)", "return (img * txt).mean(-1)")], ""),
    ("C25", CLIP, [("return self.pair_scores(images, text)[:, 0]", "return self.pair_scores(images, text)[0]")], ""),
    (
        "C26",
        CLIP,
        [("self.pair_scores(images[i:i + 1], text[i:i + 1])", "self.pair_scores(images[i:i + 1], text[0:1])")],
        "",
    ),
    ("C27", CLIP, [("F.cosine_similarity(attn @ r, w, dim=-1)", "((attn @ r) * w).sum(-1)")], ""),
    ("C28", CLIP, [("w @ r.t(), dim=-1)  # (T, R)", "w @ r.t(), dim=0)  # (T, R)")], ""),
    ("C29", CLIP, [("return (self.image_side // 8) ** 2", "return (self.image_side // 16) ** 2")], ""),
    ("C31", CLIP, [("torch.tensor(math.log(1 / 0.07))", "torch.tensor(math.log(1 / 0.7))")], ""),
    (
        "C32",
        CLIP,
        [("return self.embed_images(images), F.normalize(txt, dim=-1)", "return self.embed_images(images), txt")],
        "",
    ),
    # --- negatives.py
    (
        "N01",
        NEG,
        [
            (
                "return allow_heldout or (colour, kind) not in HELDOUT_PAIRS",
                "return allow_heldout and (colour, kind) not in HELDOUT_PAIRS",
            )
        ],
        "",
    ),
    ("N02", NEG, [('        taken.add("white")\n', "        pass\n")], ""),
    ("N03", NEG, [(' | set(CLASHES.get(bg or "", ()))', "")], ""),
    ("N04", NEG, [("taken = {o.colour for o in spec.objects}", "taken = {spec.objects[0].colour}")], ""),
    ("N05", NEG, [("if a.colour != b.colour and a.kind != b.kind and", "if a.colour != b.colour and")], ""),
    (
        "N06",
        NEG,
        [("and _allowed(a.colour, b.kind, allow_heldout):", "and _allowed(a.colour, a.kind, allow_heldout):")],
        "",
    ),
    ("N07", NEG, [("elif spec.count > 1 or spec.objects[0].position is None:", "elif spec.count > 1:")], ""),
    ("N08", NEG, [("if 1 <= c <= 4]", "if 0 <= c <= 4]")], ""),
    ("N09", NEG, [("(spec.count - 1, spec.count + 1)", "(spec.count + 1,)")], ""),
    ("N10", NEG, [("for k in OBJECTS if k not in kinds and", "for k in OBJECTS if k != obj.kind and")], ""),
    (
        "N11",
        NEG,
        [
            (
                "SceneSpec((objs[rng.randrange(2)],), 1, None, spec.background)",
                "SceneSpec((objs[0],), 1, None, spec.background)",
            )
        ],
        "",
    ),
    (
        "N12",
        NEG,
        [
            (
                "SceneSpec((objs[rng.randrange(2)],), 1, None, spec.background)",
                "SceneSpec((objs[rng.randrange(2)],), 1, None, None)",
            )
        ],
        "",
    ),
    (
        "N13",
        NEG,
        [
            (
                "colour=rng.choice(_free_colours(spec, objs[i], allow_heldout))",
                "colour=rng.choice(_free_colours(spec, objs[i], True))",
            )
        ],
        "",
    ),
    ("N14", NEG, [('allow_heldout=split == "heldout")', "allow_heldout=False)")], ""),
    ("N15", NEG, [('random.Random(f"t2i-negative:{seed}")', "rng")], ""),
    ("N16", NEG, [("replace(b, colour=a.colour)))", "b))")], ""),
    ("N18", NEG, [("and not (bg in COLOURS and not allow_heldout and (bg, k) in HELDOUT_PAIRS)]", "]")], ""),
    # --- train.py: schedule, seeds, optimizer, checkpoint, resume
    ("T01", TRAIN, [("warmup = min(cfg.warmup, cfg.steps // 4)", "warmup = cfg.warmup")], ""),
    ("T03", TRAIN, [("    if step < warmup:\n", "    if step <= warmup:\n")], ""),
    ("T04", TRAIN, [("return cfg.lr * (step + 1) / warmup", "return cfg.lr * step / warmup")], ""),
    (
        "T05",
        TRAIN,
        [("t = (step - warmup) / max(1, cfg.steps - warmup)", "t = (step - warmup) / max(1, cfg.steps)")],
        "",
    ),
    (
        "T06",
        TRAIN,
        [("math.cos(math.pi * min(1.0, t))", "math.cos(math.pi * t)")],
        "lr_at is asked only of steps below cfg.steps, where t < 1",
    ),
    ("T07", TRAIN, [("(1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos", "1 * 0.5 * (1 + math.cos")], ""),
    ("T08", TRAIN, [("0.5 * (1 + math.cos(math.pi", "0.5 * (1 - math.cos(math.pi")], ""),
    (
        "T09",
        TRAIN,
        [("return (cfg.seed * 1_000_003 + step) * 1_009 + rank", "return (cfg.seed * 1_000_003 + step) * 1_009")],
        "",
    ),
    (
        "T11",
        TRAIN,
        [('{"params": rest, "weight_decay": 0.0}', '{"params": rest, "weight_decay": cfg.weight_decay}')],
        "",
    ),
    ("T13", TRAIN, [('"step": str(step), "train_config"', '"step": str(step + 1), "train_config"')], ""),
    ("T14", TRAIN, [("    if ema is not None:\n        tensors |=", "    if False:\n        tensors |=")], ""),
    ("T15", TRAIN, [('    elif any(k.startswith("ema.") for k in tensors):', "    elif False:")], ""),
    (
        "T17",
        TRAIN,
        [("if step < 0 or not isinstance(extra, dict):", "if step < -1 or not isinstance(extra, dict):")],
        "",
    ),
    ("T18", TRAIN, [("if step > 0 and not state:", "if step > 1 and not state:")], ""),
    (
        "T19",
        TRAIN,
        [("missing = sorted(set(entries or ()) - set(state))", "missing = sorted(set(state) - set(entries or ()))")],
        "",
    ),
    (
        "T22",
        TRAIN,
        [("if any(v.dim() and v.shape != params[pid].shape", "if any(v.dim() > 1 and v.shape != params[pid].shape")],
        "",
    ),
    ("T23", TRAIN, [('or len(ids) != len(own["params"]) or', "or")], ""),
    (
        "T25",
        TRAIN,
        [
            (
                "return type(saved) in (int, float) and math.isfinite(saved)",
                "return isinstance(saved, (int, float)) and math.isfinite(saved)",
            )
        ],
        "",
    ),
    ("T26", TRAIN, [("isinstance(saved, list) and len(saved) == len(own) and", "isinstance(saved, list) and")], ""),
    ("T29", TRAIN, [(" or got[k].dtype != torch.float32\n", "\n")], ""),
    (
        "T30",
        TRAIN,
        [("if len(val_history) <= patience:", "if len(val_history) < patience:")],
        "at len == patience the losses before the last `patience` are none, and stalled says False for that too",
    ),
    (
        "T31",
        TRAIN,
        [
            (
                "return not any(v <= best for _, v in val_history[-patience:])",
                "return not any(v < best for _, v in val_history[-patience:])",
            )
        ],
        "",
    ),
    (
        "T33",
        TRAIN,
        [("logger = Logger(run_dir, dd.is_main, start, getattr", "logger = Logger(run_dir, dd.is_main, 0, getattr")],
        "",
    ),
    (
        "T34",
        TRAIN,
        [
            (
                'isinstance(r.get("step"), int) and r["step"] <= start]',
                'isinstance(r.get("step"), int) and r["step"] < start]',
            )
        ],
        "",
    ),
    ("T36", TRAIN, [("manual_seed(self.cfg.seed * 7919 + epoch)", "manual_seed(self.cfg.seed * 7919)")], ""),
    (
        "T37",
        TRAIN,
        [("first = step * self.cfg.batch_size + self.rank * self.per_rank", "first = step * self.cfg.batch_size")],
        "",
    ),
    (
        "T39",
        TRAIN,
        [('                group["lr"] = lr_at(cfg, step)', '                group["lr"] = lr_at(cfg, step + 1)')],
        "",
    ),
    ("T41", TRAIN, [("ema.update(step + 1)", "ema.update(step)")], ""),
    ("T42", TRAIN, [('read_metadata(ckpt).get("step") != str(steps) or not metrics', "not metrics")], ""),
    ("T43", TRAIN, [('r.get("finished") is True and r["step"] == steps', 'r.get("finished") is True')], ""),
    ("T44", TRAIN, [("before = said[-1] if said else before", "before = said[0] if said else before")], ""),
    ("T45", TRAIN, [("saved = start if ckpt.is_file() else None", "saved = None")], ""),
]


def group_of(path: str) -> str:
    return {DVAE: "dvae", CLIP: "clip", NEG: "neg", TRAIN: "train"}[path]


def copy_tree(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "*.egg-info"))


def run_tests(tree: Path, args: list[str], timeout: int) -> tuple[str, float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.monotonic() - t0, ""
    tail = [line for line in p.stdout.splitlines() if line.startswith("FAILED") or line.startswith("ERROR")]
    # rc 5: nothing was collected (the -k selected none): a survivor, no test ran
    return (
        ("survived" if p.returncode in (0, 5) else "killed"),
        time.monotonic() - t0,
        (tail[0] if tail else p.stdout[-200:]),
    )


def read_results(path: str) -> list[dict]:
    """A run's results: its --out JSON, or its printed lines (a run stopped before it wrote the JSON)."""
    if path.endswith(".json"):
        return json.loads(Path(path).read_text())["results"]
    files = {m[0]: m[1] for m in MUTANTS}
    lines = Path(path).read_text().splitlines()
    rows = [line for line in lines if line[:1] in "DCNT" and line[1:3].isdigit()]
    return [{"id": line.split()[0], "file": files[line.split()[0]], "result": line.split()[1],
             "why": line.rpartition("[")[2] if line.endswith("]") else ""} for line in rows]


def tally(paths: list[str], after: list[str]) -> None:
    """Per module: mutants killed by its own tests, killed only by tests/test_s45_hG.py (the --after run of the
    survivors), equivalent, and still surviving."""
    before = {r["id"]: r for p in paths for r in read_results(p)}
    later = {r["id"]: r for p in after for r in read_results(p)}
    equivalent = {m[0]: m[3] for m in MUTANTS}
    rows: dict[str, dict[str, int]] = {}
    for mid, r in sorted(before.items()):
        if equivalent.get(mid) and r["result"] != "killed":
            kind = "equivalent"
        elif r["result"] == "killed":
            kind = "killed by its tests"
        elif later.get(mid, {}).get("result") == "killed":  # (the --extra files: other tests' first, then the new)
            kind = "killed by the new tests" if "test_s45_hG" in later[mid]["why"] else "killed by other tests"
        else:
            kind = "survived"
        if kind in ("survived", "killed by the new tests", "killed by other tests"):
            print(f"{mid} {kind}" + (f" ({later[mid]['why'][:100]})" if mid in later else ""))
        module = r["file"].split("/")[-1]
        rows.setdefault(module, {}).setdefault(kind, 0)
        rows[module][kind] += 1
    kinds = ("killed by its tests", "killed by other tests", "killed by the new tests", "equivalent", "survived")
    print(f"{'module':14s}" + "".join(f"{k:>24s}" for k in kinds) + f"{'total':>7s}")
    for module, counts in rows.items():
        print(f"{module:14s}" + "".join(f"{counts.get(k, 0):24d}" for k in kinds) + f"{sum(counts.values()):7d}")
    total = {k: sum(c.get(k, 0) for c in rows.values()) for k in kinds}
    print(f"{'all':14s}" + "".join(f"{total[k]:24d}" for k in kinds) + f"{sum(total.values()):7d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated mutant ids")
    ap.add_argument("--extra", action="append", default=[], help="a test file added to every mutant's run")
    ap.add_argument("--tree", default="/tmp/mutants_training_tree", help="where the working tree is copied")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--out", default="", help="a JSON file of the results")
    ap.add_argument("--extra-only", action="store_true", help="run only the --extra files (the survivors' tests)")
    ap.add_argument("--tally", nargs="+", default=[], help="JSON files of earlier runs to add up (no run)")
    ap.add_argument("--after", nargs="+", default=[], help="with --tally: the survivors' runs with --extra")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run (one passed already)")
    ap.add_argument("--check", action="store_true", help="only check that every mutant applies, run nothing")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    if a.tally:
        tally(a.tally, a.after)
        return
    if a.check:
        for mid, path, edits, _ in MUTANTS:
            text = (ROOT / path).read_text()
            for old, new in edits:
                if text.count(old) != 1:
                    raise SystemExit(f"{mid}: {old!r} occurs {text.count(old)} times in {path}")
                text = text.replace(old, new)
        print(f"{len(MUTANTS)} mutants apply")
        return
    tree = Path(a.tree)
    copy_tree(tree)
    chosen = [m for m in MUTANTS if not only or m[0] in only]
    groups = sorted({group_of(m[1]) for m in chosen}) if not (a.extra_only or a.no_baseline) else []
    for group in groups:  # unmutated, every group's tests must pass
        tests = GROUPS[group]
        verdict, secs, why = run_tests(tree, tests, a.timeout)
        print(f"baseline {group}: {'passes' if verdict == 'survived' else 'FAILS'} in {secs:.1f}s", flush=True)
        if verdict != "survived":
            raise SystemExit(f"the {group} tests fail without a mutant: {why}")
    results, counts = [], {"killed": 0, "survived": 0, "equivalent": 0}
    for mid, path, edits, equivalent in MUTANTS:
        if only and mid not in only:
            continue
        original = (ROOT / path).read_text()
        text = original
        for old, new in edits:
            if text.count(old) != 1:
                raise SystemExit(f"{mid}: {old!r} occurs {text.count(old)} times in {path}")
            text = text.replace(old, new)
        (tree / path).write_text(text)
        try:
            tests = GROUPS[group_of(path)]
            k = tests.index("-k") if "-k" in tests else len(tests)
            files, select = tests[:k], tests[k:]
            verdict, secs, why = ("survived", 0.0, "")
            if not a.extra_only:
                verdict, secs, why = run_tests(tree, [*files, *select], a.timeout)
            if verdict == "survived" and a.extra:  # the tests written for the survivors, run alone (no -k)
                verdict, more, why = run_tests(tree, [t for e in a.extra for t in e.split()], a.timeout)
                secs += more
        finally:
            (tree / path).write_text(original)
        kind = "equivalent" if verdict == "survived" and equivalent else verdict.split()[0]
        counts[kind] += 1
        first = edits[0]
        name = path.split("/")[-1]
        line = f"{mid} {kind:10s} {secs:5.1f}s  {name}: {first[0].strip()[:60]!r} -> {first[1].strip()[:50]!r}"
        if kind == "killed":
            line += f"  [{why.strip()[:90]}]"
        if kind == "equivalent":
            line += f"  ({equivalent})"
        print(line, flush=True)
        results.append(
            {
                "id": mid,
                "file": path,
                "result": kind,
                "seconds": round(secs, 1),
                "edits": edits,
                "why": why.strip()[:200],
                "equivalent": equivalent,
            }
        )
    total = sum(counts.values())
    print(f"total {total}: killed {counts['killed']}, survived {counts['survived']}, equivalent {counts['equivalent']}")
    if a.out:
        Path(a.out).write_text(json.dumps({"counts": counts, "results": results}, indent=1))


if __name__ == "__main__":
    main()
