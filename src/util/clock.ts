// Time and timers behind an interface, so protocol state machines run under a
// deterministic fake clock in unit tests.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Unix time in seconds (FTFW seeds its sequence counter with it). */
  unixSeconds(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  unixSeconds: () => Math.floor(Date.now() / 1000),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref?.();
    return { cancel: () => clearInterval(t) };
  },
};

/** A manual clock: time moves only when the test calls advance(). */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: { id: number; at: number; every: number; fn: () => void }[] = [];

  constructor(private unixBase = 1_795_343_829) {}

  now(): number {
    return this.t;
  }

  unixSeconds(): number {
    return this.unixBase + Math.floor(this.t / 1000);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, 0);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Runs every timer due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.t = next.at;
      if (next.every > 0) next.at += next.every;
      else this.timers.shift();
      next.fn();
    }
    this.t = end;
  }

  pending(): number {
    return this.timers.length;
  }

  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const timer = { id: ++this.seq, at: this.t + Math.max(0, ms), every, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }
}
