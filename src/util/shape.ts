// V8 records, per hidden class, how each field has been used so far. A field
// stored only once is a constant: optimized code may fold its value in. A
// field that has held only small integers is kept unboxed as one. The first
// time that stops being true (a second store; a fraction, or an IPv4 address
// from 64.0.0.0 up, in a small-integer field), V8 rewrites the class and
// throws away every optimized function that relied on the old form; each is
// compiled again, by TurboFan, when it is hot again.
//
// Fields that keep their first value through a daemon's first burst and
// change at some later event did exactly that in the middle of the work that
// event started: the first bulk send (the engine's bulk iterator, then a
// fractional clock reading in the FTFW stall timer) deoptimized the whole
// transmit path of a resync, whose recompiles were TurboFan's 17% of the
// sender's CPU; the first flush of the external cache did the same to the
// receiver (`node --trace-generalization --trace-deopt`, bench/README.md).
// settleFields() makes those changes up front, in a constructor or on an
// object made for the purpose at module load, before any code is optimized.
//
// For objects created per event (cache entries) a field is settled once on a
// sample: constness and representation belong to the hidden class that every
// object from the same constructor or literal shares. The sample is kept
// alive: a hidden class is reachable from its parent only weakly, and one that
// no object uses may be collected and rebuilt later with its fields constant
// again (measured: the settled state field of cache entries was back to
// constant in 3 runs of 5).

/** Fields to settle: `mutable` are stored again; `double` also hold a fraction once (and are stored back). */
export interface FieldUse {
  mutable?: readonly string[];
  double?: readonly string[];
}

/**
 * Makes V8 see each named field of `obj` as changing (and the `double` ones as
 * holding fractions) now, leaving every value as it was. Throws on a name the
 * object does not have, so a renamed field fails its tests instead of being
 * silently skipped.
 */
export function settleFields(obj: object, use: FieldUse): void {
  const o = obj as Record<string, unknown>;
  for (const k of use.double ?? []) {
    if (!(k in o)) throw new TypeError(`settleFields: no field ${k}`);
    const v = o[k];
    o[k] = 0.5;
    o[k] = v;
  }
  for (const k of use.mutable ?? []) {
    if (!(k in o)) throw new TypeError(`settleFields: no field ${k}`);
    const v = o[k];
    o[k] = v;
  }
}

/** Samples whose hidden classes must stay (see above). */
const samples: object[] = [];

/** settleFields on an object made for the purpose, kept alive for good. */
export function settleSample(sample: object, use: FieldUse): void {
  settleFields(sample, use);
  samples.push(sample);
}

/** settleSample for an object of counters: every own field (`mutable`), and those that outgrow small integers (`double`). */
export function settleCounters(sample: object, double: readonly string[] = []): void {
  settleSample(sample, { mutable: Object.keys(sample), double });
}

/**
 * An empty array already of the kind that holds objects. An array starts as
 * one of small integers and changes kind at its first object: code compiled
 * while a pool like this held objects (the warm-up's) fails its kind check on
 * an instance that never has yet, and is thrown away (measured: the sync
 * queue's item pool, at the first event after the warm-up).
 */
export function objectArray<T extends object>(): T[] {
  const a: object[] = [{}];
  a.pop();
  return a as T[];
}
