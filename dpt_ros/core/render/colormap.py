"""Colour maps for depth images, applied on the tensor's device through a 256-entry LUT.

The LUTs are generated from 33 control points of each published table (no matplotlib needed).
Google's turbo polynomial was tried first and rejected: it is up to 32/255 off at the ends
(and Zucconi's viridis/inferno fits up to 4/255), while the control points give <= 1.1/255.
"""

from __future__ import annotations

import math
from functools import cache

import torch

from dpt_ros.config.vocabulary import COLORMAPS

# Control points: the published 256-entry tables (turbo: Google's LUT; inferno, viridis:
# matplotlib's `_cm_listed.py`) at entries 0, 8, ..., 248, 255, in RGB [0, 1].
_TURBO = (
    (0.18995, 0.07176, 0.23217), (0.22500, 0.16354, 0.45096), (0.25107, 0.25237, 0.63374),
    (0.26816, 0.33825, 0.78050), (0.27628, 0.42118, 0.89123), (0.27543, 0.50115, 0.96594),
    (0.25862, 0.57958, 0.99876), (0.21382, 0.65886, 0.97959), (0.15844, 0.73551, 0.92305),
    (0.11167, 0.80569, 0.84525), (0.09267, 0.86554, 0.76230), (0.12014, 0.91193, 0.68660),
    (0.19659, 0.94901, 0.59466), (0.30513, 0.97697, 0.48987), (0.42778, 0.99419, 0.38575),
    (0.54658, 0.99907, 0.29581), (0.64362, 0.98999, 0.23356), (0.72596, 0.96470, 0.20640),
    (0.80473, 0.92452, 0.20459), (0.87530, 0.87267, 0.21555), (0.93301, 0.81236, 0.22667),
    (0.97323, 0.74682, 0.22536), (0.99314, 0.67408, 0.20348), (0.99593, 0.58703, 0.16899),
    (0.98360, 0.49291, 0.12849), (0.95801, 0.39958, 0.08831), (0.92105, 0.31489, 0.05475),
    (0.87422, 0.24526, 0.03297), (0.81608, 0.18462, 0.01809), (0.74617, 0.13098, 0.00851),
    (0.66449, 0.08436, 0.00424), (0.57103, 0.04474, 0.00529), (0.47960, 0.01583, 0.01055),
)
_INFERNO = (
    (0.001462, 0.000466, 0.013866), (0.013995, 0.011225, 0.071862), (0.042253, 0.028139, 0.141141),
    (0.081962, 0.043328, 0.215289), (0.129285, 0.047293, 0.290788), (0.183429, 0.040329, 0.354971),
    (0.238273, 0.036621, 0.396353), (0.290763, 0.045644, 0.418637), (0.341500, 0.062325, 0.429425),
    (0.391453, 0.080927, 0.433109), (0.441207, 0.099338, 0.431594), (0.491022, 0.117179, 0.425552),
    (0.540920, 0.134729, 0.415123), (0.590734, 0.152563, 0.400290), (0.640135, 0.171438, 0.381065),
    (0.688653, 0.192239, 0.357603), (0.735683, 0.215906, 0.330245), (0.780517, 0.243327, 0.299523),
    (0.822386, 0.275197, 0.266085), (0.860533, 0.311892, 0.230606), (0.894305, 0.353399, 0.193584),
    (0.923215, 0.399359, 0.155193), (0.946965, 0.449191, 0.115272), (0.965397, 0.502249, 0.073859),
    (0.978422, 0.557937, 0.034931), (0.985952, 0.615750, 0.025592), (0.987874, 0.675267, 0.065257),
    (0.984075, 0.736087, 0.129527), (0.974638, 0.797692, 0.206332), (0.960626, 0.859069, 0.298010),
    (0.947594, 0.917399, 0.410665), (0.954529, 0.965896, 0.540361), (0.988362, 0.998364, 0.644924),
)
_VIRIDIS = (
    (0.267004, 0.004874, 0.329415), (0.277018, 0.050344, 0.375715), (0.282327, 0.094955, 0.417331),
    (0.282884, 0.135920, 0.453427), (0.278826, 0.175490, 0.483397), (0.270595, 0.214069, 0.507052),
    (0.258965, 0.251537, 0.524736), (0.244972, 0.287675, 0.537260), (0.229739, 0.322361, 0.545706),
    (0.214298, 0.355619, 0.551184), (0.199430, 0.387607, 0.554642), (0.185556, 0.418570, 0.556753),
    (0.172719, 0.448791, 0.557885), (0.160665, 0.478540, 0.558115), (0.149039, 0.508051, 0.557250),
    (0.137770, 0.537492, 0.554906), (0.127568, 0.566949, 0.550556), (0.120565, 0.596422, 0.543611),
    (0.120638, 0.625828, 0.533488), (0.132268, 0.655014, 0.519661), (0.157851, 0.683765, 0.501686),
    (0.196571, 0.711827, 0.479221), (0.246070, 0.738910, 0.452024), (0.304148, 0.764704, 0.419943),
    (0.369214, 0.788888, 0.382914), (0.440137, 0.811138, 0.340967), (0.515992, 0.831158, 0.294279),
    (0.595839, 0.848717, 0.243329), (0.678489, 0.863742, 0.189503), (0.762373, 0.876424, 0.137064),
    (0.845561, 0.887322, 0.099702), (0.926106, 0.897330, 0.104071), (0.993248, 0.906157, 0.143936),
)
_KNOTS = (*range(0, 256, 8), 255)
_ROBUST_SAMPLES = 1 << 15  # percentiles of larger inputs are taken on a strided subsample


