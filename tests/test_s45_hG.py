"""Mutation audit (s45, helper hG) of models/dvae.py, models/clip.py, world/negatives.py and training's schedule,
checkpoint and resume (train.py): each test fails under at least one hand-made mutant of bench/mutants_training.py
that the modules' own tests let through, and passes on the code as it is."""

from __future__ import annotations

import json

import pytest
import torch

from t2i_cli.models.dvae import DVAE, FSQ, DVAEConfig
from t2i_cli.train import TrainConfig, precision_change


# ---------------------------------------------------------------------------------------------- dvae
def test_fsq_with_a_level_count_of_two_reaches_each_code_and_reads_it_back():
    """fsq_levels takes counts from 2: a channel of two levels is bounded to about (-1, 0) by the shifted tanh,
    whose bound (L - 1) / 2 is widened by 1e-3 so that it covers the offset 0.5 (narrowed, atanh(0.5 / 0.4995)
    is NaN and every value and code of the channel NaN or garbage: D15)."""
    fsq = FSQ((2, 3, 2))
    # (a two-level channel rounds to 0 from z = 0 up and to -1 below z = -atanh(0.5 / 0.5005), about -3.8)
    z = torch.cartesian_prod(torch.tensor([-6.0, 0.0]), torch.tensor([-3.0, 0.0, 3.0]), torch.tensor([-6.0, 0.0]))
    z = z.t().reshape(1, 3, 3, 4)
    values, codes = fsq(z), fsq.codes(z)
    assert bool(torch.isfinite(values).all()) and float(values.abs().max()) <= 1
    assert sorted(set(codes.flatten().tolist())) == list(range(12))  # every code of 2 x 3 x 2 is reached
    assert torch.equal(fsq.values(codes), values)
    assert sorted(set(values[:, 0].flatten().tolist())) == [-1.0, 0.0]


def test_a_dvae_of_downsample_8_widens_its_channels_to_four_times_at_most():
    """n_hid is doubled at each halving, up to 4x (D07: up to 8x, a model of other shapes than the config says)."""
    cfg = DVAEConfig(image_side=16, downsample=8, n_codes=8, n_hid=4, code_dim=4)
    model = DVAE(cfg)
    widths = [m.out_channels for m in model.encoder.net if isinstance(m, torch.nn.Conv2d)][:-1]
    assert widths == [4, 8, 16, 16]
    assert max(m.in_channels for m in model.decoder.net if isinstance(m, torch.nn.Conv2d)) == 16
    assert cfg.state_numel() == sum(t.numel() for t in model.state_dict().values())


def test_an_empty_batch_of_pictures_gives_an_empty_batch_of_codes_and_back():
    """A batch of no pictures is no error (D23: torch.aminmax of an empty tensor raised)."""
    cfg = DVAEConfig(image_side=8, downsample=2, n_codes=16, n_hid=8, code_dim=8)
    model = DVAE(cfg).eval()
    with torch.no_grad():
        codes = model.codes_from_image(torch.zeros(0, 3, 8, 8))
        assert codes.shape == (0, 4, 4)
        assert model.image_from_codes(codes).shape == (0, 3, 8, 8)


