//! The architectures cxr trains, each written once as a [`Network`] builder.

use crate::network::{Head, Network, NetworkBuilder, NetworkError, Op, Padding};
use cxr_core::{ClassSet, Preprocess};
use cxr_core::preprocess::{Normalize, ResizeMode};

/// Names accepted by `--arch`.
pub const ARCHITECTURES: &[&str] = &["seed-cnn", "mobilenet-v2"];

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
        other => Err(NetworkError::UnknownArchitecture(other.to_owned())),
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
    // backbones were trained on ImageNet-normalised RGB.
    let normalize = match network.architecture.as_str() {
        "mobilenet-v2" => Normalize::Imagenet,
        _ => Normalize::Unit,
    };
    Preprocess {
        size: network.input_size as u32,
        resize: ResizeMode::Stretch,
        channels: network.input_channels as u32,
        normalize,
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
    let conv_bn_relu6 = |b: &mut NetworkBuilder, prefix: &str, x, out, kernel, stride, groups| {
        let x = b.conv(&format!("{prefix}.0"), x, out, kernel, stride, Padding::same((kernel - 1) / 2), groups, false);
        let x = b.batch_norm(&format!("{prefix}.1"), x, BN_EPS);
        b.op(Op::Relu6, &[x])
    };
    let mut x = conv_bn_relu6(&mut b, "features.0", NetworkBuilder::INPUT, 32, 3, 2, 1);
    let mut index = 1;
    for (t, c, n, s) in SETTINGS {
        for repeat in 0..n {
            let stride = if repeat == 0 { s } else { 1 };
            let input = x;
            let in_channels = b.channels(input);
            let hidden = in_channels * t;
            let prefix = format!("features.{index}.conv");
            let mut layer = 0;
            let mut y = input;
            if t != 1 {
                y = conv_bn_relu6(&mut b, &format!("{prefix}.{layer}"), y, hidden, 1, 1, 1);
                layer += 1;
            }
            y = conv_bn_relu6(&mut b, &format!("{prefix}.{layer}"), y, hidden, 3, stride, hidden);
            y = b.conv(&format!("{prefix}.{}", layer + 1), y, c, 1, 1, Padding::NONE, 1, false);
            y = b.batch_norm(&format!("{prefix}.{}", layer + 2), y, BN_EPS);
            x = if stride == 1 && in_channels == c { b.op(Op::Add, &[input, y]) } else { y };
            index += 1;
        }
    }
    let features = conv_bn_relu6(&mut b, "features.18", x, 1280, 1, 1, 1);
    let x = b.op(Op::GlobalAvgPool, &[features]);
    let x = b.op(Op::Flatten, &[x]);
    let x = b.op(Op::Dropout { p: 0.2 }, &[x]);
    let logits = b.linear("classifier.1", x, head.outputs());
    b.finish(logits, Some(features), head)
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

    #[test]
    fn unknown_architecture_lists_the_known_ones() {
        let err = build("resnet9000", None, ClassSet::Binary).unwrap_err().to_string();
        assert!(err.contains("resnet9000") && err.contains("seed-cnn"), "{err}");
    }
}
