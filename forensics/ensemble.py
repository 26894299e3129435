"""An ensemble of detectors that share one preprocessing: the mean of their logits.

Averaging independently trained members is the oldest way to make a classifier's scores
steadier: each member's errors on a given face partly cancel. Members are described by
``{"arch": name, "kwargs": {...}}`` entries, so an ensemble checkpoint rebuilds itself through
the same registry as any other (``arch: "ensemble"``, ``arch_kwargs: {"members": [...]}``).
``forensics detector ensemble`` builds one from trained checkpoints and calibrates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from forensics.models import create_model, register_model
from forensics.spectral import shared_spectra


def member_specs(members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated, JSON-ready copies of member descriptions.

    Raises:
        ValueError: No members, or a member without an ``arch`` name, or a nested ensemble.

    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    out = []
    for i, m in enumerate(members):
        if not isinstance(m, Mapping) or not isinstance(m.get("arch"), str):
            raise ValueError(f"ensemble member {i} must be {{'arch': name, 'kwargs': {{...}}}}")
        if m["arch"] == "ensemble":
            raise ValueError("ensembles cannot be nested")
        out.append({"arch": m["arch"], "kwargs": dict(m.get("kwargs") or {})})
    return out


class EnsembleDetector(nn.Module):
    """Runs every member on the same input and averages logits and patch maps.

    Patch maps of a different size than the first member's are resized to it (bilinear), so
    the averaged map is still the explanation of the averaged logit up to that resampling.

    Args:
        members: ``[{"arch": name, "kwargs": {...}}, ...]``, built through the registry.

    """

    def __init__(self, members: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        specs = member_specs(members)
        self.members = nn.ModuleList(create_model(m["arch"], **m["kwargs"]) for m in specs)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"logit": (B,), "patch_logits": (B, h, w)}``, each the members' mean."""
        with shared_spectra():  # members of one spectral recipe share their window spectra
            outs = [m(x) for m in self.members]
        size = outs[0]["patch_logits"].shape[-2:]
        maps = []
        for o in outs:
            m = o["patch_logits"]
            if m.shape[-2:] != size:
                m = F.interpolate(m.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
                m = m.squeeze(1)
            maps.append(m)
        return {
            "logit": torch.stack([o["logit"] for o in outs]).mean(dim=0),
            "patch_logits": torch.stack(maps).mean(dim=0),
        }


@register_model
def ensemble(members: Sequence[Mapping[str, Any]] = ()) -> nn.Module:
    """Mean of several registered detectors (see :class:`EnsembleDetector`)."""
    return EnsembleDetector(members)
