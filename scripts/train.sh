#!/usr/bin/env bash
# NumPro-FT training: LoRA on LongVA-7B-DPO over numbered 0.5-FPS clips, through DeepSpeed's launcher.
#
# Defaults are upstream's recipe: 8 GPUs on one node, ZeRO-2, batch 1 x accumulation 16, 3 epochs,
# lr 1e-4 cosine, warmup 0.05, weight decay 0, bf16, tf32, gradient checkpointing,
# model_max_length 4096, 4 dataloader workers, LoRA r=64 alpha=128 (CLIP's kept at identity),
# upstream's length-grouped sample order, saved only at the end.
# Every path and size is an environment variable; EXTRA_ARGS is appended to the trainer's flags.
#
#   sh scripts/train.sh                                          # 8 GPUs, this node
#   GPUS_PER_NODE=4 GRADIENT_ACCU_STEPS=32 sh scripts/train.sh   # same global batch on 4 GPUs
#   HOSTFILE=hostfile NNODES=2 sh scripts/train.sh               # 2 nodes (DeepSpeed hostfile)
#   DEEPSPEED_CONFIG=configs/zero3.json sh scripts/train.sh      # smaller GPUs
#   GPUS_PER_NODE=1 BF16=false TF32=false sh scripts/train.sh    # a machine without a GPU
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)

case "${1:-}" in
    -h|--help)
        echo "usage: [VAR=value ...] sh scripts/train.sh"
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        echo "The variables and their defaults are listed at the top of scripts/train.sh;"
        echo "trainer flags for EXTRA_ARGS: python -m numpro.training --help"
        exit 0 ;;
esac

# launcher
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NNODES=${NNODES:-1}
HOSTFILE=${HOSTFILE:-}          # DeepSpeed hostfile: one "host slots=N" line per node
MASTER_ADDR=${MASTER_ADDR:-}    # default: DeepSpeed's choice (this node, or the hostfile's first)
MASTER_PORT=${MASTER_PORT:-29502}
LAUNCHER=${LAUNCHER:-}          # multi-node backend: pdsh (DeepSpeed's default), openmpi, mvapich, slurm
# the launcher: DEEPSPEED, else `deepspeed` on PATH, else the one in the project's .venv
if [ -z "${DEEPSPEED:-}" ]; then
    if command -v deepspeed >/dev/null 2>&1; then DEEPSPEED=deepspeed
    elif [ -x "$ROOT/.venv/bin/deepspeed" ]; then DEEPSPEED="$ROOT/.venv/bin/deepspeed"
    else echo "deepspeed not found: activate the environment (. .venv/bin/activate) or set DEEPSPEED" >&2; exit 1
    fi
fi
DEEPSPEED_CONFIG=${DEEPSPEED_CONFIG-$ROOT/configs/zero2.json}  # set empty to train without DeepSpeed

# data, model, output
MODEL_PATH=${MODEL_PATH:-$ROOT/pretrained/LongVA-7B-DPO}
VISION_TOWER=${VISION_TOWER-$ROOT/pretrained/clip-vit-large-patch14-336}  # empty: not passed
DATA_PATH=${DATA_PATH:-$ROOT/data/train_sft.json}
ANET_PATH=${ANET_PATH:-$ROOT/data/anet/videos_0.5FPS_number_red_40_br}
# DIDEO_PATH: upstream's spelling of this variable, accepted when DIDEMO_PATH is not set
DIDEMO_PATH=${DIDEMO_PATH:-${DIDEO_PATH:-$ROOT/data/didemo/videos_0.5FPS_number_red_40_br}}
INTERNVID_PATH=${INTERNVID_PATH:-$ROOT/data/internvid/videos_0.5FPS_number_red_40_br}
VIDEO_PATH=${VIDEO_PATH:-}      # clips of samples without a "source"
SAVE_PATH=${SAVE_PATH:-$ROOT/checkpoints/longva_7b_dpo_NumPro_FT}

# recipe
EPOCH=${EPOCH:-3}
BATCH_SIZE=${BATCH_SIZE:-1}
GRADIENT_ACCU_STEPS=${GRADIENT_ACCU_STEPS:-16}
LR=${LR:-${BASE_LR:-1e-4}}
LR_SCHEDULER=${LR_SCHEDULER:-cosine}
WARMUP_RATIO=${WARMUP_RATIO:-0.05}
WEIGHT_DECAY=${WEIGHT_DECAY:-0}
LORA_R=${LORA_R:-64}
LORA_ALPHA=${LORA_ALPHA:-128}
LORA_DROPOUT=${LORA_DROPOUT:-0.05}
VISION_LORA=${VISION_LORA:-true}              # LoRA on CLIP's q/k/v too (false: the LLM only)
TRAIN_VISION_LORA=${TRAIN_VISION_LORA:-false}  # false: CLIP's LoRA stays at identity, as upstream's run left it
GROUP_BY_MODALITY_LENGTH=${GROUP_BY_MODALITY_LENGTH:-true}  # upstream's length-grouped sample order
MODEL_MAX_LENGTH=${MODEL_MAX_LENGTH:-4096}
MAX_FRAMES=${MAX_FRAMES:-240}
NUM_WORKERS=${NUM_WORKERS:-4}
BF16=${BF16:-true}
TF32=${TF32:-true}
GRADIENT_CHECKPOINTING=${GRADIENT_CHECKPOINTING:-true}
ATTN_IMPLEMENTATION=${ATTN_IMPLEMENTATION:-sdpa}
SEED=${SEED:-42}

