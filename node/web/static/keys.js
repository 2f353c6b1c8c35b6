// Known keys, as the Go phone keeps them (call/phone knownkeys.go): the
// key of each phone number and uid the page called, remembered once a call
// it placed has connected; a change is a warning before the next call.
// Names are not remembered: several terminals may share one. Tested with
// the Go phone's cases, call/phone/testdata/knownkeys-cases.json.

// knownIDs are the identifiers a key is remembered under.
export function knownIDs(ids) {
  const out = [];
  if (ids && ids.phone) out.push("phone:" + ids.phone);
  if (ids && ids.uid) out.push("uid:" + ids.uid);
  return out;
}

// changedKeys lists the identifiers of ids whose key in known (id → base64
// key) differs from key.
export function changedKeys(known, ids, key) {
  if (!key) return [];
  return knownIDs(ids).filter((id) => known[id] && known[id] !== key);
}

// remembered is known with key stored for the identifiers of ids.
export function remembered(known, ids, key) {
  const out = Object.assign({}, known);
  if (key) for (const id of knownIDs(ids)) out[id] = key;
  return out;
}
