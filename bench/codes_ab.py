"""The transformer stage trained on float32 dVAE codes (t2i 0.9.0) against the codes bf16 autocast gives (as
before 0.9.0, restored here by a patch), on the same data, split and seed: the validation loss and bits per
code each run logs (validation reads float32 codes in both).

    PYTHONPATH=src python bench/codes_ab.py {bf16,fp32} -- t2i train ARGS...
"""

import sys

import torch

from t2i_cli.models.dvae import DVAE


def main() -> None:
    which, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 2:]  # after "-- t2i"
    if which == "bf16":
        def codes_from_image(self, images):  # the encoder under the caller's autocast, as before 0.9.0
            out = self.encoder(images)
            return self.fsq.codes(out) if self.fsq is not None else out.argmax(dim=1)

        real = DVAE.codes_from_image

        def patched(self, images):  # bf16 codes in training steps only (grad enabled around them), not validation
            return codes_from_image(self, images) if torch.is_autocast_enabled("cpu") else real(self, images)

        DVAE.codes_from_image = patched
    from t2i_cli.cli import main as t2i

    sys.argv = ["t2i", *rest]
    t2i()


if __name__ == "__main__":
    main()
