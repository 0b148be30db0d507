"""The trained model as a Hugging Face checkpoint in DeepSeek-V3's layout, and back.

    assets/demo-model/               the default model of `make serve` (BF16)
      config.json, model.safetensors, tokenizer.json, tokenizer_config.json, training.json
      fp8/                           the same weights in DeepSeek's FP8 format: every linear weight
                                     of attention, MLPs and experts (MTP's included) as E4M3 with
                                     a float32 weight_scale_inv per 128x128 tile; embeddings, LM
                                     heads, norms and router gates stay BF16, the routing bias F32;
                                     its tokenizer files are links to the parent's
    docs/demo_model_loss.png         the loss curves of the training run (gnuplot)

The MTP module is stored as DeepSeek stores V3's: model.layers.{num_hidden_layers}.* with its own
copies of the embedding (embed_tokens) and LM head (shared_head.head).
"""

import csv
import json
import os
import shutil
import subprocess

import numpy as np
import torch

import safetensors_io as st

# Tensor-name suffixes that are never quantised (DeepSeek's FP8 V3 keeps them in BF16).
_NOT_FP8 = ("embed_tokens.weight", "lm_head.weight", "shared_head.head.weight", "mlp.gate.weight")


def checkpoint_names(model, cfg):
    """torch parameter/buffer name -> checkpoint name, for every tensor of the model."""
    L = cfg["num_hidden_layers"]
    out = {}
    for name in model.state_dict():
        if name.startswith("mtp.0."):
            rest = name[len("mtp.0."):]
            rest = rest[len("block."):] if rest.startswith("block.") else rest
            out[name] = f"model.layers.{L}.{rest}"
        elif name == "lm_head.weight":
            out[name] = name
        else:
            out[name] = "model." + name
    return out


def tensors_of(model, cfg, fp8):
    """checkpoint name -> (dtype, raw array), BF16 (or FP8 where DeepSeek quantises) and F32 bias."""
    names = checkpoint_names(model, cfg)
    state = {names[k]: v.detach().float().numpy() for k, v in model.state_dict().items()}
    L = cfg["num_hidden_layers"]
    if cfg["num_nextn_predict_layers"]:
        state[f"model.layers.{L}.embed_tokens.weight"] = state["model.embed_tokens.weight"]
        state[f"model.layers.{L}.shared_head.head.weight"] = state["lm_head.weight"]
    out = {}
    for name, w in state.items():
        if name.endswith("e_score_correction_bias"):
            out[name] = ("F32", w.astype(np.float32))
        elif fp8 and w.ndim == 2 and not name.endswith(_NOT_FP8):
            codes, scales = st.quantize_blocks(w.astype(np.float32))
            out[name] = ("F8_E4M3", codes)
            out[name[: -len("weight")] + "weight_scale_inv"] = ("F32", scales)
        else:
            out[name] = ("BF16", st.f32_to_bf16_bits(w))
    return out


def write_checkpoint(model, cfg, out_dir, fp8=False):
    os.makedirs(out_dir, exist_ok=True)
    c = dict(cfg)
    if fp8:
        c["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                    "weight_block_size": [128, 128]}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    st.write(os.path.join(out_dir, "model.safetensors"), tensors_of(model, cfg, fp8), {"format": "pt"})


def load_checkpoint(model_dir):
    """The model as a checkpoint directory holds it (BF16 or FP8 weights widened to float32), in
    the trainer's modules: how tests run the trainer's forward on exactly the shipped weights."""
    from model import DeepSeekV3
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    tensors = st.read(os.path.join(model_dir, "model.safetensors"))
    model = DeepSeekV3(cfg)
    state = {}
    for torch_name, ck in checkpoint_names(model, cfg).items():
        dtype, raw = tensors[ck]
        if dtype == "F8_E4M3":
            w = st.dequantize_blocks(raw, tensors[ck[: -len("weight")] + "weight_scale_inv"][1])
        else:
            w = st.as_f32(dtype, raw)
        state[torch_name] = torch.from_numpy(np.array(w, dtype=np.float32))
    model.load_state_dict(state)
    model.eval()
    return model, cfg


def plot_loss(log, csv_path, png_path):
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "mtp_loss", "heldout_loss", "heldout_mtp_loss"])
        for r in log:
            w.writerow([r["step"], f"{r['loss']:.4f}", f"{r['mtp_loss']:.4f}",
                        f"{r['heldout_loss']:.4f}" if "heldout_loss" in r else "",
                        f"{r['heldout_mtp_loss']:.4f}" if "heldout_mtp_loss" in r else ""])
    script = f"""set terminal png size 900,520
set output '{png_path}'
set datafile separator ','
set key autotitle columnhead
set title 'dsinfer demo model (DeepSeek-V3 architecture): cross-entropy while training'
set xlabel 'step'
set ylabel 'loss (nats per token)'
set grid
plot '{csv_path}' using 1:2 with lines lw 1 title 'train (next token)', \\
     '' using 1:3 with lines lw 1 title 'train (MTP: token after next)', \\
     '' using 1:($4 > 0 ? $4 : 1/0) with linespoints lw 2 title 'held-out (next token)', \\
     '' using 1:($5 > 0 ? $5 : 1/0) with linespoints lw 2 title 'held-out (MTP)'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("gnuplot failed; the CSV is kept:", r.stderr.strip())


def write_all(model, cfg, tokenizer_dir, out_dir, log, summary):
    model.eval()
    write_checkpoint(model, cfg, out_dir)
    write_checkpoint(model, cfg, os.path.join(out_dir, "fp8"), fp8=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out_dir, name))
        link = os.path.join(out_dir, "fp8", name)  # one copy in the repository: fp8/ links to it
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.join("..", name), link)
    with open(os.path.join(out_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
    plot_loss(log, os.path.join(out_dir, "training_log.csv"), os.path.join(docs, "demo_model_loss.png"))
