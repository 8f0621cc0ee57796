// General { Syslog }: pino lines become RFC 3164 datagrams with the right
// facility and severity; a missing syslog daemon never breaks logging.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SyslogStream } from '../../src/log/syslog.js';

describe('syslog destination', () => {
  it('maps facility and pino level to the PRI field and tags the line', async () => {
    const sent: string[] = [];
    const stream = new SyslogStream({ facility: 'local3', path: '/x', send: (_p, d) => { sent.push(d.toString()); } });
    const log = pino({ level: 'info' }, stream);
    log.info('hello');
    log.warn('careful');
    log.error('broken');
    await new Promise((r) => setImmediate(r));
    // local3 = 19 → 152; info 6, warning 4, err 3.
    expect(sent.map((l) => /^<(\d+)>ctsync\[\d+\]: \{/.exec(l)?.[1])).toEqual(['158', '156', '155']);
    expect(sent[0]).toContain('"msg":"hello"');
  });

  it('counts failures instead of throwing when nothing listens', async () => {
    const stream = new SyslogStream({ facility: 'daemon', send: () => { throw new Error('ECONNREFUSED'); } });
    const log = pino({ level: 'info' }, stream);
    log.info('x');
    await new Promise((r) => setImmediate(r));
    expect(stream.failures).toBe(1);
  });
});
