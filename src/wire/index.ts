// Public surface of the sync wire codec: message header, datagram framing,
// conntrack and expectation messages, attribute tables.
export * from './header.js';
export * from './datagram.js';
export {
  NTA, NTA_MAX, NTA_FIXED_LEN, NTA_MAX_LEN, NTA_EXP, NTA_EXP_MAX, NTA_EXP_FIXED_LEN, NTA_EXP_MAX_LEN,
  NTA_HDRLEN, NTA_LABELS_MAX_PAYLOAD, ntaAlign,
} from './attrs.js';
export { encodeConntrackMsg, decodeConntrackMsg, type WireEncodeOptions } from './conntrack.js';
export { encodeExpectationMsg, decodeExpectationMsg } from './expectation.js';
