// Reads the argon2 parameters out of an encoded (PHC) hash, e.g.
// $argon2id$v=19$m=19456,p=1,t=2$salt$hash — so that the raw measurement uses
// exactly what the server used, whatever its config says.

export function argon2ParamsOf(encoded) {
  const parts = encoded.split('$');
  const type = parts[1];
  const kv = Object.fromEntries(
    (parts[3] ?? '').split(',').map((p) => {
      const [k, v] = p.split('=');
      return [k, Number(v)];
    }),
  );
  if (!/^argon2(id|i|d)$/.test(type) || !kv.m || !kv.t || !kv.p) throw new Error(`not an argon2 hash: ${encoded}`);
  return { type, m: kv.m, t: kv.t, p: kv.p };
}
