/**
 * The GDFQ / AdaDFQ CIFAR generator (zsq-report A.6), with the PyTorch module names of the released code:
 * label embedding (classes x 100) times z ~ N(0, I); Linear(100 -> 128*8*8); BN(128); nearest x2; Conv3x3 128->128;
 * BN(128, eps 0.8); LeakyReLU 0.2; nearest x2; Conv3x3 128->64; BN(64, eps 0.8); LeakyReLU 0.2; Conv3x3 64->3;
 * tanh; BN(3, no affine). The "0.8" of the released code is BatchNorm's eps (positional), not its momentum.
 * Each upsampling and the conv after it run as one op (upsampleConv2d): the same function, other float32 rounding.
 */
import * as F from '../autograd/index.js';
import { check } from '../errors.js';
import { BatchNorm2d, Conv2d, Embedding, LeakyReLU, Linear, Sequential, Tanh } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';

export const LATENT_DIM = 100;
const INIT_SIZE = 8;

export class Generator extends Module {
  label_emb: Embedding;
  l1: Sequential;
  conv_blocks0: Sequential;
  conv_blocks1: Sequential;
  conv_blocks2: Sequential;

  constructor(readonly numClasses: number, opts: { rng?: Rng } = {}) {
    super();
    const rng = opts.rng;
    this.label_emb = this.child('label_emb', new Embedding(numClasses, LATENT_DIM, { rng }));
    this.l1 = this.child('l1', new Sequential(new Linear(LATENT_DIM, 128 * INIT_SIZE * INIT_SIZE, { rng })));
    this.conv_blocks0 = this.child('conv_blocks0', new Sequential(new BatchNorm2d(128)));
    this.conv_blocks1 = this.child('conv_blocks1', new Sequential(
      new Conv2d(128, 128, 3, { padding: 1, rng }), new BatchNorm2d(128, { eps: 0.8 }), new LeakyReLU(0.2),
    ));
    this.conv_blocks2 = this.child('conv_blocks2', new Sequential(
      new Conv2d(128, 64, 3, { padding: 1, rng }), new BatchNorm2d(64, { eps: 0.8 }), new LeakyReLU(0.2),
      new Conv2d(64, 3, 3, { padding: 1, rng }), new Tanh(), new BatchNorm2d(3, { affine: false }),
    ));
  }

  /** Images [B,3,32,32] for latent codes z [B,100] and class labels. */
  generate(z: Tensor, labels: Int32Array): Tensor {
    check(z.ndim === 2 && z.shape[1] === LATENT_DIM && z.shape[0] === labels.length,
      () => `Generator: expected z [B,${LATENT_DIM}] and B labels, got z [${z.shape}] and ${labels.length} labels`);
    const input = F.mul(this.label_emb.lookup(labels), z);
    const out = F.reshape(this.l1.forward(input), [labels.length, 128, INIT_SIZE, INIT_SIZE]);
    // Each nearest x2 upsampling and the 3x3 conv after it run as one op on the low-resolution image (the same
    // function with 4/9 of the multiply-adds; float32 rounding differs: autograd/ops/conv.ts upsampleConv2d).
    const upConv = (block: Sequential, x: Tensor) => {
      const conv = block.layers[0] as Conv2d;
      return block.forwardFrom(1, F.upsampleConv2d(x, conv.weight, conv.bias));
    };
    return upConv(this.conv_blocks2, upConv(this.conv_blocks1, this.conv_blocks0.forward(out)));
  }

  /** Samples z ~ N(0, I) and uniform labels, then generates. */
  sample(batch: number, rng: Rng): { images: Tensor; labels: Int32Array } {
    const z = Tensor.randn([batch, LATENT_DIM], rng);
    const labels = Int32Array.from({ length: batch }, () => rng.randint(0, this.numClasses));
    return { images: this.generate(z, labels), labels };
  }

  forward(): Tensor {
    throw new Error('Generator: call generate(z, labels) or sample(batch, rng)');
  }
}
