/**
 * Key lists the strict parser recorded for the large objects it made (internal: not exported
 * from the package). Object.keys of a 100,000-key object sorts V8's hash table by insertion
 * order, which costs more than reading the entries; the parser has the list for free.
 */
export const LARGE_OBJECT_KEYS = new WeakMap<object, readonly string[]>();

/**
 * The own keys of an object: for a large object from the parser, the list it recorded (in
 * source order), valid while no key is added or removed; otherwise Object.keys.
 */
export function ownKeys(obj: object): readonly string[] {
  return LARGE_OBJECT_KEYS.get(obj) ?? Object.keys(obj);
}
