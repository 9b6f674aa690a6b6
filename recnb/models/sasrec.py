"""SASRec: a causal Transformer that reads a user's films in order and scores every film as the next one.

Shapes in comments: B batch, L sequence length, D model width, H heads,
d = D / H per-head width, N + 1 item ids (0 is padding).

Masks are boolean with ``True`` meaning *may attend*. A query position may see
a key position when the key is not in the future (causal) and the key is a real
item (padding). Left padding means a padding *query* would see no key at all;
a softmax over nothing is NaN, and NaN spreads through gradients. So every
position may always see itself: padding rows then attend to themselves only,
their outputs are ignored by the loss, and no row is ever fully masked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recnb.errors import InvalidArgumentError


@dataclass
class SASRecConfig:
    """Everything needed to build a SASRec model (saved in every checkpoint)."""

    n_items: int
    n_genres: int = 0           # size of the genre vocabulary incl. id 0; 0 switches the feature off
    n_year_buckets: int = 0     # size of the year-bucket vocabulary incl. id 0; 0 switches it off
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    max_len: int = 200
    dropout: float = 0.2
    attention_dropout: float = 0.0
    ffn_multiplier: int = 4
    tied_head: bool = True      # score with the item embedding (True) or a separate Linear(D -> N + 1)
    item_bias: bool = False     # tied head: add a learned score of each item to h . e (BERT4Rec's output layer)
    use_genre: bool = True
    use_year: bool = True
    causal: bool = True         # False drops the causal mask: only for demonstrating leakage (notebook 06)
    scale_item_embedding: bool = False   # item embedding x sqrt(d_model) before the sum, as SASRec's own code does

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise InvalidArgumentError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}).")
        if self.n_items < 1 or self.max_len < 1:
            raise InvalidArgumentError("n_items and max_len must be positive.")
        if self.item_bias and not self.tied_head:
            raise InvalidArgumentError("item_bias adds a bias to the tied head; the linear head (tied_head=False) "
                                       "has a bias of its own. Leave one of them out.")

    def to_dict(self) -> dict:
        return asdict(self)


#: Named sizes. ``seed`` is the model size of the earlier SASRec-on-ML-1M project this series set out to
#: reproduce (notebook 00); ``compact`` is the CPU-friendly
#: preset that reaches the series' quality bar; ``quick`` is for tests and CI.
PRESETS: dict[str, dict] = {
    "seed": dict(d_model=256, n_layers=3, n_heads=4, max_len=200, dropout=0.1, tied_head=False),
    "compact": dict(d_model=64, n_layers=2, n_heads=2, max_len=200, dropout=0.1, ffn_multiplier=4),
    "quick": dict(d_model=32, n_layers=1, n_heads=2, max_len=50, dropout=0.1, ffn_multiplier=2),
}


def config_from_preset(preset: str, n_items: int, n_genres: int = 0, n_year_buckets: int = 0,
                       **overrides) -> SASRecConfig:
    """Build a config from a named preset, with keyword overrides (type-checked by the dataclass)."""
    if preset not in PRESETS:
        raise InvalidArgumentError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    unknown = set(overrides) - set(SASRecConfig.__dataclass_fields__)
    if unknown:
        raise InvalidArgumentError(f"Unknown config fields {sorted(unknown)}.")
    return SASRecConfig(n_items=n_items, n_genres=n_genres, n_year_buckets=n_year_buckets,
                        **{**PRESETS[preset], **overrides})


def attention_mask(histories: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """(B, 1, L, L) boolean mask, True where query position i may attend to key position j.

    Causal (j <= i) and key-padding (item j is not 0), plus the diagonal so no
    row is empty (see the module docstring). ``causal=False`` keeps only the
    padding part: every position then sees the future, including its own target.
    """
    # built from comparisons of positions (not ones().tril() and eye()), so it exports to ONNX for any length
    position = torch.arange(histories.shape[1], device=histories.device)
    query, key = position[:, None], position[None, :]                                      # (L, 1), (1, L)
    visible = key <= query if causal else torch.ones_like(key == query)                    # (L, L): no look-ahead
    real_key = (histories != 0)[:, None, None, :]                                          # (B, 1, 1, L)
    itself = key == query                                                                  # (L, L): the diagonal
    return (visible & real_key) | itself                                                   # (B, 1, L, L)


class SelfAttention(nn.Module):
    """Multi-head self-attention, written out so every step can be read (and its weights returned)."""

    def __init__(self, config: SASRecConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.attention_dropout = config.attention_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, return_weights: bool = False, last_only: bool = False):
        """Attention over ``x`` (B, L, D); with ``last_only``, only the last position asks (queries (B, 1, D)):
        all the next-item score needs from the last block, at a fraction of the cost."""
        B, L, D = x.shape
        if last_only:   # keys and values of every position, the query of the last one only
            q = F.linear(x[:, -1:], self.qkv.weight[:D], self.qkv.bias[:D])                 # (B, 1, D)
            k, v = F.linear(x, self.qkv.weight[D:], self.qkv.bias[D:]).split(D, dim=-1)    # 2 x (B, L, D)
            mask = mask[:, :, -1:]                                                          # (B, 1, 1, L)
        else:
            q, k, v = self.qkv(x).split(D, dim=-1)                      # 3 x (B, L, D)
        Q = q.shape[1]                                                  # query positions: L, or 1
        q = q.view(B, Q, self.n_heads, D // self.n_heads).transpose(1, 2)                   # (B, H, Q, d)
        k, v = (t.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (k, v))  # (B, H, L, d)
        if return_weights or last_only:   # one query a row: two small products beat the fused kernel's setup
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # (B, H, Q, L)
            scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)                            # rows sum to 1; masked entries are 0
            dropped = F.dropout(weights, self.attention_dropout, self.training)
            context = dropped @ v                                       # (B, H, Q, d)
            weights = weights if return_weights else None
        else:
            # The same computation by PyTorch's fused kernel: faster, and it never builds (B, H, L, L).
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.attention_dropout if self.training else 0.0)
            weights = None
        context = context.transpose(1, 2).reshape(B, Q, D)              # (B, Q, D)
        return self.out(context), weights


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + feed-forward(LN(x))."""

    def __init__(self, config: SASRecConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attention = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        hidden = config.ffn_multiplier * config.d_model
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, hidden), nn.GELU(), nn.Linear(hidden, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask, return_weights=False, last_only=False):
        attended, weights = self.attention(self.norm1(x), mask, return_weights, last_only)
        x = (x[:, -1:] if last_only else x) + self.dropout(attended)
        x = x + self.dropout(self.feed_forward(self.norm2(x)))
        return x, weights


