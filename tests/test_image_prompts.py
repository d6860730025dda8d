"""Image prompts: kept codes stay, marked cells are drawn, the fit score, negative guidance, strength,
masks, `--from` reproduction and bad inputs, on tiny models built here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import pipeline
from t2i_cli.errors import UsageError
from t2i_cli.image_prompt import ImagePrompt, keep_top_cells, redrawn_cells
from t2i_cli.images import load_mask_cells
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.pipeline import TextToImage, batch_seed
from t2i_cli.sampling import SamplingConfig, draw_codes, generate_codes, guide

CFG = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=4, n_layer=2, n_head=2, n_embd=32)


def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(CFG).eval()


def prompts(b: int = 3):
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, 15, (b, CFG.text_len), generator=g)
    known = torch.randint(0, CFG.image_vocab, (b, CFG.n_image), generator=g)
    keep = torch.rand(b, CFG.n_image, generator=g) < 0.5
    keep[:, :3] = True  # a leading run kept in every row: read in one pass
    return text, torch.full((CFG.text_len,), 19), known, keep


@pytest.mark.parametrize("guidance", [1.0, 3.0])
@pytest.mark.parametrize("use_cache", [True, False])
def test_kept_codes_are_never_changed_and_marked_cells_are_drawn(guidance, use_cache):
    text, empty, known, keep = prompts()
    cfg = SamplingConfig(guidance=guidance, use_cache=use_cache)
    codes, _ = draw_codes(model(), text, empty, cfg, torch.Generator().manual_seed(0), known=known, keep=keep)
    assert torch.equal(codes[keep], known[keep])
    assert (codes[~keep] != known[~keep]).float().mean() > 0.6  # 16 codes: a draw repeats its source 1 in 16


def test_cache_and_recompute_agree_with_an_image_prompt():
    text, empty, known, keep = prompts()
    a = draw_codes(model(), text, empty, SamplingConfig(), torch.Generator().manual_seed(4), known=known, keep=keep)
    b = draw_codes(model(), text, empty, SamplingConfig(use_cache=False), torch.Generator().manual_seed(4),
                   known=known, keep=keep)
    assert torch.equal(a[0], b[0])
    assert torch.allclose(a[1], b[1], atol=1e-4)


def test_no_image_prompt_is_plain_decoding_bit_for_bit():
    text, empty, known, _ = prompts()
    plain = generate_codes(model(), text, empty, SamplingConfig(), torch.Generator().manual_seed(2))
    none_kept = torch.zeros_like(known, dtype=torch.bool)
    codes, logprob = draw_codes(model(), text, empty, SamplingConfig(), torch.Generator().manual_seed(2),
                                known=known, keep=none_kept)
    assert torch.equal(plain, codes)
    assert torch.equal(logprob, torch.zeros(3))  # nothing kept, nothing scored


def test_fit_is_the_log_probability_of_the_kept_codes_after_the_first_draw():
    text, empty, known, keep = prompts()
    m = model()
    codes, logprob = draw_codes(m, text, empty, SamplingConfig(guidance=1.0), torch.Generator().manual_seed(0),
                                known=known, keep=keep)
    with torch.no_grad():
        logits, _ = m(text, codes)  # (B, N, V): position i's logits given everything before it
    logp = torch.log_softmax(logits.float(), dim=-1).gather(2, codes.unsqueeze(-1)).squeeze(-1)
    after_draw = (~keep).int().cumsum(dim=1) > 0
    expected = (logp * (keep & after_draw)).sum(dim=1)
    assert (keep & after_draw).sum() > 0
    assert torch.allclose(logprob, expected, atol=1e-4)


def test_negative_guidance_equals_the_formula():
    """Greedy decoding (top-k 1) with a negative prompt picks argmax(neg + s * (cond - neg)) at every step."""
    m, s = model(), 2.5
    text, _, _, _ = prompts(2)
    negative = torch.tensor([7, 8, 9, 19, 19])
    cfg = SamplingConfig(guidance=s, top_k=1)
    codes, _ = draw_codes(m, text, negative, cfg, torch.Generator().manual_seed(0))
    expected = torch.zeros(2, CFG.n_image, dtype=torch.long)
    with torch.no_grad():
        for i in range(CFG.n_image):
            cond = m.image_logits(text, expected[:, :i])
            neg = m.image_logits(negative.expand(2, -1), expected[:, :i])
            expected[:, i] = (neg + s * (cond - neg)).argmax(dim=-1)
            assert torch.allclose(guide(cond, neg, s), neg + s * (cond - neg))
    assert torch.equal(codes, expected)
    plain, _ = draw_codes(m, text, torch.full((5,), 19), cfg, torch.Generator().manual_seed(0))
    assert not torch.equal(plain, codes)  # pushing away from another text changes what is drawn


def test_keep_top_cells():
    keep = keep_top_cells(4, 0.5).view(4, 4)
    assert keep[:2].all() and not keep[2:].any()
    assert keep_top_cells(4, 0.01).view(4, 4).sum() == 4  # at least one row
    assert keep_top_cells(4, 0.99).view(4, 4).sum() == 12  # at least one row drawn
    for bad in (0.0, 1.0, -0.5, 1.5):  # both ends excluded, and said so ("between 0 and 1" refused 1)
        with pytest.raises(UsageError, match=r"^keep_top must be in \(0, 1\), above 0 and below 1"):
            keep_top_cells(4, bad)


def test_mask_cells_mark_any_light_pixel_of_a_centre_crop(tmp_path):
    m = Image.new("L", (30, 10), 0)  # a 10 x 10 centre crop: columns 10..19
    m.putpixel((10, 0), 200)  # crop (0, 0): cell (0, 0) of a 4 x 4 grid
    m.putpixel((19, 9), 128)  # crop (9, 9): the last cell
    m.putpixel((15, 5), 127)  # not light: 127 is not above 127
    m.putpixel((2, 5), 255)  # outside the crop
    m.save(tmp_path / "m.png")
    cells = load_mask_cells(tmp_path / "m.png", 4)
    assert cells.shape == (4, 4)
    assert cells.nonzero().tolist() == [[0, 0], [3, 3]]


def test_variation_strength_redraws_that_many_cells_and_moves_further(tiny_weights):
    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    n_codes = pipe.bundle.transformer.cfg.n_image
    source = torch.randint(0, pipe.bundle.dvae.cfg.n_codes, (n_codes,), generator=torch.Generator().manual_seed(3))
    changed = []
    for s in (0.125, 0.5, 1.0):
        image = ImagePrompt("vary", source, "0" * 64, strength=s)
        keep = image.keep_masks(6, torch.Generator().manual_seed(0))
        assert (~keep).sum(dim=1).tolist() == [redrawn_cells(n_codes, s)] * 6
        assert s == 1.0 or len({tuple(k.tolist()) for k in keep}) > 1  # each image redraws its own cells
        request = pipe.request("a red bird")
        gen = torch.Generator().manual_seed(batch_seed(0, 0))
        keep = image.keep_masks(6, gen)
        codes, _ = draw_codes(pipe.bundle.transformer, torch.tensor(request.encoded.ids).expand(6, -1),
                              torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len)), request.sampling, gen,
                              known=source.expand(6, -1), keep=keep)
        assert torch.equal(codes[keep], source.expand(6, -1)[keep])
        changed.append(float((codes != source).float().mean()))
    assert changed[0] < changed[1] < changed[2]


def test_redraws_keep_the_best_fit(tiny_weights):
    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    n_codes = pipe.bundle.transformer.cfg.n_image
    source = torch.randint(0, pipe.bundle.dvae.cfg.n_codes, (n_codes,), generator=torch.Generator().manual_seed(3))
    keep = torch.ones(n_codes, dtype=torch.bool)
    keep[5:7] = False  # two cells in the second row: kept codes follow them
    fits = {}
    for k in (1, 4):
        image = ImagePrompt("inpaint", source, "0" * 64, keep=keep, mask_sha256="1" * 64, redraws=k)
        batches = pipe.batches(pipe.request("a red bird"), 3, 0, None, image)
        fits[k] = [g.fit for batch in batches for g in batch]
    assert all(math.isfinite(f) and f < 0 for f in fits[1] + fits[4])
    assert sum(fits[4]) / 3 > sum(fits[1]) / 3  # the best of 4 fits the kept codes better than one draw


# ---- the command line ---------------------------------------------------------------------------------

def source_png(tmp_path: Path, name: str = "src.png") -> Path:
    path = tmp_path / name
    Image.new("RGB", (40, 30), (200, 40, 40)).save(path)
    return path


def mask_png(tmp_path: Path, box=(20, 0, 40, 40), name: str = "mask.png", size=(40, 30)) -> Path:
    """A mask the shape of source_png (or of size), light inside box."""
    path = tmp_path / name
    m = Image.new("L", size, 0)
    if box:
        m.paste(255, box)
    m.save(path)
    return path


def pixels(path: Path) -> bytes:
    with Image.open(path) as im:
        return im.convert("RGB").tobytes()


def test_from_reproduces_a_plain_image_alone_in_a_later_batch(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = run("generate", "a red bird", "--n", 20, "--seed", 5, "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    first = out / "a-red-bird-017.png"  # in the second batch of 16
    r = run("generate", "--from", first, "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert Path(r.stdout.strip()) == out / "a-red-bird-020.png"
    assert Path(r.stdout.strip()).read_bytes() == first.read_bytes()


@pytest.mark.parametrize("how", [["--keep-top", "0.25"], ["--mask", "MASK", "--redraws", "3"], ["vary"]])
def test_image_prompt_outputs_record_their_sources_and_redraw_the_same_pixels(tiny_weights, tmp_path, how):
    src, mask = source_png(tmp_path), mask_png(tmp_path)
    out = tmp_path / "out"
    if how[0] == "vary":
        r = run("vary", src, "--prompt", "a red bird", "--strength", 0.4, "--n", 3, "--negative", "a blue fish",
                "--weights", tiny_weights, "--out", out, "-q")
    else:
        args = [mask if a == "MASK" else a for a in how]
        r = run("generate", "a red bird", "--image", src, *args, "--n", 3, "--weights", tiny_weights,
                "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    made = [Path(p) for p in r.stdout.split()]
    assert len(made) == 3
    with Image.open(made[2]) as im:
        meta = json.loads(im.text["t2i"])
    assert meta["image_sha256"] == __import__("hashlib").sha256(src.read_bytes()).hexdigest()
    assert meta["image_mode"] == {"vary": "vary", "--keep-top": "complete", "--mask": "inpaint"}[how[0]]
    if how[0] == "--mask":
        assert meta["mask_sha256"] == __import__("hashlib").sha256(mask.read_bytes()).hexdigest()
        assert meta["redraws"] == "3"
    if how[0] == "vary":
        assert meta["strength"] == "0.4" and meta["negative"] == "a blue fish"
    again = ["--mask", mask] if how[0] == "--mask" else []
    r = run("generate", "--from", made[2], "--image", src, *again, "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert pixels(Path(r.stdout.strip())) == pixels(made[2])
    assert pixels(made[0]) != pixels(made[2])
    # the wrong source, or none, is refused with one line
    other = source_png(tmp_path, "other.png")
    Image.new("RGB", (40, 30), (10, 40, 200)).save(other)
    for args, says in (([], "redraw it with --from"), (["--image", other, *again], "sha256 differs")):
        r = run("generate", "--from", made[2], *args, "--weights", tiny_weights, "--out", out, "-q")
        assert r.exit_code == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def edited_png(src: Path, dst: Path, **changes: str | None) -> Path:
    """A copy of a t2i PNG whose recorded settings (its `t2i` text chunk) are changed as given (None: removed)."""
    from PIL import PngImagePlugin

    with Image.open(src) as im:
        im.load()
        text = dict(im.text)
        settings = {k: v for k, v in (json.loads(text["t2i"]) | changes).items() if v is not None}
        text["t2i"] = json.dumps(settings, sort_keys=True)
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        im.save(dst, pnginfo=info)
    return dst


@pytest.mark.parametrize("how, changes, says", [
    ([], {"precision": "fp64"}, "its t2i setting precision='fp64' is not one t2i writes (fp32, bf16, int8)"),
    ([], {"precision": "auto"}, "its t2i setting precision='auto' is not one t2i writes"),
    ([], {"device": "tpu"}, "its t2i setting device='tpu' is not one t2i writes (cpu, cuda)"),
    ([], {"jacobi": "999"}, "a t2i setting it records is out of range (jacobi must be in 0..64"),
    ([], {"top_k": "99999"}, "out of range (top_k must be in 0..32 (0 = off), got 99999)"),  # the model's codes
    ([], {"temperature": "abc"}, "its t2i setting temperature='abc' is not valid; was the PNG edited?"),
    (["--keep-top", "0.25"], {"keep_top": "2"}, "out of range (keep_top must be in (0, 1), above 0 and below 1"),
    (["--mask", "MASK"], {"redraws": "0"}, "out of range (redraws must be in 1..16, got 0)"),
    # tokenizing half a megabyte of prompt took minutes
    ([], {"prompt": "a red bird " * 12000},
     "its recorded prompt is 132,000 characters long, more than the 131,072 characters"),
    ([], {"negative": "x" * 140000}, "its recorded negative is 140,000 characters long"),
    # combinations a command line cannot give were answered as flags (--negative, --redraws), exit 2
    ([], {"negative": "   "}, "do not go together (negative is empty"),
    ([], {"negative": "x", "guidance": "1.0"}, "do not go together (negative works through guidance"),
    (["--keep-top", "0.25"], {"redraws": "4"}, "do not go together (redraws belongs to mask"),
    # an inpainting PNG's jacobi was refused as the flag (--jacobi, exit 2)
    (["--mask", "MASK"], {"jacobi": "8"}, "do not go together (jacobi does not combine with an image prompt"),
    # a mask's hash removed said "MASK is not the mask ... (its sha256 differs)" (exit 2); a setting too many
    # "lacks its keep_top or strength"
    (["--mask", "MASK"], {"mask_sha256": None}, "(inpaint) records none of keep_top, mask_sha256 or strength, "
                                                "where t2i records mask_sha256 alone"),
    (["--mask", "MASK"], {"keep_top": "0.5"}, "records keep_top and mask_sha256, where t2i records mask_sha256"),
    (["--keep-top", "0.25"], {"strength": "0.5"}, "records keep_top and strength, where t2i records keep_top"),
    # int() took these as 1; a lone surrogate reached the tokenizer (TypeError: an internal error)
    ([], {"seed": "\u0661"}, "its t2i setting seed='\u0661' is not valid"),
    ([], {"seed": " 1 "}, "its t2i setting seed=' 1 ' is not valid"),
    ([], {"n": "0_1"}, "its t2i setting n='0_1' is not valid"),
    ([], {"prompt": "a red \ud800 bird"}, "its recorded prompt holds a lone surrogate"),
    ([], {"negative": "x\udfff"}, "its recorded negative holds a lone surrogate"),
    # an index past n was refused as a flag (exit 2); a seed past 2**63 reached manual_seed
    ([], {"index": "5", "n": "2"}, "its recorded seed, n or index is out of range"),
    ([], {"seed": str(2**64)}, "its recorded seed, n or index is out of range"),
    ([], {"n": "100000"}, "its recorded seed, n or index is out of range"),
    (["--keep-top", "0.25"], {"image_mode": "bogus"}, "its recorded image prompt is incomplete (mode 'bogus')"),
])
def test_from_a_png_whose_settings_were_edited_blames_the_png_not_a_flag(tiny_weights, tmp_path, how, changes, says):
    """An edited precision said "--precision must be one of ..." (exit 2), a flag --from does not even take."""
    src, mask = source_png(tmp_path), mask_png(tmp_path)
    prompt = ["--image", src, *[mask if a == "MASK" else a for a in how]] if how else []
    r = run("generate", "a red bird", *prompt, "--weights", tiny_weights, "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.stderr
    made = Path(r.stdout.strip())
    bad = edited_png(made, tmp_path / "bad.png", **changes)
    again = ["--image", src, *(["--mask", mask] if "--mask" in how else [])] if how else []
    r = run("generate", "--from", bad, *again, "--weights", tiny_weights, "--out", tmp_path / "o", "-q")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {bad}: ") and says in lines[0] and "was the PNG edited?" in lines[0], lines
    assert lines[0].count("was the PNG edited?") == 1 and lines[0].count(str(bad)) == 1, lines  # said once
    assert f"--{next(iter(changes)).replace('_', '-')}" not in lines[0] and not (tmp_path / "o").exists()
    r = run("generate", "--from", made, *again, "--weights", tiny_weights, "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.stderr  # the PNG as t2i wrote it redraws


def test_from_a_png_whose_settings_nest_thousands_deep_is_one_line(tiny_weights, tmp_path):
    """JSON nested 200,000 deep in the `t2i` text chunk was an internal error (RecursionError)."""
    from PIL import PngImagePlugin

    for nested in ("[" * 200_000 + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        info = PngImagePlugin.PngInfo()
        info.add_itxt("t2i", nested, zip=True)
        Image.new("RGB", (16, 16)).save(tmp_path / "deep.png", pnginfo=info)
        line = one_line_failure(run("generate", "--from", tmp_path / "deep.png", "--weights", tiny_weights,
                                    "--out", tmp_path / "o"), 1)
        assert "its t2i settings are not a JSON object of strings; was it edited?" in line, line


def test_from_with_weights_of_fewer_codes_names_the_weights_not_an_edit(tiny_weights, tmp_path):
    """A PNG drawn with a top_k that other weights' codebook cannot give said "was the PNG edited?"."""
    import shutil

    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.weights import load_model, save_model

    r = run("generate", "a red bird", "--top-k", "30", "--weights", tiny_weights, "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.stderr
    made = Path(r.stdout.strip())
    fewer = tmp_path / "fewer"
    shutil.copytree(tiny_weights, fewer)
    cfg = load_model(tiny_weights / "transformer.safetensors", "transformer").cfg
    save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=16, n_hid=8, code_dim=8)),
               fewer / "dvae.safetensors", "dvae")
    save_model(Transformer(TransformerConfig(**{**cfg.__dict__, "image_vocab": 16})),
               fewer / "transformer.safetensors", "transformer")
    r = run("generate", "--from", made, "--weights", fewer, "--out", tmp_path / "o")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1, r.stderr
    assert "was drawn by weights" in lines[0] and "top_k of 30, more than the 16 codes" in lines[0], lines
    assert "edited" not in lines[0] and not (tmp_path / "o").exists()


