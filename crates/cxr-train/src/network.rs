//! One description per architecture, as data: a list of named layers wired into a graph.
//!
//! Training (`tch_backend`) and export (`onnx_graph`) both walk the same [`Network`], so the
//! model that was trained and the ONNX that ships can never drift apart. Parameter names follow
//! PyTorch's `module.submodule.weight` convention, so torchvision checkpoints load by name.

use serde::{Deserialize, Serialize};

/// Index of a node in [`Network::nodes`].
pub type NodeId = usize;

/// Zero padding on each side of a feature map. TF "SAME" convolutions at stride 2 pad one more
/// pixel at the bottom/right than at the top/left, which a single symmetric number cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding {
    pub top: i64,
    pub left: i64,
    pub bottom: i64,
    pub right: i64,
}

impl Padding {
    pub const NONE: Padding = Padding { top: 0, left: 0, bottom: 0, right: 0 };

    pub fn same(p: i64) -> Padding {
        Padding { top: p, left: p, bottom: p, right: p }
    }

    pub fn is_symmetric(&self) -> bool {
        self.top == self.bottom && self.left == self.right
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The image, `[N, channels, size, size]`.
    Input,
    Conv2d {
        in_channels: i64,
        out_channels: i64,
        kernel: i64,
        stride: i64,
        padding: Padding,
        groups: i64,
        bias: bool,
    },
    BatchNorm {
        channels: i64,
        eps: f64,
    },
    Relu,
    Relu6,
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    AvgPool {
        kernel: i64,
        stride: i64,
    },
    /// Identity at inference; drops activations with probability `p` while training.
    Dropout {
        p: f64,
    },
    /// `[N, C, H, W]` → `[N, C·H·W]`.
    Flatten,
    Linear {
        in_features: i64,
        out_features: i64,
        bias: bool,
    },
    /// Element-wise sum of all inputs (residual connections).
    Add,
    /// Concatenation along channels (DenseNet).
    Concat,
    /// `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// Element-wise logistic function (a lung-field mask from its logits).
    Sigmoid,
    /// Element-wise product of two maps of one size; the second may have one channel, which then
    /// multiplies every channel of the first (an image times its lung-field mask).
    Mul,
    /// Nearest-neighbour enlargement of a map by an integer factor (a segmenter's decoder).
    Upsample {
        factor: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Parameter prefix for layers with weights (`features.0.0` → `features.0.0.weight`);
    /// a unique label otherwise.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
}

/// How logits become probabilities. Training works on logits (numerically stable losses);
/// the head is applied at inference and written into the exported graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// One logit, `P(positive) = sigmoid(logit)`.
    Sigmoid,
    /// `classes` logits, softmax over them.
    Softmax { classes: i64 },
    /// One logit per input pixel, `P(inside) = sigmoid(logit)`: a segmenter's map, the size of
    /// the input.
    Mask,
}

impl Head {
    /// How many logits a classifier head reads; a [`Head::Mask`] reads a map instead.
    pub fn outputs(self) -> i64 {
        match self {
            Head::Sigmoid | Head::Mask => 1,
            Head::Softmax { classes } => classes,
        }
    }
}

/// What flows along an edge, without the batch dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Map { channels: i64, height: i64, width: i64 },
    Vector(i64),
}

/// A parameter or buffer a network needs, with its PyTorch name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<i64>,
    /// Learned by gradient descent (weights, biases, BN affine); false for BN running statistics.
    pub trainable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name in the zoo, e.g. `seed-cnn`.
    pub architecture: String,
    pub input_channels: i64,
    pub input_size: i64,
    pub nodes: Vec<Node>,
    /// The node whose output are the logits.
    pub logits: NodeId,
    /// The last convolutional feature map, for class activation maps; set only where the head is
    /// global pooling followed by a linear layer (so CAM is exact).
    pub features: Option<NodeId>,
    pub head: Head,
    /// Grey-level remapping of its input images (the card's `preprocess.intensity`). Set by the
    /// training run, not the architecture; absent in runs saved before it existed.
    #[serde(default)]
    pub intensity: cxr_core::preprocess::Intensity,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("unknown architecture `{name}`; known: {known}")]
    UnknownArchitecture { name: String, known: String },
    #[error("network {network}: node `{node}`: {problem}")]
    Invalid { network: String, node: String, problem: String },
}

impl Network {
    /// The classifier's own architecture name, without a `+lung-field` in front of it
    /// ([`crate::lung_field::behind_lung_field`]): what decides its input preprocessing.
    pub fn base_architecture(&self) -> &str {
        self.architecture.split_once('+').map_or(&self.architecture, |(base, _)| base)
    }

