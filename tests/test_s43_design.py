"""Session 43: the README's "Design", "Python API" and "Status" sections read claim by claim against the code. What a
reader relies on and could drift is pinned here: the module tree, the names and parameters the API prose gives, the
numbers it states as defaults, the shipped model's shape, what a preset trains, the format of a model file, what the
identity hashes, and which calls reseed torch's global generator."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import build_tiny_folder
from t2i_cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces made one space (the README wraps its sentences anywhere)."""
    return re.sub(r"\s+", " ", text)


API, DESIGN, STATUS = flat(section("Python API")), section("Design"), flat(section("Status"))


def test_the_design_tree_names_every_module_of_the_package_and_no_other():
    """The Design section's src/t2i_cli/ tree is the map a student reads first: a module added, moved or removed
    without it is a map that lies."""
    tree = re.findall(r"```\n(src/t2i_cli/\n.*?)```", DESIGN, re.S)
    assert len(tree) == 1, "the Design section holds one src/t2i_cli/ tree"
    listed, folder = set(), ""
    for line in tree[0].splitlines()[1:]:
        m = re.match(r"^( {2}| {4})(\S+)\s", line)
        if not m:
            continue
        name = m.group(2)
        if name.endswith("/"):
            folder = name
        elif len(m.group(1)) == 2:
            folder = ""
            listed.add(name)
        else:
            listed.add(folder + name)
    package = ROOT / "src" / "t2i_cli"
    present = {str(p.relative_to(package)) for p in package.rglob("*.py")} - {"__init__.py", "world/__init__.py"}
    assert listed == present, (sorted(listed - present), sorted(present - listed))


def test_the_names_the_api_prose_gives_exist_with_the_parameters_it_gives():
    """Each call the Python API and Design sections spell out takes its arguments in the order written there."""
    from t2i_cli import image_prompt, stages, weights
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.world.evaluate import evaluate_model, validate_judge

    def head(fn, n: int) -> list[str]:
        return [p for p in inspect.signature(fn).parameters if p != "self"][:n]

    calls = {  # the call as the README writes it -> the function
        "TextToImage.from_folder(folder, device, need_clip, precision, clip_precision)": TextToImage.from_folder,
        "pipe(prompt, n, seed, sampling, progress, image)": TextToImage.__call__,
        "request(prompt, sampling, negative, warn)": TextToImage.request,
        "batches(request, n, seed, progress, image)": TextToImage.batches,
        "redraw(request, n, seed, index, image)": TextToImage.redraw,
        "score(images, prompt, objects)": TextToImage.score,
        "rerank(results, keep)": TextToImage.rerank,
        "bits(prompts, codes, warn)": TextToImage.bits,
        "draw_each(requests, seeds, n, batch)": TextToImage.draw_each,
        "image_prompt.build(dvae, image, keep_top, mask, strength, redraws)": image_prompt.build,
        "stages.apply_preset(stage, preset, overrides, data)": stages.apply_preset,
        "stages.run_stage(cfg, run_dir, resume)": stages.run_stage,
        "weights.load_folder(folder, device, need_clip)": weights.load_folder,
        "weights.save_model(model, path, kind)": weights.save_model,
        "weights.load_model(path, kind, device)": weights.load_model,
        "evaluate_model(pipe, judge, n_per_task, seed, sampling, candidates)": evaluate_model,
        "validate_judge(judge, n_per_task, seed, side)": validate_judge,
        "evaluate_data(pipe, source, n, seed, sampling, progress, draws)": evaluate_data,
    }
    for call, fn in calls.items():
        written = re.findall(r"\w+", call.split("(", 1)[1])
        assert head(fn, len(written)) == written, call
    assert "warn" in inspect.signature(stages.run_stage).parameters  # (run_stage's warn callback)
    from t2i_cli.errors import PromptWarning, TrainingWarning
    from t2i_cli.models.tokenizer import Encoded
    from t2i_cli.pipeline import Generated

    # `.encoded` says `n_dropped` and `unknown_words`; a Generated has .image, .codes, .fit (and a rank's score)
    assert {"ids", "n_dropped", "unknown_words"} <= {f.name for f in dataclasses.fields(Encoded)}
    assert {"image", "codes", "fit", "score", "rank"} <= {f.name for f in dataclasses.fields(Generated)}
    assert issubclass(PromptWarning, UserWarning) and issubclass(TrainingWarning, UserWarning)
    sig = inspect.signature(TextToImage.from_folder).parameters
    assert sig["precision"].default == "fp32" and sig["need_clip"].default is False  # "defaults to precision=fp32"
    for text in ("pipe.rerank(results, keep)", "pipe.bits(prompts, codes)", "need_clip=True", 'precision="fp32"',
                 "pipe.batches(pipe.request(prompt, sampling, negative=", "validate_judge(judge, n, seed, side)",
                 "evaluate_model(pipe, judge, n, seed)", "t2i_cli.train.read_run_config(RUN_DIR)"):
        assert text in API, text