# saving and logging
SAVE_STRATEGY=${SAVE_STRATEGY:-no}   # "steps" with SAVE_STEPS for resumable checkpoint-N folders
SAVE_STEPS=${SAVE_STEPS:-500}
SAVE_TOTAL_LIMIT=${SAVE_TOTAL_LIMIT:-1}
LOGGING_STEPS=${LOGGING_STEPS:-1}
REPORT_TO=${REPORT_TO:-none}         # tensorboard or wandb when installed
RUN_NAME=${RUN_NAME:-$(basename "$SAVE_PATH")}
EXTRA_ARGS=${EXTRA_ARGS:-}

set -- --num_nodes "$NNODES" --num_gpus "$GPUS_PER_NODE" --master_port "$MASTER_PORT"
if [ -n "$HOSTFILE" ]; then set -- "$@" --hostfile "$HOSTFILE"; fi
if [ -n "$MASTER_ADDR" ]; then set -- "$@" --master_addr "$MASTER_ADDR"; fi
if [ -n "$LAUNCHER" ]; then set -- "$@" --launcher "$LAUNCHER"; fi
set -- "$@" --module numpro.training \
    --model_name_or_path "$MODEL_PATH" \
    --version qwen_1_5 \
    --data_path "$DATA_PATH" \
    --anet_video_folder "$ANET_PATH" \
    --didemo_video_folder "$DIDEMO_PATH" \
    --internvid_video_folder "$INTERNVID_PATH" \
    --videobackend all \
    --max_frames "$MAX_FRAMES" \
    --mm_projector_type mlp2x_gelu \
    --mm_vision_select_layer -2 \
    --mm_vision_select_feature patch \
    --mm_patch_merge_type unires \
    --mm_use_im_start_end False \
    --mm_use_im_patch_token False \
    --attn_implementation "$ATTN_IMPLEMENTATION" \
    --lora_enable True \
    --lora_r "$LORA_R" \
    --lora_alpha "$LORA_ALPHA" \
    --lora_dropout "$LORA_DROPOUT" \
    --vision_lora "$VISION_LORA" \
    --train_vision_lora "$TRAIN_VISION_LORA" \
    --group_by_modality_length "$GROUP_BY_MODALITY_LENGTH" \
    --model_max_length "$MODEL_MAX_LENGTH" \
    --bf16 "$BF16" \
    --tf32 "$TF32" \
    --gradient_checkpointing "$GRADIENT_CHECKPOINTING" \
    --output_dir "$SAVE_PATH" \
    --num_train_epochs "$EPOCH" \
    --per_device_train_batch_size "$BATCH_SIZE" \
    --gradient_accumulation_steps "$GRADIENT_ACCU_STEPS" \
    --learning_rate "$LR" \
    --lr_scheduler_type "$LR_SCHEDULER" \
    --warmup_ratio "$WARMUP_RATIO" \
    --weight_decay "$WEIGHT_DECAY" \
    --save_strategy "$SAVE_STRATEGY" \
    --save_steps "$SAVE_STEPS" \
    --save_total_limit "$SAVE_TOTAL_LIMIT" \
    --logging_steps "$LOGGING_STEPS" \
    --dataloader_num_workers "$NUM_WORKERS" \
    --report_to "$REPORT_TO" \
    --seed "$SEED" \
    --run_name "$RUN_NAME"
if [ -n "$VISION_TOWER" ]; then set -- "$@" --vision_tower "$VISION_TOWER"; fi
if [ -n "$VIDEO_PATH" ]; then set -- "$@" --video_folder "$VIDEO_PATH"; fi
if [ -n "$DEEPSPEED_CONFIG" ]; then set -- "$@" --deepspeed "$DEEPSPEED_CONFIG"; fi

# The package is importable from a checkout without installation (remote nodes get PYTHONPATH too).
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# shellcheck disable=SC2086  # EXTRA_ARGS is split into flags on purpose
exec "$DEEPSPEED" "$@" $EXTRA_ARGS
