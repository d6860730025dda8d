"""weights: save/load round trips, strict refusal of wrong, broken and pickle files, folder checks and hashing."""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from t2i_cli.errors import WeightsError
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.weights import FORMAT, folder_hash, load_folder, load_model, load_tensors, save_model, save_tensors

DCFG = DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8)
TCFG = TransformerConfig(text_vocab=30, text_len=6, image_vocab=32, grid=4, n_layer=1, n_head=2, n_embd=16)
CCFG = ClipConfig(image_side=16, text_vocab=30, text_len=6, n_pad_start=24, n_hid=8, n_embd=16, n_layer=1,
                  n_head=2, embed_dim=8)
BUILDERS = {"dvae": lambda: DVAE(DCFG), "transformer": lambda: Transformer(TCFG), "clip": lambda: Clip(CCFG)}


def build(kind: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = BUILDERS[kind]()
    with torch.no_grad():  # make every tensor non-trivial (zero biases, unit norms) so a lost value shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_round_trip_gives_identical_state(kind, tmp_path):
    model = build(kind)
    path = save_model(model, tmp_path / f"{kind}.safetensors", kind)
    loaded = load_model(path, kind)
    assert type(loaded) is type(model)
    assert loaded.cfg == model.cfg
    assert not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert b[k].dtype == a[k].dtype, k
        assert torch.equal(a[k], b[k]), k
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["t2i"])  # all t2i metadata is one sorted JSON object
    assert meta["format"] == FORMAT and meta["kind"] == kind
    assert json.loads(meta["config"]) == json.loads(json.dumps(model.cfg.__dict__))  # tuples are JSON lists
    assert type(model.cfg)(**json.loads(meta["config"])) == model.cfg


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_a_file_with_nan_or_infinite_weights_is_refused_at_load(kind, poison, tmp_path):
    """A diverged run's or a damaged file's weights would draw black or noisy pictures (or fail in sampling):
    one NaN or infinity in any floating tensor, fp32 or fp16, is refused, naming the tensor; the clean file loads."""
    model = build(kind)
    state = model.state_dict()
    name = sorted(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)[-1]
    for half in (False, True):
        clean = save_model(model, tmp_path / f"clean-{half}.safetensors", kind, half=half)
        tensors, meta = load_tensors(clean)
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[1] = poison
        bad = save_tensors(tmp_path / f"bad-{half}.safetensors", tensors, meta)
        with pytest.raises(WeightsError, match=rf"NaN or infinite weights \(1 tensor, e\.g\. {re.escape(name)}\)"):
            load_model(bad, kind)
        load_model(clean, kind)


@pytest.mark.parametrize("half", [False, True])
def test_a_loaded_model_owns_its_memory_when_its_file_is_overwritten_in_place(half, tmp_path):
    """Loading assigns the file's tensors to the model (no random init, no second copy); they must not stay
    views of the file's memory map: another model copied over the file (as `cp` does) leaves it as it was."""
    path = save_model(build("transformer", seed=0), tmp_path / "t.safetensors", "transformer", half=half)
    loaded = load_model(path, "transformer")
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    other = save_model(build("transformer", seed=1), tmp_path / "other.safetensors", "transformer", half=half)
    with open(path, "r+b") as f:  # same size, same header: rewrite the bytes in place
        f.write(other.read_bytes())
    assert all(torch.equal(v, before[k]) for k, v in loaded.state_dict().items())
    again = load_model(path, "transformer").state_dict()
    assert not torch.equal(again["blocks.0.attn.qkv.weight"], before["blocks.0.attn.qkv.weight"])


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_half_round_trip_is_fp16_close_and_loads_as_fp32(kind, tmp_path):
    model = build(kind)
    path = save_model(model, tmp_path / f"{kind}.safetensors", kind, half=True)
    tensors, _ = load_tensors(path)
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    full_size = save_model(model, tmp_path / "full.safetensors", kind).stat().st_size
    assert path.stat().st_size < 0.6 * full_size
    loaded = load_model(path, kind).state_dict()
    for k, v in model.state_dict().items():
        got = loaded[k]
        assert got.dtype == v.dtype == torch.float32, k
        assert torch.equal(got, v.half().float()), k  # exactly what fp16 storage keeps
        assert torch.allclose(got, v, rtol=1e-3, atol=1e-4), k


