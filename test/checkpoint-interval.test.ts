import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dalyInterval, expectedWaste, formatSeconds, mtbfFromRate, optimalInterval, youngInterval } from '../src/checkpoint/interval.ts';

const MIN = 60;
const HOUR = 3600;

/** |actual − expected| ≤ tolerance, with both numbers in the message. */
function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);
}

describe('dalyInterval: the check values of Daly (2006) with δ = 5 min', () => {
  // Daly's table gives the higher-order estimate to one decimal of a minute.
  const cases: [mtbf: number, minutes: number][] = [
    [24 * HOUR, 116.7],
    [6 * HOUR, 56.7],
    [15 * MIN, 9.14],
  ];
  for (const [mtbf, minutes] of cases) {
    it(`M = ${formatSeconds(mtbf)} → ${minutes} min`, () => {
      near(dalyInterval(5 * MIN, mtbf) / MIN, minutes, 0.05, 'Daly interval (min)');
    });
  }

  it('rounded as the paper rounds them: 117, 57 and 9.1 min', () => {
    assert.equal(Math.round(dalyInterval(5 * MIN, 24 * HOUR) / MIN), 117);
    assert.equal(Math.round(dalyInterval(5 * MIN, 6 * HOUR) / MIN), 57);
    assert.equal(Number((dalyInterval(5 * MIN, 15 * MIN) / MIN).toFixed(1)), 9.1);
  });

  it('is M itself once δ ≥ 2M', () => {
    assert.equal(dalyInterval(10 * MIN, 5 * MIN), 5 * MIN);
    assert.equal(dalyInterval(2 * HOUR, HOUR), HOUR);
  });
});

describe('youngInterval', () => {
  it('is √(2δM)', () => {
    assert.equal(youngInterval(5 * MIN, 6 * HOUR), 60 * MIN);
    assert.equal(youngInterval(2, 10_000), 200);
  });

  it('is close to Daly when δ ≪ M', () => {
    const delta = 5;
    const mtbf = 24 * HOUR;
    near(dalyInterval(delta, mtbf) / youngInterval(delta, mtbf), 1, 0.01, 'Daly / Young');
  });
});

describe('optimalInterval', () => {
  it('uses Daly and says so', () => {
    const r = optimalInterval({ checkpointSeconds: 5 * MIN, mtbfSeconds: 6 * HOUR });
    assert.equal(r.formula, 'daly');
    assert.equal(r.seconds, dalyInterval(5 * MIN, 6 * HOUR));
    assert.match(r.reason, /^Daly: δ=5m, M=6h → 56m4\ds$/);
  });

  it('keeps one decimal of a small checkpoint cost in the reason', () => {
    assert.match(optimalInterval({ checkpointSeconds: 2.1, mtbfSeconds: 6 * HOUR }).reason, /δ=2\.1s/);
  });

  it('falls back to M when δ ≥ 2M', () => {
    const r = optimalInterval({ checkpointSeconds: 20 * MIN, mtbfSeconds: 10 * MIN });
    assert.equal(r.formula, 'mtbf');
    assert.equal(r.seconds, 10 * MIN);
    assert.match(r.reason, /δ ≥ 2M/);
  });

  it('uses Young when asked', () => {
    const r = optimalInterval({ checkpointSeconds: 5 * MIN, mtbfSeconds: 6 * HOUR, formula: 'young' });
    assert.equal(r.formula, 'young');
    assert.equal(r.seconds, HOUR);
  });

  it('raises the interval to the minimum and caps it at the maximum, saying so', () => {
    const low = optimalInterval({ checkpointSeconds: 5, mtbfSeconds: HOUR, minSeconds: 10 * MIN });
    assert.equal(low.seconds, 10 * MIN);
    assert.equal(low.formula, 'daly');
    assert.match(low.reason, /raised to the minimum 10m$/);

    const high = optimalInterval({ checkpointSeconds: 5 * MIN, mtbfSeconds: 24 * HOUR, maxSeconds: HOUR });
    assert.equal(high.seconds, HOUR);
    assert.match(high.reason, /capped at the maximum 1h$/);

    const inside = optimalInterval({ checkpointSeconds: 5 * MIN, mtbfSeconds: 6 * HOUR, minSeconds: MIN, maxSeconds: 2 * HOUR });
    assert.equal(inside.seconds, dalyInterval(5 * MIN, 6 * HOUR));
    assert.doesNotMatch(inside.reason, /minimum|maximum/);
  });

  it('rejects bounds that make no sense', () => {
    const base = { checkpointSeconds: 5, mtbfSeconds: HOUR };
    assert.throws(() => optimalInterval({ ...base, minSeconds: 600, maxSeconds: 60 }), { name: 'RangeError', message: /minSeconds .* maxSeconds/ });
    assert.throws(() => optimalInterval({ ...base, minSeconds: -1 }), { name: 'RangeError', message: /minSeconds/ });
    assert.throws(() => optimalInterval({ ...base, maxSeconds: 0 }), { name: 'RangeError', message: /maxSeconds/ });
  });
});

