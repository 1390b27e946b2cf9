/** The zero-shot QAT loop: finite losses, warm-up, and bit-identical resume from saved state. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/models/load.js';
import { presetConfig, type ZsqConfig } from '../../src/zsq/config.js';
import { mirrorAveraged, ZsqTrainer, type IterationLosses } from '../../src/zsq/trainer.js';
import { mirrorRows } from '../../src/data/augment.js';
import { validateConfig } from '../../src/zsq/settings.js';
import { FeatureKdLoss } from '../../src/zsq/losses.js';
import * as F from '../../src/autograd/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertBitEqual } from '../kit/compare.js';
import { noShared, SHARED_MODEL } from '../kit/shared.js';

function makeTrainer(extra: Partial<ZsqConfig> = {}) {
  const cfg = { ...presetConfig('tiny'), epochs: 3, itersPerEpoch: 2, batch: 4, ...extra };
  // An FP student (a second copy of the teacher) exercises the loop; quantized students plug in the same way.
  return new ZsqTrainer(loadModel(SHARED_MODEL).model, loadModel(SHARED_MODEL).model, 10, cfg);
}

/** A student that differs from the teacher (every weight x 0.9), so the student loss has a gradient. */
function off(t: ZsqTrainer): ZsqTrainer {
  for (const p of t.student.parameters()) p.data.forEach((v, j) => { p.data[j] = Math.fround(0.9 * v); });
  return t;
}

/** A 3-epoch run of `extra` interrupted in its second epoch (as Ctrl-C does), restored into a fresh trainer and run to the end. */
function resumedMidEpoch(extra: Partial<ZsqConfig>, prepare: (t: ZsqTrainer) => ZsqTrainer = (t) => t): ZsqTrainer {
  const first = prepare(makeTrainer(extra));
  first.runEpoch();
  first.runEpoch(undefined, () => true);
  const saved = first.state();
  first.dispose();
  const resumed = makeTrainer(extra);
  resumed.restore(new Map([...saved.tensors].map(([k, v]) => [k, v.slice()])), structuredClone(saved.meta));
  resumed.runEpoch();
  resumed.runEpoch();
  return resumed;
}

