/**
 * A small MobileNetV2-style ONNX graph built with the protobuf library (opset 13), for import, quantization and
 * export tests: two inverted-residual blocks, each 1x1 expand conv + BN + Clip(0, 6), 3x3 depthwise conv + BN + Clip
 * (stride 1 with a residual Add; stride 2 with channel multiplier 2), 1x1 project conv + BN; then GlobalAveragePool,
 * Flatten, Dropout and Gemm. Clip bounds come as initializers in one block and as Constant nodes in the other.
 */
import { encodeModel, floatTensorProto, makeNode, valueInfo, type AttrValue, type NodeProto, type TensorProto } from '../../src/io/onnx-proto.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

/** Input [N, 8, 16, 16]; output [N, 5]. */
export const MOBILENET_INPUT: [number, number, number] = [8, 16, 16];

export function mobileNetV2Onnx(seed = 11): Uint8Array {
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
  // Block 1: 8 -> 24 -> depthwise s1 -> 8, residual.
  let h = clip(bn(conv('x', 'b1.expand', 8, 24, 1, 1, 1), 'b1.bn1', 24), 'b1.relu1', ['clip_min', 'clip_max']);
  h = clip(bn(conv(h, 'b1.dw', 24, 24, 3, 1, 24), 'b1.bn2', 24), 'b1.relu2', ['clip_min', 'clip_max']);
  h = bn(conv(h, 'b1.project', 24, 8, 1, 1, 1), 'b1.bn3', 8);
  node('Add', ['x', h], 'b1.add');
  // Block 2: 8 -> 16 -> depthwise s2, multiplier 2 -> 32 -> 12.
  h = clip(bn(conv('b1.add', 'b2.expand', 8, 16, 1, 1, 1), 'b2.bn1', 16), 'b2.relu1', ['c_min', 'c_max']);
  h = clip(bn(conv(h, 'b2.dw', 16, 32, 3, 2, 16), 'b2.bn2', 32), 'b2.relu2', ['c_min', 'c_max']);
  h = bn(conv(h, 'b2.project', 32, 12, 1, 1, 1), 'b2.bn3', 12);
  node('GlobalAveragePool', [h], 'gap');
  node('Flatten', ['gap'], 'flat');
  node('Dropout', ['flat'], 'drop');
  param('fc.weight', Tensor.randn([5, 12], rng));
  param('fc.bias', Tensor.randn([5], rng));
  node('Gemm', ['drop', 'fc.weight', 'fc.bias'], 'y', { transB: 1 });
  return encodeModel({
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mobilenetv2-mini', node: nodes, initializer: inits,
      input: [valueInfo('x', ['N', ...MOBILENET_INPUT])], output: [valueInfo('y', ['N', 5])],
    },
  });
}
