"""ZoeDepth's metric bins head: seed bins, attractors, log-binomial output, the NYU/KITTI
router. Keys follow transformers (`metric_head.seed_bin_regressor(s)`, `.seed_projector`,
`.projectors.N`, `.attractors[.name].N`, `.conditional_log_binomial[.name].mlp`,
`.patch_transformer`, `.mlp_classifier`).

How metres come out: a seed regressor on the bottleneck proposes per-pixel bin centres;
four attractor layers, one per fused neck map from coarse to fine, pull the centres towards
predicted attractor points; a per-pixel MLP on the relative-depth features predicts a
probability and a temperature that shape a binomial distribution over the bins, and the
depth is the expectation of the bin centres under it.

The reference's quirks are kept because the checkpoints were trained with them: the inverse
attractor always uses alpha=300, gamma=2 (the config's attractor_alpha / gamma are unused);
"normed" attractors read only the first half of their doubled output; the router's attractor
layers each have 16 attractors whatever num_attractors says; and the router picks one domain
for the whole batch from the summed logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.zoedepth.configuration import ROUTER_LAYERS, ZoeDepthConfig

_P_EPS = 1e-4  # probability / temperature floor of the log-binomial head


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class SeedBinRegressor(nn.Module):
    """Bottleneck -> first bin centres (B, n_bins, h, w): softplus centres, or ("normed")
    normalised widths stacked from min_depth, centres between consecutive edges."""

    def __init__(self, config: ZoeDepthConfig, n_bins: int, mlp_dim: int, min_depth: float,
                 max_depth: float) -> None:
        super().__init__()
        self.normed = config.bin_centers_type == "normed"
        self.min_depth, self.max_depth = min_depth, max_depth
        self.conv1 = _conv1x1(config.bottleneck_features, mlp_dim)
        self.conv2 = _conv1x1(mlp_dim, n_bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(F.relu(self.conv1(x)))
        if not self.normed:
            return F.softplus(x)
        widths = F.relu(x) + 1e-3
        widths = (self.max_depth - self.min_depth) * widths / widths.sum(dim=1, keepdim=True)
        widths = F.pad(widths, (0, 0, 0, 0, 1, 0), value=self.min_depth)
        edges = torch.cumsum(widths, dim=1)
        return 0.5 * (edges[:, :-1] + edges[:, 1:])


class Projector(nn.Module):
    def __init__(self, cin: int, cout: int, mlp_dim: int) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, mlp_dim)
        self.conv2 = _conv1x1(mlp_dim, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


def _inverse_attraction(dx: torch.Tensor) -> torch.Tensor:
    """dc = dx / (1 + alpha dx^gamma), with the reference's fixed alpha=300, gamma=2."""
    return dx / (1 + 300 * dx.pow(2))


