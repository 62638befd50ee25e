// QR codes for the authenticator set-up (`otpauth://` URLs), with the well-kept, dependency-free
// `qrcode-generator`, loaded on demand so that it costs the initial JS nothing.

/** The dark/light modules of a QR code holding `text` (error correction M, smallest version). */
export async function qrModules(text: string): Promise<boolean[][]> {
  const { default: qrcode } = await import('qrcode-generator');
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, row) => Array.from({ length: n }, (_, col) => qr.isDark(row, col)));
}

/** The dark modules as one SVG path (`M x y h1 v1 h-1 z` per module), quiet zone of `margin`. */
export function qrPath(modules: boolean[][], margin = 4): string {
  let d = '';
  modules.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x + margin} ${y + margin}h1v1h-1z`;
    }),
  );
  return d;
}