describe('ZSQ trainer', { skip: noShared }, () => {
  test('losses are finite; the student is frozen during warm-up', () => {
    const tr = makeTrainer();
    const before = tr.student.parameters().map((p) => p.data.slice());
    const warm = tr.runEpoch();
    assert.ok(warm.every((l) => l.student === null && Number.isFinite(l.generator) && Number.isFinite(l.bns)));
    tr.student.parameters().forEach((p, i) => assertBitEqual(p.data, before[i]!, `warm-up changed parameter ${i}`));
    const next = tr.runEpoch();
    assert.ok(next.every((l) => l.student !== null && Number.isFinite(l.student)));
    tr.dispose();
  });

  test('an interrupted run resumed from its state ends bit-identical to an uninterrupted one', () => {
    const straight = makeTrainer();
    for (let e = 0; e < 3; e++) straight.runEpoch();

    // Interrupted in the middle of the second epoch (as Ctrl-C does), then resumed from the saved state.
    const first = makeTrainer();
    first.runEpoch();
    first.runEpoch(undefined, () => true);
    assert.deepEqual([first.epoch, first.iter], [1, 1]);
    const saved = first.state();
    const copy = { tensors: new Map([...saved.tensors].map(([k, v]) => [k, v.slice()])), meta: structuredClone(saved.meta) };
    first.dispose();

    const resumed = makeTrainer();
    resumed.restore(copy.tensors, copy.meta);
    resumed.runEpoch();
    resumed.runEpoch();
    assert.equal(resumed.iter, 0);
    assert.equal(resumed.epoch, 3);
    const a = straight.state().tensors;
    const b = resumed.state().tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [k, v] of a) assertBitEqual(b.get(k)!, v, k);
    straight.dispose();
    resumed.dispose();
  });

  test('--generator-epochs: the generator is frozen from that epoch on; the epochs before are the released ones', () => {
    const released = makeTrainer();
    const frozen = makeTrainer({ generatorEpochs: 2 });
    const gen = (t: ZsqTrainer) => t.generator.parameters().map((p) => p.data.slice());
    for (let e = 0; e < 2; e++) {
      released.runEpoch();
      frozen.runEpoch();
    }
    const at2 = gen(frozen);
    gen(released).forEach((p, i) => assertBitEqual(at2[i]!, p, `epochs before 2 differ, parameter ${i}`));
    frozen.runEpoch();
    gen(frozen).forEach((p, i) => assertBitEqual(p, at2[i]!, `the generator moved in epoch 3, parameter ${i}`));
    released.runEpoch();
    assert.ok(gen(released).some((p, i) => p.some((v, j) => v !== at2[i]![j])), 'the released generator keeps training');
    released.dispose();
    frozen.dispose();
  });

  test('a frozen generator with own student images: the student step runs alone and updates the student as the full iteration does', () => {
    // The full iteration (teacher and generator passes kept) is what studentOnly skips; the student must not see it.
    class FullIteration extends ZsqTrainer {
      override get studentOnly(): boolean {
        return false;
      }
    }
    const extra = { generatorEpochs: 1, warmupEpochs: 0, augment: 2, featureKd: 1 };
    const cfg = { ...presetConfig('tiny'), epochs: 3, itersPerEpoch: 2, batch: 4, ...extra };
    const alone = off(makeTrainer(extra));
    const full = off(new FullIteration(loadModel(SHARED_MODEL).model, loadModel(SHARED_MODEL).model, 10, cfg));
    const lossesOf = (t: ZsqTrainer) => [0, 1, 2].flatMap(() => t.runEpoch());
    const a = lossesOf(alone), f = lossesOf(full);
    assert.equal(alone.studentOnly, true);
    a.forEach((l, i) => {
      assert.equal(l.student, f[i]!.student, `student loss, iteration ${i}`);
      if (i >= 2) assert.deepEqual([l.generator, l.bns], [null, null], `iteration ${i}: the generator's loss is not computed`);
      else assert.equal(l.generator, f[i]!.generator, `iteration ${i}: the generator still trains`);
    });
    assert.ok(f.slice(2).every((l) => typeof l.bns === 'number'), 'the full iteration computed the BNS loss');
    full.student.parameters().forEach((p, i) => assertBitEqual(alone.student.parameters()[i]!.data, p.data, `student parameter ${i}`));
    alone.generator.stateDict().forEach((v, k) => assertBitEqual(v.data, full.generator.stateDict().get(k)!.data, `generator ${k}`));
    alone.dispose();
    full.dispose();
  });

  test('--student-milestones: the student lr steps at its own milestones, the generator at --milestones', () => {
    const t = makeTrainer({ epochs: 5, milestones: [3], studentMilestones: [1, 2], lrGamma: 0.1, lrStudent: 0.01, lrGenerator: 0.001 });
    const seen: [number, number][] = [];
    for (let e = 0; e < 5; e++, t.epoch++) {
      t.beginEpoch();
      seen.push([t.optS.lr, t.optG.lr]);
    }
    assert.deepEqual(seen, [[0.01, 0.001], [0.01 * 0.1, 0.001], [0.01 * 0.1 ** 2, 0.001], [0.01 * 0.1 ** 2, 0.001 * 0.1], [0.01 * 0.1 ** 2, 0.001 * 0.1]]);
    t.dispose();
    assert.throws(() => validateConfig({ ...presetConfig('plus-cifar10'), studentMilestones: [20] }), /studentMilestones .*multistep/);
    assert.throws(() => validateConfig({ ...presetConfig('tiny'), studentMilestones: [1.5] }), /studentMilestones must be non-negative integers/);
  });

  test('--student-schedule cosine: the student lr follows the cosine over the epochs, the generator keeps its milestones', () => {
    const cfg = { epochs: 4, milestones: [2], warmupEpochs: 1, lrStudent: 0.01, lrGenerator: 0.001 };
    const cos = makeTrainer({ ...cfg, studentSchedule: 'cosine' });
    const step = makeTrainer(cfg);
    for (let e = 0; e < 4; e++) {
      cos.beginEpoch();
      step.beginEpoch();
      assert.equal(cos.optS.lr, (0.01 * (1 + Math.cos((Math.PI * e) / 4))) / 2, `student lr at epoch ${e}`);
      assert.equal(step.optS.lr, e >= 2 ? 0.01 * 0.1 : 0.01, `released student lr at epoch ${e}`);
      assert.equal(cos.optG.lr, step.optG.lr, `generator lr at epoch ${e}`);
      cos.epoch++;
      step.epoch++;
    }
    cos.dispose();
    step.dispose();
  });

  test('--augment: warm-up is the released run; then the student learns on shifted, mirrored images, reproducibly and resumably', () => {
    const cfg = { epochs: 3, augment: 2 };
    const released = off(makeTrainer({ epochs: 3 }));
    const zero = off(makeTrainer({ epochs: 3, augment: 0 }));
    const aug = off(makeTrainer(cfg));
    const params = (t: ZsqTrainer) => [...t.state().tensors].map(([k, v]) => [k, v.slice()] as const);
    for (const t of [released, zero, aug]) t.runEpoch(); // warm-up: the student does not train, nothing is drawn
    params(released).forEach(([k, v], i) => assertBitEqual(params(aug)[i]![1], v, `warm-up differs: ${k}`));
    for (let e = 1; e < 3; e++) for (const t of [released, zero, aug]) t.runEpoch();
    params(released).forEach(([k, v], i) => assertBitEqual(params(zero)[i]![1], v, `augment 0 changed ${k}`));
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data);
    assert.ok(s(aug).some((p, i) => p.some((v, j) => v !== s(released)[i]![j])), 'the augmented student equals the released one');
    // Interrupted mid-epoch and resumed: bit-identical to the straight run.
    const resumed = resumedMidEpoch(cfg, off);
    params(aug).forEach(([k, v], i) => assertBitEqual(params(resumed)[i]![1], v, `resumed differs: ${k}`));
    for (const t of [released, zero, aug, resumed]) t.dispose();
  });

  test('--low-pass: warm-up is the released run; then the student learns on low-passed images, reproducibly, and with --augment on top', () => {
    const released = off(makeTrainer({ epochs: 2 }));
    const lp = off(makeTrainer({ epochs: 2, lowPass: 4 }));
    const again = off(makeTrainer({ epochs: 2, lowPass: 4 }));
    const both = off(makeTrainer({ epochs: 2, lowPass: 4, augment: 2 }));
    const aug = off(makeTrainer({ epochs: 2, augment: 2 }));
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data.slice());
    const all = [released, lp, again, both, aug];
    for (const t of all) t.runEpoch(); // warm-up
    s(released).forEach((p, i) => assertBitEqual(s(lp)[i]!, p, `warm-up differs, parameter ${i}`));
    for (const t of all) t.runEpoch();
    s(lp).forEach((p, i) => assertBitEqual(s(again)[i]!, p, `not reproducible, parameter ${i}`));
    const differs = (a: ZsqTrainer, b: ZsqTrainer) => s(a).some((p, i) => p.some((v, j) => v !== s(b)[i]![j]));
    assert.ok(differs(lp, released), 'the low-passed student equals the released one');
    assert.ok(differs(both, aug) && differs(both, lp), 'low-pass + augment equals one of them alone');
    assert.throws(() => validateConfig({ ...presetConfig('tiny'), lowPass: 0 }), /lowPass must be a positive radius/);
    for (const t of all) t.dispose();
  });

  test('--anchor: the student stays closer to the teacher, and an anchor of 0 is the released step', () => {
    const start = makeTrainer().student.parameters().map((p) => p.data.slice());
    const dist = (t: ZsqTrainer) => Math.sqrt(t.student.parameters().reduce((a, p, i) => a + p.data.reduce((b, v, j) => b + (v - start[i]![j]!) ** 2, 0), 0));
    // A large lr and anchor (lr x anchor = 0.75: each step takes back most of the way from the teacher) for 10 steps.
    const cfg = { lrStudent: 0.05, epochs: 6 };
    const plain = makeTrainer(cfg);
    const zero = makeTrainer({ ...cfg, anchor: 0 });
    const pulled = makeTrainer({ ...cfg, anchor: 15 });
    for (let e = 0; e < 6; e++) for (const t of [plain, zero, pulled]) t.runEpoch();
    plain.student.parameters().forEach((p, i) => assertBitEqual(zero.student.parameters()[i]!.data, p.data, `anchor 0 changed parameter ${i}`));
    assert.ok(dist(plain) > 0);
    assert.ok(dist(pulled) < 0.5 * dist(plain), `anchored ${dist(pulled)} vs plain ${dist(plain)}`);
    for (const t of [plain, zero, pulled]) t.dispose();
  });

  test('--ema: training is the released run; the average is d·avg + (1 − d)·w per student step, swapped in and out exactly, and resumable', () => {
    const d = 0.75;
    const cfg = { lrStudent: 0.05, epochs: 3 };
    const released = makeTrainer(cfg);
    const averaged = makeTrainer({ ...cfg, ema: d });
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data.slice());
    // The average by hand, in float32, from the parameters after every student step (warm-up: the teacher's).
    let expected = s(averaged);
    const follow = (_i: number, l: { student: number | null }) => {
      if (l.student === null) return;
      expected = s(averaged).map((w, i) => w.map((v, j) => Math.fround(Math.fround(Math.fround(d) * expected[i]![j]!) + Math.fround(Math.fround(1 - d) * v))));
    };
    for (let e = 0; e < 3; e++) {
      released.runEpoch();
      averaged.runEpoch(follow);
    }
    s(released).forEach((p, i) => assertBitEqual(s(averaged)[i]!, p, `--ema changed training, parameter ${i}`));
    const latest = s(averaged);
    const inside = averaged.withAverage(() => s(averaged));
    inside.forEach((p, i) => assertBitEqual(p, expected[i]!, `average of parameter ${i}`));
    assert.ok(inside.some((p, i) => p.some((v, j) => v !== latest[i]![j])), 'the average equals the latest iterate');
    s(averaged).forEach((p, i) => assertBitEqual(p, latest[i]!, `withAverage did not restore parameter ${i}`));
    assert.equal(released.withAverage(() => 7), 7);

    // Interrupted mid-epoch and resumed: the average continues bit for bit.
    assert.ok(averaged.state().tensors.has('ema.0'));
    const resumed = resumedMidEpoch({ ...cfg, ema: d });
    for (const [k, v] of averaged.state().tensors) assertBitEqual(resumed.state().tensors.get(k)!, v, `resumed differs: ${k}`);
    resumed.adoptAverage();
    s(resumed).forEach((p, i) => assertBitEqual(p, expected[i]!, `adoptAverage, parameter ${i}`));
    for (const bad of [0, 1, -0.5, 1.5]) assert.throws(() => validateConfig({ ...presetConfig('tiny'), ema: bad }), /ema must be a decay in \(0, 1\)/);
    for (const t of [released, averaged, resumed]) t.dispose();
  });

  test('--kd-mirror: the target is the mean of the teacher on the image and its mirror; warm-up is the released run; reproducible and resumable', () => {
    const teacher = loadModel(SHARED_MODEL).model;
    const x = Tensor.randn([3, 3, 32, 32], new Rng(11));
    const logits = (t: Tensor) => F.noGrad(() => teacher.forward(t)).data;
    const t = F.noGrad(() => teacher.forward(x));
    const avg = mirrorAveraged(teacher, t, x);
    const mirrored = logits(new Tensor(mirrorRows(x.data, 32), x.shape));
    assert.equal(avg.requiresGrad, false);
    avg.data.forEach((v, i) => assert.equal(v, Math.fround(Math.fround(t.data[i]! + mirrored[i]!) * 0.5), `logit ${i}`));
    // An image that is its own mirror: the target is the teacher's own logits, bit for bit.
    const sym = new Tensor(x.data.map((_, i) => x.data[i - (i % 32) + Math.min(i % 32, 31 - (i % 32))]!), x.shape);
    const ts = F.noGrad(() => teacher.forward(sym));
    assertBitEqual(mirrorAveraged(teacher, ts, sym).data, ts.data, 'symmetric images');

    const s = (tr: ZsqTrainer) => tr.student.parameters().map((p) => p.data.slice());
    const differs = (a: ZsqTrainer, b: ZsqTrainer) => s(a).some((p, i) => p.some((v, j) => v !== s(b)[i]![j]));
    const released = off(makeTrainer());
    const mirror = off(makeTrainer({ kdMirror: true }));
    const again = off(makeTrainer({ kdMirror: true }));
    const withAug = off(makeTrainer({ kdMirror: true, augment: 2 }));
    const aug = off(makeTrainer({ augment: 2 }));
    const all = [released, mirror, again, withAug, aug];
    for (const tr of all) tr.runEpoch(); // warm-up
    s(released).forEach((p, i) => assertBitEqual(s(mirror)[i]!, p, `warm-up differs, parameter ${i}`));
    for (let e = 1; e < 3; e++) for (const tr of all) tr.runEpoch();
    s(mirror).forEach((p, i) => assertBitEqual(s(again)[i]!, p, `not reproducible, parameter ${i}`));
    assert.ok(differs(mirror, released), 'the mirror-target student equals the released one');
    assert.ok(differs(withAug, aug) && differs(withAug, mirror), 'with --augment it equals one of them alone');
    const resumed = resumedMidEpoch({ kdMirror: true }, off);
    s(mirror).forEach((p, i) => assertBitEqual(s(resumed)[i]!, p, `resumed differs, parameter ${i}`));
    assert.throws(() => validateConfig({ ...presetConfig('tiny'), kdMirror: 1 as unknown as boolean }), /kdMirror must be true or false/);
    for (const tr of [...all, resumed]) tr.dispose();
  });

  test('--cutmix: warm-up is the released run; then the student learns on CutMixed images, reproducibly and resumably', () => {
    const cfg = { epochs: 3, cutmix: 1 };
    const released = off(makeTrainer({ epochs: 3 }));
    const mixed = off(makeTrainer(cfg));
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data.slice());
    for (const t of [released, mixed]) t.runEpoch(); // warm-up
    s(released).forEach((p, i) => assertBitEqual(s(mixed)[i]!, p, `warm-up differs, parameter ${i}`));
    for (let e = 1; e < 3; e++) for (const t of [released, mixed]) t.runEpoch();
    assert.ok(s(mixed).some((p, i) => p.some((v, j) => v !== s(released)[i]![j])), 'the CutMix student equals the released one');
    const resumed = resumedMidEpoch(cfg, off);
    s(mixed).forEach((p, i) => assertBitEqual(s(resumed)[i]!, p, `resumed differs, parameter ${i}`));
    for (const bad of [0, 1.5, -1]) assert.throws(() => validateConfig({ ...presetConfig('tiny'), cutmix: bad }), /cutmix must be a probability/);
    for (const t of [released, mixed, resumed]) t.dispose();
  });

  test('--feature-kd: warm-up is the released run; then the conv outputs are pulled towards the teacher\'s, with or without --augment, resumably', () => {
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data.slice());
    const differs = (a: ZsqTrainer, b: ZsqTrainer) => s(a).some((p, i) => p.some((v, j) => v !== s(b)[i]![j]));
    const released = off(makeTrainer());
    const zero = off(makeTrainer({ featureKd: 0 }));
    const fk = off(makeTrainer({ featureKd: 10 }));
    const fkAug = off(makeTrainer({ featureKd: 10, augment: 2 }));
    const aug = off(makeTrainer({ augment: 2 }));
    const all = [released, zero, fk, fkAug, aug];
    for (const t of all) t.runEpoch(); // warm-up
    s(released).forEach((p, i) => assertBitEqual(s(fk)[i]!, p, `warm-up differs, parameter ${i}`));
    for (let e = 1; e < 3; e++) for (const t of all) t.runEpoch();
    s(released).forEach((p, i) => assertBitEqual(s(zero)[i]!, p, `--feature-kd 0 changed parameter ${i}`));
    assert.ok(differs(fk, released), 'the feature-KD student equals the released one');
    assert.ok(differs(fkAug, aug), 'feature KD changed nothing with --augment');
    for (const [cfg, ran] of [[{ featureKd: 10 }, fk], [{ featureKd: 10, augment: 2 }, fkAug]] as const) {
      const resumed = resumedMidEpoch(cfg, off);
      s(ran).forEach((p, i) => assertBitEqual(s(resumed)[i]!, p, `resumed differs, parameter ${i}`));
      resumed.dispose();
    }
    assert.throws(() => validateConfig({ ...presetConfig('tiny'), featureKd: -1 }), /featureKd must be a non-negative number/);
    for (const t of all) t.dispose();

    // Pulled towards the teacher: with a larger lr, the conv outputs on fixed images end closer to the teacher's.
    const x = Tensor.empty([4, 3, 32, 32]);
    new Rng(1).fillUniform(x.data, -2, 2);
    const distance = (t: ZsqTrainer) => {
      const probe = new FeatureKdLoss(t.teacher, t.student);
      probe.record('teacher', () => F.noGrad(() => t.teacher.forward(x)));
      probe.record('student', () => F.noGrad(() => t.student.forward(x)));
      const v = probe.value().item();
      probe.detach();
      return v;
    };
    const [plain, pulled] = [{}, { featureKd: 100 }].map((extra) => off(makeTrainer({ lrStudent: 0.002, ...extra })));
    for (let e = 0; e < 3; e++) for (const t of [plain, pulled]) t.runEpoch();
    assert.ok(distance(pulled) < 0.95 * distance(plain), `feature distance ${distance(pulled)} (feature KD) vs ${distance(plain)} (released)`);
    for (const t of [plain, pulled]) t.dispose();
  });

  test('the BNS-only generator with own student images: the student forward on the generator\'s images is skipped, the run unchanged', () => {
    const cfg = { epochs: 3, alphaDs: 0, alphaAs: 0, marginLower: 0, marginUpper: 1, augment: 2 };
    const skipping = off(makeTrainer(cfg));
    const forced = off(makeTrainer(cfg));
    Object.defineProperty(forced, 'generatorReadsStudent', { get: () => true });
    assert.equal(skipping.generatorReadsStudent, false);
    assert.equal(makeTrainer().generatorReadsStudent, true);
    assert.equal(makeTrainer({ ...cfg, marginUpper: 0.9 }).generatorReadsStudent, true);
    let calls = 0;
    const forward = skipping.student.forward.bind(skipping.student);
    skipping.student.forward = (x) => { calls++; return forward(x); };
    const losses: IterationLosses[][] = [];
    for (let e = 0; e < 3; e++) {
      losses.push(skipping.runEpoch());
      forced.runEpoch();
    }
    const s = (t: ZsqTrainer) => t.student.parameters().map((p) => p.data.slice());
    s(forced).forEach((p, i) => assertBitEqual(s(skipping)[i]!, p, `student parameter ${i}`));
    for (const [k, v] of forced.state().tensors) assertBitEqual(skipping.state().tensors.get(k)!, v, `state ${k}`);
    // Only the student steps' forwards ran (warm-up epoch: none), and the student-reading terms are not computed.
    assert.equal(calls, 2 * 2);
    assert.ok(losses.flat().every((l) => l.margin === null && l.ds === null && l.as === null));
    for (const t of [skipping, forced]) t.dispose();
  });
});