def test_load_model_of_another_kind_is_refused(tmp_path):
    path = save_model(build("dvae"), tmp_path / "dvae.safetensors", "dvae")
    with pytest.raises(WeightsError, match="not a t2i transformer file"):
        load_model(path, "transformer")


def test_plain_safetensors_without_metadata_is_refused(tmp_path):
    path = save_tensors(tmp_path / "x.safetensors", {"w": torch.zeros(2)}, {})
    with pytest.raises(WeightsError, match="not a t2i dvae file"):
        load_model(path, "dvae")


def test_config_shape_mismatch_is_refused(tmp_path):
    model = build("transformer")
    other = TransformerConfig(**{**TCFG.__dict__, "n_embd": 32})
    meta = {"format": FORMAT, "kind": "transformer", "config": json.dumps(other.__dict__)}
    path = save_tensors(tmp_path / "t.safetensors", model.state_dict(), meta)
    with pytest.raises(WeightsError, match="does not match its model.*shape"):
        load_model(path, "transformer")


def test_missing_and_extra_tensors_are_refused(tmp_path):
    model = build("dvae")
    state = dict(model.state_dict())
    meta = {"format": FORMAT, "kind": "dvae", "config": json.dumps(DCFG.__dict__)}
    missing = {k: v for k, v in state.items() if k != "codebook.weight"}
    path = save_tensors(tmp_path / "a.safetensors", missing, meta)
    with pytest.raises(WeightsError, match="missing codebook.weight"):
        load_model(path, "dvae")
    path = save_tensors(tmp_path / "b.safetensors", {**state, "stowaway": torch.zeros(1)}, meta)
    with pytest.raises(WeightsError, match="unexpected stowaway"):
        load_model(path, "dvae")


def test_metadata_nested_too_deeply_or_without_a_config_is_refused_in_one_line(tmp_path):
    """Metadata nested 100,000 deep was an internal error (RecursionError); a file without a config a KeyError
    shown as "('config')"."""
    from safetensors.torch import save_file

    from t2i_cli.weights import read_metadata

    deep = tmp_path / "deep.safetensors"
    save_file(build("clip").state_dict(), str(deep), metadata={"t2i": "[" * 100_000 + "]" * 100_000})
    for read in (read_metadata, lambda p: load_model(p, "clip")):
        with pytest.raises(WeightsError, match="has unreadable t2i metadata"):
            read(deep)
    bare = save_tensors(tmp_path / "bare.safetensors", build("clip").state_dict(), {"format": FORMAT, "kind": "clip"})
    with pytest.raises(WeightsError, match="bare.safetensors carries no clip config"):
        load_model(bare, "clip")


def test_unusable_config_is_refused(tmp_path):
    meta = {"format": FORMAT, "kind": "dvae", "config": json.dumps({**DCFG.__dict__, "downsample": 3})}
    path = save_tensors(tmp_path / "d.safetensors", build("dvae").state_dict(), meta)
    with pytest.raises(WeightsError, match="unusable dvae config"):
        load_model(path, "dvae")
    meta["config"] = json.dumps({"no_such_field": 1})
    path = save_tensors(tmp_path / "e.safetensors", build("dvae").state_dict(), meta)
    with pytest.raises(WeightsError, match="unusable dvae config"):
        load_model(path, "dvae")


@pytest.mark.parametrize("kind, change, named", [("dvae", {"pixel_eps": float("nan")}, "pixel_eps is nan"),
                                                  ("clip", {"attn_sharpness": float("inf")}, "attn_sharpness is inf"),
                                                  ("clip", {"image_side": 0}, "image_side is 0"),
                                                  # its four poolings left nothing: "Output size is too small"
                                                  ("clip", {"image_side": 8}, "image_side must be at least 16"),
                                                  ("transformer", {"n_embd": 0}, "n_embd is 0")])
