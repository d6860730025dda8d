"""Decoder-only transformer over [text ; image codes], with a KV cache for incremental decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class TransformerConfig:
    """Shape of the transformer; the sequence is text_len text tokens then grid**2 image codes."""

    text_vocab: int  # BPE tokens plus one padding id per text position
    text_len: int  # text tokens per prompt (padded or truncated to this)
    image_vocab: int  # dVAE codebook size
    grid: int  # image codes on a side of the grid
    n_layer: int = 6  # transformer blocks
    n_head: int = 6  # attention heads per block
    n_embd: int = 192  # residual stream width
    dropout: float = 0.0  # dropout on the attention probabilities (inside SDPA) and the MLP's output
    text_loss_weight: float = 1 / 8  # DALL-E weights the text loss 1/8 and the image loss 7/8

    @property
    def n_image(self) -> int:
        """Image codes per image."""
        return self.grid**2

    @property
    def block_size(self) -> int:
        """Longest input the model sees: all text and all image codes but the last."""
        return self.text_len + self.n_image - 1

    def state_numel(self) -> int:
        """Elements of the model's state_dict, computed without building it (tested against the model)."""
        c = self.n_embd
        embeddings = (2 * self.text_vocab + self.text_len + 2 * self.image_vocab + 2 * self.grid) * c
        return embeddings + self.n_layer * (12 * c * c + 13 * c) + 2 * c  # blocks, final LayerNorm

    def activation_bytes(self) -> int:
        """The fp32 decode state of one sequence: its KV cache, which grows to the whole block."""
        return 4 * 2 * self.n_layer * self.block_size * self.n_embd


class KVCache:
    """Preallocated keys and values for every layer, filled as decoding moves along the sequence."""

    def __init__(self, cfg: TransformerConfig, batch: int, device: torch.device, dtype: torch.dtype, slack: int = 0):
        if not 0 <= slack <= cfg.n_image:
            raise ValueError(f"a KV cache's slack is 0..{cfg.n_image} positions, got {slack}")
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.block_size + slack, cfg.n_embd // cfg.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, H, T, D)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled so far (every row alike)
        self.ragged: Ragged | None = None  # set: each row reads its own window (Transformer.ragged_window_logits)
        # decode_step's per-layer parts (Transformer.decode_layers), set by image_logits' first call on this cache
        # (a draw's prefill), so that its steps read them once; None: each step reads them from the model
        self.layers: list[tuple] | None = None

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only these rows (a 1-D index) of the cache, in this order: a decode that drops finished rows."""
        self.k, self.v = self.k.index_select(1, rows), self.v.index_select(1, rows)

    @classmethod
    def for_model(cls, model: "Transformer", batch: int, device: torch.device, slack: int = 0) -> "KVCache":
        """A cache in the dtype attention runs fastest in for this model and device: the model's own, but fp32
        for a bf16 (or int8, whose activations are bf16) model on a CPU without AMX tiles, where PyTorch's
        attention over a bf16 cache converts instead of streaming half the bytes and is several times slower
        than over an fp32 one (BENCHMARKS.md, "The KV cache of bf16 and int8 on the CPU"); q, k and v are
        then cast to fp32 and the attention's output back. With AMX the bf16 attention kernel is the faster
        one at every batch ("A bf16 KV cache where the CPU has AMX")."""
        dtype = next(model.parameters()).dtype
        if torch.device(device).type == "cpu" and dtype in (torch.bfloat16, torch.float16):
            if dtype == torch.float16 or not amx_tiles():
                dtype = torch.float32
        return cls(model.cfg, batch, device, dtype, slack)


class Ragged:
    """A window of T positions per row that starts at each row's own cache position (row r's first key goes
    at offsets[r]): where each row writes its keys and values, how far any row reads, and the additive mask
    by which query t of row r sees keys 0..offsets[r] + t alone. Built once per pass and read by every layer."""

    def __init__(self, offsets: torch.Tensor, width: int, heads: int, room: int, dtype: torch.dtype):
        B, dev = offsets.shape[0], offsets.device
        lo, hi = (int(o) for o in torch.aminmax(offsets))
        self.end = hi + width  # keys any row reads
        self.start = lo if lo == hi else None  # every row at one place (one image): plain slices do
        self.pos = offsets[:, None] + torch.arange(width, device=dev)  # (B, T): where each key goes
        # ... as rows of one layer's cache (B, H, room, D) seen as (B * H * room, D), in the order of the
        # window's keys (B, H, T, D): one index_copy_ per layer writes them
        self.flat = None if self.start is not None else (
            (torch.arange(B, device=dev)[:, None, None] * heads + torch.arange(heads, device=dev)[:, None]) * room
            + self.pos[:, None]).reshape(-1)
        pos = self.pos[:1] if self.start is not None else self.pos  # (B or 1, T)
        seen = torch.arange(self.end, device=dev)[None, None] <= pos[:, :, None]  # (B or 1, T, end)
        self.mask = torch.zeros(seen.shape, dtype=dtype, device=dev).masked_fill_(~seen, float("-inf"))[:, None]


def cpu_says(check: str) -> bool:
    """What one of torch.cpu's private feature checks (`_is_avx512_bf16_supported`, `_is_amx_tile_supported`)
    says about this CPU; a PyTorch without the check means unknown, so no."""
    found = getattr(torch.cpu, check, None)
    return bool(found()) if found is not None else False


def amx_tiles() -> bool:
    """Whether this CPU has AMX tiles (and this PyTorch says so), which PyTorch's bf16 CPU attention uses."""
    return cpu_says("_is_amx_tile_supported")


