import { describe, expect, it } from 'vitest';
import { qrModules, qrPath } from './qr';

describe('QR codes', () => {
  it('encodes an otpauth URL as a square code with its three finder patterns', async () => {
    const url = 'otpauth://totp/Apogee:otto?secret=JBSWY3DPEHPK3PXP&issuer=Apogee';
    const m = await qrModules(url);
    const n = m.length;
    expect(n).toBeGreaterThanOrEqual(25); // version 2 or more: 66 bytes do not fit version 1
    expect((n - 17) % 4).toBe(0);
    expect(m.every((row) => row.length === n)).toBe(true);
    // A finder: a dark 7×7 ring, a light ring inside it, a dark 3×3 centre.
    const finder = (top: number, left: number) =>
      [0, 6].every((i) => [...Array(7).keys()].every((j) => m[top + i][left + j] && m[top + j][left + i])) &&
      [1, 5].every((i) => [...Array(5).keys()].every((j) => !m[top + i][left + 1 + j] && !m[top + 1 + j][left + i])) &&
      [2, 3, 4].every((i) => [2, 3, 4].every((j) => m[top + i][left + j]));
    expect(finder(0, 0) && finder(0, n - 7) && finder(n - 7, 0)).toBe(true);
    expect(finder(n - 7, n - 7)).toBe(false);
    // Different text, different code.
    expect(await qrModules(`${url}x`)).not.toEqual(m);
  });

  it('draws each dark module once, offset by the quiet zone', () => {
    expect(qrPath([[true, false], [false, true]], 4)).toBe('M4 4h1v1h-1zM5 5h1v1h-1z');
  });
});