def test_a_config_with_a_non_finite_setting_or_a_zero_size_is_refused_at_load(kind, change, named, tmp_path):
    model = build(kind)
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps({**model.cfg.__dict__, **change})}
    path = save_tensors(tmp_path / f"{kind}.safetensors", model.state_dict(), meta)
    with pytest.raises(WeightsError, match=named):
        load_model(path, kind)


@pytest.mark.parametrize("change, named", [
    ({"widths": []}, r"widths takes a non-empty list of integers.*got \[\]"),
    ({"widths": None}, "widths takes a non-empty list"),
    ({"widths": 8}, "widths takes a non-empty list"),
    ({"widths": [8.5, 8]}, "widths takes a non-empty list"),
    ({"widths": [[4], 8]}, "widths takes a non-empty list"),
    ({"widths": [0, 8]}, r"widths is \[0, 8\]; a size must be at least 1"),
    ({"crop": 16.0}, "crop is 16.0, not an integer"),
    ({"n_classes": True}, "n_classes is true, not an integer"),
    ({"n_classes": "12"}, 'n_classes is "12", not an integer'),
])
def test_a_judge_config_with_a_malformed_field_is_refused_at_load(change, named, tmp_path):
    """A judge file's config is JSON anyone can edit: `widths: []` failed with an IndexError, a float crop only
    when the judge ran; each is one WeightsError naming the field, before the model is built."""
    from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier

    cfg = JudgeConfig(crop=16, widths=(4, 8))
    model = ObjectClassifier(cfg)
    assert load_model(save_model(model, tmp_path / "ok.safetensors", "judge"), "judge").cfg == cfg
    meta = {"format": FORMAT, "kind": "judge", "config": json.dumps({**cfg.__dict__, **change})}
    path = save_tensors(tmp_path / "judge.safetensors", model.state_dict(), meta)
    with pytest.raises(WeightsError, match=f"judge.safetensors carries an unusable judge config .*{named}"):
        load_model(path, "judge")


@pytest.mark.parametrize("kind, change, named", [("dvae", {"n_hid": 8.0}, "n_hid is 8.0, not an integer"),
                                                  ("clip", {"word_region": 1}, "word_region is 1, not true or false"),
                                                  ("transformer", {"dropout": "0"}, 'dropout is "0", not a number'),
                                                  ("dvae", {"fsq_levels": [4.0, 8]}, "fsq_levels takes a list")])
def test_a_config_field_of_the_wrong_type_is_refused_at_load(kind, change, named, tmp_path):
    model = build(kind)
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps({**model.cfg.__dict__, **change})}
    path = save_tensors(tmp_path / f"{kind}.safetensors", model.state_dict(), meta)
    with pytest.raises(WeightsError, match=named):
        load_model(path, kind)


@pytest.mark.parametrize("kind, renamed", [("dvae", {"image_side": "image_size"}),
                                           ("clip", {"image_side": "image_size"}),
                                           ("transformer", {"grid": "image_side"})])
def test_files_with_the_old_config_field_names_still_load(kind, renamed, tmp_path):
    """Files written before `side` meant only pixels (the shipped weights among them) load unchanged."""
    model = build(kind)
    old = {renamed.get(k, k): v for k, v in model.cfg.__dict__.items()}
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps(old)}
    path = save_tensors(tmp_path / f"{kind}.safetensors", model.state_dict(), meta)
    loaded = load_model(path, kind)
    assert loaded.cfg == model.cfg
    assert all(torch.equal(a, b)
               for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True))


def test_negative_dimension_in_config_is_refused(tmp_path):
    meta = {"format": FORMAT, "kind": "dvae", "config": json.dumps({**DCFG.__dict__, "n_codes": -1})}
    path = save_tensors(tmp_path / "neg.safetensors", build("dvae").state_dict(), meta)
    with pytest.raises(WeightsError, match="neg.safetensors"):
        load_model(path, "dvae")