    /// Output shape of every node, in node order; also checks that the wiring is consistent and
    /// that the logits node gives as many values as the head needs.
    pub fn shapes(&self) -> Result<Vec<Shape>, NetworkError> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.nodes.len());
        for id in 0..self.nodes.len() {
            let shape = self.node_shape(id, &shapes)?;
            shapes.push(shape);
        }
        let expected = match self.head {
            Head::Mask => Shape::Map { channels: 1, height: self.input_size, width: self.input_size },
            head => Shape::Vector(head.outputs()),
        };
        match shapes.get(self.logits) {
            Some(shape) if *shape == expected => Ok(shapes),
            other => Err(NetworkError::Invalid {
                network: self.architecture.clone(),
                node: "logits".into(),
                problem: format!("expected logits of shape {expected:?}, got {other:?}"),
            }),
        }
    }

    /// Output shape of node `id`, given the shapes of all nodes before it.
    fn node_shape(&self, id: NodeId, shapes: &[Shape]) -> Result<Shape, NetworkError> {
        let node = &self.nodes[id];
        let invalid = |problem: String| NetworkError::Invalid {
            network: self.architecture.clone(),
            node: node.name.clone(),
            problem,
        };
        if let Some(&bad) = node.inputs.iter().find(|&&i| i >= id) {
            return Err(invalid(format!("input {bad} is not an earlier node")));
        }
        let inputs: Vec<Shape> = node.inputs.iter().map(|&i| shapes[i]).collect();
        let map = |i: usize| match inputs.get(i) {
            Some(&Shape::Map { channels, height, width }) => Ok((channels, height, width)),
            other => Err(invalid(format!("expects a feature map as input {i}, got {other:?}"))),
        };
        let shape = match &node.op {
            Op::Input => Shape::Map { channels: self.input_channels, height: self.input_size, width: self.input_size },
            Op::Conv2d { in_channels, out_channels, kernel, stride, padding, groups, .. } => {
                let (c, h, w) = map(0)?;
                if c != *in_channels {
                    return Err(invalid(format!("expects {in_channels} input channels, gets {c}")));
                }
                if in_channels % groups != 0 || out_channels % groups != 0 {
                    return Err(invalid(format!(
                        "channels {in_channels}→{out_channels} not divisible by {groups} groups"
                    )));
                }
                let out = |size: i64, before: i64, after: i64| (size + before + after - kernel) / stride + 1;
                Shape::Map {
                    channels: *out_channels,
                    height: out(h, padding.top, padding.bottom),
                    width: out(w, padding.left, padding.right),
                }
            }
            Op::BatchNorm { channels, .. } => {
                let (c, _, _) = map(0)?;
                if c != *channels {
                    return Err(invalid(format!("expects {channels} channels, gets {c}")));
                }
                inputs[0]
            }
            Op::MaxPool { kernel, stride, padding } => {
                let (c, h, w) = map(0)?;
                let out = |size: i64| (size + 2 * padding - kernel) / stride + 1;
                Shape::Map { channels: c, height: out(h), width: out(w) }
            }
            Op::AvgPool { kernel, stride } => {
                let (c, h, w) = map(0)?;
                let out = |size: i64| (size - kernel) / stride + 1;
                Shape::Map { channels: c, height: out(h), width: out(w) }
            }
            Op::Relu | Op::Relu6 | Op::Dropout { .. } | Op::Sigmoid => {
                *inputs.first().ok_or_else(|| invalid("has no input".into()))?
            }
            Op::Flatten => {
                let (c, h, w) = map(0)?;
                Shape::Vector(c * h * w)
            }
            Op::GlobalAvgPool => {
                let (c, _, _) = map(0)?;
                Shape::Map { channels: c, height: 1, width: 1 }
            }
            Op::Linear { in_features, out_features, .. } => match inputs.first() {
                Some(Shape::Vector(n)) if n == in_features => Shape::Vector(*out_features),
                other => return Err(invalid(format!("expects a vector of {in_features}, gets {other:?}"))),
            },
            Op::Add => {
                let first = *inputs.first().ok_or_else(|| invalid("has no input".into()))?;
                if inputs.iter().any(|s| *s != first) {
                    return Err(invalid(format!("adds tensors of different shapes {inputs:?}")));
                }
                first
            }
            Op::Concat => {
                let (_, h, w) = map(0)?;
                let mut channels = 0;
                for i in 0..inputs.len() {
                    let (c, hi, wi) = map(i)?;
                    if (hi, wi) != (h, w) {
                        return Err(invalid(format!("concatenates maps of different sizes {inputs:?}")));
                    }
                    channels += c;
                }
                Shape::Map { channels, height: h, width: w }
            }
            Op::Mul => {
                let (c, h, w) = map(0)?;
                let (mc, mh, mw) = map(1)?;
                if inputs.len() != 2 || (mh, mw) != (h, w) || (mc != c && mc != 1) {
                    return Err(invalid(format!("multiplies maps that do not broadcast {inputs:?}")));
                }
                inputs[0]
            }
            Op::Upsample { factor } => {
                let (c, h, w) = map(0)?;
                Shape::Map { channels: c, height: h * factor, width: w * factor }
            }
        };
        if let Shape::Map { height, width, .. } = shape
            && (height < 1 || width < 1)
        {
            return Err(invalid(format!("output map would be {height}×{width}; the input is too small")));
        }
        Ok(shape)
    }

    /// Every parameter and buffer, in node order, named as PyTorch names them.
    pub fn parameters(&self) -> Vec<ParamSpec> {
        let mut out = Vec::new();
        let mut push = |node: &Node, leaf: &str, shape: Vec<i64>, trainable: bool| {
            out.push(ParamSpec { name: format!("{}.{leaf}", node.name), shape, trainable });
        };
        for node in &self.nodes {
            match node.op {
                Op::Conv2d { in_channels, out_channels, kernel, groups, bias, .. } => {
                    push(node, "weight", vec![out_channels, in_channels / groups, kernel, kernel], true);
                    if bias {
                        push(node, "bias", vec![out_channels], true);
                    }
                }
                Op::BatchNorm { channels, .. } => {
                    push(node, "weight", vec![channels], true);
                    push(node, "bias", vec![channels], true);
                    push(node, "running_mean", vec![channels], false);
                    push(node, "running_var", vec![channels], false);
                }
                Op::Linear { in_features, out_features, bias } => {
                    push(node, "weight", vec![out_features, in_features], true);
                    if bias {
                        push(node, "bias", vec![out_features], true);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Parameter prefix of the layer that computes the logits (`classifier.1.`): the one layer a
    /// pretrained checkpoint may not fit, since its ImageNet head has 1000 outputs.
    pub fn head_prefix(&self) -> String {
        format!("{}.", self.nodes[self.logits].name)
    }

    /// The node whose output the classifier head reads, looking through dropout (the identity at
    /// inference): with a frozen base this is where the backbone ends, so its inference-mode output
    /// can be computed once per image and the head trained on it alone. Every node after it up to the
    /// logits must read only it or each other, so that those nodes can run without the backbone.
    pub fn head_input(&self) -> Result<NodeId, NetworkError> {
        let mut cut = self.logits;
        loop {
            let node = &self.nodes[cut];
            let single = match node.inputs.as_slice() {
                [only] => *only,
                _ => break,
            };
            cut = single;
            if !matches!(self.nodes[cut].op, Op::Dropout { .. }) {
                break;
            }
        }
        if cut == self.logits || matches!(self.nodes[cut].op, Op::Input) {
            return Err(self.invalid(cut, "the classifier head has no single backbone output to cache".into()));
        }
        self.checked_cut(cut)
    }

    /// The node whose output feeds `layer`, the first node named `layer` or `layer.…` (a
    /// checkpoint's layer name, such as MobileNetV2's `features.17` or EfficientNet's
    /// `_blocks.15`): with the base frozen up to there, that output is computed once per image and
    /// `layer` and everything after it train on it (partial fine-tuning). Like
    /// [`Network::head_input`], nothing after the cut may read an earlier node, so `layer` must
    /// start a block, not sit inside a residual branch.
    pub fn input_of_layer(&self, layer: &str) -> Result<NodeId, NetworkError> {
        let named = |n: &Node| n.name == layer || n.name.strip_prefix(layer).is_some_and(|rest| rest.starts_with('.'));
        let first = self.nodes.iter().position(named).ok_or_else(|| NetworkError::Invalid {
            network: self.architecture.clone(),
            node: layer.to_owned(),
            problem: "no layer of this name (names as in the pretrained checkpoint, e.g. `features.17`)".into(),
        })?;
        let cut = match self.nodes[first].inputs.as_slice() {
            [only] if !matches!(self.nodes[*only].op, Op::Input) => *only,
            _ => return Err(self.invalid(first, "its input is not the output of a single backbone layer".into())),
        };
        self.checked_cut(cut)
    }

    /// `cut`, when the nodes after it up to the logits read only it or each other.
    fn checked_cut(&self, cut: NodeId) -> Result<NodeId, NetworkError> {
        if let Some(node) = self.nodes[cut + 1..=self.logits].iter().find(|n| n.inputs.iter().any(|&i| i < cut)) {
            return Err(self.invalid(
                cut,
                format!(
                    "`{}` after it reads an earlier node, so the layers after it cannot run on its output alone",
                    node.name
                ),
            ));
        }
        Ok(cut)
    }

    fn invalid(&self, node: NodeId, problem: String) -> NetworkError {
        NetworkError::Invalid { network: self.architecture.clone(), node: self.nodes[node].name.clone(), problem }
    }

    /// Whether parameter `name` (`features.17.conv.0.0.weight`) belongs to a node after `cut`:
    /// what trains when the base is frozen up to `cut`.
    pub fn is_after(&self, name: &str, cut: NodeId) -> bool {
        let node = name.rsplit_once('.').map_or(name, |(node, _)| node);
        self.nodes[cut + 1..=self.logits].iter().any(|n| n.name == node)
    }

    /// Number of trainable values (what Keras' `model.summary()` calls trainable params).
    pub fn trainable_parameter_count(&self) -> u64 {
        self.parameters().iter().filter(|p| p.trainable).map(|p| p.shape.iter().product::<i64>() as u64).sum()
    }

    /// How many nodes read each node's output (the logits and feature map count as readers too).
    pub fn consumer_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for node in &self.nodes {
            for &i in &node.inputs {
                counts[i] += 1;
            }
        }
        counts[self.logits] += 1;
        if let Some(f) = self.features {
            counts[f] += 1;
        }
        counts
    }
}

/// Appends nodes while tracking shapes, so architectures are written as straight-line code and
/// channel counts are never repeated by hand.
pub struct NetworkBuilder {
    network: Network,
    shapes: Vec<Shape>,
}

impl NetworkBuilder {
    pub fn new(architecture: &str, input_channels: i64, input_size: i64) -> NetworkBuilder {
        let network = Network {
            architecture: architecture.to_owned(),
            input_channels,
            input_size,
            nodes: vec![Node { name: "input".into(), op: Op::Input, inputs: vec![] }],
            logits: 0,
            features: None,
            head: Head::Sigmoid,
            intensity: Default::default(),
        };
        let shapes = vec![Shape::Map { channels: input_channels, height: input_size, width: input_size }];
        NetworkBuilder { network, shapes }
    }

    pub const INPUT: NodeId = 0;

    /// Channels of a feature map node (0 for vectors).
    pub fn channels(&self, id: NodeId) -> i64 {
        match self.shapes[id] {
            Shape::Map { channels, .. } => channels,
            Shape::Vector(_) => 0,
        }
    }

    pub fn shape(&self, id: NodeId) -> Shape {
        self.shapes[id]
    }

    /// Adds a node. Panics on a wiring mistake: architectures are fixed code, so a mistake
    /// there is a bug caught by the zoo's tests, never a user error.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> NodeId {
        self.network.nodes.push(Node { name: name.into(), op, inputs: inputs.to_vec() });
        let id = self.network.nodes.len() - 1;
        let shape = self.network.node_shape(id, &self.shapes).unwrap_or_else(|err| panic!("{err}"));
        self.shapes.push(shape);
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        x: NodeId,
        out: i64,
        kernel: i64,
        stride: i64,
        padding: Padding,
        groups: i64,
        bias: bool,
    ) -> NodeId {
        let op = Op::Conv2d { in_channels: self.channels(x), out_channels: out, kernel, stride, padding, groups, bias };
        self.push(name, op, &[x])
    }

    pub fn batch_norm(&mut self, name: &str, x: NodeId, eps: f64) -> NodeId {
        let op = Op::BatchNorm { channels: self.channels(x), eps };
        self.push(name, op, &[x])
    }

    pub fn linear(&mut self, name: &str, x: NodeId, out: i64) -> NodeId {
        let in_features = match self.shapes[x] {
            Shape::Vector(n) => n,
            Shape::Map { channels, height, width } => channels * height * width,
        };
        self.push(name, Op::Linear { in_features, out_features: out, bias: true }, &[x])
    }

    /// Unnamed layers get a name from their position, so names stay unique.
    pub fn op(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        let name = format!("{}_{}", op_label(&op), self.network.nodes.len());
        self.push(name, op, inputs)
    }

    pub fn finish(mut self, logits: NodeId, features: Option<NodeId>, head: Head) -> Network {
        self.network.logits = logits;
        self.network.features = features;
        self.network.head = head;
        if let Err(err) = self.network.shapes() {
            panic!("{err}");
        }
        self.network
    }
}

fn op_label(op: &Op) -> &'static str {
    match op {
        Op::Input => "input",
        Op::Conv2d { .. } => "conv",
        Op::BatchNorm { .. } => "bn",
        Op::Relu => "relu",
        Op::Relu6 => "relu6",
        Op::MaxPool { .. } => "maxpool",
        Op::AvgPool { .. } => "avgpool",
        Op::Dropout { .. } => "dropout",
        Op::Flatten => "flatten",
        Op::Linear { .. } => "linear",
        Op::Add => "add",
        Op::Concat => "concat",
        Op::GlobalAvgPool => "gap",
        Op::Sigmoid => "sigmoid",
        Op::Mul => "mul",
        Op::Upsample { .. } => "upsample",
    }
}
