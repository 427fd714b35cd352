#!/usr/bin/env bash
# Reproduces models/mobilenet-v2.onnx and models/mobilenet-v2.card.json: torchvision's MobileNetV2
# with its ImageNet weights (scripts/fetch-weights.sh) as a frozen base and a new one-logit head, the
# seed's transfer setting, trained on the train split of the manifest every shipped model shares
# (prepare.sh: split seed 42; hannover-covid and nih-chestxray14-sample held out whole). Training
# seed 42. CPU, 224 px.
#
# --freeze-base runs the backbone once over every train and val image (no augmentation: augmented
# images would need their features recomputed every epoch) and caches the 1,280 pooled values per
# image in the run directory (features-<key>.safetensors, keyed by the weights' and manifest's sha256
# and the preprocessing), then trains only `classifier.1` on them with the usual Adam, class-balanced
# loss, early stopping on validation AUC and best checkpoint. The exported ONNX is the whole network.
# Timings on the busy 2-core x86 development box are in the card's notes and in the run's epochs.csv.
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

bash scripts/fetch-weights.sh
rm -rf target/mobilenet-v2/run
target/release/cxr train --arch mobilenet-v2 --weights .torch/weights/mobilenet_v2-imagenet.safetensors \
    --freeze-base --manifest "$manifest" --out models --name mobilenet-v2 --run-dir target/mobilenet-v2/run \
    --epochs 30 --batch-size 32 --lr 0.001 --seed 42 --patience 5

# The card's evaluations: the committed split (models/splits/seed42.csv, the manifest's test and
# holdout rows), with the centre-occlusion shortcut check.
for split in test holdout; do
    target/release/cxr eval --model models/mobilenet-v2.onnx --data models/splits/seed42.csv \
        --data-root ../shared/datasets --split "$split" --occlude-center --report "out/eval-mobilenet-v2-$split"
done
python3 models/recipes/record-evaluations.py models/mobilenet-v2.card.json \
    out/eval-mobilenet-v2-test out/eval-mobilenet-v2-holdout