def test_huge_dimension_in_config_is_refused_before_allocating(tmp_path, monkeypatch):
    """A hostile config (n_hid = 2**30) must be refused without building the model."""
    import t2i_cli.weights as weights_mod

    meta = {"format": FORMAT, "kind": "dvae", "config": json.dumps({**DCFG.__dict__, "n_hid": 2**30})}
    path = save_tensors(tmp_path / "huge.safetensors", build("dvae").state_dict(), meta)
    built = []
    monkeypatch.setitem(weights_mod.MODELS, "dvae", (lambda cfg: built.append(cfg), DVAEConfig))
    with pytest.raises(WeightsError, match="above"):
        load_model(path, "dvae")
    assert built == []


@pytest.mark.parametrize("kind, change, named", [
    ("transformer", {"n_layer": 100_000, "n_head": 1, "n_embd": 1}, "n_layer stacks 100,000 blocks"),
    ("clip", {"n_layer": 257}, "n_layer stacks 257 blocks"),
    ("dvae", {"n_res": 10_000, "n_hid": 1}, "n_res stacks 10,000 blocks"),
    ("judge", {"widths": [1] * 1000}, "widths stacks 1,000 blocks")])
def test_a_config_of_tiny_width_and_huge_depth_is_refused_before_building(kind, change, named, tmp_path, monkeypatch):
    """Few elements but 100,000 layers passed the element and activation bounds, and building its modules took
    4.6 GB (a 378-byte file) before the tensors were found not to match: the depth is bounded first."""
    import t2i_cli.weights as weights_mod

    if kind == "judge":
        from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier

        model = ObjectClassifier(JudgeConfig(crop=16, widths=(4, 8)))
    else:
        model = build(kind)
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps({**model.cfg.__dict__, **change})}
    path = save_tensors(tmp_path / f"{kind}.safetensors", model.state_dict(), meta)
    built = []
    monkeypatch.setitem(weights_mod.MODELS, kind, (lambda cfg: built.append(cfg), weights_mod.MODELS[kind][1]))
    with pytest.raises(WeightsError, match=f"{named}, above the limit of 256"):
        load_model(path, kind)
    assert built == []


def test_a_tokenizer_file_over_its_bound_is_refused_unread(tmp_path, monkeypatch):
    """A 178 MB tokenizer.json (3 M tokens) was parsed whole at 1.3 GB before its vocabulary was found not to
    fit the transformer."""
    import t2i_cli.weights as weights_mod
    from t2i_cli.models.tokenizer import TextTokenizer

    path = tmp_path / "tokenizer.json"
    with open(path, "wb") as f:
        f.truncate(weights_mod.MAX_TOKENIZER_FILE + 1)  # sparse: no disk, and never read
    monkeypatch.setattr(TextTokenizer, "from_file", lambda p: pytest.fail("read a tokenizer over the bound"))
    with pytest.raises(WeightsError, match="tokenizer.json holds 67,108,865 bytes, more than the 64 MB"):
        weights_mod.load_tokenizer(path)


def test_truncated_file_is_refused(tmp_path):
    path = save_model(build("dvae"), tmp_path / "dvae.safetensors", "dvae")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="dvae.safetensors"):
            load_model(path, "dvae")


@pytest.mark.parametrize("data", [b"", random.Random(0).randbytes(2048), b"\xff" * 8 + b"{}",
                                  (16).to_bytes(8, "little") + b"this is not json"])
def test_random_bytes_are_refused(tmp_path, data):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_model(path, "dvae")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors", "dvae")


