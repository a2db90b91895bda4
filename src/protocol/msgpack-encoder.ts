/** The one MessagePack encoder: protocol frames, HTTP answers, bus messages, audit payloads. */
import { Packr } from 'msgpackr';

/**
 * Plain MessagePack only, so a client in any language decodes it: `useRecords: false` and `moreTypes: false` keep
 * msgpackr's extensions out; `variableMapSize` gives fixmaps for small objects (msgpackr's
 * default is always map16); `undefined` is sent as nil, not msgpackr's ext 0; floats stay
 * float64 (float32 would change values for other decoders); BigInts beyond 64 bits become
 * floats instead of throwing. Dates go out as standard timestamps (ext -1).
 */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  largeBigIntToFloat: true,
  useFloat32: 0
});

/** Packs any value as plain MessagePack (see the settings above). */
export function packValue(value: unknown): Buffer {
  return packr.pack(value);
}
