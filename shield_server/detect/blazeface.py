"""BlazeFace short- and full-range models (bundled with mediapipe 0.10.21) run through cv2.dnn.

Both models are fully convolutional, so they run on inputs of any size (multiples of 32) and scan a
whole image in one pass at the face size they were trained for; we decode the anchor grid ourselves.
The full-range model ships sparse (DENSIFY op, fp16 weights) which cv2.dnn cannot import, so it is
rewritten once at load time into a dense float32 model with its two DEPTH_TO_SPACE heads cut off
(done in numpy) and its FPN resize sizes scaled to the requested input shape.
"""

from __future__ import annotations

import os
import tempfile
import threading
from functools import lru_cache

import cv2
import numpy as np

_MODELS = None


def _model_dir() -> str:
    global _MODELS
    if _MODELS is None:
        import mediapipe

        _MODELS = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
    return _MODELS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def to_tensor(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWx3 uint8 -> 1x3xhxw float32 in [-1, 1], zero (mid-grey) padded at the bottom/right."""
    x = np.zeros((1, 3, h, w), np.float32)
    ih, iw = rgb.shape[:2]
    x[0, :, :ih, :iw] = rgb.transpose(2, 0, 1)
    x[0, :, :ih, :iw] *= 1.0 / 127.5
    x[0, :, :ih, :iw] -= 1.0
    return x


class _Net:
    """One cv2.dnn network; cv2.dnn nets are not thread-safe, so calls are serialised."""

    def __init__(self, net):
        self.net = net
        self.names = list(net.getUnconnectedOutLayersNames())
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            self.net.setInput(x)
            return self.net.forward(self.names)


# ---------------------------------------------------------------- short range (128, strides 8/16)

class NetPool:
    """One cv2.dnn net per input shape, within a budget of input pixels.

    A cv2.dnn net re-allocates all its buffers when its input shape changes, which costs as much CPU as
    ~2 forward passes; a pyramid has a different shape per level, so one shared net re-allocated on every
    level (~40% of the detector's CPU time). Nets stay resident per shape instead; past the budget the
    smallest ones (cheap to re-create) are dropped first, so memory stays bounded (~200 bytes per pixel).
    """

    def __init__(self, path: str, budget_px: float = 0.8e6):
        self.path, self.budget_px = path, budget_px
        self.nets: dict[tuple, _Net] = {}
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        key = tuple(x.shape)
        with self.lock:
            net = self.nets.get(key)
            if net is None:
                px = lambda k: k[2] * k[3]
                for k in sorted(self.nets, key=px):
                    if sum(map(px, self.nets)) + px(key) <= self.budget_px:
                        break
                    del self.nets[k]
                net = self.nets[key] = _Net(cv2.dnn.readNetFromTFLite(self.path))
            return dict(zip(net.names, net(x)))


@lru_cache(maxsize=None)
def short_range_pool() -> NetPool:
    return NetPool(os.path.join(_model_dir(), "face_detection", "face_detection_short_range.tflite"))


@lru_cache(maxsize=16)
def _short_anchors(h: int, w: int) -> np.ndarray:
    out = []
    for stride, n in ((8, 2), (16, 6)):
        gy, gx = np.mgrid[0 : h // stride, 0 : w // stride]
        c = np.stack([(gx + 0.5) * stride, (gy + 0.5) * stride], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, 1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def run_short(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (scores N, boxes Nx4 x0y0x1y1, keypoints Nx6x2) in input pixels."""
    h, w = x.shape[2:]
    outs = short_range_pool()(x)
    cls, reg = outs["classificators"][0, :, 0], outs["regressors"][0]
    return _decode(_sigmoid(cls), reg, _short_anchors(h, w))


# ---------------------------------------------------------------- full range (192, stride 4)

_FULL_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _full_range_model():
    from mediapipe.tasks.metadata import schema_py_generated as S

    path = os.path.join(_model_dir(), "face_detection", "face_detection_full_range_sparse.tflite")
    buf = open(path, "rb").read()
    m = S.ModelT.InitFromObj(S.Model.GetRootAsModel(buf, 0))
    g = m.subgraphs[0]
    code = {i: c.builtinCode for i, c in enumerate(m.operatorCodes)}
    B = S.BuiltinOperator

    def data(t):
        raw = m.buffers[t.buffer].data
        dtype = {0: np.float32, 1: np.float16, 2: np.int32}[t.type]
        return np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dtype)

    def densify(t):  # dims dense except the last, which is CSR (the only layout this model uses)
        s, vals, shape = t.sparsity, data(t), list(t.shape)
        seg = np.asarray(s.dimMetadata[-1].arraySegments.values)
        idx = np.asarray(s.dimMetadata[-1].arrayIndices.values)
        out = np.zeros((int(np.prod(shape[:-1])), shape[-1]), np.float32)
        for r in range(out.shape[0]):
            out[r, idx[seg[r] : seg[r + 1]]] = vals[seg[r] : seg[r + 1]]
        return out.reshape(shape)

    const, keep, heads = {}, [], []
    for op in g.operators:
        c = code[op.opcodeIndex]
        if c == B.DENSIFY:
            const[op.outputs[0]] = densify(g.tensors[op.inputs[0]])
        elif c == B.DEQUANTIZE:
            i = op.inputs[0]
            const[op.outputs[0]] = const[i] if i in const else data(g.tensors[i]).astype(np.float32)
        elif c == B.DEPTH_TO_SPACE:
            heads.append(op.inputs[0])
        elif c != B.RESHAPE:
            keep.append(op)
    for ti, a in const.items():
        b = S.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(a, np.float32).tobytes(), np.uint8)
        m.buffers.append(b)
        g.tensors[ti].buffer, g.tensors[ti].type = len(m.buffers) - 1, 0
    g.operators, g.outputs = keep, heads
    resize = [g.tensors[op.inputs[1]] for op in keep if code[op.opcodeIndex] == B.RESIZE_BILINEAR]
    strides = [192 // int(data(t)[0]) for t in resize]  # 16, 8, 4
    return S, m, g, resize, strides


@lru_cache(maxsize=4)
def full_range_net(h: int, w: int) -> _Net:
    import flatbuffers

    with _FULL_LOCK:
        S, m, g, resize, strides = _full_range_model()
        for t, s in zip(resize, strides):
            b = S.BufferT()
            b.data = np.frombuffer(np.array([h // s, w // s], np.int32).tobytes(), np.uint8)
            m.buffers.append(b)
            t.buffer = len(m.buffers) - 1
        g.tensors[g.inputs[0]].shape = np.array([1, h, w, 3], np.int32)
        fb = flatbuffers.Builder(1 << 20)
        fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
        del m.buffers[-len(resize) :]
        data = bytes(fb.Output())
    with tempfile.TemporaryDirectory() as d:  # readNetFromTFLite wants a path in the Python binding
        p = os.path.join(d, "full_range.tflite")
        with open(p, "wb") as f:
            f.write(data)
        return _Net(cv2.dnn.readNetFromTFLite(p))


@lru_cache(maxsize=4)
def _full_anchors(h: int, w: int) -> np.ndarray:
    gy, gx = np.mgrid[0 : h // 4, 0 : w // 4]
    return np.stack([(gx + 0.5) * 4, (gy + 0.5) * 4], -1).reshape(-1, 2).astype(np.float32)


def _depth_to_space(a: np.ndarray) -> np.ndarray:
    """NCHW output of the cut head -> (H*2*W*2, C/4) rows in TF DEPTH_TO_SPACE (block 2, NHWC) order."""
    c, h, w = a.shape[1:]
    a = a[0].reshape(2, 2, c // 4, h, w)  # (i, j, c, h, w)
    return a.transpose(3, 0, 4, 1, 2).reshape(h * 2 * w * 2, c // 4)


def run_full(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = x.shape[2:]
    cls, reg = full_range_net(h, w)(x)
    if cls.shape[1] != 4:
        cls, reg = reg, cls
    return _decode(_sigmoid(_depth_to_space(cls)[:, 0]), _depth_to_space(reg), _full_anchors(h, w))


def _decode(scores, reg, anchors):
    c = anchors + reg[:, :2]
    half = reg[:, 2:4] * 0.5
    boxes = np.concatenate([c - half, c + half], 1)
    kps = anchors[:, None, :] + reg[:, 4:16].reshape(-1, 6, 2)
    return scores, boxes, kps


# ---------------------------------------------------------------- face landmark model as a verifier

@lru_cache(maxsize=None)
def landmark_net() -> _Net:
    path = os.path.join(_model_dir(), "face_landmark", "face_landmark.tflite")
    return _Net(cv2.dnn.readNetFromTFLite(path))


def face_presence(rgb: np.ndarray, box) -> float:
    """Face-presence logit of the face-landmark model on the square crop 1.5x the box's long side
    around its centre (the region MediaPipe's face mesh crops from a detection)."""
    x0, y0, x1, y1 = box[:4]
    k = 192.0 / (1.5 * max(x1 - x0, y1 - y0, 1e-3))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = np.float32([[k, 0, 96 - cx * k], [0, k, 96 - cy * k]])
    crop = cv2.warpAffine(rgb, m, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x = crop.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
    outs = landmark_net()(x)
    return float(next(o for o in outs if o.size == 1).ravel()[0])
