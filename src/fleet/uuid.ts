// Deterministic GPU UUIDs for declared (simulated) devices, in NVIDIA's printed form
// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: the same node name and index always give the
// same UUID, so a restarted control plane, the simulator and the scheduler all agree.
//
// The 128 bits come from cyrb128, a small non-cryptographic string hash: fast, allocation
// free and well spread, which is all a simulated device identity needs.

function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** `GPU-` and 32 hex digits in 8-4-4-4-12 groups, stable for (nodeName, index). */
export function gpuUuid(nodeName: string, index: number): string {
  const [a, b, c, d] = cyrb128(`${nodeName}/gpu/${index}`);
  const bh = hex8(b);
  const ch = hex8(c);
  return `GPU-${hex8(a)}-${bh.slice(0, 4)}-${bh.slice(4)}-${ch.slice(0, 4)}-${ch.slice(4)}${hex8(d)}`;
}

/** Matches the UUIDs nvidia-smi prints (and gpuUuid makes). */
export const GPU_UUID_PATTERN = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