describe('bad input throws a RangeError naming the argument', () => {
  const bad = [0, -5, Number.NaN, Number.POSITIVE_INFINITY];
  for (const value of bad) {
    it(`${value}`, () => {
      assert.throws(() => youngInterval(value, HOUR), { name: 'RangeError', message: /deltaSec/ });
      assert.throws(() => youngInterval(5, value), { name: 'RangeError', message: /mtbfSec/ });
      assert.throws(() => dalyInterval(value, HOUR), { name: 'RangeError', message: /deltaSec/ });
      assert.throws(() => dalyInterval(5, value), { name: 'RangeError', message: /mtbfSec/ });
      assert.throws(() => optimalInterval({ checkpointSeconds: value, mtbfSeconds: HOUR }), { name: 'RangeError', message: /checkpointSeconds/ });
      assert.throws(() => optimalInterval({ checkpointSeconds: 5, mtbfSeconds: value }), { name: 'RangeError', message: /mtbfSeconds/ });
      assert.throws(() => mtbfFromRate(value, 8), { name: 'RangeError', message: /failuresPerGpuHour/ });
    });
  }

  it('a fractional or zero GPU count', () => {
    assert.throws(() => mtbfFromRate(1e-5, 0), { name: 'RangeError', message: /gpus/ });
    assert.throws(() => mtbfFromRate(1e-5, 1.5), { name: 'RangeError', message: /gpus/ });
  });
});

describe('mtbfFromRate', () => {
  it("gives Llama 3's job MTBF from its per-GPU rate: 419 unexpected interruptions in 54 days on 16,384 GPUs", () => {
    const hours = 54 * 24;
    const rate = 419 / (16_384 * hours);
    near(rate, 1.97e-5, 0.005e-5, 'per-GPU-hour rate');
    near(mtbfFromRate(rate, 16_384) / HOUR, hours / 419, 1e-9, 'job MTBF (h)');
    near(mtbfFromRate(rate, 16_384) / HOUR, 3.09, 0.005, 'job MTBF (h)');
  });
});

describe('expectedWaste', () => {
  it('is δ/τ + τ/(2M) + R/M', () => {
    near(expectedWaste({ checkpointSeconds: 60, intervalSeconds: 600, mtbfSeconds: 6000, restartSeconds: 300 }), 0.1 + 0.05 + 0.05, 1e-12, 'waste');
    near(expectedWaste({ checkpointSeconds: 60, intervalSeconds: 600, mtbfSeconds: 6000 }), 0.15, 1e-12, 'waste without restart');
  });

  it("is least, to first order, at Young's interval", () => {
    const delta = 30;
    const mtbf = 3 * HOUR;
    const at = (tau: number) => expectedWaste({ checkpointSeconds: delta, intervalSeconds: tau, mtbfSeconds: mtbf });
    const young = youngInterval(delta, mtbf);
    assert.ok(at(young) < at(young * 0.9) && at(young) < at(young * 1.1));
  });

  it('rejects a negative restart cost', () => {
    assert.throws(() => expectedWaste({ checkpointSeconds: 5, intervalSeconds: 60, mtbfSeconds: HOUR, restartSeconds: -1 }), { name: 'RangeError', message: /restartSeconds/ });
  });
});
