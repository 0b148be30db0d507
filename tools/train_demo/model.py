"""The demo model: a small DeepSeek-V3, written for training (PyTorch modules, batched, autograd).

Written from the DeepSeek-V2 paper (arXiv 2405.04434: MLA with a low-rank query and a decoupled
RoPE key, DeepSeekMoE) and the DeepSeek-V3 paper (arXiv 2412.19437: sigmoid affinities,
group-limited top-k, the auxiliary-loss-free bias, multi-token prediction), with the tensor names
and shapes of DeepSeek's Hugging Face checkpoints, so `export.py` writes a checkpoint that dsinfer
(and any DeepseekV3ForCausalLM loader) reads as it is.

Conventions the checkpoint fixes, and dsinfer follows:
  * RoPE rotates consecutive pairs (x[2i], x[2i+1]) of the rope part of q and k.
  * The attention softmax scale is 1/sqrt(qk_nope + qk_rope) (YaRN's mscale is 1 at factor 1).
  * Routing: s = sigmoid(x W_g^T); the bias b (e_score_correction_bias) only chooses: groups are
    ranked by the sum of their two best (s + b), top-k experts by (s + b) inside the kept groups;
    gates are the chosen s, normalised to sum 1, times routed_scaling_factor.
  * MTP (depth 1, `model.layers.{L}`): h' = eh_proj([enorm(embed(t_{i+1})); hnorm(h_i)]) with h_i
    the main model's final hidden state (after its final norm), one decoder block, then
    shared_head.norm and the shared LM head predict t_{i+2}.

Notation: B batch, T tokens, D hidden, H heads, dn/dr/dv nope/rope/value head dims, dc kv_lora_rank,
dq q_lora_rank, E routed experts, K experts per token.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def linear(d_in, d_out):
    return nn.Linear(d_in, d_out, bias=False)


def rope_tables(cfg, T):
    """cos, sin [T, dr/2] for positions 0..T-1 (plain RoPE: the config's YaRN factor is 1)."""
    dr = cfg["qk_rope_head_dim"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dr, 2, dtype=torch.float64) / dr))
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """x [..., T, dr] (pairs interleaved); cos/sin [T, dr/2]."""
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    return torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).reshape(x.shape)


class MLA(nn.Module):
    """Multi-head latent attention, the training (non-absorbed) form."""

    def __init__(self, cfg):
        super().__init__()
        D, H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.H, self.dn, self.dr, self.dv = H, cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
        self.dc, dq, eps = cfg["kv_lora_rank"], cfg["q_lora_rank"], cfg["rms_norm_eps"]
        self.q_a_proj = linear(D, dq)
        self.q_a_layernorm = RMSNorm(dq, eps)
        self.q_b_proj = linear(dq, H * (self.dn + self.dr))
        self.kv_a_proj_with_mqa = linear(D, self.dc + self.dr)
        self.kv_a_layernorm = RMSNorm(self.dc, eps)
        self.kv_b_proj = linear(self.dc, H * (self.dn + self.dv))
        self.o_proj = linear(H * self.dv, D)
        self.scale = 1.0 / math.sqrt(self.dn + self.dr)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        H, dn, dr, dv, dc = self.H, self.dn, self.dr, self.dv, self.dc
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(B, T, H, dn + dr).transpose(1, 2)
        q_nope, q_rope = q[..., :dn], apply_rope(q[..., dn:], cos, sin)          # [B,H,T,dn], [B,H,T,dr]
        kv_a = self.kv_a_proj_with_mqa(x)                                          # [B,T,dc+dr]
        k_rope = apply_rope(kv_a[..., dc:], cos, sin)[:, None]                    # [B,1,T,dr]: one for all heads
        kv = self.kv_b_proj(self.kv_a_layernorm(kv_a[..., :dc])).view(B, T, H, dn + dv).transpose(1, 2)
        k_nope, v = kv[..., :dn], kv[..., dn:]
        q_full = torch.cat((q_nope, q_rope), -1)
        k_full = torch.cat((k_nope, k_rope.expand(B, H, T, dr)), -1)
        att = (q_full @ k_full.transpose(-1, -2)) * self.scale                     # [B,H,T,T]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * dv)
        return self.o_proj(o)


