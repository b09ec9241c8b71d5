"""Which parameters NumPro-FT trains, as upstream's train.py with --lora_enable (SPEC 5).

- LoRA on every Linear named q/k/v/o/gate/up/down_proj. PEFT matches these names anywhere in
  the network, so CLIP's self_attn q/k/v_proj get LoRA too, as upstream (`vision_lora=False`
  restricts LoRA to the language model; the adapter then loads the same way).
- The mm_projector is trained in full and saved to non_lora_trainables.bin.
- Everything else is frozen: the base weights of the LLM and of CLIP, embeddings, lm_head.
Features come from CLIP's layer -2, so the last layer's LoRA never receives a gradient: its B
stays zero and it changes nothing, as upstream's (it is kept so the adapter has every layer).
"""

from __future__ import annotations

from collections import OrderedDict

from ..models.longva_lora import TARGET_MODULES, _peft_model

# Names as they appear inside the PeftModel: base_model.model.<network path>
PROJECTOR = ".mm_projector."
VISION = ".vision_tower."
LLM_ONLY_TARGETS = r"^(?!.*\.vision_tower\.).*\.(" + "|".join(TARGET_MODULES) + r")$"


def lora_config(r: int, alpha: int, dropout: float, vision: bool = True):
    from peft import LoraConfig

    targets = list(TARGET_MODULES) if vision else LLM_ONLY_TARGETS
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", target_modules=targets,
                      task_type="CAUSAL_LM")


def add_lora(network, config):
    """Wrap the LongVA network with LoRA; freeze all but LoRA and the projector. Returns the PeftModel."""
    from peft import get_peft_model

    model = _peft_model(get_peft_model, network, config)
    for name, param in model.named_parameters():
        if PROJECTOR in name:
            param.requires_grad_(True)
    return model


GROUPS = ("LLM LoRA", "CLIP LoRA", "projector", "LLM base", "CLIP base", "embeddings + lm_head")


def group_of(name: str) -> str:
    if PROJECTOR in name:
        return "projector"
    vision = VISION in name
    if "lora_" in name:
        return "CLIP LoRA" if vision else "LLM LoRA"
    if vision:
        return "CLIP base"
    if "embed_tokens" in name or "lm_head" in name:
        return "embeddings + lm_head"
    return "LLM base"


def parameter_groups(model) -> "OrderedDict[str, tuple[int, int]]":
    """group -> (trainable parameters, all parameters), in GROUPS order."""
    counts = {group: [0, 0] for group in GROUPS}
    for name, param in model.named_parameters():
        numel = param.ds_numel if hasattr(param, "ds_numel") else param.numel()  # ZeRO-3 partitions
        entry = counts[group_of(name)]
        entry[1] += numel
        if param.requires_grad:
            entry[0] += numel
    return OrderedDict((g, tuple(c)) for g, c in counts.items() if c[1])


def describe(model) -> str:
    """The parameter counts by group (printed at start)."""
    groups = parameter_groups(model)
    trainable = sum(t for t, _ in groups.values())
    total = sum(n for _, n in groups.values())
    lines = [f"parameters: {trainable:,} trainable of {total:,} ({100 * trainable / max(total, 1):.2f}%)",
             f"  {'group':<24}{'trainable':>16}{'total':>16}"]
    for group, (count, size) in groups.items():
        lines.append(f"  {group:<24}{count:>16,}{size:>16,}")
    return "\n".join(lines)
