#!/usr/bin/env node
// Animated GIF benchmark, sharp's side (prebuilt libvips: cgif + libimagequant).
//   node sharp_animation.js make OUTDIR FILE...   builds the inputs: per photo a 480×320 GIF of
//                                                 12 frames panning across it, 80 ms each, looping
//   node sharp_animation.js gif|webp PASSES FILE... half of each side (fill, lanczos3) of every
//                                                 frame, written as animated GIF or WebP (quality 80),
//                                                 same JSON as examples/bench.rs
// One conversion at a time, concurrency 1, cache off. OUTDIR=dir writes the last pass's outputs.
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const { measure } = require('./sharp_timing');

sharp.concurrency(1);
sharp.cache(false);
const W = 480, H = 320, FRAMES = 12;

async function make(outdir, files) {
  fs.mkdirSync(outdir, { recursive: true });
  for (const f of files) {
    const photo = sharp(fs.readFileSync(f)).rotate();
    const m = await photo.metadata();
    const scale = Math.max(W * 1.5 / m.width, H / m.height);
    const big = await photo.resize(Math.ceil(m.width * scale), Math.ceil(m.height * scale)).raw().toBuffer({ resolveWithObject: true });
    const step = Math.floor((big.info.width - W) / (FRAMES - 1));
    const frames = [];
    for (let i = 0; i < FRAMES; i++) {
      frames.push(await sharp(big.data, { raw: big.info }).extract({ left: i * step, top: 0, width: W, height: H }).raw().toBuffer());
    }
    const strip = Buffer.concat(frames);
    const raw = { width: W, height: H * FRAMES, channels: big.info.channels, pageHeight: H };
    const gif = await sharp(strip, { raw }).gif({ loop: 0, delay: new Array(FRAMES).fill(80) }).toBuffer();
    fs.writeFileSync(path.join(outdir, path.parse(f).name + '.gif'), gif);
  }
}

async function main() {
  const [mode, a, ...files] = process.argv.slice(2);
  if (mode === 'make') return make(a, files);
  const passes = parseInt(a, 10);
  const conv = async (buf) => {
    const m = await sharp(buf, { animated: true }).metadata();
    const ph = m.pageHeight || m.height;
    const p = sharp(buf, { animated: true }).resize(Math.round(m.width / 2), Math.round(ph / 2), { fit: 'fill', kernel: 'lanczos3' });
    return mode === 'gif' ? p.gif().toBuffer() : p.webp({ quality: 80 }).toBuffer();
  };
  await measure(conv, files, passes, mode);
}
main();
