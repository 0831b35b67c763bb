#!/bin/bash
# Validation figures of landmark models, end to end and from the box, on MTFL's AFLW (with the
# per-pose table) and LFW lists and on CelebA, one thread:
#   benchmarks/landmarks_val.sh WEIGHTS...            (e.g. dcrn runs/dcrn-pose/gen-lrn-8.pt)
# Reports go to $OUT (default runs/landmarks-val): eval_{aflw,lfw,celeba}.json and ced_aflw*.png.
set -e
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/landmarks-val}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
facecascade eval landmarks --format mtfl --annotations "$DATA/mtfl/aflw_half/aflw_landmarks.txt" --split val \
    --weights "$@" --json "$OUT/eval_aflw.json" --plot "$OUT/ced_aflw.png" -q
facecascade eval landmarks --format mtfl --annotations "$DATA/mtfl/lfw_5590_landmarks.txt" --split val \
    --weights "$@" --json "$OUT/eval_lfw.json" -q
facecascade eval landmarks --format celeba --annotations "$DATA/celeba" --split val \
    --weights "$@" --json "$OUT/eval_celeba.json" -q
