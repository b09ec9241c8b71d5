"""Which parameters NumPro-FT trains, as upstream's train.py with --lora_enable (SPEC 5).

- LoRA on every Linear named q/k/v/o/gate/up/down_proj. PEFT matches these names anywhere in
  the network, so CLIP's self_attn q/k/v_proj get LoRA too, as upstream (`vision_lora=False`
  restricts LoRA to the language model; the adapter then loads the same way).
- CLIP's LoRA is present but not trained by default: upstream's reentrant gradient checkpointing
  of the CLIP encoder (whose inputs never require grad) gave it no gradient, so its B stayed
  exactly 0 and the released adapter leaves CLIP unchanged (SPEC 10). Its weights are saved in
  the released layout all the same; `train_vision=True` trains them.
- The mm_projector is trained in full and saved to non_lora_trainables.bin.
- Everything else is frozen: the base weights of the LLM and of CLIP, embeddings, lm_head.
Features come from CLIP's layer -2, so even a trained CLIP LoRA's last layer never receives a
gradient: its B stays zero (it is kept so the adapter has every layer).
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


def add_lora(network, config, train_vision: bool = False):
    """Wrap the LongVA network with LoRA; train the LLM's LoRA and the projector (and CLIP's LoRA when
    `train_vision`), freeze the rest. Returns the PeftModel."""
    from peft import get_peft_model

    model = _peft_model(get_peft_model, network, config)
    for name, param in model.named_parameters():
        if PROJECTOR in name:
            param.requires_grad_(True)
        elif "lora_" in name and VISION in name and not train_vision:
            param.requires_grad_(False)  # kept at its initial value: B = 0, the identity
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
    lines.append(f"CLIP LoRA: {vision_lora_mode(groups)}")
    return "\n".join(lines)


def vision_lora_mode(groups) -> str:
    """What the run does with CLIP's LoRA, in words (from parameter_groups)."""
    if "CLIP LoRA" not in groups:
        return "none (--vision_lora False: LoRA on the language model only)"
    if groups["CLIP LoRA"][0] == 0:
        return ("present at identity (B = 0), saved, not trained, as upstream's recipe effectively did; "
                "--train_vision_lora True trains it")
    return "trained (--train_vision_lora True; upstream's recipe left it at identity)"
