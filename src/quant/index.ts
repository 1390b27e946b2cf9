/** Quantization: estimators, fake-quant ops, quantizers, policy and model rewriting. */
export * from './fake-quant.js';
export * from './estimators.js';
export * from './quantizer.js';
export * from './policy.js';
export * from './modules.js';
export * from './clone.js';
export * from './calibrate.js';
export * from './quantize-model.js';
export { GranqActQuantizer } from './act/granq.js';
export { ChannelLoopActQuantizer } from './act/channel-loop.js';
export { LayerActQuantizer } from './act/layer.js';
export { ChannelStaticActQuantizer } from './act/channel-static.js';
export { SliceWeightQuantizer } from './weight/slice.js';
export { ChannelWeightQuantizer } from './weight/channel.js';
export { TensorWeightQuantizer } from './weight/tensor.js';
export * from './ptq.js';
export * from './probe.js';
export { exportOnnx, EXPORT_OPSET, type OnnxExport, type WeightCodes } from './onnx-export.js';