def _lut_rgb_float(name: str) -> torch.Tensor:
    """(256, 3) float64 RGB in [0, 1]: cubic Hermite through the control points.

    Tangents are finite differences of the control points (np.gradient's rule); against the
    full published tables this is within 1.1/255 everywhere (linear interpolation: 1.8/255).
    """
    tables = {"turbo": _TURBO, "inferno": _INFERNO, "viridis": _VIRIDIS}
    if name not in tables:
        raise ValueError(f"unknown colormap {name!r}; expected one of {COLORMAPS}")
    y = torch.tensor(tables[name], dtype=torch.float64)  # (K, 3)
    k = torch.tensor(_KNOTS, dtype=torch.float64)  # (K,)
    slope = (y[1:] - y[:-1]) / (k[1:] - k[:-1])[:, None]  # (K-1, 3)
    dk = (k[1:] - k[:-1])[:, None]
    tangent = torch.empty_like(y)
    tangent[0], tangent[-1] = slope[0], slope[-1]
    # non-uniform central difference: the derivative of the parabola through 3 knots
    left, right = dk[:-1], dk[1:]
    tangent[1:-1] = (slope[:-1] * right + slope[1:] * left) / (left + right)
    x = torch.arange(256, dtype=torch.float64)
    seg = (torch.searchsorted(k, x, right=True) - 1).clamp(0, len(_KNOTS) - 2)
    h = (k[seg + 1] - k[seg])[:, None]
    t = ((x - k[seg])[:, None]) / h
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    rgb = h00 * y[seg] + h10 * h * tangent[seg] + h01 * y[seg + 1] + h11 * h * tangent[seg + 1]
    return rgb.clamp(0.0, 1.0)


@cache
def lut(name: str, device: str = "cpu") -> torch.Tensor:
    """(257, 3) uint8 BGR LUT on `device`; entry 256 is black, used for NaN / inf."""
    rgb = (_lut_rgb_float(name) * 255.0).round().to(torch.uint8)
    table = torch.zeros((257, 3), dtype=torch.uint8)
    table[:256] = rgb.flip(-1)
    return table.to(device)


def colorize(
    values: torch.Tensor,
    vmin: float,
    vmax: float,
    name: str = "turbo",
) -> torch.Tensor:
    """(H, W) values → (H, W, 3) uint8 BGR; vmin → LUT start, vmax → LUT end, clipped.

    Non-finite values are black (so are finite ones that overflow float32 once scaled, beyond
    ~3e38 / (255 / (vmax - vmin))). vmax <= vmin maps every finite value to the LUT start.
    The index is built with in-place float ops only (x - x is NaN exactly where x is not
    finite; NaN then becomes the black entry 256) and the LUT read with index_select: 0.9 ms
    at 640x480 on CPU against 4.2 ms for isfinite + torch.where + advanced indexing.
    """
    table = lut(name, str(values.device))
    span = float(vmax) - float(vmin)
    scale = 255.0 / span if span > 0 and math.isfinite(span) else 0.0
    index = values.to(torch.float32) - float(vmin)
    index.mul_(scale)
    invalid = index - index  # 0 where finite, NaN where NaN / inf
    index.clamp_(0.0, 255.0).add_(0.5).add_(invalid).nan_to_num_(nan=256.0)
    return table.index_select(0, index.to(torch.int32).reshape(-1)).reshape(*values.shape, 3)


def robust_range(
    values: torch.Tensor, percentiles: tuple[float, float] = (2.0, 98.0)
) -> tuple[float, float]:
    """(low, high) percentiles of the finite values, with numpy.percentile's linear rule.

    Inputs larger than 32768 values are subsampled with a fixed stride first; the order
    statistics come from torch.kthvalue (O(n) selection: 0.3 ms where a sort of the same
    sample took 2.3 ms). With no finite values the range is (0.0, 1.0).
    """
    flat = values.reshape(-1).to(torch.float32)
    if flat.numel() > _ROBUST_SAMPLES:
        flat = flat[:: math.ceil(flat.numel() / _ROBUST_SAMPLES)]
    finite = torch.isfinite(flat)
    count = int(finite.sum())
    if count == 0:
        return 0.0, 1.0
    flat = torch.where(finite, flat, math.inf)  # non-finite values sort after every finite one
    result = []
    for p in percentiles:
        pos = min(max(float(p), 0.0), 100.0) / 100.0 * (count - 1)
        lo = math.floor(pos)
        frac = pos - lo
        low = torch.kthvalue(flat, lo + 1).values
        if frac > 0.0:
            high = torch.kthvalue(flat, lo + 2).values
            low = low + (high - low) * frac
        result.append(low)
    low_v, high_v = torch.stack(result).tolist()
    return low_v, high_v
