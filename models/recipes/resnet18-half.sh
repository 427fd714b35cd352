#!/usr/bin/env bash
# Reproduces models/resnet18-half.onnx and its card: ResNet-18's layout at half its width (32-64-128-256
# channels), trained from scratch at 96×96 like resnet18-scratch, so that a ResNet fits the edge budget
# (about a quarter of the full width's multiply-adds). Not shipped: within one collection it did not
# beat seed-cnn (docs/within-source.md, levers). How the from-scratch recipes train and evaluate:
# from-scratch.sh.
source "$(dirname "${BASH_SOURCE[0]}")/from-scratch.sh" resnet18-half resnet18-half 8