# ---------------------------------------------------------------------------------------------- resume
def test_a_resume_compares_its_precision_with_the_last_start_not_the_first(tmp_path):
    """A run started in bf16, resumed in fp32 and resumed again in fp32 trained in fp32 last: the second resume
    is not a change (no warning); a run whose last start was bf16 resumed in fp32 is (T44: the first line read)."""
    cfg = TrainConfig(stage="dvae", data="world:train", precision="auto")
    metrics = tmp_path / "metrics.jsonl"
    lines = [{"step": 0, "precision": "bf16"}, {"step": 10, "loss": 1.0}, {"step": 10, "precision": "fp32"}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert precision_change(metrics, cfg, "fp32", 20) == []
    [said] = precision_change(metrics, cfg, "bf16", 20)
    # (called from Python: the field is named as a script sets it, precision='auto'; the command line's --precision)
    assert said.startswith("this run trained in fp32 until step 20; here precision='auto' means bf16")
    # no precision line at all (a run from before t2i 0.12.0): auto was bf16 then
    metrics.write_text(json.dumps({"step": 10, "loss": 1.0}) + "\n")
    assert precision_change(metrics, cfg, "bf16", 10) == []
    assert precision_change(metrics, cfg, "fp32", 10)



@pytest.mark.parametrize("levels", [(), (4, 4)])
def test_codes_one_past_either_end_of_the_codebook_are_refused_and_its_ends_decoded(levels):
    """image_from_codes takes 0..n_codes - 1 and refuses -1 and n_codes by name (D42, D43: an IndexError of the
    embedding, or an FSQ code wrapped silently into another); codes_from_image refuses pixels past 1.5 and
    takes a resampling's overshoot (D22, D41)."""
    cfg = DVAEConfig(image_side=8, downsample=2, n_codes=16, n_hid=8, code_dim=8, fsq_levels=levels)
    model = DVAE(cfg).eval()
    with torch.no_grad():
        assert model.image_from_codes(torch.tensor([0, 15]).repeat(8).view(1, 4, 4)).shape == (1, 3, 8, 8)
        for end in (-1, 16):
            codes = torch.zeros(1, 4, 4, dtype=torch.long)
            codes[0, 1, 2] = end
            with pytest.raises(ValueError, match=r"codes must be in 0\.\.15, this dVAE's codebook; got"):
                model.image_from_codes(codes)
        x = torch.full((1, 3, 8, 8), 0.5)
        x[0, 0, 0, 0] = 1.5  # a little past 1: let through
        assert model.codes_from_image(x).shape == (1, 4, 4)
        x[0, 0, 0, 0] = 2.0
        with pytest.raises(ValueError, match=r"images must be in \[0, 1\]; these reach 0.5..2"):
            model.codes_from_image(x)

def _one_step_optimizer() -> torch.optim.Optimizer:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return opt


def test_a_checkpoint_of_step_one_without_its_optimizer_state_is_refused():
    """After one step the optimizer has state: a checkpoint of step 1 stripped of it is not resumed silently with
    fresh moments (T18: refused from step 2 only); at step 0 there is none to have."""
    from t2i_cli.train import _check_optimizer_state

    opt = _one_step_optimizer()
    with pytest.raises(ValueError, match="no optimizer state after 1 steps"):
        _check_optimizer_state({}, opt, 1)
    _check_optimizer_state({}, opt, 0)


def test_a_saved_optimizer_number_edited_into_true_is_refused():
    """A number's setting must be a number: JSON true is refused, not taken as 1 (T25: isinstance lets a bool
    through as an int)."""
    from t2i_cli.train import _check_param_groups, _same_kind

    opt = _one_step_optimizer()
    assert not _same_kind(True, 0.001) and _same_kind(1, 0.001) and _same_kind(0.5, 1)
    groups = json.loads(json.dumps(opt.state_dict()["param_groups"]))
    groups[0]["lr"] = True
    with pytest.raises(ValueError, match="its setting lr is true"):
        _check_param_groups(groups, opt)


def test_a_run_is_finished_only_at_its_checkpoints_step_and_its_own_finished_line(tmp_path):
    """finished(run, steps): the checkpoint is at `steps` and metrics.jsonl has a finished line at `steps` (T42: the
    checkpoint's step not read; T43: a finished line of another step taken)."""
    from t2i_cli.train import CHECKPOINT, finished
    from t2i_cli.weights import save_tensors

    def write(ckpt_step: int, finished_step: int) -> None:
        save_tensors(tmp_path / CHECKPOINT, {"x": torch.zeros(1)}, {"step": str(ckpt_step)})
        lines = [{"step": finished_step, "loss": 1.0}, {"step": finished_step, "finished": True}]
        (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

    write(10, 10)
    assert finished(tmp_path, 10)
    write(8, 10)  # a finished line at 10, the checkpoint at 8
    assert not finished(tmp_path, 10)
    write(10, 6)  # the checkpoint at 10, the finished line of an earlier, shorter run at 6
    assert not finished(tmp_path, 10)


def test_a_resumed_run_that_diverges_before_its_next_checkpoint_keeps_the_one_it_resumed_from(tmp_path):
    """A run resumed from its step-4 checkpoint whose loss goes NaN at step 6, before the next checkpoint, is told
    that checkpoint is kept and how to go on from it (T45: the resume's checkpoint not counted as saved, so the
    run was told there is no model to keep and to start again)."""
    import math

    from t2i_cli.train import CHECKPOINT, Diverged
    from t2i_cli.weights import read_metadata
    from test_pins_s35 import _Stage, _train

    run = tmp_path / "r"
    _train(run, steps=4, ckpt_every=4, sample_every=0)

    class Diverging(_Stage):
        def loss(self, model, images, captions, step):
            loss, parts = super().loss(model, images, captions, step)
            return (loss * math.nan if step == 5 else loss), parts

    with pytest.raises(Diverged, match=r"diverged at step 6 \(loss nan\); the last checkpoint \(step 4\) is kept"):
        _train(run, Diverging(), steps=8, ckpt_every=4, sample_every=0)
    assert read_metadata(run / CHECKPOINT)["step"] == "4"


def _labelled(n: int) -> list[tuple[torch.Tensor, str]]:
    return [(torch.full((3, 2, 2), float(i)), str(i)) for i in range(n)]


@pytest.mark.parametrize("procedural", [False, True])
def test_the_processes_of_a_step_share_its_samples_out_as_one_process_takes_them(procedural):
    """StepBatches: rank r of n takes the r-th slice of the step's global samples, so that the samples of a step are
    the same whatever the number of processes (T37: every rank took the first slice, the rest never trained)."""
    from t2i_cli.train import StepBatches

    data, cfg = _labelled(10), TrainConfig(stage="dvae", data="pictures", batch_size=4, steps=6, seed=3)
    alone = StepBatches(data, cfg, 0, 1, procedural)
    pair = [StepBatches(data, cfg, rank, 2, procedural) for rank in (0, 1)]
    for step in range(6):
        assert pair[0][step][1] + pair[1][step][1] == alone[step][1], step
    assert len({c for step in range(6) for c in alone[step][1]}) == 10


def test_each_epoch_of_a_finite_source_is_its_own_seeded_order():
    """Each epoch of a folder is a permutation of all of it, drawn anew per epoch from the seed (T36: one order
    for every epoch, so every epoch's batches were the same groups of pictures)."""
    from t2i_cli.train import StepBatches

    data, cfg = _labelled(4), TrainConfig(stage="dvae", data="pictures", batch_size=4, steps=6, seed=0)
    epochs = [StepBatches(data, cfg, 0, 1, False)[step][1] for step in range(6)]  # one step is one epoch here
    assert all(sorted(e) == ["0", "1", "2", "3"] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1, epochs
    again = [StepBatches(data, cfg, 0, 1, False)[step][1] for step in range(6)]
    assert again == epochs


# ---------------------------------------------------------------------------------------------- clip
@pytest.mark.parametrize("side", [16, 32, 48])
def test_a_word_region_clips_regions_are_as_many_as_its_config_says(side):
    """ClipConfig.regions() is the number of region features the image encoder gives (its map at 1/8 of the side;
    C29: 1/16)."""
    from t2i_cli.models.clip import Clip, ClipConfig

    cfg = ClipConfig(image_side=side, text_vocab=40, text_len=4, n_pad_start=36, n_hid=8, n_embd=16, n_layer=1,
                     n_head=2, embed_dim=8, word_region=True)
    with torch.no_grad():
        _, regions = Clip(cfg).image_encoder.features(torch.rand(1, 3, side, side))
    assert regions.shape == (1, cfg.regions(), 8)


# ---------------------------------------------------------------------------------------------- dvae fine-tune
@pytest.mark.parametrize("levels", [(), (4, 4)])
def test_a_hard_forward_trains_the_decoder_and_codebook_and_leaves_the_encoder_alone(levels):
    """hard=True is the decoder fine-tune: no gradient reaches the encoder, with Gumbel's argmax or FSQ's rounded
    values (D32: FSQ's straight-through gradient went on into the encoder, whose codes then moved)."""
    cfg = DVAEConfig(image_side=8, downsample=2, n_codes=16, n_hid=8, code_dim=8, fsq_levels=levels)
    torch.manual_seed(0)
    model = DVAE(cfg)
    _, loss, _ = model(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)), hard=True)
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.codebook.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.decoder.parameters())


# ---------------------------------------------------------------------------------------------- negatives
def test_the_twin_of_a_held_out_scene_may_take_a_held_out_pair():
    """Twins of train scenes never hold a held-out colour-object pair; those of held-out scenes are drawn from every
    pair (N14: held-out scenes' twins were drawn as train scenes' are: scene 34 got a white heart)."""
    from t2i_cli.world.negatives import twin_caption

    caption, neg, kind = twin_caption("heldout", 34)
    assert (caption, kind) == ("an illustration of a red heart below a green car at night", "recolour")
