/** granq's public API. */
export { GranqError } from './errors.js';
export * from './tensor/index.js';
export * as F from './autograd/index.js';
export { noGrad } from './autograd/index.js';
export { backend, setBackend, withBackend, nativeBackend, refBackend } from './backend/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export { createModel, isModelName, MODEL_NAMES } from './models/registry.js';
export { loadModel, type LoadedModel } from './models/load.js';
export { evaluate, type EvalCounts } from './models/evaluate.js';
export { ResNetCifarA, ResNetCifarB } from './models/resnet-cifar.js';
export { readSafetensors, writeSafetensors, loadStateDictFile, toTensor } from './io/safetensors.js';
export { readSidecar, readSidecarFor, writeSidecar, type ModelSidecar } from './io/sidecar.js';
export { readCifar, loadCifarSplit, batches, normalizeImages } from './data/cifar.js';
export { resolveDataDir } from './data/data-dir.js';
export {
  quantizeModel, validatePolicy, calibrate, formatSummary, actQuantizers, quantizers, runPtq, preparePtq,
  fakeQuantRows, fakeQuantChannelLoop, fakeQuantGroups, MinMaxEstimator, EmaEstimator, StaticChannelEstimator, RowsEstimator,
  GranqActQuantizer, ChannelLoopActQuantizer, LayerActQuantizer, ChannelStaticActQuantizer,
  SliceWeightQuantizer, ChannelWeightQuantizer, TensorWeightQuantizer, QuantConv2d, QuantLinear, ACT_KINDS, WEIGHT_KINDS,
  type QuantPolicy, type QuantSummary, type ActKind, type WeightKind, type RangeEstimator, type CalibrationInfo,
} from './quant/index.js';
export { PRESETS, presetConfig, type ZsqConfig } from './zsq/config.js';
export { Generator } from './zsq/generator.js';
export { ZsqTrainer, type IterationLosses, type TrainerHooks } from './zsq/trainer.js';
export { runQuantize, type QuantizeOptions, type QuantizeHooks, type QuantizeOutcome, type EpochRecord } from './zsq/run.js';
export { loadQuantizedModel, saveQuantizedModel } from './quant/index.js';
export { cloneModule } from './nn/clone.js';
export { loadRunGenerator, runSyntheticImages } from './zsq/checkpoint.js';
export { probeActivations, relError, type ActivationProbe } from './quant/index.js';
export { buildReport, type ReportOptions, type BuiltReport } from './report/build.js';
export { DEFAULT_TRAIN_CONFIG, type TrainConfig } from './train/config.js';
export { runTrain, type TrainOptions, type TrainHooks, type TrainOutcome, type TrainEpochRecord } from './train/run.js';
export { fetchCifar10, type FetchOptions, type FetchHooks, type FetchOutcome } from './data/fetch-cifar10.js';
