"""LongVA-7B-DPO's network ("llava_qwen") built from transformers' own Qwen2 and CLIP modules.

Module names reproduce the LLaVA checkpoint's parameter names one to one, so weights and
LoRA adapters load without renaming:
  model.embed_tokens / model.layers.N / model.norm / lm_head       (Qwen2ForCausalLM)
  model.vision_tower.vision_tower.vision_model.*                   (CLIP ViT-L/14-336)
  model.mm_projector.{0,2}.{weight,bias}                           (mlp2x_gelu)

Video path (SPEC 5, LongVA's encode_multimodals + get_2dPool + "unires" merge): CLIP hidden
states of layer `mm_vision_select_layer` (-2) without CLS (24x24 = 576 tokens per frame),
projector, then 2x2 average pooling of the grid (12x12 = 144 per frame), frames concatenated
with no newline token. The visual block replaces the prompt's -200 id; the spliced sequence
is truncated to `tokenizer_model_max_length` and gets plain 1-D positions. For training,
`forward(input_ids, labels, pixel_values, frame_counts)` splices the labels alongside.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, Qwen2Config, Qwen2ForCausalLM

from .longva_inputs import IGNORE_INDEX, IMAGE_TOKEN_INDEX


class LongVAConfig(Qwen2Config):
    """Qwen2's config read from LongVA's config.json; the mm_* keys stay as plain attributes."""

    model_type = "llava_qwen"


def clip_vit_l14_336() -> CLIPVisionConfig:
    """openai/clip-vit-large-patch14-336's vision config (SPEC 9), for when its folder is absent."""
    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
    )


class CLIPVisionModelLayout(nn.Module):
    """The level transformers 4.x's CLIPVisionModel had: its only child is `vision_model`.

    transformers 5 dropped that level; keeping it here keeps the checkpoint's
    `...vision_tower.vision_tower.vision_model...` names (and the adapter's) unchanged.
    """

    def __init__(self, config: CLIPVisionConfig):
        super().__init__()
        self.vision_model = CLIPVisionModel(config)


class CLIPVisionTower(nn.Module):
    """LLaVA's CLIPVisionTower: features of one hidden layer, CLS dropped for "patch"."""

    def __init__(self, config: CLIPVisionConfig, select_layer: int = -2, select_feature: str = "patch"):
        super().__init__()
        if select_feature not in ("patch", "cls_patch"):
            raise ValueError(f"unsupported mm_vision_select_feature {select_feature!r}")
        self.vision_tower = CLIPVisionModelLayout(config)
        self.select_layer = select_layer
        self.select_feature = select_feature
        self.num_patches_per_side = config.image_size // config.patch_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, 336, 336) -> (N, 576, C): hidden_states[select_layer] of CLIP, without CLS."""
        clip = self.vision_tower.vision_model
        layers = clip.encoder.layers
        # hidden_states[i] is the output of the first i layers (0: embeddings after pre_layrnorm);
        # running only those layers gives the same tensor without keeping all the others.
        depth = self.select_layer % (len(layers) + 1)
        hidden = clip.pre_layrnorm(clip.embeddings(pixel_values))
        for layer in layers[:depth]:
            hidden = layer(hidden, None)
        return hidden[:, 1:] if self.select_feature == "patch" else hidden


def build_projector(mm_hidden_size: int, hidden_size: int, projector_type: str) -> nn.Sequential:
    if projector_type != "mlp2x_gelu":
        raise ValueError(f"unsupported mm_projector_type {projector_type!r} (LongVA uses mlp2x_gelu)")
    return nn.Sequential(nn.Linear(mm_hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))


def pool_2d(features: torch.Tensor, side: int, stride: int, mode: str) -> torch.Tensor:
    """LLaVA's get_2dPool: (T, side*side, D) -> (T, (side/stride)^2, D), row-major grid order."""
    frames, _, dim = features.shape
    grid = features.view(frames, side, side, dim).permute(0, 3, 1, 2)
    if mode == "average":
        grid = nn.functional.avg_pool2d(grid, stride)
    elif mode == "max":
        grid = nn.functional.max_pool2d(grid, stride)
    else:
        raise ValueError(f"unexpected mm_spatial_pool_mode {mode!r}")
    return grid.permute(0, 2, 3, 1).reshape(frames, -1, dim)


