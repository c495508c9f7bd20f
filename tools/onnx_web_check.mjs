// Runs a Stylize ONNX export (dynamic size) in onnxruntime-web (wasm) and compares it with `stylize image`
// on the same random 8-bit pixels (BMP in and out). Called by tools/onnx-web-check.
//   node check.mjs STYLIZE MODEL.safetensors MODEL.onnx WIDTH HEIGHT SCRATCH_DIR
import * as ort from 'onnxruntime-web';
import fs from 'fs';
import { execFileSync } from 'child_process';
const [,, stylize, model, onnx, W, H, scratch] = process.argv;
const w = +W, h = +H;
function writeBmp(path, rgb) {  // rgb: Float32 [3,h,w] in 0..1 -> 24-bit BMP
  const row = Math.ceil(w * 3 / 4) * 4, size = 54 + row * h, b = Buffer.alloc(size);
  b.write('BM'); b.writeUInt32LE(size, 2); b.writeUInt32LE(54, 10); b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18); b.writeInt32LE(h, 22); b.writeUInt16LE(1, 26); b.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++)
    b[54 + (h - 1 - y) * row + x * 3 + (2 - c)] = Math.round(rgb[c * h * w + y * w + x] * 255);
  fs.writeFileSync(path, b);
}
function readBmp(path) {
  const b = fs.readFileSync(path), off = b.readUInt32LE(10), bw = b.readInt32LE(18), bh = b.readInt32LE(22);
  const bpp = b.readUInt16LE(28) / 8, row = Math.ceil(bw * bpp / 4) * 4, out = new Float32Array(3 * w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++)
    out[c * h * w + y * w + x] = b[off + (bh - 1 - y) * row + x * bpp + (2 - c)] / 255;
  return out;
}
const input = new Float32Array(3 * w * h);
for (let i = 0; i < input.length; i++) input[i] = Math.round(Math.random() * 255) / 255;
writeBmp(`${scratch}/in.bmp`, input);
execFileSync(stylize, ['image', '--model', model, `${scratch}/in.bmp`, '-o', `${scratch}/out.bmp`]);
const ours = readBmp(`${scratch}/out.bmp`);
ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(fs.readFileSync(onnx));
const t0 = performance.now();
const result = await session.run({ input: new ort.Tensor('float32', input, [1, 3, h, w]) });
const ms = performance.now() - t0;
const theirs = result.output.data;
let max = 0;
for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(Math.min(1, Math.max(0, theirs[i])) - ours[i]));
console.log(`${onnx} ${w}x${h}: output ${result.output.dims.join('x')}, largest difference to stylize image ${(max * 255).toFixed(2)}/255, ${ms.toFixed(0)} ms`);