class SASRec(nn.Module):
    """Self-attentive sequential recommendation (Kang and McAuley, 2018), with metadata embeddings.

    The input of position t is the sum of the item's embedding, a learned
    embedding of position t, and (if switched on) embeddings of the item's
    primary genre and release-year bucket, looked up from ``item_genre`` and
    ``item_year_bucket`` tensors that the model carries as buffers.
    """

    # buffers set by register_buffer (None when the feature is off), declared so their type is known
    item_genre: torch.Tensor | None
    item_year_bucket: torch.Tensor | None
    output_bias: nn.Parameter | None   # the tied head's score of each item alone (config.item_bias), else None

    def __init__(self, config: SASRecConfig, item_genre: torch.Tensor | None = None,
                 item_year_bucket: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        D, V = config.d_model, config.n_items + 1
        self.item_embedding = nn.Embedding(V, D, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, D)
        self.genre_embedding = self._feature_embedding(config.use_genre, config.n_genres, item_genre, "item_genre")
        self.year_embedding = self._feature_embedding(config.use_year, config.n_year_buckets, item_year_bucket,
                                                      "item_year_bucket")
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(D)
        self.head = None if config.tied_head else nn.Linear(D, V)
        # starts at 0, so a new model scores as one without it; popularity can then live here, not in the norms
        self.output_bias = nn.Parameter(torch.zeros(V)) if config.item_bias else None
        self.apply(self._init_weights)

    def _feature_embedding(self, enabled: bool, size: int, lookup: torch.Tensor | None,
                           name: str) -> nn.Embedding | None:
        if not enabled or size == 0:
            self.register_buffer(name, None)
            return None
        if lookup is None or len(lookup) != self.config.n_items + 1:
            raise ValueError(f"{name} must be a tensor of length n_items + 1 = {self.config.n_items + 1} "
                             "(recnb.data.SequenceData provides it), or switch the feature off.")
        if int(lookup.max()) >= size:
            raise ValueError(f"{name} has ids up to {int(lookup.max())} but the config says {size} values.")
        self.register_buffer(name, lookup.clone().long())
        return nn.Embedding(size, self.config.d_model, padding_idx=0)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def embed(self, histories: torch.Tensor) -> torch.Tensor:
        """Embedding fusion: item + position (+ genre + year), then dropout. (B, L) -> (B, L, D)."""
        L = histories.shape[1]
        if L > self.config.max_len:
            raise ValueError(f"Sequences of length {L} exceed max_len={self.config.max_len}; "
                             "keep the most recent max_len items (recnb.data.split.pad_histories(..., max_len)).")
        positions = torch.arange(self.config.max_len - L, self.config.max_len, device=histories.device)
        x = self.item_part(histories) + self.position_embedding(positions)   # (B, L, D)
        for feature in self.feature_embeddings(histories).values():
            x = x + feature
        return self.embedding_dropout(x)

    def item_part(self, histories: torch.Tensor) -> torch.Tensor:
        """The item embeddings of the input, (B, L) -> (B, L, D); with ``scale_item_embedding``, times
        sqrt(d_model). Init draws every table with std 0.02, so unscaled the item and position parts start
        equal; scaled, the item part starts 8x larger at d_model 64. The output head (tied) is unscaled."""
        items = self.item_embedding(histories)
        return items * math.sqrt(self.config.d_model) if self.config.scale_item_embedding else items

    def feature_embeddings(self, histories: torch.Tensor) -> dict[str, torch.Tensor]:
        """The metadata embeddings of each item, ``"genre"`` then ``"year"``, for the features switched on.

        (B, L) -> (B, L, D) each (any shape of item ids works); empty when no feature is on.
        """
        features = {}
        # an embedding exists exactly when its lookup buffer does (_feature_embedding sets both)
        if self.genre_embedding is not None and self.item_genre is not None:
            features["genre"] = self.genre_embedding(self.item_genre[histories])
        if self.year_embedding is not None and self.item_year_bucket is not None:
            features["year"] = self.year_embedding(self.item_year_bucket[histories])
        return features

    def forward(self, histories: torch.Tensor, return_attention: bool = False, last_only: bool = False):
        """Hidden states (B, L, D) for a left-padded batch; with ``return_attention``, also a list
        of (B, H, L, L) attention weights, one per layer. With ``last_only``, the hidden state of
        the last position only, (B, 1, D): the last block then computes nothing else (the
        scoring path; earlier blocks still need every position, as keys and values)."""
        mask = attention_mask(histories, self.config.causal)
        x = self.embed(histories)
        attention = []
        for number, block in enumerate(self.blocks, 1):
            x, weights = block(x, mask, return_attention, last_only and number == len(self.blocks))
            attention.append(weights)
        x = self.final_norm(x)
        return (x, attention) if return_attention else x

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over all item ids for hidden states (..., D) -> (..., N + 1)."""
        if self.head is not None:
            return self.head(hidden)
        if self.output_bias is not None:
            return F.linear(hidden, self.item_embedding.weight, self.output_bias)
        return hidden @ self.item_embedding.weight.T

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """The evaluator's interface: scores (B, N + 1) for the next item after each history.

        Histories longer than ``max_len`` keep their most recent items. Positions
        are counted from the right, so the last item always gets the same position
        embedding whatever the padding.
        """
        return self.logits(self.user_states(histories)).float()

    # The evaluator's interface for large catalogues (recnb.evaluation.evaluator.ItemScorer): the scores of a
    # batch one slice of the items at a time, so a batch never holds (B x all items) scores at once.
    @property
    def n_columns(self) -> int:
        """Score columns: every item id, padding (0) included."""
        return self.config.n_items + 1

    def user_states(self, histories: torch.Tensor) -> torch.Tensor:
        """The last position's hidden state (B, D) of each history: what :meth:`score` multiplies by the items."""
        histories = histories[:, -self.config.max_len:]
        width = max(int((histories != 0).sum(1).max()), 1) if len(histories) else 1
        histories = histories[:, -width:]   # columns that are padding in every row change no score: drop them
        return self(histories, last_only=True)[:, -1]

    def score_items(self, states: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Scores (B, stop - start) of item ids start..stop-1 for :meth:`user_states`: a slice of :meth:`logits`."""
        if self.head is None:   # tied: a score is h . item embedding (+ the item's bias)
            scores = states @ self.item_embedding.weight[start:stop].T
            return (scores if self.output_bias is None else scores + self.output_bias[start:stop]).float()
        return F.linear(states, self.head.weight[start:stop], self.head.bias[start:stop]).float()


def count_parameters(model: SASRec) -> dict[str, int]:
    """Parameter counts per part of a SASRec model, for the notebooks' tables."""
    parts: dict[str, nn.Module | None] = {
        "item embedding": model.item_embedding,
        "position embedding": model.position_embedding,
        "genre embedding": model.genre_embedding,
        "year embedding": model.year_embedding,
        "transformer blocks": model.blocks,
        "final layer norm": model.final_norm,
        "output head (separate)": model.head,
    }
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items() if part is not None}
    if model.output_bias is not None:
        counts["output bias (tied head)"] = model.output_bias.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


@torch.no_grad()
def embedding_components(model: SASRec, history) -> dict[str, torch.Tensor]:
    """The parts SASRec adds to make its input, for one history: each (L, D), and their ``"sum"``.

    Item, position (counted from the right, as :meth:`SASRec.embed` does), genre
    and year (the last two only where the model has them): embedding fusion
    taken apart, so a notebook can show each part. The sum equals
    ``model.embed(history)`` in eval mode (no dropout).
    """
    device = model.item_embedding.weight.device
    history = torch.as_tensor(history, dtype=torch.long, device=device).reshape(-1)   # (L,)
    length, max_len = len(history), model.config.max_len
    positions = torch.arange(max_len - length, max_len, device=device)
    parts = {"item": model.item_part(history), "position": model.position_embedding(positions)}
    parts.update(model.feature_embeddings(history))
    parts["sum"] = sum(parts.values())
    return parts