INT8_K_BLOCK = 16  # `_weight_int8pack_mm` reads a row 16 (AVX-512) or 8 (AVX2) values at a time, aligned


class Int8Linear(nn.Module):
    """A linear layer for inference with int8 weights, one bf16 scale per output channel (weight-only
    quantisation): y = (x @ q.T) * scale + bias through PyTorch's CPU kernel `_weight_int8pack_mm`, which
    reads a quarter of the fp32 bytes per call. Activations, scales and bias are bf16.

    That kernel reads whole blocks of INT8_K_BLOCK values of each row with aligned loads and checks neither:
    an input width that is not a multiple of the block (a model with n_embd 20) or an input that does not start
    on a 64-byte boundary (a view into a larger tensor) crashed the process. So a layer of another width pads
    its weights and each input with zeros to the next multiple (the same sums), and a misaligned input is
    copied first."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)  # (N,): the channel's largest weight maps to 127
        self.pad = -linear.in_features % INT8_K_BLOCK
        q = F.pad((w / scale[:, None]).round().clamp(-127, 127), (0, self.pad))
        self.register_buffer("qweight", q.to(torch.int8).contiguous())
        self.register_buffer("scales", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # its int8 buffers are no model file's
        raise RuntimeError("a transformer quantised for int8 inference cannot be saved (no model file holds int8 "
                           "weights: it would not load); save the model it came from")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        a = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        if self.pad:
            a = F.pad(a, (0, self.pad))  # a new tensor, so aligned too
        elif not a.is_contiguous() or a.data_ptr() % 64:
            a = a.clone(memory_format=torch.contiguous_format)  # the allocator aligns to 64 bytes
        y = torch._weight_int8pack_mm(a, self.qweight, self.scales)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*shape[:-1], self.out_features)


class PackedLinear(nn.Module):
    """A bf16 linear layer for CPU inference whose weight oneDNN has reordered once, at load, into its own
    blocked layout (`torch.ops.mkldnn._reorder_linear_weight`), instead of on every call: the same
    products as F.linear in bf16 (tested bit for bit), faster per decode step (BENCHMARKS.md, "Packed bf16
    weights"). The packed weight is an opaque oneDNN tensor, not a parameter: the layer cannot be trained,
    moved, cast or saved, and says so instead of doing half of it."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().to(torch.bfloat16)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(w)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """GELU (tanh approximation) of this layer's output in the same oneDNN call: the activation reads the
        float32 accumulator before the one rounding to bf16 (closer to fp32 than a bf16 GELU of a bf16
        product), and a 32-row MLP step takes about half the time of the two calls (BENCHMARKS.md)."""
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "gelu", [], "tanh")

    def _apply(self, fn, recurse=True):  # .to(), .float(), .cuda(): the packed weight would not follow
        raise RuntimeError("a transformer packed for bf16 CPU inference cannot be moved or cast; load it again")

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # state_dict() would leave the weight out
        raise RuntimeError("a transformer packed for bf16 CPU inference cannot be saved; save the model it came from")


def can_pack_bf16() -> bool:
    """Whether PackedLinear runs here: this PyTorch has oneDNN's linear kernels and this CPU has what their bf16
    path needs (AVX-512 BW/VL/DQ or AVX-NE-CONVERT; an AVX2-only CPU has not, and keeps plain bf16)."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))


def linear(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """m(x) for an nn.Linear, an Int8Linear or a PackedLinear, without nn.Module call overhead for the first."""
    if isinstance(m, nn.Linear):
        return F.linear(x, m.weight, m.bias)
    return m(x)


def linear_gelu(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GELU (tanh) of linear(m, x): fused into the product for a PackedLinear (PackedLinear.gelu)."""
    if isinstance(m, PackedLinear):
        return m.gelu(x)
    return F.gelu(linear(m, x), approximate="tanh")


def _replace_linears(model: "Transformer", layer: type[nn.Module]) -> None:
    """Every linear layer of the blocks and the image head (what the decode loop streams) -> layer(it)."""
    for block in model.blocks:
        block.attn.qkv = layer(block.attn.qkv)
        block.attn.proj = layer(block.attn.proj)
        block.mlp[0] = layer(block.mlp[0])
        block.mlp[2] = layer(block.mlp[2])
    model.image_head = layer(model.image_head)


def quantize_int8(model: "Transformer") -> "Transformer":
    """Cast a transformer for int8 inference in place: every linear layer of the blocks and the image head
    becomes an Int8Linear; the rest (embeddings, norms) becomes bf16. Training is not supported after."""
    _replace_linears(model, Int8Linear)
    return model.to(torch.bfloat16)  # buffers of int8 stay int8 (to() casts floating point only)


def pack_bf16(model: "Transformer") -> "Transformer":
    """Cast a transformer for bf16 inference on the CPU in place: bf16 throughout, and the decode loop's
    linear layers become PackedLinear where this PyTorch can (can_pack_bf16). Training is not supported
    after."""
    model.to(torch.bfloat16)
    if can_pack_bf16():
        _replace_linears(model, PackedLinear)
    return model


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention through scaled_dot_product_attention; optionally reads/writes a KV cache."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.n_head < 1 or cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd {cfg.n_embd} must be a multiple of n_head {cfg.n_head}")
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        # A single new query sees every cached key, so it needs no mask; a prefill from 0 is plain causal; a
        # ragged window's rows each see keys up to their own positions (Ragged.mask).
        mask = None
        if cache is not None and cache.ragged is not None:  # each row's window at its own position
            r, mask = cache.ragged, cache.ragged.mask
            if r.start is not None:
                cache.k[layer, :, :, r.start:r.start + T] = k
                cache.v[layer, :, :, r.start:r.start + T] = v
            else:
                D = C // self.n_head
                cache.k[layer].view(-1, D).index_copy_(0, r.flat, k.reshape(-1, D).to(cache.k.dtype))
                cache.v[layer].view(-1, D).index_copy_(0, r.flat, v.reshape(-1, D).to(cache.v.dtype))
            k, v = cache.k[layer, :, :, :r.end], cache.v[layer, :, :, :r.end]
        elif cache is not None:
            start = cache.length
            if T > 1 and start > 0:  # windows after cached positions go through Transformer.ragged_window_logits
                raise ValueError("a cache holding positions reads one code at a time, or ragged windows")
            cache.k[layer, :, :, start:start + T] = k
            cache.v[layer, :, :, start:start + T] = v
            k, v = cache.k[layer, :, :, :start + T], cache.v[layer, :, :, :start + T]
        y = F.scaled_dot_product_attention(q.to(k.dtype), k, v, attn_mask=mask, is_causal=T > 1 and mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C).to(x.dtype))


class Block(nn.Module):
    """Pre-norm transformer block: attention then MLP, each added to the residual stream."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        if isinstance(self.mlp[0], PackedLinear):  # inference only (no dropout): the GELU fused, as decode_step
            return x + self.mlp[2](self.mlp[0].gelu(self.ln2(x)))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Text and image tokens in one causal sequence, with separate embeddings and output heads for each."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.text_emb = nn.Embedding(cfg.text_vocab, cfg.n_embd)
        self.text_pos = nn.Embedding(cfg.text_len, cfg.n_embd)
        self.image_emb = nn.Embedding(cfg.image_vocab, cfg.n_embd)
        self.row_emb = nn.Embedding(cfg.grid, cfg.n_embd)  # 2-D position: row ...
        self.col_emb = nn.Embedding(cfg.grid, cfg.n_embd)  # ... plus column
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.text_head = nn.Linear(cfg.n_embd, cfg.text_vocab, bias=False)
        self.image_head = nn.Linear(cfg.n_embd, cfg.image_vocab, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """Text ids (B, T) -> embeddings (B, T, C) at positions 0..T-1."""
        pos = torch.arange(text.shape[1], device=text.device)
        return self.text_emb(text) + self.text_pos(pos)

    def embed_image(self, image: torch.Tensor, start: int = 0, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Image codes (B, N) at grid indices start..start+N-1, or at idx ((N,) or each row's own, (B, N)) ->
        embeddings (B, N, C): the code's embedding plus its row's and its column's (decode_step writes the same
        sum for one code)."""
        if idx is None:
            idx = torch.arange(start, start + image.shape[1], device=image.device)
        g = self.cfg.grid
        return self.image_emb(image) + self.row_emb(idx // g) + self.col_emb(idx % g)

    def hidden(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Run the blocks over embeddings (B, T, C), extending the cache if given."""
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None and cache.ragged is None:
            cache.length += x.shape[1]
        return self.ln_f(x)

    def forward(self, text: torch.Tensor, image: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text (B, T) and image codes (B, N) in raster order, or (B, grid, grid) as the dVAE's codes_from_image
        gives them -> (image logits (B, N, V), weighted loss)."""
        cfg = self.cfg
        if image.dim() == 3 and tuple(image.shape[1:]) == (cfg.grid, cfg.grid):
            image = image.flatten(1)
        if text.dim() != 2 or text.shape[1] != cfg.text_len or image.dim() != 2 \
                or tuple(image.shape) != (len(text), cfg.n_image):  # (else a mismatch deep in the loss)
            raise ValueError(f"the transformer reads text (B, {cfg.text_len}): token ids padded to its text length "
                             f"(TextToImage.request(prompt).encoded.ids), and codes (B, {cfg.n_image}) in raster "
                             f"order or (B, {cfg.grid}, {cfg.grid}); got text {tuple(text.shape)} and codes "
                             f"{tuple(image.shape)}")
        if any(t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool for t in (text, image)):
            raise ValueError(f"the transformer reads token ids and codes as integers; got text {text.dtype} and "
                             f"codes {image.dtype}")
        # (int32 codes, torch.tensor(..., dtype=torch.int32), were "expected target dtype to be Long" in the loss)
        text, image = text.long(), image.long()
        x = torch.cat([self.embed_text(text), self.embed_image(image[:, :-1])], dim=1)  # (B, T+N-1, C)
        h = self.hidden(x)
        text_logits = self.text_head(h[:, : cfg.text_len - 1])  # position t predicts text t+1
        image_logits = self.image_head(h[:, cfg.text_len - 1:])  # last text position predicts image 0
        text_loss = F.cross_entropy(text_logits.float().reshape(-1, cfg.text_vocab), text[:, 1:].reshape(-1))
        image_loss = F.cross_entropy(image_logits.float().reshape(-1, cfg.image_vocab), image.reshape(-1))
        loss = cfg.text_loss_weight * text_loss + (1 - cfg.text_loss_weight) * image_loss
        return image_logits, loss

    def image_logits(self, text: torch.Tensor, image: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, V) for the next image code given text (B, T) and the codes so far (B, n).

        Pass the full text and every code so far each time. Without a cache everything is recomputed; with
        one, the first call (an empty cache) reads the text and any codes given (an image prompt's kept
        run), and every later call reads only the last code (decode_step), one code per call.
        """
        if text.dim() != 2 or image.dim() != 2 or len(image) != len(text) \
                or image.shape[1] > self.cfg.n_image:  # (a grid: "Tensors must have same number of dimensions")
            # (all n_image codes are a prefill's: the cache of a whole grid, which Jacobi's ragged windows read)
            raise ValueError(f"image_logits reads text (B, {self.cfg.text_len}) and the codes drawn so far (B, n), n "
                             f"at most {self.cfg.n_image}, in raster order; got text {tuple(text.shape)} and codes "
                             f"{tuple(image.shape)}")
        if cache is None or cache.length == 0:
            if cache is not None:  # a draw's first call: the blocks' parts its steps read, from the model as it is
                cache.layers = self.decode_layers()  # now (every decode over this cache: draw_codes', a script's)
            x = self.embed_text(text)
            if image.shape[1] > 0:
                x = torch.cat([x, self.embed_image(image)], dim=1)
        else:
            return self.decode_step(image[:, -1], cache)
        return self.image_head(self.hidden(x, cache)[:, -1])

    def ragged_window_logits(self, codes: torch.Tensor, starts: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Codes (B, W) of row r at grid indices starts[r]..starts[r]+W-1, each row read after its own first
        text_len + starts[r] cached positions (rows at different places of the image) -> logits (B, W, V) for
        the codes after each. Indices past the grid are padding: they read the last position's embedding, and
        what they give is to be ignored (a window that reads code n_image - 1 or beyond writes keys at
        text_len + n_image - 1 and past, the cache's slack). Writes each row's window to the cache;
        `cache.length` is not used or moved, and nothing checks that a row's first text_len + starts[r]
        positions were written (the caller's invariant: a start past them reads zeros as keys)."""
        B, W = codes.shape
        if starts.shape != (B,) or int(starts.min()) < 0:
            raise ValueError(f"ragged windows need one start (0 or more) per row, got {tuple(starts.shape)}")
        if int(starts.max()) + W + self.cfg.text_len > cache.k.shape[3]:
            raise ValueError(f"a window of {W} at code {int(starts.max())} passes the cache's "
                             f"{cache.k.shape[3]} positions; make it with more slack")
        idx = (starts[:, None] + torch.arange(W, device=codes.device)).clamp(max=self.cfg.n_image - 1)
        x = self.embed_image(codes, idx=idx)
        cache.ragged = Ragged(starts + self.cfg.text_len, W, self.cfg.n_head, cache.k.shape[3], cache.k.dtype)
        try:
            return self.image_head(self.hidden(x, cache))
        finally:
            cache.ragged = None

    def decode_layers(self) -> list[tuple]:
        """What decode_step reads of each block, read from the modules once: (ln1 weight, bias, eps, qkv, proj,
        ln2 weight, bias, eps, fc, fc2) per layer. image_logits sets it on a KV cache at its first call (a draw's
        prefill) so that the steps after skip some 20 nn.Module lookups a layer; it is not kept on the model, since
        pack_bf16 and quantize_int8 replace the linear layers (a later draw reads the new ones)."""
        return [(b.ln1.weight, b.ln1.bias, b.ln1.eps, b.attn.qkv, b.attn.proj, b.ln2.weight, b.ln2.bias, b.ln2.eps,
                 b.mlp[0], b.mlp[2]) for b in self.blocks]

    def decode_step(self, code: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Append one code (B,) at the cache's position; logits (B, V) for the next one.

        The arithmetic of hidden() for a single token, written with torch.nn.functional on the
        parameters: at batch 1 the per-token cost of nn.Module calls and reshapes was larger than the
        matrix work (bench/bench_decode.py). Equality with the full forward is tested. Reads the blocks'
        parts from cache.layers where image_logits' prefill set them (decode_layers), else from the model.
        """
        cfg, t = self.cfg, cache.length
        B, C, H = code.shape[0], cfg.n_embd, cfg.n_head
        j = t - cfg.text_len  # grid index of this code
        x = self.image_emb.weight.index_select(0, code) + self.row_emb.weight[j // cfg.grid] \
            + self.col_emb.weight[j % cfg.grid]  # (index_select: the rows weight[code] reads, without aten::index)
        layers = cache.layers if cache.layers is not None else self.decode_layers()
        kd = cache.k.dtype
        for i, (w1, b1, e1, qkv_m, proj_m, w2, b2, e2, fc, fc2) in enumerate(layers):  # x: (B, C)
            qkv = linear(qkv_m, F.layer_norm(x, (C,), w1, b1, e1))
            q, k, v = qkv.view(B, 3, H, C // H).unbind(1)  # each (B, H, D)
            ck, cv = cache.k[i], cache.v[i]
            ck[:, :, t] = k
            cv[:, :, t] = v
            y = F.scaled_dot_product_attention(q.unsqueeze(2).to(kd), ck[:, :, :t + 1], cv[:, :, :t + 1])
            x = x + linear(proj_m, y.reshape(B, C).to(x.dtype))
            x = x + linear(fc2, linear_gelu(fc, F.layer_norm(x, (C,), w2, b2, e2)))
        cache.length = t + 1
        return linear(self.image_head, F.layer_norm(x, (C,), self.ln_f.weight, self.ln_f.bias, self.ln_f.eps))