def test_the_numbers_the_readme_states_as_defaults_are_the_codes():
    from t2i_cli import cli, data, pipeline, rerank, train, weights
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.world import evaluate

    # Status: "`generate` defaults: temperature 1, top-k off, top-p off, guidance 3 ..., regional guidance 2"
    assert "temperature 1, top-k off, top-p off, guidance 3" in STATUS and "regional guidance 2 (" in STATUS
    s = SamplingConfig()
    assert (s.temperature, s.top_k, s.top_p, s.guidance, s.regional, s.jacobi) == (1.0, 0, 1.0, 3.0, 2.0, 0)
    assert "best of 4" in STATUS and cli.DEFAULT_CANDIDATES == 4
    # Design, Formats: "A decode batch takes as many images as 4 GiB of that state holds, 16 at most"; eval's 32
    # where 4 rows an image for 32 images fit in 1 GiB, else 16; "each image's decode state: 1 GiB"
    design = flat(DESIGN)
    assert "as many images as 4 GiB of that state holds, 16 at most" in design
    assert (pipeline.DECODE_MEMORY, pipeline.MAX_BATCH, pipeline.MAX_EVAL_BATCH) == (4 << 30, 16, 32)
    assert (evaluate.DECODE_MEMORY, evaluate.EVAL_BATCH, evaluate.LARGE_EVAL_BATCH) == (1 << 30, 16, 32)
    assert pipeline.ROWS_PER_IMAGE == 4 and weights.MAX_ACTIVATION_BYTES == 1 << 30
    assert "each image's decode state: 1 GiB" in design
    # rerank.py "64 pictures at a time"; data.py "up to 1 GiB a machine, TRAINING_CACHE_BYTES", "its first 16 MiB";
    # train.py "where the last is over 2% worse"; files' format "t2i/1" under the key "t2i"
    assert "CLIP, 64 pictures at a time" in design and rerank.SCORE_BATCH == 64
    assert "up to 1 GiB a machine, TRAINING_CACHE_BYTES" in design and data.TRAINING_CACHE_BYTES == 1 << 30
    assert "(_manifest_above, its first 16 MiB," in design and data.MAX_ABOVE == 16 << 20
    assert "where the last is over 2% worse" in design and train.OVERFIT_MARGIN == 0.02
    assert "`format` (`t2i/1`)" in design and "under the key `t2i`" in design
    assert (weights.FORMAT, weights.META_KEY) == ("t2i/1", "t2i")
    # "warns below 90% agreement"
    assert "warns below 90% agreement" in API and cli.JUDGE_TRUSTED == 0.9


def test_what_a_resume_may_change_is_the_list_the_api_gives():
    from t2i_cli.train import RESUMABLE_FIELDS

    clause = re.search(r"refuses any change but (.*?); without a `warn` callback", API)
    assert clause, "the Python API names what a resume may change"
    assert set(re.findall(r"`(\w+)`", clause.group(1))) == RESUMABLE_FIELDS


