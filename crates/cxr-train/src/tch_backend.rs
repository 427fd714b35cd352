//! Runs a [`Network`] with libtorch: creates its parameters in a `VarStore` under their PyTorch
//! names and evaluates the graph node by node.

use crate::network::{Head, Network, NetworkError, Op};
use crate::onnx_graph::{ParamTensor, ParamValues};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// One node's parameters, if it has any.
enum Layer {
    Stateless,
    Conv { weight: Tensor, bias: Option<Tensor> },
    BatchNorm(nn::BatchNorm),
    Linear(nn::Linear),
}

/// A [`Network`] bound to parameters in a `VarStore`.
pub struct TchNetwork {
    network: Network,
    layers: Vec<Layer>,
    consumers: Vec<usize>,
}

/// What one forward pass gives.
pub struct Forward {
    /// `[N, outputs]`, before the head's sigmoid/softmax.
    pub logits: Tensor,
    /// The network's feature map, when it declares one.
    pub features: Option<Tensor>,
}

/// The `VarStore` path for a dotted PyTorch name, so `features.0.0` becomes `features` / `0` / `0`.
fn path_for<'a>(root: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    dotted.split('.').fold(root.clone(), |path, part| path / part)
}

impl TchNetwork {
    /// Creates the network's parameters under `root`, freshly initialised (PyTorch's defaults:
    /// Kaiming-uniform weights, BatchNorm at identity).
    pub fn new(root: &nn::Path, network: Network) -> Result<TchNetwork, NetworkError> {
        network.shapes()?;
        let layers = network
            .nodes
            .iter()
            .map(|node| {
                let path = path_for(root, &node.name);
                match node.op {
                    Op::Conv2d { in_channels, out_channels, kernel, groups, bias, .. } => {
                        let fan_in = (in_channels / groups * kernel * kernel) as f64;
                        let bound = 1.0 / fan_in.sqrt();
                        let weight = path.var(
                            "weight",
                            &[out_channels, in_channels / groups, kernel, kernel],
                            nn::init::DEFAULT_KAIMING_UNIFORM,
                        );
                        let bias =
                            bias.then(|| path.var("bias", &[out_channels], Init::Uniform { lo: -bound, up: bound }));
                        Layer::Conv { weight, bias }
                    }
                    Op::BatchNorm { channels, eps } => Layer::BatchNorm(nn::batch_norm2d(
                        &path,
                        channels,
                        nn::BatchNormConfig { eps, ws_init: Init::Const(1.0), ..Default::default() },
                    )),
                    Op::Linear { in_features, out_features, bias } => Layer::Linear(nn::linear(
                        &path,
                        in_features,
                        out_features,
                        nn::LinearConfig { bias, ..Default::default() },
                    )),
                    _ => Layer::Stateless,
                }
            })
            .collect();
        let consumers = network.consumer_counts();
        Ok(TchNetwork { network, layers, consumers })
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Evaluates the graph; `train` switches dropout on and BatchNorm to batch statistics.
    pub fn forward(&self, image: &Tensor, train: bool) -> Forward {
        let mut features = None;
        let logits = self.run(0, image, self.network.logits, train, |id, out| {
            if Some(id) == self.network.features {
                features = Some(out.shallow_clone());
            }
        });
        Forward { logits, features }
    }

    /// The output of node `node` (e.g. [`Network::head_input`]), running only the nodes up to it.
    pub fn forward_to(&self, image: &Tensor, node: usize, train: bool) -> Tensor {
        self.run(0, image, node, train, |_, _| {})
    }

    /// The logits from `value`, the output of node `node`, running only the nodes after it: the
    /// head alone when `node` is [`Network::head_input`].
    pub fn forward_from(&self, node: usize, value: &Tensor, train: bool) -> Tensor {
        self.run(node, value, self.network.logits, train, |_, _| {})
    }

    /// Evaluates nodes `start + 1 ..= last` given `start`'s output, calling `visit` on each
    /// output, and returns `last`'s. Values are dropped as soon as their last reader has run.
    fn run(
        &self,
        start: usize,
        start_value: &Tensor,
        last: usize,
        train: bool,
        mut visit: impl FnMut(usize, &Tensor),
    ) -> Tensor {
        let nodes = &self.network.nodes;
        let mut values: Vec<Option<Tensor>> = (0..nodes.len()).map(|_| None).collect();
        values[start] = Some(start_value.shallow_clone());
        visit(start, start_value);
        let mut remaining = self.consumers.clone();
        for (id, node) in nodes.iter().enumerate().take(last + 1).skip(start + 1) {
            let input =
                |i: usize| values[node.inputs[i]].as_ref().expect("inputs are evaluated first and kept while read");
            let out = match (&node.op, &self.layers[id]) {
                (Op::Input, _) => unreachable!("only the first node is an input, and its value is given"),
                (Op::Conv2d { stride, padding, groups, .. }, Layer::Conv { weight, bias }) => {
                    let x = input(0);
                    if padding.is_symmetric() {
                        x.conv2d(
                            weight,
                            bias.as_ref(),
                            [*stride, *stride],
                            [padding.top, padding.left],
                            [1, 1],
                            *groups,
                        )
                    } else {
                        x.constant_pad_nd([padding.left, padding.right, padding.top, padding.bottom]).conv2d(
                            weight,
                            bias.as_ref(),
                            [*stride, *stride],
                            [0, 0],
                            [1, 1],
                            *groups,
                        )
                    }
                }
                (Op::BatchNorm { .. }, Layer::BatchNorm(bn)) => input(0).apply_t(bn, train),
                (Op::Linear { .. }, Layer::Linear(linear)) => input(0).apply(linear),
                (Op::Relu, _) => input(0).relu(),
                (Op::Relu6, _) => input(0).clamp(0.0, 6.0),
                (Op::MaxPool { kernel, stride, padding }, _) => {
                    input(0).max_pool2d([*kernel, *kernel], [*stride, *stride], [*padding, *padding], [1, 1], false)
                }
                (Op::AvgPool { kernel, stride }, _) => {
                    input(0).avg_pool2d([*kernel, *kernel], [*stride, *stride], [0, 0], false, true, None)
                }
                (Op::Dropout { p }, _) => input(0).dropout(*p, train),
                (Op::Flatten, _) => input(0).flatten(1, -1),
                (Op::GlobalAvgPool, _) => input(0).adaptive_avg_pool2d([1, 1]),
                (Op::Add, _) => (1..node.inputs.len()).fold(input(0).shallow_clone(), |sum, i| sum + input(i)),
                (Op::Sigmoid, _) => input(0).sigmoid(),
                (Op::Mul, _) => input(0) * input(1),
                (Op::Upsample { factor }, _) => {
                    let size = input(0).size();
                    let (h, w) = (size[2] * factor, size[3] * factor);
                    input(0).upsample_nearest2d([h, w], Some(*factor as f64), Some(*factor as f64))
                }
                (Op::Concat, _) => {
                    let parts: Vec<&Tensor> = (0..node.inputs.len()).map(input).collect();
                    Tensor::cat(&parts, 1)
                }
                (op, _) => unreachable!("layer for {op:?} is created in new()"),
            };
            for &i in &node.inputs {
                remaining[i] -= 1;
                if remaining[i] == 0 {
                    values[i] = None;
                }
            }
            visit(id, &out);
            values[id] = Some(out);
        }
        values[last].take().expect("nodes up to `last` are evaluated")
    }

    /// Probabilities in inference mode: `[N, 1]` P(positive) for a sigmoid head, `[N, classes]` for softmax.
    pub fn probabilities(&self, image: &Tensor) -> Tensor {
        let logits = tch::no_grad(|| self.forward(image, false).logits);
        apply_head(self.network.head, &logits)
    }
}

/// The head's sigmoid or softmax on logits.
pub fn apply_head(head: Head, logits: &Tensor) -> Tensor {
    match head {
        Head::Sigmoid | Head::Mask => logits.sigmoid(),
        Head::Softmax { .. } => logits.softmax(1, Kind::Float),
    }
}

/// Every variable in `vs` as plain `f32` data on the CPU, keyed by its PyTorch name.
pub fn param_values(vs: &nn::VarStore) -> ParamValues {
    vs.variables()
        .into_iter()
        .map(|(name, tensor)| {
            let cpu = tensor.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
            let shape = cpu.size();
            let values = Vec::<f32>::try_from(cpu.flatten(0, -1)).expect("a float CPU tensor converts to Vec<f32>");
            (name, ParamTensor { shape, values })
        })
        .collect()
}

/// Copies a CHW `f32` batch into a `[n, c, h, w]` tensor.
pub fn batch_tensor(values: &[f32], shape: [usize; 4]) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(values).reshape(&dims)
}