class GatedMLP(nn.Module):
    def __init__(self, D, F_):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = linear(D, F_), linear(D, F_), linear(F_, D)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    """V3's router: sigmoid scores, group-limited top-k chosen with the load-balancing bias."""

    def __init__(self, cfg):
        super().__init__()
        self.E, self.K = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
        self.G, self.topk_group = cfg["n_group"], cfg["topk_group"]
        self.scaling = cfg["routed_scaling_factor"]
        self.weight = nn.Parameter(torch.empty(self.E, cfg["hidden_size"]))
        nn.init.normal_(self.weight, std=0.006)
        # Not a parameter: no gradient moves it; train.py nudges it towards balanced load.
        self.register_buffer("e_score_correction_bias", torch.zeros(self.E))

    def forward(self, x):
        """x [N, D] -> (idx [N, K], gates [N, K])."""
        scores = torch.sigmoid(x @ self.weight.t())                                # [N, E]
        choice = scores.detach() + self.e_score_correction_bias
        N = x.shape[0]
        grouped = choice.view(N, self.G, self.E // self.G)
        group_score = grouped.topk(min(2, self.E // self.G), -1).values.sum(-1)    # [N, G]
        keep = group_score.topk(self.topk_group, -1).indices
        allowed = torch.zeros(N, self.G, dtype=torch.bool).scatter(1, keep, True)
        allowed = allowed[:, :, None].expand(N, self.G, self.E // self.G).reshape(N, self.E)
        idx = choice.masked_fill(~allowed, float("-inf")).topk(self.K, -1).indices
        gates = scores.gather(1, idx)
        gates = gates / (gates.sum(-1, keepdim=True) + 1e-20) * self.scaling
        return idx, gates


class MoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, Fe = cfg["hidden_size"], cfg["moe_intermediate_size"]
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(GatedMLP(D, Fe) for _ in range(cfg["n_routed_experts"]))
        self.shared_experts = GatedMLP(D, Fe * cfg["n_shared_experts"])
        self.load = None  # tokens per expert in the last forward (for the bias update)

    def forward(self, x):
        B, T, D = x.shape
        flat = x.reshape(B * T, D)
        idx, gates = self.gate(flat)
        self.load = torch.bincount(idx.flatten(), minlength=len(self.experts)).float()
        out = self.shared_experts(flat)
        for e, expert in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel():
                out = out.index_add(0, tok, gates[tok, slot, None] * expert(flat[tok]))
        return out.view(B, T, D)


class Block(nn.Module):
    def __init__(self, cfg, layer):
        super().__init__()
        D, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm = RMSNorm(D, eps)
        self.self_attn = MLA(cfg)
        self.post_attention_layernorm = RMSNorm(D, eps)
        moe = layer >= cfg["first_k_dense_replace"]
        self.mlp = MoE(cfg) if moe else GatedMLP(D, cfg["intermediate_size"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class SharedHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class MTP(nn.Module):
    """One multi-token-prediction module (V3 paper section 2.2), DeepSeek's checkpoint layout."""

    def __init__(self, cfg):
        super().__init__()
        D, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.enorm, self.hnorm = RMSNorm(D, eps), RMSNorm(D, eps)
        self.eh_proj = linear(2 * D, D)
        self.block = Block(cfg, cfg["num_hidden_layers"])
        self.shared_head = SharedHead(cfg)

    def forward(self, h, next_embed, cos, sin):
        x = self.eh_proj(torch.cat((self.enorm(next_embed), self.hnorm(h)), -1))
        return self.shared_head.norm(self.block(x, cos, sin))


class DeepSeekV3(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D, V = cfg["hidden_size"], cfg["vocab_size"]
        self.embed_tokens = nn.Embedding(V, D)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(D, cfg["rms_norm_eps"])
        self.lm_head = linear(D, V)
        self.mtp = nn.ModuleList(MTP(cfg) for _ in range(cfg["num_nextn_predict_layers"]))
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        for name, p in self.named_parameters():  # residual outputs scaled down with depth (GPT-2's rule)
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * (cfg["num_hidden_layers"] + 1)))

    def moe_layers(self):
        return [m for m in self.modules() if isinstance(m, MoE)]

    def forward(self, tokens, mtp=True):
        """tokens [B, T] -> (logits [B, T, V], mtp_logits [B, T-1, V] or None): mtp_logits[:, i]
        predicts tokens[:, i + 2] from the main model's state at i and the embedding of token i+1."""
        B, T = tokens.shape
        cos, sin = rope_tables(self.cfg, T)
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        h = self.norm(x)
        logits = self.lm_head(h)
        if not mtp or not len(self.mtp):
            return logits, None
        # Positions 0..T-2 see their next token's embedding; RoPE positions stay those of i.
        c, s = cos[: T - 1], sin[: T - 1]
        m = self.mtp[0](h[:, :-1], self.embed_tokens(tokens[:, 1:]), c, s)
        return logits, self.lm_head(m)