def test_a_weights_folder_holds_the_files_the_design_names():
    from t2i_cli import weights

    assert weights.FILES == ("tokenizer.json", "dvae.safetensors", "transformer.safetensors", "clip.safetensors")
    assert weights.SECOND_CLIP == "clip-2.safetensors"
    design = flat(DESIGN)
    for name in (*weights.FILES, weights.SECOND_CLIP, "judge.safetensors"):
        assert f"`{name}`" in design, name


def test_the_identity_hashes_the_models_that_draw_and_rerank_and_not_the_judge(tmp_path: Path):
    """Formats: "the identity hashes `tokenizer.json` and the models that draw and rerank, not `judge.safetensors`"."""
    import shutil

    from t2i_cli.weights import folder_hashes

    folder = build_tiny_folder(tmp_path / "w")
    identity, generator = folder_hashes(folder)
    shutil.copy(ROOT / "weights" / "judge.safetensors", folder / "judge.safetensors")
    assert folder_hashes(folder) == (identity, generator)
    shutil.copy(folder / "clip.safetensors", folder / "clip-2.safetensors")
    second = folder_hashes(folder)
    assert second[0] != identity and second[1] == generator  # a reranker changes the identity, not what draws


def test_a_model_file_carries_format_kind_and_config_as_one_sorted_json_object(tmp_path: Path):
    """Formats: each safetensors file carries format, kind and its config in __metadata__, one sorted JSON object
    under the key t2i, so the same model always gives the same bytes."""
    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.weights import load_model, save_model

    torch.manual_seed(0)
    model = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8))
    a, b = save_model(model, tmp_path / "a.safetensors", "dvae"), save_model(model, tmp_path / "b.safetensors", "dvae")
    raw = a.read_bytes()
    assert raw == b.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert list(header["__metadata__"]) == ["t2i"]
    meta = json.loads(header["__metadata__"]["t2i"])
    assert list(meta) == sorted(meta) and meta["format"] == "t2i/1" and meta["kind"] == "dvae"
    assert DVAEConfig(**json.loads(meta["config"])) == model.cfg
    assert load_model(a, "dvae").cfg == model.cfg


def test_the_shipped_model_is_the_one_status_describes():
    """Status: "The shipped model (128 px, 16x16 codes of 512, 15 M-parameter transformer, 49 MB in fp16 ...; its two
    word-region rerankers"; Design: its dVAE is the Gumbel-softmax codebook. Read from the files' headers."""
    from t2i_cli.models.transformer import Transformer
    from t2i_cli.weights import file_config, read_header

    assert "The shipped model (128 px, 16x16 codes of 512, 15 M-parameter transformer, 49 MB in fp16" in STATUS
    w = ROOT / "weights"
    dvae, _ = file_config(w / "dvae.safetensors", "dvae")
    tr, header = file_config(w / "transformer.safetensors", "transformer")
    assert (dvae.image_side, dvae.grid, dvae.n_codes, dvae.fsq_levels) == (128, 16, 512, ())
    assert (tr.grid, tr.image_vocab) == (16, 512)
    params = sum(math.prod(s) for s in header.shapes.values())
    assert params == tr.state_numel() and round(params / 1e6) == 15
    with torch.device("meta"):
        assert sum(p.numel() for p in Transformer(tr).parameters()) == params
    files = [w / f for f in ("tokenizer.json", "dvae.safetensors", "transformer.safetensors", "clip.safetensors",
                             "clip-2.safetensors")]
    assert round(sum(f.stat().st_size for f in files) / 1e6) == 49
    for name in ("clip.safetensors", "clip-2.safetensors"):
        clip, _ = file_config(w / name, "clip")
        assert clip.word_region
    assert read_header(w / "transformer.safetensors").meta["format"] == "t2i/1"


