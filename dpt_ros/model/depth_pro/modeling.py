"""DepthProForDepthEstimation (Apple Depth Pro) with its FOV model, in plain PyTorch.

Module names are transformers' (`depth_pro.encoder.{patch,image}_encoder.model`,
`depth_pro.neck.*`, `fusion_stage.*`, `head.layers.*`, `fov_model.*`), so apple/DepthPro-hf
loads strictly. The three encoders are the package's DINOv2 (`dpt_ros.model.backbones.dinov2`); the
fusion units reuse the DPT neck's pre-activation residual layer.

The multi-scale patch encoder: the (1536 x 1536) input at ratios 0.25 / 0.5 / 1, each cut
into 384 x 384 tiles (overlap 0 / 0.5 / 0.25), every tile through one DINOv2 in a single
batch; tiles are merged back with `merge_padding_value` tokens trimmed at inner borders
(vectorised: one index selection, not a loop over tiles); intermediate blocks of the
finest scale too. A global DINOv2 on the whole image at 384. Outputs: `predicted_depth`,
canonical inverse depth (B, H, W) (metres = 1 / (inv * W / f_px)), and `field_of_view`
(B,) in degrees when the FOV model is on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.model.backbones.dinov2 import Dinov2Backbone, Dinov2Config
from dpt_ros.model.depth_pro.configuration import DepthProConfig
from dpt_ros.model.dpt.neck import PreActResidualLayer
from dpt_ros.model.hf_api import PretrainedModel, finish, flag, reject_labels
from dpt_ros.model.outputs import DepthEstimatorOutput


def _tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """(N, 1 + s*s, C) -> (N, C, s, s): special tokens dropped (transformers'
    reshape_features keeps the last s*s)."""
    n, seq, c = tokens.shape
    side = int(seq**0.5)
    return tokens[:, -(side * side):].reshape(n, side, side, c).permute(0, 3, 1, 2)


def _trim_index(grid: int, size: int, padding: int, device: torch.device) -> torch.Tensor:
    """Rows (or columns) of a grid x grid mosaic of size-pixel tiles that survive merging:
    `padding` dropped at every inner tile border (transformers' merge_patches)."""
    keep = []
    for i in range(grid):  # one entry per tile row: a handful
        start = padding if i != 0 else 0
        stop = size - (padding if i != grid - 1 else 0)
        keep.append(torch.arange(i * size + start, i * size + stop))
    return torch.cat(keep).to(device)


def merge_tiles(tiles: torch.Tensor, batch: int, padding: int) -> torch.Tensor:
    """(n_tiles * B, C, s, s), tile-major order -> (B, C, H, W) as transformers'
    merge_patches: the first grid*grid tiles as a square mosaic, inner borders trimmed."""
    n, c, s, _ = tiles.shape
    per = n // batch
    if per == 1:
        return tiles
    grid = int(per**0.5)
    if per < 4:
        padding = 0
    padding = min(s // 4, padding)
    mosaic = tiles[: grid * grid * batch].reshape(grid, grid, batch, c, s, s)
    mosaic = mosaic.permute(2, 3, 0, 4, 1, 5).reshape(batch, c, grid * s, grid * s)
    if padding == 0:
        return mosaic
    index = _trim_index(grid, s, padding, tiles.device)
    return mosaic.index_select(2, index).index_select(3, index)


def reconstruct(tokens: torch.Tensor, batch: int, padding: int,
                size: tuple[int, int]) -> torch.Tensor:
    """Encoder tokens -> a (B, C, *size) map (transformers' reconstruct_feature_maps)."""
    maps = merge_tiles(_tokens_to_map(tokens), batch, padding)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def split_tiles(x: torch.Tensor, tile: int, overlap: float) -> torch.Tensor:
    """(B, C, H, W) -> (n_tiles * B, C, tile, tile), tile-major (transformers' unfold)."""
    _, c, h, w = x.shape
    if h == w == tile:
        return x
    stride = int(tile * (1 - overlap))
    patches = F.unfold(x, kernel_size=(tile, tile), stride=(stride, stride))
    return patches.permute(2, 0, 1).reshape(-1, c, tile, tile)


class Encoder(nn.Module):
    """One DINOv2 encoder held as `model` (transformers' AutoModel slot)."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.model = Dinov2Backbone(config)

    def run(self, pixel_values: torch.Tensor, hidden_states: bool = False
            ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """(layer-normed last tokens, all hidden states if asked) as Dinov2Model gives."""
        maps, states, _ = self.model.features(pixel_values, hidden_states=hidden_states)
        return maps[0], states


class PatchEncoder(Encoder):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__(config.patch_model_config)
        self.config = config

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        cfg = self.config
        batch, _, height, width = pixel_values.shape
        if min(cfg.scaled_images_ratios) * min(height, width) < cfg.patch_size:
            raise ValueError(f"Image size {height}x{width} is too small to be scaled with "
                             f"scaled_images_ratios={cfg.scaled_images_ratios} when "
                             f"patch_size={cfg.patch_size}.")
        scaled = [split_tiles(F.interpolate(pixel_values, scale_factor=r, mode="bilinear",
                                            align_corners=False),
                              cfg.patch_size, o)
                  for r, o in zip(cfg.scaled_images_ratios, cfg.scaled_images_overlap_ratios)]
        counts = [len(s) for s in scaled]
        hooks = list(cfg.intermediate_hook_ids)
        last, states = self.run(torch.cat(scaled[::-1]), hidden_states=bool(hooks))
        per_scale = torch.split_with_sizes(last, counts[::-1])[::-1]
        exponent = int(math.log2(width / cfg.encoder_grid))
        base_h, base_w = height // 2**exponent, width // 2**exponent
        features = []
        for i, (tokens, ratio) in enumerate(zip(per_scale, cfg.scaled_images_ratios)):
            padding = int(cfg.merge_padding_value * (1 / ratio))
            features.append(reconstruct(tokens, batch, padding, (base_h * 2**i, base_w * 2**i)))
        n = len(cfg.scaled_images_ratios)
        padding = int(cfg.merge_padding_value * (1 / cfg.scaled_images_ratios[-1]))
        for hook in hooks:
            features.append(reconstruct(states[hook + 1], batch, padding,
                                        (base_h * 2 ** (n - 1), base_w * 2 ** (n - 1))))
        return features


class ImageEncoder(Encoder):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__(config.image_model_config)
        self.config = config

    def forward(self, pixel_values: torch.Tensor, hidden_states: bool = False
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        batch, _, height, width = pixel_values.shape
        size = self.config.image_model_config.image_size
        x = F.interpolate(pixel_values, size=(size, size), mode="bilinear", align_corners=False)
        tokens, states = self.run(x, hidden_states)
        exponent = int(math.log2(width / self.config.encoder_grid))
        return reconstruct(tokens, batch, 0, (height // 2**exponent, width // 2**exponent)), states


class DepthProEncoder(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        self.patch_encoder = PatchEncoder(config)
        self.image_encoder = ImageEncoder(config)


def _upsample_block(in_dims: int, mid_dims: int, out_dims: int, n_up: int, proj: bool = True,
                    bias: bool = False) -> nn.Module:
    """transformers' DepthProFeatureUpsampleBlock: [1x1 conv], then n x (deconv 2x2 s2)."""
    layers = [nn.Conv2d(in_dims, mid_dims, 1, bias=bias)] if proj else []
    layers += [nn.ConvTranspose2d(mid_dims if i == 0 else out_dims, out_dims, 2, stride=2,
                                  bias=bias) for i in range(n_up)]
    block = nn.Module()
    block.layers = nn.Sequential(*layers)
    return block


class FeatureUpsample(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        image, patch = config.image_model_config.hidden_size, config.patch_model_config.hidden_size
        self.image_block = _upsample_block(image, image, config.scaled_images_feature_dims[0],
                                           1, proj=False, bias=True)
        self.scaled_images = nn.ModuleList(
            _upsample_block(patch, d, d, 1) for d in config.scaled_images_feature_dims)
        self.intermediate = nn.ModuleList(
            _upsample_block(patch, config.fusion_hidden_size if i == 0 else d, d, 2 + i)
            for i, d in enumerate(config.intermediate_feature_dims))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        blocks = [self.image_block, *self.scaled_images, *self.intermediate]
        return [block.layers(f) for block, f in zip(blocks, features)]


class FeatureProjection(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        dims = [*config.scaled_images_feature_dims, *config.intermediate_feature_dims]
        self.projections = nn.ModuleList(
            nn.Identity() if i == len(dims) - 1 and c == config.fusion_hidden_size
            else nn.Conv2d(c, config.fusion_hidden_size, 3, padding=1, bias=False)
            for i, c in enumerate(dims))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p(f) for p, f in zip(self.projections, features)]


class DepthProNeck(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        self.feature_upsample = FeatureUpsample(config)
        d0 = config.scaled_images_feature_dims[0]
        self.fuse_image_with_low_res = nn.Conv2d(2 * d0, d0, 1)
        self.feature_projection = FeatureProjection(config)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        f = self.feature_upsample(features)
        fused = self.fuse_image_with_low_res(torch.cat((f[1], f[0]), dim=1))
        return self.feature_projection([fused, *f[2:]])


class DepthProModel(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        self.encoder = DepthProEncoder(config)
        self.neck = DepthProNeck(config)

    def forward(self, pixel_values: torch.Tensor, hidden_states: bool = False
                ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None]:
        patches = self.encoder.patch_encoder(pixel_values)
        image, states = self.encoder.image_encoder(pixel_values, hidden_states)
        features = [image, *patches]
        return features, states


def _bias(config: DepthProConfig) -> bool:
    bias = config.use_bias_in_fusion_residual
    return (not config.use_batch_norm_in_fusion_residual) if bias is None else bias


class FusionLayer(nn.Module):
    """Residual units (the DPT neck's), then a 2x2 stride-2 deconvolution (all but the
    last), then the 1x1 projection: transformers' DepthProFeatureFusionLayer."""

    def __init__(self, config: DepthProConfig, deconv: bool = True) -> None:
        super().__init__()
        c, bn = config.fusion_hidden_size, config.use_batch_norm_in_fusion_residual
        self.residual_layer1 = PreActResidualLayer(c, bn, _bias(config))
        self.residual_layer2 = PreActResidualLayer(c, bn, _bias(config))
        self.deconv = nn.ConvTranspose2d(c, c, 2, stride=2, bias=False) if deconv else None
        self.projection = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if residual is not None:
            x = x + self.residual_layer1(residual)
        x = self.residual_layer2(x)
        if self.deconv is not None:
            x = self.deconv(x)
        return self.projection(x)


class FusionStage(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        n = len(config.intermediate_hook_ids) + len(config.scaled_images_ratios)
        self.intermediate = nn.ModuleList(FusionLayer(config) for _ in range(n - 1))
        self.final = FusionLayer(config, deconv=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = None
        for feature, layer in zip(features[:-1], self.intermediate):
            x = layer(feature) if x is None else layer(x, feature)
        return self.final(x, features[-1])


class DepthHead(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        c = config.fusion_hidden_size
        self.layers = nn.Sequential(
            nn.Conv2d(c, c // 2, 3, padding=1),
            nn.ConvTranspose2d(c // 2, c // 2, 2, stride=2),
            nn.Conv2d(c // 2, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 1, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)


class FovEncoder(Encoder):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__(config.fov_model_config)
        self.config = config
        self.neck = nn.Linear(config.fov_model_config.hidden_size, config.fusion_hidden_size // 2)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = pixel_values.shape
        size = self.config.fov_model_config.image_size
        x = F.interpolate(pixel_values, size=(size, size), mode="bilinear", align_corners=False)
        tokens = self.neck(self.run(x)[0])
        exponent = int(math.log2(width / self.config.encoder_grid))
        return reconstruct(tokens, batch, 0, (height // 2**exponent, width // 2**exponent))


class FovHead(nn.Module):
    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        c, n = config.fusion_hidden_size, config.num_fov_head_layers
        self.out_size = config.encoder_grid
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(math.ceil(c / 2 ** (i + 1)), math.ceil(c / 2 ** (i + 2)), 3,
                                 stride=2, padding=1), nn.ReLU()]
        kernel = int((self.out_size - 1) / 2**n + 1)
        layers.append(nn.Conv2d(math.ceil(c / 2 ** (n + 1)), 1, kernel))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.out_size, self.out_size), mode="bilinear",
                          align_corners=False)
        return self.layers(x)


class DepthProFovModel(nn.Module):
    """Field of view (degrees, horizontal) from a third DINOv2 plus the global features."""

    def __init__(self, config: DepthProConfig) -> None:
        super().__init__()
        c = config.fusion_hidden_size
        self.fov_encoder = FovEncoder(config)
        self.conv = nn.Conv2d(c, c // 2, 3, stride=2, padding=1)
        self.head = FovHead(config)

    def forward(self, pixel_values: torch.Tensor, global_features: torch.Tensor) -> torch.Tensor:
        x = self.fov_encoder(pixel_values) + F.relu(self.conv(global_features))
        return self.head(x).flatten()


class DepthProForDepthEstimation(PretrainedModel, nn.Module):
    config_class = DepthProConfig

    def __init__(self, config: DepthProConfig, use_fov_model: bool | None = None) -> None:
        super().__init__()
        self.config = config
        self.use_fov_model = config.use_fov_model if use_fov_model is None else use_fov_model
        self.depth_pro = DepthProModel(config)
        self.fusion_stage = FusionStage(config)
        self.head = DepthHead(config)
        self.fov_model = DepthProFovModel(config) if self.use_fov_model else None

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> DepthEstimatorOutput | tuple[torch.Tensor, ...]:
        """`output_hidden_states`: the global image encoder's, as transformers returns."""
        reject_labels(labels)
        if flag(output_attentions):
            raise NotImplementedError("output_attentions is not supported for Depth Pro")
        features, states = self.depth_pro(pixel_values, flag(output_hidden_states))
        features = self.depth_pro.neck(features)
        depth = self.head(self.fusion_stage(features))
        fov = (self.fov_model(pixel_values, features[0].detach())
               if self.fov_model is not None else None)
        return finish(DepthEstimatorOutput(predicted_depth=depth, field_of_view=fov,
                                           hidden_states=states), return_dict)
