#!/usr/bin/env bash
# Reproduces models/resnet18-scratch.onnx and its card: torchvision's ResNet-18 trained from scratch
# (the seed's "ResNet" row) at 96×96 instead of 224×224, where an epoch takes minutes on a 2-core CPU.
# How the from-scratch recipes train and evaluate: from-scratch.sh.
source "$(dirname "${BASH_SOURCE[0]}")/from-scratch.sh" resnet18-scratch resnet18 8