@pytest.mark.parametrize("preset, data, gumbel", [
    ("default", "world:train", True), ("default", "pics", False), ("tiny", "world:train", False),
    ("tiny", "pics", False),
])
def test_the_dvae_bottleneck_of_each_preset_is_the_one_the_design_gives(preset: str, data: str, gumbel: bool):
    """Design, dvae.py: "a Gumbel-softmax relaxed codebook (... the default preset on the world) or FSQ (fsq_levels;
    the default preset on folders, and tiny)"."""
    from t2i_cli.stages import apply_preset

    assert "the default preset on the world) or FSQ (fsq_levels; the default preset on folders, and tiny)" in \
        flat(DESIGN)
    model = apply_preset("dvae", preset, {}, data)["model"]
    assert (not model.get("fsq_levels")) == gumbel
    if not gumbel:
        assert math.prod(model["fsq_levels"]) == model["n_codes"]


def test_folder_presets_mirror_and_crop_and_stop_early_as_status_says():
    """Status: training on a folder mirrors (--flip, default preset) and crops to 0.8 (--crop, default and large
    presets, dVAE and transformer); the default preset's transformer on a folder stops early (--patience 2)."""
    from t2i_cli.stages import apply_preset

    for preset in ("default", "large"):
        for stage in ("dvae", "transformer"):
            on_folder, on_world = apply_preset(stage, preset, {}, "pics"), apply_preset(stage, preset, {}, "world")
            assert (on_folder.get("flip"), on_folder.get("crop")) == (True, 0.8), (preset, stage)
            assert not on_world.get("flip") and on_world.get("crop", 1.0) == 1.0, (preset, stage)
    assert apply_preset("transformer", "default", {}, "pics")["patience"] == 2
    assert not apply_preset("clip", "default", {}, "pics").get("flip")


def test_decode_batches_are_the_sizes_the_design_gives_for_the_shipped_shape():
    """Design: the shipped model's images take 50 MiB each of decode state (never cut below 16 in 4 GiB);
    `t2i eval` decodes 32 where 4 fp32 rows an image for 32 images fit in 1 GiB ("the shipped model's 6.5 MiB a
    row do; a transformer 1.25x as wide does not"), else 16."""
    from t2i_cli.models.dvae import DVAEConfig
    from t2i_cli.models.transformer import TransformerConfig
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.weights import file_config

    design = flat(DESIGN)
    assert "the shipped model's images take 50 MiB each" in design and "6.5 MiB a row do" in design
    tr, _ = file_config(ROOT / "weights" / "transformer.safetensors", "transformer")
    dvae, _ = file_config(ROOT / "weights" / "dvae.safetensors", "dvae")
    pipe = SimpleNamespace(bundle=SimpleNamespace(transformer=SimpleNamespace(cfg=tr), dvae=SimpleNamespace(cfg=dvae)))
    assert round(TextToImage.image_bytes(pipe) / 2**20) == 50
    pipe.image_bytes = lambda: TextToImage.image_bytes(pipe)
    assert TextToImage.fit(pipe, 16) == 16 and TextToImage.fit(pipe, 32) == 32
    assert round(tr.activation_bytes() / 2**20, 1) == 6.5

    from t2i_cli.world.evaluate import decode_batch

    assert decode_batch(pipe) == 32
    wide = dataclasses.replace(tr, n_embd=int(tr.n_embd * 1.25))
    assert decode_batch(SimpleNamespace(bundle=SimpleNamespace(transformer=SimpleNamespace(cfg=wide)))) == 16
    assert isinstance(dvae, DVAEConfig) and isinstance(tr, TransformerConfig)