class LongVAForCausalLM(Qwen2ForCausalLM):
    """Qwen2ForCausalLM plus LongVA's vision tower and projector under `model`."""

    config_class = LongVAConfig

    def __init__(self, config: LongVAConfig, vision_config: CLIPVisionConfig):
        super().__init__(config)
        self.vision_config = vision_config
        self.model.vision_tower = CLIPVisionTower(
            vision_config,
            getattr(config, "mm_vision_select_layer", -2),
            getattr(config, "mm_vision_select_feature", "patch"),
        )
        self.model.mm_projector = build_projector(
            getattr(config, "mm_hidden_size", vision_config.hidden_size),
            config.hidden_size,
            getattr(config, "mm_projector_type", "mlp2x_gelu"),
        )
        self.post_init()

    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Normalised frames (N, 3, 336, 336) -> (N, 144, H) visual tokens."""
        tower = self.model.vision_tower
        features = tower(pixel_values.to(self.model.mm_projector[0].weight.dtype))
        features = self.model.mm_projector(features)
        stride = getattr(self.config, "mm_spatial_pool_stride", 2)
        mode = getattr(self.config, "mm_spatial_pool_mode", "average")
        return pool_2d(features, tower.num_patches_per_side, stride, mode)

    def splice(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        frame_counts: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Each request's embeddings with its video's T*144 tokens at its -200, truncated.

        Returns one (embeddings (L_i, H), labels (L_i,) or None) per request; the visual
        positions get IGNORE_INDEX labels (they are inputs, never targets).
        """
        visual = self.encode_frames(pixel_values).split(frame_counts.tolist())
        embed = self.get_input_embeddings()
        limit = getattr(self.config, "tokenizer_model_max_length", None)
        rows = []
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
            keep = mask.bool()
            ids = ids[keep]
            slots = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            if len(slots) != 1:
                raise ValueError(f"request {row}: expected one {IMAGE_TOKEN_INDEX} placeholder, found {len(slots)}")
            slot = slots[0]
            block = visual[row].flatten(0, 1).to(embed.weight.dtype)
            spliced = torch.cat([embed(ids[:slot]), block, embed(ids[slot + 1:])])
            targets = None
            if labels is not None:
                text = labels[row][keep]
                ignored = text.new_full((block.shape[0],), IGNORE_INDEX)
                targets = torch.cat([text[:slot], ignored, text[slot + 1:]])
            if limit is not None and spliced.shape[0] > limit:
                warnings.warn(
                    f"request {row}: {spliced.shape[0]} tokens after splicing {visual[row].shape[0]} frames; "
                    f"truncated to tokenizer_model_max_length={limit} as upstream does (the prompt's end is lost)",
                    stacklevel=2,
                )
                spliced = spliced[:limit]
                targets = targets[:limit] if targets is not None else None
            rows.append((spliced, targets))
        return rows

    def embed_multimodal(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        frame_counts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Splice each video's T*144 tokens at its -200, truncate, and left-pad the batch.

        Returns (inputs_embeds (B, L, H), attention_mask (B, L)).
        """
        rows = [spliced for spliced, _ in self.splice(input_ids, attention_mask, pixel_values, frame_counts)]
        width = max(r.shape[0] for r in rows)
        embeds = rows[0].new_zeros((len(rows), width, rows[0].shape[1]))
        mask = torch.zeros((len(rows), width), dtype=attention_mask.dtype, device=embeds.device)
        for row, spliced in enumerate(rows):
            embeds[row, width - spliced.shape[0]:] = spliced
            mask[row, width - spliced.shape[0]:] = 1
        return embeds, mask

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        pixel_values: torch.Tensor | None = None,
        frame_counts: torch.Tensor | None = None,
        **kwargs,
    ):
        """Qwen2's forward; with `pixel_values` and `frame_counts` (training) the videos are first
        spliced into `input_ids`, and `labels` alongside.

        Qwen2's arguments are kept by name: generation reads this signature (logits_to_keep).
        The spliced batch is right padded (padding labels IGNORE_INDEX), as upstream trains, so
        every row's positions start at 0.
        """
        passed = dict(position_ids=position_ids, past_key_values=past_key_values, use_cache=use_cache,
                      logits_to_keep=logits_to_keep, **kwargs)
        if pixel_values is None:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                   labels=labels, **passed)
        if inputs_embeds is not None:
            raise ValueError("give either pixel_values (with input_ids) or inputs_embeds, not both")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        rows = self.splice(input_ids, attention_mask, pixel_values, frame_counts, labels)
        width = max(spliced.shape[0] for spliced, _ in rows)
        first = rows[0][0]
        embeds = first.new_zeros((len(rows), width, first.shape[1]))
        mask = torch.zeros((len(rows), width), dtype=attention_mask.dtype, device=first.device)
        targets = None if labels is None else torch.full((len(rows), width), IGNORE_INDEX, dtype=labels.dtype,
                                                         device=first.device)
        for row, (spliced, row_labels) in enumerate(rows):
            embeds[row, : spliced.shape[0]] = spliced
            mask[row, : spliced.shape[0]] = 1
            if targets is not None:
                targets[row, : spliced.shape[0]] = row_labels
        return super().forward(inputs_embeds=embeds, attention_mask=mask, labels=targets, **passed)