class Attractor(nn.Module):
    """Moves the (resized) previous bin centres towards this level's attractor points."""

    def __init__(self, config: ZoeDepthConfig, n_attractors: int, min_depth: float,
                 max_depth: float) -> None:
        super().__init__()
        self.normed = config.bin_centers_type == "normed"
        self.mean = config.attractor_kind == "mean"
        self.n_attractors = n_attractors
        self.min_depth, self.max_depth = min_depth, max_depth
        d = config.bin_embedding_dim
        self.conv1 = _conv1x1(d, d)
        self.conv2 = _conv1x1(d, n_attractors * 2 if self.normed else n_attractors)

    def forward(self, x: torch.Tensor, prev_bins: torch.Tensor, prev_embedding: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(new centres to pass on, centres in metres)."""
        x = x + _resize(prev_embedding, x.shape[-2:])
        a = self.conv2(F.relu(self.conv1(x)))
        b, _, h, w = a.shape
        if self.normed:
            a = (F.relu(a) + 1e-3).view(b, self.n_attractors, 2, h, w)[:, :, 0]
        else:
            a = F.softplus(a)
        centres = _resize(prev_bins, (h, w))
        shift = _inverse_attraction(a.unsqueeze(2) - centres.unsqueeze(1)).sum(dim=1)
        if self.mean:
            shift = shift / self.n_attractors
        new = centres + shift
        if not self.normed:
            return new, new
        metres = (self.max_depth - self.min_depth) * new + self.min_depth
        metres = torch.sort(metres, dim=1).values.clamp(self.min_depth, self.max_depth)
        return new, metres


class ConditionalLogBinomial(nn.Module):
    """Per-pixel MLP -> (p, t) -> softmax over bins of log Binomial(k; n_bins-1, p) / t."""

    def __init__(self, config: ZoeDepthConfig, in_features: int, condition: int, n_bins: int,
                 bottleneck_factor: int) -> None:
        super().__init__()
        hidden = (in_features + condition) // bottleneck_factor
        self.mlp = nn.Sequential(
            nn.Conv2d(in_features + condition, hidden, 1), nn.GELU(), nn.Conv2d(hidden, 4, 1),
            nn.Softplus())
        self.n_bins = n_bins
        self.min_temp, self.max_temp = config.min_temp, config.max_temp

    def forward(self, main: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        pt = self.mlp(torch.cat([main, condition], dim=1)) + _P_EPS
        p = (pt[:, 0] / (pt[:, 0] + pt[:, 1])).unsqueeze(1)
        t = (pt[:, 2] / (pt[:, 2] + pt[:, 3])).unsqueeze(1)
        t = (self.max_temp - self.min_temp) * t + self.min_temp
        n = self.n_bins - 1
        k = torch.arange(self.n_bins, device=p.device).view(1, -1, 1, 1)
        y = _log_binomial_coefficient(n, k) + k * torch.log(p.clamp(_P_EPS, 1.0)) + (
            n - k) * torch.log((1 - p).clamp(_P_EPS, 1.0))
        return torch.softmax(y / t, dim=1)


def _log_binomial_coefficient(n: int, k: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """log C(n, k) by Stirling, the reference's formula (eps-shifted)."""
    n_ = torch.full((), float(n) + eps, device=k.device)  # filled there: no host copy
    k_ = k + eps
    return n_ * torch.log(n_) - k_ * torch.log(k_) - (n_ - k_) * torch.log(n_ - k_ + eps)


class _Bins(nn.Module):
    """What both heads share: the bottleneck conv, seed projector and the four projectors
    of the fused maps into the bin-embedding space."""

    def __init__(self, config: ZoeDepthConfig, mlp_dim: int | None) -> None:
        super().__init__()
        d = config.bin_embedding_dim
        self.conv2 = _conv1x1(config.bottleneck_features, config.bottleneck_features)
        self.seed_projector = Projector(config.bottleneck_features, d, mlp_dim or 128)
        self.projectors = nn.ModuleList(
            Projector(config.fusion_hidden_size, d, mlp_dim or 128) for _ in range(4))

    def _attract(self, attractors: nn.ModuleList, x: torch.Tensor, seed: torch.Tensor,
                 normed: bool, min_depth: float, max_depth: float,
                 blocks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(bin centres in metres, last bin embedding) after the four attractor levels."""
        bins = (seed - min_depth) / (max_depth - min_depth) if normed else seed
        embedding = self.seed_projector(x)
        centres = bins
        for projector, attractor, block in zip(self.projectors, attractors, blocks):
            new_embedding = projector(block)
            bins, centres = attractor(new_embedding, bins, embedding)
            embedding = new_embedding
        return centres, embedding


class MetricHead(_Bins):
    """One domain (Intel/zoedepth-nyu, -kitti): conditioned on the relative depth too."""

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__(config, None)
        conf = config.bin_configurations[0]
        n_bins, lo, hi = conf["n_bins"], conf["min_depth"], conf["max_depth"]
        self.normed, self.min_depth, self.max_depth = config.bin_centers_type == "normed", lo, hi
        self.seed_bin_regressor = SeedBinRegressor(config, n_bins, 256, lo, hi)
        self.attractors = nn.ModuleList(
            Attractor(config, n, lo, hi) for n in config.num_attractors)
        self.conditional_log_binomial = ConditionalLogBinomial(
            config, config.num_relative_features + 1, config.bin_embedding_dim, n_bins, 2)

    def forward(self, features: torch.Tensor, bottleneck: torch.Tensor,
                blocks: list[torch.Tensor], relative: torch.Tensor
                ) -> tuple[torch.Tensor, None]:
        x = self.conv2(bottleneck)
        centres, embedding = self._attract(
            self.attractors, x, self.seed_bin_regressor(x), self.normed, self.min_depth,
            self.max_depth, blocks)
        size = features.shape[-2:]
        last = torch.cat([features, _resize(relative.unsqueeze(1), size)], dim=1)
        probs = self.conditional_log_binomial(last, _resize(embedding, size))
        return (probs * _resize(centres, probs.shape[-2:])).sum(dim=1), None


class _RouterAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (lin(x).view(b, n, self.heads, -1).transpose(1, 2)
                   for lin in (self.query, self.key, self.value))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class _RouterLayer(nn.Module):
    """Post-norm transformer layer (ReLU MLP), as torch's TransformerEncoderLayer."""

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__()
        hidden = config.patch_transformer_hidden_size
        self.self_attn = _RouterAttention(hidden, config.patch_transformer_num_attention_heads)
        self.linear1 = nn.Linear(hidden, config.patch_transformer_intermediate_size)
        self.linear2 = nn.Linear(config.patch_transformer_intermediate_size, hidden)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


def _sinusoids(length: int, dim: int, device: torch.device, dtype: torch.dtype
               ) -> torch.Tensor:
    """(length, dim): sin of all frequencies, then cos (concatenated, not interleaved)."""
    position = torch.arange(length, dtype=dtype, device=device).unsqueeze(1)
    index = torch.arange(0, dim, 2, dtype=dtype, device=device).unsqueeze(0)
    log_base = torch.log(torch.full((), 10000.0, device=device))  # float32, as the reference
    angle = position * torch.exp(index * (-log_base / dim))
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


class PatchTransformer(nn.Module):
    """The router's encoder: 1x1-embedded bottleneck tokens after a zero [CLS] token."""

    def __init__(self, config: ZoeDepthConfig) -> None:
        super().__init__()
        self.transformer_encoder = nn.ModuleList(
            _RouterLayer(config) for _ in range(config.num_patch_transformer_layers))
        self.embedding_convPxP = nn.Conv2d(
            config.bottleneck_features, config.patch_transformer_hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, hidden) embedding of the [CLS] token."""
        tokens = F.pad(self.embedding_convPxP(x).flatten(2), (1, 0)).transpose(1, 2)
        tokens = tokens + _sinusoids(tokens.shape[1], tokens.shape[2], tokens.device,
                                     tokens.dtype)
        for layer in self.transformer_encoder[:ROUTER_LAYERS]:  # the reference runs four
            tokens = layer(tokens)
        return tokens[:, 0]


class _Classifier(nn.Module):
    def __init__(self, width: int, domains: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, width)
        self.linear2 = nn.Linear(width, domains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))


class RoutedMetricHeads(_Bins):
    """Two domains (Intel/zoedepth-nyu-kitti): a transformer on the bottleneck votes for
    one, whose seed regressor, attractors and log-binomial head then run."""

    def __init__(self, config: ZoeDepthConfig) -> None:
        mlp_dim = config.bin_embedding_dim // 2
        super().__init__(config, mlp_dim)
        self.confs = config.bin_configurations
        self.normed = config.bin_centers_type == "normed"
        self.patch_transformer = PatchTransformer(config)
        self.mlp_classifier = _Classifier(config.patch_transformer_hidden_size, len(self.confs))
        self.seed_bin_regressors = nn.ModuleDict({
            c["name"]: SeedBinRegressor(config, c["n_bins"], mlp_dim, c["min_depth"],
                                        c["max_depth"]) for c in self.confs})
        self.attractors = nn.ModuleDict({
            c["name"]: nn.ModuleList(
                Attractor(config, 16, c["min_depth"], c["max_depth"])
                for _ in config.num_attractors) for c in self.confs})
        self.conditional_log_binomial = nn.ModuleDict({
            c["name"]: ConditionalLogBinomial(
                config, config.num_relative_features, config.bin_embedding_dim, c["n_bins"], 4)
            for c in self.confs})

    def forward(self, features: torch.Tensor, bottleneck: torch.Tensor,
                blocks: list[torch.Tensor], relative: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(bottleneck)
        logits = self.mlp_classifier(self.patch_transformer(x))
        conf = self.confs[int(logits.sum(dim=0).argmax())]  # one vote for the whole batch
        name = conf["name"]
        centres, embedding = self._attract(
            self.attractors[name], x, self.seed_bin_regressors[name](x), self.normed,
            conf["min_depth"], conf["max_depth"], blocks)
        size = features.shape[-2:]
        probs = self.conditional_log_binomial[name](features, _resize(embedding, size))
        return (probs * _resize(centres, size)).sum(dim=1), logits