def test_the_preset_expression_the_api_gives_builds_a_config_run_stage_trains_and_resumes(tmp_path: Path):
    """Python API: `TrainConfig(stage=S, data=D, **stages.apply_preset(S, "tiny", {"steps": 100}, D))` as written,
    trained by run_stage; a resume refuses a setting outside what it may change, and takes a new lr and more steps."""
    from t2i_cli import stages
    from t2i_cli.train import TrainConfig, read_run_config

    expression = re.search(r"`(TrainConfig\(stage=S, data=D, \*\*stages\.apply_preset\(.*?\)\))`", API)
    assert expression, "the Python API gives the fields of a preset"
    cfg = eval(expression.group(1), {"TrainConfig": TrainConfig, "stages": stages, "S": "dvae", "D": "world:train"})
    assert cfg.steps == 100 and cfg.model["fsq_levels"] == (4, 4, 4)
    run = tmp_path / "run"
    stages.run_stage(dataclasses.replace(cfg, steps=2), run, device="cpu")
    assert {"train_config.json", "checkpoint.safetensors", "dvae.safetensors", "metrics.jsonl"} <= \
        {p.name for p in run.iterdir()}
    saved = read_run_config(run)
    with pytest.raises(UsageError, match="batch_size"):
        stages.run_stage(dataclasses.replace(saved, batch_size=saved.batch_size * 2), run, resume=True, device="cpu")
    stages.run_stage(dataclasses.replace(saved, steps=3, lr=saved.lr / 2), run, resume=True, device="cpu")
    assert read_run_config(run).steps == 3


def test_training_reseeds_torchs_global_generator_and_the_pipeline_and_evaluation_do_not(tmp_path: Path):
    """Python API: run_stage seeds torch's global generator at every step (the README said this of evaluate_model,
    the sentence after it: a script that saved and restored its state around evaluate_model did so for nothing,
    and one that did not around run_stage lost its own); torch.random.fork_rng() around the call keeps it."""
    from t2i_cli import stages
    from t2i_cli.image_prompt import build
    from t2i_cli.images import image_from_tensor
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.train import TrainConfig
    from t2i_cli.world.evaluate import evaluate_model, validate_judge
    from t2i_cli.world.judge import load_judge

    training = API.split("Training from Python is", 1)[1].split("`t2i_cli.world.evaluate.evaluate_model", 1)[0]
    assert "seeds torch's global generator at every step" in training

    def state() -> torch.Tensor:
        return torch.random.get_rng_state()

    folder = build_tiny_folder(tmp_path / "w", seed=3)  # (which seeds the global generator: the test's own doing)
    torch.manual_seed(1234)
    before = state()
    pipe = TextToImage.from_folder(folder, "cpu")
    drawn = pipe("a red bird", n=2, seed=0)
    pipe.rerank(drawn, 1)
    pipe.bits(["a red bird"], drawn[0].codes[None])
    pipe("a red bird", n=2, seed=0, sampling=SamplingConfig(jacobi=4))
    image_from_tensor(drawn[0].image).save(tmp_path / "src.png")
    pipe("a red bird", n=2, seed=0, image=build(pipe.bundle.dvae, tmp_path / "src.png", strength=0.5))
    judge = load_judge(ROOT / "weights" / "judge.safetensors")
    evaluate_model(pipe, judge, 1, 0, tasks=("single_object", "two_objects"))
    validate_judge(judge, 1, 0, 64)
    assert torch.equal(state(), before), "the pipeline and the evaluation leave torch's global generator alone"

    cfg = TrainConfig(stage="dvae", data="world:train", **stages.apply_preset("dvae", "tiny", {"steps": 2},
                                                                                 "world:train"))
    with torch.random.fork_rng():
        stages.run_stage(cfg, tmp_path / "kept", device="cpu")
    assert torch.equal(state(), before)
    stages.run_stage(cfg, tmp_path / "run", device="cpu")
    assert not torch.equal(state(), before)