def test_vary_takes_its_prompt_from_the_png_text(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = run("generate", "two green cats", "--weights", tiny_weights, "--out", out, "-q")
    made = Path(r.stdout.strip())
    r = run("vary", made, "--n", 1, "--weights", tiny_weights, "--out", out)
    assert r.exit_code == 0, r.stderr
    assert "'two green cats'" in r.stderr
    renamed = tmp_path / "cats.jpg"  # a PNG named .jpg: "none found in the picture; drawing from the empty prompt"
    renamed.write_bytes(made.read_bytes())
    r = run("vary", renamed, "--n", 1, "--weights", tiny_weights, "--out", tmp_path / "r")
    assert r.exit_code == 0 and "'two green cats' (from cats.jpg)" in r.stderr, r.stderr
    with Image.open(r.stdout.strip()) as im:
        assert im.text["prompt"] == "two green cats" and im.text["image_mode"] == "vary"
    # a refusal of the settings is its one line (the prompt line came first, then the refusal)
    (tmp_path / "afile.txt").write_text("not a folder")
    for bad, says in ((["--negative", "x", "--guidance", "1"], "--negative works through guidance"),
                      (["--top-p", "2"], "--top-p")):
        r = run("vary", made, "--n", 1, "--weights", tiny_weights, "--out", out, *bad)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    # and so is one found after the model loads (the prompt line is said once every check has passed)
    for bad, code, says in ((["--device", "cuda"] if not torch.cuda.is_available() else ["--top-k", "99999"], 2,
                             "cuda" if not torch.cuda.is_available() else "--top-k"),
                            (["--out", tmp_path / "afile.txt"], 2, "afile.txt")):
        r = run("vary", made, "--n", 1, "--weights", tiny_weights, *(bad if "--out" in bad else [*bad, "--out", out]))
        assert r.exit_code == code and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    r = run("vary", tmp_path / "afile.txt", "--n", 1, "--weights", tiny_weights, "--out", out)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    zebras = Path(run("generate", "two green zebras", "--weights", tiny_weights, "--out", out, "-q").stdout.strip())
    r = run("vary", zebras, "--n", 1, "--weights", tiny_weights, "--out", out)
    lines = r.stderr.strip().splitlines()  # the warning about the prompt follows the line that names it
    assert r.exit_code == 0 and len(lines) == 2 and lines[0].startswith("prompt: 'two green zebras'"), lines
    assert "not in the tokenizer's vocabulary" in lines[1] and "zebras" in lines[1], lines



def test_vary_names_its_sheet_after_its_images(tiny_weights, tmp_path):
    """vary --grid named its sheet after the prompt (image-grid-000.png beside plain-vary-000.png)."""
    src = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    r = run("vary", src, "--n", 2, "--grid", "--weights", tiny_weights, "--out", tmp_path / "v", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["plain-vary-000.png", "plain-vary-001.png",
                                                                  "plain-vary-grid-000.png"]


def test_vary_refuses_a_contact_sheet_t2i_wrote(tiny_weights, tmp_path):
    """A --grid sheet was varied as one picture (the whole sheet squeezed to one image) from one image's prompt."""
    out = tmp_path / "out"
    r = run("generate", "two green cats", "--n", 2, "--grid", "--weights", tiny_weights, "--out", out, "-q")
    sheet = next(p for p in map(Path, r.stdout.split()) if "grid" in p.name)
    r = run("vary", sheet, "--n", 1, "--weights", tiny_weights, "--out", tmp_path / "v")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and "is a contact sheet t2i wrote" in lines[0], r.stderr
    assert not (tmp_path / "v").exists()
    assert r.stdout == ""
    image = next(p for p in out.glob("*.png") if "grid" not in p.name)
    from PIL import PngImagePlugin

    from t2i_cli.outputs import SHEET_KEY

    old_grid = tmp_path / "two-green-cats-grid-000.png"  # a grid of an older t2i: settings and its name, unmarked
    info = PngImagePlugin.PngInfo()
    with Image.open(sheet) as im:
        for k, v in im.text.items():
            if k != SHEET_KEY:
                info.add_text(k, v)
        im.save(old_grid, pnginfo=info)
    renamed = tmp_path / "sheet.jpg"  # a PNG by its content: its text was read only under a .png name
    renamed.write_bytes(sheet.read_bytes())
    r = run("vary", renamed, "--n", 1, "--weights", tiny_weights, "--out", tmp_path / "v")
    assert r.exit_code == 1 and "is a contact sheet t2i wrote" in r.stderr, r.stderr
    for command in (["vary", old_grid], ["generate", "--from", old_grid]):
        r = run(*command, "--weights", tiny_weights, "--out", tmp_path / "v")
        assert r.exit_code == 1 and "contact sheet" in r.stderr and not (tmp_path / "v").exists(), r.stderr
    # an image whose prompt ends in "grid" is an image (its name is what a sheet's name was)
    r = run("generate", "a grid", "--weights", tiny_weights, "--out", tmp_path / "g", "-q")
    grid_image = Path(r.stdout.strip())
    assert grid_image.name == "a-grid-000.png"
    r = run("vary", grid_image, "--n", 1, "--weights", tiny_weights, "--out", tmp_path / "g", "-q")
    assert r.exit_code == 0, r.stderr
    assert run("vary", image, "--n", 1, "--weights", tiny_weights, "--out", tmp_path / "v", "-q").exit_code == 0


BAD = [
    (["generate", "a cat", "--image", "NOTIMG"], 1, "cannot read image"),
    (["generate", "a cat", "--image", "NOTIMG"], 1, "; give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or AVIF file"),
    (["generate", "a cat", "--image", "FOLDER"], 1, "is a folder; give an image file"),
    (["generate", "a cat", "--image", "MISSING"], 1, "cannot read"),
    (["generate", "a cat", "--image", "SRC", "--mask", "NOTIMG"], 1, "cannot read mask"),
    (["generate", "a cat", "--image", "SRC", "--mask", "FOLDER"], 1, "FOLDER is a folder; give an image file"),
    (["generate", "a cat", "--image", "SRC", "--mask", "EMPTY"], 2, "marks nothing"),
    (["generate", "a cat", "--image", "SRC", "--mask", "FULL"], 2, "marks the whole image"),
    (["generate", "a cat", "--image", "SRC", "--keep-top", "1.5"], 2, "--keep-top"),
    (["generate", "a cat", "--image", "SRC", "--keep-top", "0"], 2, "--keep-top"),
    (["generate", "a cat", "--image", "SRC", "--mask", "MASK", "--keep-top", "0.5"], 2, "use one"),
    (["generate", "a cat", "--image", "SRC", "--redraws", "2"], 2, "--redraws belongs to --mask"),
    (["generate", "a cat", "--image", "SRC", "--mask", "MASK", "--redraws", "0"], 2, "--redraws"),
    (["generate", "a cat", "--mask", "MASK"], 2, "needs --image"),
    (["generate", "a cat", "--keep-top", "0.3"], 2, "needs --image"),
    (["generate", "a cat", "--negative", "a dog", "--guidance", "1"], 2, "--guidance 1"),
    # below 1, guidance draws toward the negative (at 0 the negative alone: it drew a dog for "a cat")
    (["generate", "a cat", "--negative", "a dog", "--guidance", "0"], 2, "--guidance 0 is below 1, where guidance "
                                                                        "draws toward the --negative text"),
    (["generate", "a cat", "--negative", "a dog", "--guidance", "0.5"], 2, "--guidance 0.5 is below 1"),
    (["generate", "a cat", "--negative", "a dog", "--guidance-start", "0.5"], 2, "--guidance-start 0.5 is below 1"),
    (["vary", "SRC", "--negative", "a dog", "--guidance", "0.5"], 2, "--guidance 0.5 is below 1"),
    (["generate", "a cat", "--negative", " "], 2, "--negative is empty"),
    (["generate", "a cat", "--negative", "\u200b"], 2, "--negative is empty"),
    (["generate", "--from", "SRC"], 1, "carries no t2i settings"),
    (["generate", "--from", "NOTIMG"], 1, "cannot read image"),
    (["generate", "--from", "FOLDER"], 1, "is a folder; give an image file"),
    (["generate", "--from", "SRC", "--seed", "3"], 2, "leave out --seed"),
    (["generate", "a cat", "--from", "SRC"], 2, "leave out PROMPT"),
    (["vary", "SRC", "--strength", "0"], 2, "--strength"),
    (["vary", "SRC", "--strength", "1.5"], 2, "--strength"),
    (["vary", "NOTIMG", "--prompt", "a cat"], 1, "cannot read image"),
    (["vary", "MISSING"], 1, "cannot read"),  # said alone: the "prompt: none found" line came first
    # a device or pipe is not read: /dev/zero never ended, a pipe was used up by the hash before decoding
    (["vary", "/dev/null"], 1, "/dev/null is not a regular file (a device, pipe or socket); save the picture"),
    # a tall mask whose white lies outside the centre square t2i crops to "marks nothing to redraw"
    (["generate", "a cat", "--image", "TALL", "--mask", "TALLTOP"], 2, "marks only pixels outside the centre "
                                                                       "100x100 square that t2i draws from"),
    # a picture whole but for 2 MB of text: "cannot read image ...; give a complete PNG"
    (["vary", "TEXTBOMB"], 1, "carries more text (metadata) than t2i reads"),
    (["generate", "--from", "TEXTBOMB"], 1, "save the picture again without its text chunks"),
    (["generate", "a cat", "--image", "/dev/null"], 1, "/dev/null is not a regular file"),
    (["generate", "a cat", "--image", "SRC", "--mask", "/dev/null"], 1, "/dev/null is not a regular file"),
]


@pytest.mark.parametrize("args,code,says", BAD)
def test_bad_image_prompt_inputs_exit_with_one_line_and_no_folder(tiny_weights, tmp_path, args, code, says):
    files = {"SRC": source_png(tmp_path), "MASK": mask_png(tmp_path), "EMPTY": mask_png(tmp_path, None, "e.png"),
             "FULL": mask_png(tmp_path, (0, 0, 40, 40), "f.png"), "MISSING": tmp_path / "missing.png"}
    files["FOLDER"] = tmp_path / "FOLDER"
    files["FOLDER"].mkdir()
    files["NOTIMG"] = tmp_path / "notes.png"
    files["NOTIMG"].write_text("not a picture")
    files["TALL"], files["TALLTOP"] = source_png(tmp_path, "tall.png"), mask_png(tmp_path, (0, 0, 100, 40),
                                                                                "top.png", (100, 200))
    Image.new("RGB", (100, 200), (9, 99, 9)).save(files["TALL"])
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 2_000_000, zip=True)  # a few KB in the file, 2 MB read
    Image.new("RGB", (16, 16)).save(tmp_path / "text.png", pnginfo=info)
    files["TEXTBOMB"] = tmp_path / "text.png"
    out = tmp_path / "out"
    r = run(*[files.get(a, a) for a in args], "--weights", tiny_weights, "--out", out)
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_later_batches_never_repeat_another_seeds_images(tiny_weights):
    """Each batch has its own generator; none of them is another seed's first batch."""
    from t2i_cli.pipeline import MAX_BATCH

    seeds = {batch_seed(s, start) for s in range(64) for start in range(0, 4 * MAX_BATCH, MAX_BATCH)}
    assert len(seeds) == 64 * 4
    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    later = pipe("a red bird", n=MAX_BATCH + 1, seed=0)[MAX_BATCH]
    assert not torch.equal(later.image, pipe("a red bird", n=1, seed=MAX_BATCH)[0].image)


def test_from_redraws_an_inpainting_of_a_later_batch(tiny_weights, tmp_path):
    """--redraws 4 puts 4 images in a batch of 16 rows: image 5 is in the second batch."""
    src, mask = source_png(tmp_path, "square.png"), mask_png(tmp_path, (0, 10, 40, 20), size=(40, 40))
    Image.new("RGB", (40, 40), (30, 160, 60)).save(src)
    out = tmp_path / "out"
    r = run("generate", "a red bird", "--image", src, "--mask", mask, "--n", 6, "--seed", 9, "--weights",
            tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    made = [Path(p) for p in r.stdout.split()]
    r = run("generate", "--from", made[5], "--image", src, "--mask", mask, "--weights", tiny_weights, "--out", out)
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    assert Path(r.stdout.strip()).read_bytes() == made[5].read_bytes()
    with Image.open(made[5]) as im:
        assert im.text["device"] == "cpu" and im.text["redraws"] == "4"


def test_redraws_need_kept_cells_after_the_region(tiny_weights, tmp_path):
    src = tmp_path / "square.png"
    Image.new("RGB", (40, 40), (30, 160, 60)).save(src)
    bottom = mask_png(tmp_path, (0, 30, 40, 40), "bottom.png", (40, 40))  # the last row: no kept cell follows it
    out = tmp_path / "out"
    r = run("generate", "a cat", "--image", src, "--mask", bottom, "--redraws", 3, "--weights", tiny_weights,
            "--out", out)
    assert r.exit_code == 2 and "--redraws 1" in r.stderr and not out.exists()
    r = run("generate", "a cat", "--image", src, "--mask", bottom, "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    with Image.open(r.stdout.strip()) as im:
        assert im.text["redraws"] == "1"  # the default, dropped to what it can do, and recorded so


def test_mask_of_another_shape_is_refused_and_transparent_mask_pixels_are_black(tiny_weights, tmp_path):
    src = tmp_path / "wide.png"
    Image.new("RGB", (80, 40), (30, 160, 60)).save(src)
    square = mask_png(tmp_path)
    r = run("generate", "a cat", "--image", src, "--mask", square, "--weights", tiny_weights, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "shapes differ" in r.stderr
    strokes = Image.new("RGBA", (8, 8), (255, 255, 255, 0))  # white, but transparent: not marked
    strokes.putpixel((0, 0), (255, 255, 255, 255))
    strokes.save(tmp_path / "strokes.png")
    assert load_mask_cells(tmp_path / "strokes.png", 4).nonzero().tolist() == [[0, 0]]


def test_mask_cells_are_disjoint_when_the_crop_is_not_a_multiple_of_the_grid(tmp_path):
    m = Image.new("L", (10, 10), 0)
    m.putpixel((5, 5), 255)  # 10 px over 4 cells: starts 0, 2, 5, 7; pixel 5 is in cell 2 only
    m.save(tmp_path / "m.png")
    assert load_mask_cells(tmp_path / "m.png", 4).nonzero().tolist() == [[2, 2]]
    tiny = Image.new("L", (2, 2), 0)
    tiny.putpixel((1, 1), 255)  # a crop smaller than the grid: each pixel covers two cells
    tiny.save(tmp_path / "t.png")
    assert load_mask_cells(tmp_path / "t.png", 4).nonzero().tolist() == [[2, 2], [2, 3], [3, 2], [3, 3]]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_precision_is_recorded_and_redrawn_and_fp32_is_unchanged(tiny_weights, tmp_path, precision):
    plain = run("generate", "a red bird", "--n", 2, "--weights", tiny_weights, "--out", tmp_path / "a", "-q")
    auto = run("generate", "a red bird", "--n", 2, "--precision", "auto", "--weights", tiny_weights,
               "--out", tmp_path / "b", "-q")
    # The default is auto, and a PNG records what auto chose on this machine (bf16 or int8 on a CPU).
    assert [Path(p).read_bytes() for p in plain.stdout.split()] == [Path(p).read_bytes() for p in auto.stdout.split()]
    with Image.open(plain.stdout.split()[0]) as im:
        assert im.text["precision"] == pipeline.auto_precision(torch.device("cpu"))
    fp32 = run("generate", "a red bird", "--n", 2, "--precision", "fp32", "--weights", tiny_weights,
               "--out", tmp_path / "e", "-q")
    with Image.open(fp32.stdout.split()[0]) as im:
        assert "precision" not in im.text  # fp32 records nothing, so its bytes are those of earlier versions
    half = run("generate", "a red bird", "--n", 2, "--precision", precision, "--weights", tiny_weights,
               "--out", tmp_path / "c", "-q")
    assert half.exit_code == 0, half.stderr
    made = Path(half.stdout.split()[1])
    with Image.open(made) as im:
        assert im.text["precision"] == precision and im.size == (16, 16)
    again = run("generate", "--from", made, "--weights", tiny_weights, "--out", tmp_path / "c", "-q")
    assert again.exit_code == 0, again.stderr
    assert pixels(Path(again.stdout.strip())) == pixels(made)
    for args, says in ((["generate", "a cat", "--precision", "fp8"],
                        "--precision must be one of auto, fp32, bf16, int8"),
                       (["generate", "--from", made, "--precision", "fp32"], "leave out --precision")):
        r = run(*args, "--weights", tiny_weights, "--out", tmp_path / "d")
        assert r.exit_code == 2 and says in r.stderr, r.stderr


def test_from_warns_only_when_the_files_that_draw_differ(tiny_weights, tmp_path):
    """--from redraws the kept candidate by its index, so a folder whose reranker alone differs draws the same
    pixels; it warned 'the image will differ' because the identity covers the rerankers too."""
    import shutil

    from t2i_cli.models.clip import Clip
    from t2i_cli.models.transformer import Transformer
    from t2i_cli.weights import load_model, save_model

    out = tmp_path / "out"
    r = run("generate", "a red bird", "--candidates", 2, "--seed", 4, "--weights", tiny_weights, "--out", out, "-q")
    made = Path(r.stdout.strip())
    with Image.open(made) as im:
        meta = dict(im.text)
    assert meta["generator"] != meta["weights"] and int(meta["index"]) in (0, 1)
    other_clip, other_transformer = tmp_path / "clip2", tmp_path / "tr2"
    for folder in (other_clip, other_transformer):
        shutil.copytree(tiny_weights, folder)
    torch.manual_seed(9)
    save_model(Clip(load_model(tiny_weights / "clip.safetensors", "clip").cfg), other_clip / "clip.safetensors",
               "clip")
    save_model(Transformer(load_model(tiny_weights / "transformer.safetensors", "transformer").cfg),
               other_transformer / "transformer.safetensors", "transformer")

    r = run("generate", "--from", made, "--weights", other_clip, "--out", tmp_path / "a")
    assert r.exit_code == 0 and "will differ" not in r.stderr, r.stderr
    with Image.open(made) as a, Image.open(r.stdout.strip()) as b:
        assert a.tobytes() == b.tobytes() and b.text["generator"] == meta["generator"]
        assert b.text["weights"] != meta["weights"]
    r = run("generate", "--from", made, "--weights", other_transformer, "--out", tmp_path / "b")
    assert r.exit_code == 0 and f"was drawn by weights {meta['weights']}" in r.stderr, r.stderr
    assert "the image will differ" in r.stderr
    (tmp_path / "afile").write_text("mine")  # a refusal after the model loads is its one line, warnings or not
    r = run("generate", "--from", made, "--weights", other_transformer, "--out", tmp_path / "afile")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "afile" in r.stderr, r.stderr

    # A PNG of t2i 0.9.1 records no generator: the whole folder's identity is all there is to compare
    from PIL import PngImagePlugin

    old = {k: v for k, v in meta.items() if k != "generator"}
    old["t2i"] = json.dumps({k: v for k, v in json.loads(meta["t2i"]).items() if k != "generator"}, sort_keys=True)
    info = PngImagePlugin.PngInfo()
    for k, v in old.items():
        info.add_text(k, v)
    with Image.open(made) as im:
        im.save(tmp_path / "old.png", pnginfo=info)
    r = run("generate", "--from", tmp_path / "old.png", "--weights", tiny_weights, "--out", tmp_path / "c")
    assert r.exit_code == 0 and "will differ" not in r.stderr, r.stderr
    r = run("generate", "--from", tmp_path / "old.png", "--weights", other_clip, "--out", tmp_path / "d")
    assert r.exit_code == 0 and "the image will differ" in r.stderr, r.stderr


def test_a_t2i_png_records_its_codes_and_vary_starts_from_them(tiny_weights, tmp_path):
    """A generated PNG records the dVAE codes it was decoded from; `vary` of it starts from them where they still
    decode to its pixels, so --strength S redraws at most S of the cells (the dVAE's reading of a decoded picture
    differs from the codes drawn: with it vary moved more than asked). An edited picture is read as before."""
    from t2i_cli.image_prompt import CODES_KEY, codes_text, recorded_codes, source_codes
    from t2i_cli.images import load_rgb, read_png_text, tensor_from_image
    from t2i_cli.weights import load_folder

    out = tmp_path / "out"
    # (fp32: on a CPU with native bf16, auto decodes in bf16, a level off the fp32 decode below)
    made = Path(run("generate", "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out", out,
                    "-q", "--precision", "fp32").stdout.strip())
    dvae = load_folder(tiny_weights, "cpu").dvae
    n = dvae.cfg.grid ** 2
    text = read_png_text(made)
    codes = recorded_codes(text, n, dvae.cfg.n_codes)
    assert codes is not None and codes.shape == (n,) and CODES_KEY not in json.loads(text["t2i"])  # not a setting
    drawn = dvae.image_from_codes(codes.view(1, dvae.cfg.grid, dvae.cfg.grid))[0]
    with Image.open(made) as im:  # they are the codes of this picture
        assert torch.equal(tensor_from_image(im.convert("RGB")), tensor_from_image(
            Image.fromarray((drawn.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())))
    encoded = dvae.codes_from_image(tensor_from_image(load_rgb(made, dvae.cfg.image_side)).unsqueeze(0)).flatten()
    assert torch.equal(source_codes(dvae, made), codes)
    varied = Path(run("vary", made, "--n", "1", "--strength", "0.25", "--seed", "3", "--weights", tiny_weights,
                      "--out", tmp_path / "v", "-q").stdout.strip())
    moved = recorded_codes(read_png_text(varied), n, dvae.cfg.n_codes)
    assert moved is not None and 0 < int((moved != codes).sum()) <= redrawn_cells(n, 0.25)
    # an edited picture (a dot painted) is the dVAE's reading of it, as any other picture
    with Image.open(made) as im:
        edited = im.convert("RGB")
    edited.putpixel((3, 3), (0, 255, 0))
    edited.save(tmp_path / "edited.png", pnginfo=_text_info(text))
    assert read_png_text(tmp_path / "edited.png")[CODES_KEY] == text[CODES_KEY]
    edited_codes = dvae.codes_from_image(tensor_from_image(edited).unsqueeze(0)).flatten()
    assert torch.equal(source_codes(dvae, tmp_path / "edited.png"), edited_codes)
    if not torch.equal(encoded, codes):  # (the tiny model may read its own picture back exactly)
        assert not torch.equal(source_codes(dvae, tmp_path / "edited.png"), codes)
    # so is one tinted by a few levels over a patch (a whole-picture mean let a corner's tint through), while a
    # decode a level or two off everywhere (another precision of the decoder) is still the picture
    import numpy as np

    with Image.open(made) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
    for name, change, recorded in (("tint", (slice(0, 8), slice(0, 8), 2), 6), ("near", (..., 0), 1)):
        moved = pixels.copy()
        moved[change] = np.clip(moved[change] + recorded * np.where(moved[change] > 127, -1, 1), 0, 255)
        Image.fromarray(moved.astype(np.uint8)).save(tmp_path / f"{name}.png", pnginfo=_text_info(text))
    assert not torch.equal(source_codes(dvae, tmp_path / "tint.png"), codes) or torch.equal(
        dvae.codes_from_image(tensor_from_image(Image.open(tmp_path / "tint.png").convert("RGB")).unsqueeze(0))
        .flatten(), codes)
    assert torch.equal(source_codes(dvae, tmp_path / "near.png"), codes)
    # text that is not n codes below the codebook's size is no codes: never read past n
    assert codes_text(codes) == text[CODES_KEY]
    for bad in (text[CODES_KEY][:-4], text[CODES_KEY] + "AAAA", "!" * len(text[CODES_KEY]),
                codes_text(torch.full((n,), dvae.cfg.n_codes))):
        assert recorded_codes({CODES_KEY: bad}, n, dvae.cfg.n_codes) is None
    assert recorded_codes({}, n, dvae.cfg.n_codes) is None


def _text_info(text: dict[str, str]):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    return info