class _Trap:
    """Unpickling this creates a marker file: proof that a loader executed pickle."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_renamed_safetensors_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "marker-probe"
    payload = pickle.dumps(_Trap(marker))
    pickle.loads(payload)  # the payload is live: unpickling really creates the marker
    assert marker.exists()
    marker.unlink()

    marker = tmp_path / "marker"
    for name, data in [("plain.safetensors", pickle.dumps(_Trap(marker))),
                       ("state.safetensors", pickle.dumps({"codebook.weight": _Trap(marker)}))]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightsError):
            load_model(path, "dvae")
        assert not marker.exists()


def test_torch_save_renamed_safetensors_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "dvae.safetensors"
    torch.save({"codebook.weight": torch.zeros(2), "trap": _Trap(marker)}, path)
    with pytest.raises(WeightsError):
        load_model(path, "dvae")
    assert not marker.exists()


# ---- folders ------------------------------------------------------------------------------------------------

def test_load_folder_loads_a_complete_folder(tiny_weights):
    bundle = load_folder(tiny_weights)
    assert bundle.clip is not None
    assert bundle.identity == folder_hash(tiny_weights)
    assert bundle.tokenizer.vocab_size(bundle.transformer.cfg.text_len) == bundle.transformer.cfg.text_vocab


def test_load_folder_on_missing_folder(tmp_path):
    missing = tmp_path / "no-such-weights"
    with pytest.raises(WeightsError, match="no-such-weights"):
        load_folder(missing)


@pytest.mark.parametrize("name", ["tokenizer.json", "dvae.safetensors", "transformer.safetensors"])
def test_load_folder_on_missing_file_names_it(tiny_weights, name):
    (tiny_weights / name).unlink()
    with pytest.raises(WeightsError) as info:
        load_folder(tiny_weights)
    assert name in str(info.value)


def test_clip_is_optional_unless_needed(tiny_weights):
    (tiny_weights / "clip.safetensors").unlink()
    assert load_folder(tiny_weights).clip is None
    with pytest.raises(WeightsError, match="clip.safetensors"):
        load_folder(tiny_weights, need_clip=True)


def test_broken_tokenizer_file_is_refused(tiny_weights):
    (tiny_weights / "tokenizer.json").write_text("{not json")
    with pytest.raises(WeightsError, match="tokenizer.json"):
        load_folder(tiny_weights)


def test_tokenizer_that_does_not_match_the_transformer(tiny_weights):
    (tiny_weights / "clip.safetensors").unlink()  # so only the tokenizer/transformer check can fire
    other = TextTokenizer.train(["completely different words here", "zebra quokka"], vocab_size=60)
    assert other.n_bpe != TextTokenizer.from_file(tiny_weights / "tokenizer.json").n_bpe
    (tiny_weights / "tokenizer.json").write_text(other.to_json())
    with pytest.raises(WeightsError, match=f"tokenizer has {other.n_bpe} tokens"):
        load_folder(tiny_weights)


def test_dvae_that_does_not_match_the_transformer(tiny_weights):
    (tiny_weights / "clip.safetensors").unlink()
    save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=64, n_hid=8, code_dim=8)),
               tiny_weights / "dvae.safetensors", "dvae")
    with pytest.raises(WeightsError, match="dVAE makes 4x4 grids of 64 codes"):
        load_folder(tiny_weights)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("half", [False, True])
def test_a_cast_loads_bf16_straight_from_the_file_with_the_values_of_a_cast_after(kind, half, tmp_path):
    path = save_model(build(kind), tmp_path / f"{kind}.safetensors", kind, half=half)
    want = load_model(path, kind).to(torch.bfloat16).state_dict()
    got = load_model(path, kind, cast={"": torch.bfloat16}).state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k  # bf16 floats; integer buffers untouched


def test_a_cast_by_prefix_takes_the_longest_matching_prefix(tmp_path):
    path = save_model(build("dvae"), tmp_path / "dvae.safetensors", "dvae", half=True)
    fp32 = load_model(path, "dvae").state_dict()
    model = load_model(path, "dvae", cast={"decoder.": torch.bfloat16, "codebook.": torch.bfloat16,
                                            "decoder.net.0.": torch.float16})
    for k, v in model.state_dict().items():
        want = (torch.float16 if k.startswith("decoder.net.0.") else torch.bfloat16
                if k.startswith(("decoder.", "codebook.")) else torch.float32)
        assert v.dtype == want and torch.equal(v, fp32[k].to(want)), k
    assert any(k.startswith("encoder.") for k in fp32)


def test_folder_hash_is_the_sha256_of_each_file_name_and_bytes(tiny_weights):
    import hashlib

    from t2i_cli.weights import FILES

    h = hashlib.sha256()
    for name in FILES:
        if (tiny_weights / name).is_file():
            h.update(name.encode() + (tiny_weights / name).read_bytes())
    assert folder_hash(tiny_weights) == h.hexdigest()[:16]  # read in pieces, the same identity as before


def test_folder_hash_changes_when_a_file_changes(tiny_weights, tmp_path):
    h = folder_hash(tiny_weights)
    assert len(h) == 16
    copy = shutil.copytree(tiny_weights, tmp_path / "copy")
    assert folder_hash(copy) == h  # content, not location
    path = tiny_weights / "transformer.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert folder_hash(tiny_weights) != h
    (copy / "clip.safetensors").unlink()
    assert folder_hash(copy) not in (h, folder_hash(tiny_weights))


def test_the_same_model_gives_the_same_bytes_in_every_process(tmp_path):
    """The weights' identity is a hash of the files, so saving must not depend on hash-map order."""
    import subprocess
    import sys

    code = ("import sys, torch; from t2i_cli.models.dvae import DVAE, DVAEConfig; "
            "from t2i_cli.weights import save_model;"
            "torch.manual_seed(0); save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=8, n_hid=4,"
            "code_dim=4)), sys.argv[1], 'dvae')")
    paths = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for p in paths:
        subprocess.run([sys.executable, "-c", code, str(p)], check=True)
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()