def test_the_api_refuses_the_wrong_kinds_of_input_it_names(tmp_path: Path):
    """Python API: one prompt is a str, several a list; pictures are floats (B, 3, H, W) in [0, 1]
    (dvae.codes_from_image, pipe.score); codes (B, h, w) or (B, grid * grid); a quantised or packed model cannot
    be saved."""
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.weights import save_model

    folder = build_tiny_folder(tmp_path / "w")
    pipe = TextToImage.from_folder(folder, "cpu")
    g = pipe("a red bird", n=1, seed=0)[0]
    dvae, grid = pipe.bundle.dvae, pipe.bundle.dvae.cfg.grid
    with pytest.raises(UsageError, match="must be a str"):
        pipe(["a red bird", "a blue fish"])
    with pytest.raises(UsageError, match="list of prompts"):
        pipe.bits("a red bird", g.codes[None])
    with pytest.raises(UsageError, match="one prompt"):
        pipe.score(g.image[None], ["a red bird"])
    for bad in ((g.image[None] * 255).to(torch.uint8), g.image, g.image[None] * 255):
        with pytest.raises(ValueError, match="images must"):
            dvae.codes_from_image(bad)
        with pytest.raises(ValueError, match="images must"):
            pipe.score(bad, "a red bird")
    codes = dvae.codes_from_image(g.image[None])
    assert codes.shape == (1, grid, grid)
    assert torch.equal(dvae.image_from_codes(codes), dvae.image_from_codes(codes.flatten(1)))
    for bad in (codes.flatten(), codes.float()):
        with pytest.raises(ValueError, match="codes must be integers"):
            dvae.image_from_codes(bad)
    for precision in ("int8", "bf16"):
        model = TextToImage.from_folder(folder, "cpu", precision=precision).bundle.transformer
        if precision == "bf16" and not any(type(m).__name__ == "PackedLinear" for m in model.modules()):
            continue  # (plain bf16 where this CPU cannot pack: a model that saves and loads)
        with pytest.raises(RuntimeError, match="save the model it came from"):
            save_model(model, tmp_path / f"{precision}.safetensors", "transformer")


@pytest.mark.parametrize("word_region", [False, True])
def test_loading_a_clip_leaves_torchs_global_generator_as_it_was(tmp_path: Path, word_region: bool):
    """weights.skipped_init builds a model to load "without drawing its random initial weights": nn.MultiheadAttention
    (the CLIP's text encoder) calls the xavier_uniform_ its module imported by name, which the swap of torch.nn.init's
    functions missed, so loading a CLIP (from_folder of any folder with one) drew from torch's global generator: a
    script's seeded stream after it depended on whether the folder held a reranker, or two."""
    import torch.nn.modules.activation as activation

    from t2i_cli.models.clip import Clip, ClipConfig
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.weights import load_model, save_model

    torch.manual_seed(0)
    clip = Clip(ClipConfig(image_side=16, text_vocab=40, text_len=8, n_pad_start=32, n_hid=8, n_embd=32, n_layer=1,
                           n_head=2, embed_dim=16, word_region=word_region))
    path = save_model(clip, tmp_path / "clip.safetensors", "clip")
    folder = build_tiny_folder(tmp_path / "w")
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    loaded = load_model(path, "clip")
    assert torch.equal(torch.random.get_rng_state(), before)
    TextToImage.from_folder(folder, "cpu")
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), clip.state_dict().values(), strict=True))
    assert activation.xavier_uniform_ is torch.nn.init.xavier_uniform_  # (put back after the load)


@pytest.mark.parametrize("fsq_levels", [(), (2, 4, 4)])
def test_a_hard_dvae_pass_trains_the_decoder_and_codebook_alone_with_either_bottleneck(fsq_levels: tuple[int, ...]):
    """models/dvae.py: "hard=True decodes the argmax codes, exactly as at inference: gradients then reach only the
    decoder (and codebook)". With FSQ the rounding's straight-through gradient reached the encoder too (the docstring
    said FSQ ignores hard), so a hard pass with the encoder left trainable moved the codes it was to keep."""
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    torch.manual_seed(0)
    model = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=math.prod(fsq_levels) if fsq_levels else 32, n_hid=8,
                            code_dim=8, fsq_levels=fsq_levels))
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    _, loss, _ = model(images, hard=True)
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.decoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.codebook.parameters())
    soft = DVAE(model.cfg)
    soft.load_state_dict(model.state_dict())
    soft(images)[1].backward()  # (without hard, FSQ's encoder learns through the rounding)
    assert fsq_levels == () or any(p.grad is not None and p.grad.any() for p in soft.encoder.parameters())
