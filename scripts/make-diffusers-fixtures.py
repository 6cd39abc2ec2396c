#!/usr/bin/env python3
"""Reference outputs of diffusers for verinfer's Stable Diffusion conformance test.

Writes crates/inference/tests/fixtures/diffusers/*.safetensors, which
crates/inference/tests/diffusers_conformance.rs compares verinfer's pipeline against, so CI
needs no PyTorch. Run once, by hand, whenever the cases or the tiny models change:

    python3 -m venv /work/venv-diffusers
    /work/venv-diffusers/bin/pip install torch diffusers transformers safetensors numpy
    /work/venv-diffusers/bin/python scripts/make-diffusers-fixtures.py

How the committed fixtures were made: CPU, float32, torch 2.15.0+cu132 (the plain PyPI wheel,
run on the CPU), diffusers 0.42.1,
transformers 5.24.0, numpy 2.4.6 (the versions are also stored in each file's metadata).

Inputs come from verinfer itself, so nothing is re-implemented here: the ignored Rust test
`write_generator_inputs` writes the tiny models (`make_tiny_models`, seed 7) and, per case,
the Gaussian noise verinfer draws (ChaCha20, see crates/inference/src/noise.rs): the initial
latents, then one draw per step for the ancestral schedulers. diffusers gets the initial
latents through `latents=` and the step noise by replacing its schedulers' `randn_tensor`.

Per case the file holds:
  context, pooled          the text conditioning (unconditional rows first), f32
  unet_in, timestep,       the first UNet call: its input, timestep, and for SDXL the
  text_embeds, time_ids    added conditions
  unet_out                 the first UNet call's output
  vae_in                   the final latents, divided by the VAE's scaling factor
  pixels                   the final images after `image / 2 + 0.5` and clamping, (b, h, w, 3)
  image                    `(pixels * 255).round()` as uint8 (diffusers' numpy_to_pil)
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file

import diffusers
import transformers
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    EulerAncestralDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.schedulers import scheduling_ddpm, scheduling_euler_ancestral_discrete

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/inference/tests/fixtures/diffusers"


def rust_inputs(work: Path) -> dict:
    """Runs the ignored Rust test that writes the tiny models, noise and case list into `work`."""
    env = dict(os.environ, VERINFER_DIFFUSERS_INPUTS=str(work))
    subprocess.run(
        [
            "cargo", "test", "-p", "verinfer-inference", "--test", "diffusers_conformance",
            "--", "--ignored", "--exact", "write_generator_inputs",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return json.loads((work / "cases.json").read_text())


class StepNoise:
    """Hands the schedulers verinfer's per-step noise instead of torch's RNG."""

    def __init__(self):
        self.draws = []

    def __call__(self, shape, **_kwargs):
        draw = self.draws.pop(0)
        assert tuple(draw.shape) == tuple(shape), (draw.shape, shape)
        return draw


SCHEDULERS = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "euler_ancestral": EulerAncestralDiscreteScheduler,
}


def run_case(work: Path, case: dict, step_noise: StepNoise) -> dict:
    model = work / case["model"]
    xl = case["model"] == "tiny-sdxl"
    cls = StableDiffusionXLPipeline if xl else StableDiffusionPipeline
    extra = {"add_watermarker": False} if xl else {"safety_checker": None}
    pipe = cls.from_pretrained(model, torch_dtype=torch.float32, **extra)
    pipe.scheduler = SCHEDULERS[case["scheduler"]].from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    noise = load_file(work / case["noise"])["noise"]  # (draws, batch, c, h, w)
    step_noise.draws = list(noise[1:])

    first_call = {}

    def hook(_module, args, kwargs, output):
        if first_call:
            return
        first_call["unet_in"] = args[0]
        first_call["timestep"] = torch.as_tensor(args[1], dtype=torch.float64).reshape(1)
        first_call["context"] = kwargs["encoder_hidden_states"]
        added = kwargs.get("added_cond_kwargs") or {}
        for key in ("text_embeds", "time_ids"):
            if key in added:
                first_call[key] = added[key]
        first_call["unet_out"] = output[0]

    handle = pipe.unet.register_forward_hook(hook, with_kwargs=True)
    decode = pipe.vae.decode

    def decode_hook(z, *args, **kwargs):
        first_call["vae_in"] = z
        return decode(z, *args, **kwargs)

    pipe.vae.decode = decode_hook
    with torch.no_grad():
        pixels = pipe(
            prompt=case["prompt"],
            negative_prompt=case["negative_prompt"],
            width=case["width"],
            height=case["height"],
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance_scale"],
            num_images_per_prompt=case["num_images"],
            latents=noise[0],
            output_type="np",
        ).images
    handle.remove()

    tensors = {k: v.detach().to(torch.float32).numpy() for k, v in first_call.items()}
    tensors["timestep"] = first_call["timestep"].numpy()
    # The full conditioning is the first call's context when guidance duplicates the batch:
    # rows [uncond x batch, cond x batch]; keep one row of each.
    batch = case["num_images"]
    context = tensors["context"]
    tensors["context"] = np.ascontiguousarray(context[[0, batch]] if len(context) == 2 * batch else context[:1])
    if "text_embeds" in tensors:
        pooled = tensors["text_embeds"]
        tensors["pooled"] = np.ascontiguousarray(pooled[[0, batch]] if len(pooled) == 2 * batch else pooled[:1])
    tensors["pixels"] = np.ascontiguousarray(pixels.astype(np.float32))
    tensors["image"] = (pixels * 255).round().astype("uint8")
    # safetensors.numpy writes the raw buffer, whatever the strides.
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    step_noise = StepNoise()
    scheduling_euler_ancestral_discrete.randn_tensor = step_noise
    scheduling_ddpm.randn_tensor = step_noise
    torch.set_num_threads(1)
    metadata = {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for case in rust_inputs(work):
            tensors = run_case(work, case, step_noise)
            # Euler ancestral draws at every step; DDIM never; DDPM not at t = 0.
            if case["scheduler"] == "euler_ancestral":
                assert not step_noise.draws, "unused noise"
            path = OUT / f"{case['name']}.safetensors"
            save_file(tensors, path, metadata={**metadata, "case": json.dumps(case)})
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
