/**
 * MobileNetV2-style ONNX graphs built with the protobuf library (opset 13), for import, quantization and export tests
 * and the memory benchmark: inverted-residual blocks, each 1x1 expand conv + BN + Clip(0, 6), 3x3 depthwise conv + BN +
 * Clip (a residual Add at stride 1 when the width is kept; an optional channel multiplier), 1x1 project conv + BN;
 * then GlobalAveragePool, Flatten, Dropout and Gemm. MOBILENET_MINI is the small test graph, MOBILENET_V2_CIFAR the
 * full network at 32x32.
 */
import { encodeModel, floatTensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto } from '../../src/io/onnx-proto.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

/** One inverted-residual block: 1x1 expand (omitted when `expand` equals the input width), 3x3 depthwise conv with
 * channel multiplier `multiplier` (default 1), 1x1 project to `out`; a residual Add when stride 1 keeps the width. */
export interface InvertedResidual { expand: number; out: number; stride: number; multiplier?: number }

/** A MobileNetV2-style graph: optional 3x3 stem, blocks, optional 1x1 head, then GAP, Flatten, Dropout and Gemm. */
export interface MobileNetSpec {
  name: string;
  input: [number, number, number];
  stem?: { out: number; stride: number };
  blocks: InvertedResidual[];
  head?: number;
  classes: number;
}

/** The test graph: input [N, 8, 16, 16], output [N, 5]; two blocks (the second stride 2 with multiplier 2). */
export const MOBILENET_MINI: MobileNetSpec = {
  name: 'mobilenetv2-mini', input: [8, 16, 16], classes: 5,
  blocks: [{ expand: 24, out: 8, stride: 1 }, { expand: 16, out: 12, stride: 2, multiplier: 2 }],
};

/** Input [N, 8, 16, 16]; output [N, 5]. */
export const MOBILENET_INPUT: [number, number, number] = MOBILENET_MINI.input;

/**
 * MobileNetV2 (Sandler et al. 2018) in its CIFAR form: 3x3 stem 3 -> 32 at stride 1, the paper's (t, c, n, s) table
 * with the first two strides 1 (32x32 inputs end at 4x4), 1x1 head to 1280, 10 classes: 2.2 M weights, 52 convs.
 */
export const MOBILENET_V2_CIFAR: MobileNetSpec = (() => {
  const table: [number, number, number, number][] = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  const blocks: InvertedResidual[] = [];
  let c = 32;
  for (const [t, out, n, s] of table) {
    for (let i = 0; i < n; i++) {
      blocks.push({ expand: c * t, out, stride: i === 0 ? s : 1 });
      c = out;
    }
  }
  return { name: 'mobilenetv2-cifar', input: [3, 32, 32], stem: { out: 32, stride: 1 }, blocks, head: 1280, classes: 10 };
})();

/**
 * The ONNX bytes of `spec` with seeded random weights and BatchNorm statistics. Clip bounds come as initializers in
 * even-numbered blocks (and the stem and head) and as Constant nodes in odd-numbered ones.
 */
export function mobileNetV2Onnx(seed = 11, spec: MobileNetSpec = MOBILENET_MINI): Uint8Array {
  const rng = new Rng(seed);
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const param = (name: string, t: Tensor) => inits.push(floatTensorProto(name, t.shape, t.data));
  const node = (op: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}) =>
    nodes.push(makeNode(op, inputs, [output], output, attrs));
  const conv = (x: string, name: string, ic: number, oc: number, k: number, stride: number, groups: number) => {
    // Fan-in scaled weights keep activations O(1), so some reach past 6 and some stay inside (both Clip ends used).
    const w = Tensor.randn([oc, ic / groups, k, k], rng);
    const scale = 2 / Math.sqrt((ic / groups) * k * k);
    param(`${name}.weight`, Tensor.from(w.data.map((v) => v * scale), w.shape));
    const pad = (k - 1) / 2;
    node('Conv', [x, `${name}.weight`], name, {
      kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], ...(groups > 1 ? { group: groups } : {}),
    });
    return name;
  };
  const bn = (x: string, name: string, c: number) => {
    param(`${name}.weight`, Tensor.uniform([c], rng, 0.5, 1.5));
    param(`${name}.bias`, Tensor.uniform([c], rng, -0.5, 1));
    param(`${name}.running_mean`, Tensor.uniform([c], rng, -0.3, 0.3));
    param(`${name}.running_var`, Tensor.uniform([c], rng, 0.5, 2));
    node('BatchNormalization', [x, `${name}.weight`, `${name}.bias`, `${name}.running_mean`, `${name}.running_var`], name);
    return name;
  };
  inits.push(floatTensorProto('clip_min', [], Float32Array.of(0)), floatTensorProto('clip_max', [], Float32Array.of(6)));
  node('Constant', [], 'c_min', { value: floatTensorProto('', [], Float32Array.of(0)) });
  node('Constant', [], 'c_max', { value: floatTensorProto('', [], Float32Array.of(6)) });
  const clip = (x: string, name: string, bounds: [string, string]) => {
    node('Clip', [x, ...bounds], name);
    return name;
  };
  let h = 'x';
  let c = spec.input[0];
  const initBounds: [string, string] = ['clip_min', 'clip_max'];
  if (spec.stem) {
    h = clip(bn(conv(h, 'stem', c, spec.stem.out, 3, spec.stem.stride, 1), 'stem.bn', spec.stem.out), 'stem.relu', initBounds);
    c = spec.stem.out;
  }
  spec.blocks.forEach((b, i) => {
    const p = `b${i + 1}`;
    const bounds: [string, string] = i % 2 === 0 ? initBounds : ['c_min', 'c_max'];
    const input = h;
    if (b.expand !== c) h = clip(bn(conv(h, `${p}.expand`, c, b.expand, 1, 1, 1), `${p}.bn1`, b.expand), `${p}.relu1`, bounds);
    const dw = b.expand * (b.multiplier ?? 1);
    h = clip(bn(conv(h, `${p}.dw`, b.expand, dw, 3, b.stride, b.expand), `${p}.bn2`, dw), `${p}.relu2`, bounds);
    h = bn(conv(h, `${p}.project`, dw, b.out, 1, 1, 1), `${p}.bn3`, b.out);
    if (b.stride === 1 && b.out === c) {
      node('Add', [input, h], `${p}.add`);
      h = `${p}.add`;
    }
    c = b.out;
  });
  if (spec.head !== undefined) {
    h = clip(bn(conv(h, 'head', c, spec.head, 1, 1, 1), 'head.bn', spec.head), 'head.relu', initBounds);
    c = spec.head;
  }
  node('GlobalAveragePool', [h], 'gap');
  node('Flatten', ['gap'], 'flat');
  node('Dropout', ['flat'], 'drop');
  param('fc.weight', Tensor.randn([spec.classes, c], rng));
  param('fc.bias', Tensor.randn([spec.classes], rng));
  node('Gemm', ['drop', 'fc.weight', 'fc.bias'], 'y', { transB: 1 });
  return encodeModel({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: spec.name, node: nodes, initializer: inits,
      input: [valueInfo('x', ['N', ...spec.input])], output: [valueInfo('y', ['N', spec.classes])],
    },
  });
}
