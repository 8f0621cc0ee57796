// settleFields changes how V8 stores fields, never what they hold; the V8 side
// is checked under --trace-generalization by test/system/kernel-daemon-field-shapes.test.ts.
import { describe, expect, it } from 'vitest';
import { settleCounters, settleFields, settleSample } from '../../src/util/shape.js';

class Sample {
  n = -1;
  big = 0xffff_fff0;
  frac = 0.25;
  obj: object | null = null;
  flag = false;
  text = 'x';
}

describe('settleFields', () => {
  it('leaves every value as it was, for integers, fractions, objects, booleans and text', () => {
    const s = new Sample();
    const o = { k: 1 };
    s.obj = o;
    settleFields(s, { mutable: ['obj', 'flag', 'text', 'n'], double: ['n', 'big', 'frac'] });
    expect(s).toEqual(Object.assign(new Sample(), { obj: o }));
    expect(s.obj).toBe(o);
    expect(Object.keys(s)).toEqual(['n', 'big', 'frac', 'obj', 'flag', 'text']);
  });

  it('refuses a field the object does not have (a renamed field fails its tests)', () => {
    expect(() => settleFields(new Sample(), { mutable: ['gone'] })).toThrow(/no field gone/);
    expect(() => settleFields(new Sample(), { double: ['missing'] })).toThrow(/no field missing/);
  });

  it('settleSample and settleCounters leave their samples as they were', () => {
    const c = { a: 0, b: 0, c: 7 };
    settleCounters(c);
    expect(c).toEqual({ a: 0, b: 0, c: 7 });
    const s = { x: 1, y: null as object | null };
    settleSample(s, { mutable: ['y'], double: ['x'] });
    expect(s).toEqual({ x: 1, y: null });
  });
});

describe('settleDecodedShapes', () => {
  it('decodes its samples through the real decoder once per process (a codec change that breaks them fails here)', async () => {
    const { settleDecodedShapes } = await import('../../src/netlink/ct-shapes.js');
    expect(() => settleDecodedShapes()).not.toThrow();
    expect(() => settleDecodedShapes()).not.toThrow();
  });
});
