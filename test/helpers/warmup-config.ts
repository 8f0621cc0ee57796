// The configuration the warm-up's system tests give warmUp(): a sync link on
// lo and lock and control paths in the test's own directory (the warm-up
// must leave them untouched).

export function warmupConfigText(dir: string, mode: 'FTFW' | 'NOTRACK' = 'FTFW', extra = '', modeExtra = ''): string {
  return `Sync {
  Mode ${mode} { ${modeExtra} }
  UDP { IPv4_address 192.0.2.1 IPv4_Destination_Address 192.0.2.2 Port 3780 Interface lo }
}
General {
  HashSize 65536
  HashLimit 262144
  LockFile ${dir}/real.lock
  UNIX { Path ${dir}/real.ctl }
  ${extra}
}
`;
}
