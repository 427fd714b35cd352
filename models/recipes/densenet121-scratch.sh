#!/usr/bin/env bash
# Reproduces models/densenet121-scratch.onnx and its card: torchvision's DenseNet-121 trained from
# scratch (the seed's "DenseNet" row) at 96×96 like resnet18-scratch (from-scratch.sh). Two epochs, a
# CPU budget rather than early stopping: an epoch took 28–42 minutes on the 2-core machine (shared
# with other jobs), four to six times resnet18-scratch's, and validation AUC was still rising (0.867,
# then 0.919); there is no learning-rate schedule, so more epochs (`cxr train … --resume`) extend
# this run.
source "$(dirname "${BASH_SOURCE[0]}")/from-scratch.sh" densenet121-scratch densenet121 2