def test_a_clip_whose_width_its_heads_do_not_divide_is_refused_with_our_error(tmp_path):
    """n_embd 1 with 4 heads met PyTorch's own assert (an internal error, and nothing under python -O); found by
    the fuzzed-metadata test."""
    small = dict(image_side=16, text_vocab=40, text_len=8, n_pad_start=32, n_hid=8, n_layer=1, embed_dim=8)
    with pytest.raises(ValueError, match="n_embd 6 must be a multiple of n_head 4"):
        Clip(ClipConfig(n_embd=6, n_head=4, **small))
    save_model(Clip(ClipConfig(n_embd=8, n_head=4, **small)), tmp_path / "clip.safetensors", "clip")
    tensors, meta = load_tensors(tmp_path / "clip.safetensors")
    meta["config"] = json.dumps(json.loads(meta["config"]) | {"n_embd": 1})
    save_tensors(tmp_path / "clip.safetensors", tensors, meta)
    with pytest.raises(WeightsError, match="n_embd 1 must be a multiple of n_head 4"):
        load_model(tmp_path / "clip.safetensors", "clip")


def test_a_dvae_of_the_transformers_codebook_but_another_grid_does_not_fit(tiny_weights: Path, tmp_path: Path):
    """A dVAE with as many codes as the transformer draws but another grid (a larger picture side) loaded, and
    decoded the transformer's 4x4 codes as if they were its own 8x8."""
    from t2i_cli.weights import misfits

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    tr = load_model(folder / "transformer.safetensors", "transformer").cfg
    other = DVAEConfig(image_side=32, downsample=4, n_codes=tr.image_vocab, n_hid=8, code_dim=8)
    assert other.grid != tr.grid and other.n_codes == tr.image_vocab
    assert misfits(None, other, tr, []) == [f"dVAE makes 8x8 grids of {tr.image_vocab} codes, the transformer "
                                            f"expects {tr.grid}x{tr.grid} of {tr.image_vocab}"]
    save_model(DVAE(other), folder / "dvae.safetensors", "dvae")
    with pytest.raises(WeightsError, match="parts do not fit together: dVAE makes 8x8 grids"):
        load_folder(folder)


@pytest.mark.parametrize("value", [-1, 2**21])
def test_a_config_integer_outside_zero_to_max_dim_is_refused(value):
    """Every integer of a config (not only the sizes, which must be at least 1) lies in 0..MAX_DIM: a CLIP's
    n_pad_start of -1 or 2**21 is refused before anything is built."""
    from t2i_cli.weights import check_budget

    with pytest.raises(ValueError, match=rf"^n_pad_start is {value}(, above 1048576, the largest|; a dimension is "
                                         rf"0 or more$)"):
        check_budget(ClipConfig(image_side=16, text_vocab=40, text_len=12, n_pad_start=value))
